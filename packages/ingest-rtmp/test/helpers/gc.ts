import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
const gcFn = runInNewContext("gc") as () => void;

/** Runs a full garbage collection, so memory measurements count live data rather than garbage. */
export function collectGarbage(): void {
  gcFn();
  gcFn();
}
