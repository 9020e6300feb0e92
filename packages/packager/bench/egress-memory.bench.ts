/**
 * Memory per stream with the default 120 s DVR window: several synthetic 2.5 Mbit/s + 128 kbit/s
 * streams are fed 150 s of media each (as fast as the egress keeps up), so every window is full,
 * and the process RSS growth is divided by the number of streams. Reported next to it: what the
 * egress itself retains per stream (segments and parts, counted in bytes) and what the Origin's
 * track caches hold (moq-lite's bounded caches of the published tracks, which any server has
 * whether or not HLS/DASH are on).
 *
 *   node --conditions=@lvqr/source bench/egress-memory.bench.ts [--smoke]
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { OriginProducer } from "@lvqr/moq-lite";
import { EgressHub } from "../src/index.ts";
import { feedFast, SyntheticStream } from "./synthetic-stream.ts";

const smoke = process.argv.includes("--smoke");
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function settledRss(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().rss;
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

const streams = smoke ? 2 : 8;
const mediaMs = (smoke ? 20 : 150) * 1000;
const origin = new OriginProducer();
const hub = new EgressHub({ origin: origin.consume() });
const baseline = settledRss();
const list = Array.from({ length: streams }, (_, i) => new SyntheticStream(origin, `bench/mem-${i}`));
await new Promise((resolve) => setTimeout(resolve, 20));
await feedFast(list, mediaMs);
await new Promise((resolve) => setTimeout(resolve, 50));
const loaded = settledRss();

let egressBytes = 0;
let windowS = 0;
for (let i = 0; i < streams; i++) {
  const egress = hub.get(`bench/mem-${i}`);
  if (!egress) throw new Error(`stream ${i} was not followed`);
  egressBytes += egress.bytes;
  windowS = Math.max(windowS, egress.video.closedDurationS());
}
const results: Record<string, string> = {
  "streams x media fed": `${streams} x ${mediaMs / 1000} s`,
  "video window retained (s)": windowS.toFixed(1),
  "RSS growth per stream (MiB)": mib((loaded - baseline) / streams),
  "egress retained per stream (MiB)": mib(egressBytes / streams),
  "RSS growth minus egress, per stream (MiB; Origin caches, publisher)": mib(
    (loaded - baseline - egressBytes) / streams,
  ),
};
for (const stream of list) stream.close();
hub.close();
const width = Math.max(...Object.keys(results).map((k) => k.length));
for (const [key, value] of Object.entries(results)) console.log(`${key.padEnd(width)}  ${value}`);
console.log(JSON.stringify({ bench: "egress-memory", smoke, results }));
