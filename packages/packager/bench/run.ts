/**
 * Runs every `bench/*.bench.ts` of this package in its own Node process, one after the other (so
 * CPU and RSS figures do not disturb each other). `--smoke` is passed through: each bench then
 * runs briefly, which CI uses to check that the benches still work.
 *
 *   node bench/run.ts [--smoke] [name-filter]
 */

import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const smoke = args.includes("--smoke");
const filter = args.find((arg) => !arg.startsWith("--"));
const benches = readdirSync(here)
  .filter((name) => name.endsWith(".bench.ts") && (!filter || name.includes(filter)))
  .sort();

let failed = 0;
for (const name of benches) {
  console.log(`\n== ${name}${smoke ? " (smoke)" : ""}`);
  // The children inherit Node flags such as `--conditions=@lvqr/source` (run against sources).
  const result = spawnSync(
    process.execPath,
    [...process.execArgv, path.join(here, name), ...(smoke ? ["--smoke"] : [])],
    {
      stdio: "inherit",
    },
  );
  if (result.status !== 0) {
    failed++;
    console.error(`${name} failed (exit ${result.status ?? result.signal})`);
  }
}
if (benches.length === 0) console.log("no benches matched");
process.exitCode = failed > 0 ? 1 : 0;
