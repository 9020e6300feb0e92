/**
 * Fan-out benchmark of the moq-lite relay over WebSocket (QMux qmux-00, lite-02).
 *
 * One publisher (our Node client) sends 2.5 Mbit/s of video-shaped frames: 30 fps, 60-frame
 * groups (a keyframe eight times the size of the others), each frame stamped with its send time.
 * N raw QMux subscribers in separate processes receive them through the relay, which runs alone
 * in a child process so its CPU share and memory are its own. Reported per N: relay CPU (% of
 * one core), RSS (end and peak), frames delivered (and whether every subscriber got every
 * frame), and p50/p95/p99 frame delay (publisher send to subscriber receipt of the last byte).
 *
 * The slow-subscriber scenario runs N fast subscribers twice, alone and next to one subscriber
 * that reads at 10 % of the bitrate, and reports the change in the fast ones' p95 delay and the
 * largest number of bytes the relay had queued for any subscription (bounded by the budget).
 *
 *   node bench/fanout.ts                 N = 1, 100, 400 for 20 s, then the slow-subscriber scenario
 *   node bench/fanout.ts --smoke         N = 1, 20 for 4 s, slow scenario with N = 20 (CI)
 *   node bench/fanout.ts --n=100 --seconds=10 [--profile]   one run (--profile: relay --cpu-prof)
 *   node bench/fanout.ts --relay-flags="..."   the relay's Node options (default RELAY_NODE_FLAGS)
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { connectMoq } from "../src/index.ts";

const args = new Map(
  process.argv.slice(2).map((arg) => {
    const body = arg.replace(/^--/, "");
    const eq = body.indexOf("=");
    return eq < 0 ? [body, "true"] : [body.slice(0, eq), body.slice(eq + 1)];
  }),
);
const smoke = args.has("smoke");
const BITRATE = 2_500_000;
const FPS = 30;
const GROUP_FRAMES = 60;
const KEYFRAME_WEIGHT = 8;
const BYTES_PER_GROUP = (BITRATE / 8) * (GROUP_FRAMES / FPS);
const DELTA_BYTES = Math.round(BYTES_PER_GROUP / (KEYFRAME_WEIGHT + GROUP_FRAMES - 1));
const KEY_BYTES = KEYFRAME_WEIGHT * DELTA_BYTES;
/**
 * Node options of the relay process unless `--relay-flags="..."` is given (an empty value: V8's
 * defaults). The README's relay deployment settings: 1 MiB semi-spaces (a relay's garbage is
 * short-lived; by default V8 lets the young generation grow to about 64 MB), no Maglev tier (its compiler and code
 * cost about 5 MB of memory and no measurable CPU here), old generation growth of 1.5 x.
 */
const RELAY_NODE_FLAGS = ["--max-semi-space-size=1", "--no-maglev", "--heap-growing-percent=50"];
/** Subscribers per client process. */
const PER_PROCESS = 200;

interface RelayStats {
  cpuMicros: number;
  systemMicros: number;
  atMs: number;
  rss: number;
  anonymousRss?: number;
  peakRss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  peakQueued: number;
  peakTransportBuffered: number;
  sessions: number;
  bytesOut: number;
}

interface RunResult {
  n: number;
  seconds: number;
  cpuPercent: number;
  systemPercent: number;
  clientCpuPercent: number;
  rssMb: number;
  anonymousRssMb: number | undefined;
  peakRssMb: number;
  heapMb: number;
  heapTotalMb: number;
  externalMb: number;
  framesSent: number;
  framesDelivered: number;
  complete: number;
  p50: number;
  p95: number;
  p99: number;
  peakQueuedKb: number;
  peakConnectionKb: number;
  slowFrames?: number;
}

const here = path.dirname(new URL(import.meta.url).pathname);

function request<T>(child: ChildProcess, message: object, reply: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: { type: string; error?: string }) => {
      if (msg.type === "error") {
        child.off("message", onMessage);
        reject(new Error(msg.error));
      } else if (msg.type === reply) {
        child.off("message", onMessage);
        resolve(msg as T);
      }
    };
    child.on("message", onMessage);
    if (Object.keys(message).length > 0) child.send(message);
  });
}

async function start(
  script: string,
  execArgv: string[] = [],
): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(path.join(here, script), [], {
    execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const ready = await request<{ port: number }>(child, {}, "ready");
  return { child, port: ready.port };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function frame(index: number, size: number): Uint8Array {
  const data = new Uint8Array(size);
  const view = new DataView(data.buffer);
  view.setFloat64(0, performance.timeOrigin + performance.now());
  view.setUint32(8, index);
  return data;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface SubscriberReport {
  frames: number[];
  delays: number[];
  failures: string[];
  cpuMicros: number;
}

async function run(
  n: number,
  seconds: number,
  options: { slow?: number; profile?: boolean } = {},
): Promise<RunResult> {
  const profileDir = options.profile ? mkdtempSync(path.join(os.tmpdir(), "moq-fanout-prof-")) : undefined;
  const relayFlags = (args.get("relay-flags") ?? RELAY_NODE_FLAGS.join(" "))
    .split(" ")
    .filter((flag) => flag !== "");
  const relay = await start("relay-process.mjs", [
    ...relayFlags,
    ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []),
  ]);
  const base = `http://127.0.0.1:${relay.port}/`;
  const publisher = await connectMoq(base, { announceInterest: [] });
  const broadcast = publisher.createBroadcast("bench");
  const track = broadcast.createTrack("video");
  // Wait until the relay imported the broadcast (a subscriber before that would get NOT_FOUND).
  for (let i = 0; i < 200 && publisher.session.stats().subscriptions === 0; i++) {
    const probe = await connectMoq(base, { announceInterest: [""] });
    const seen = await probe.waitForBroadcast("bench", { timeoutMs: 2000 }).then(
      () => true,
      () => false,
    );
    probe.close();
    if (seen) break;
  }

  const groups: Array<{ child: ChildProcess; rate: number; count: number }> = [];
  for (let left = n; left > 0; left -= PER_PROCESS)
    groups.push({
      child: (await start("subscriber-process.ts")).child,
      rate: 0,
      count: Math.min(PER_PROCESS, left),
    });
  if (options.slow)
    groups.push({
      child: (await start("subscriber-process.ts")).child,
      rate: (BITRATE / 8) * 0.1,
      count: options.slow,
    });
  await Promise.all(
    groups.map(({ child, rate, count }) =>
      request(
        child,
        {
          type: "start",
          spec: { url: base, count, broadcast: "bench", track: "video", rateBytesPerSec: rate },
        },
        "subscribed",
      ),
    ),
  );
  await request(relay.child, { type: "reset" }, "reset");
  const before = await request<RelayStats>(relay.child, { type: "stats" }, "stats");
  if (args.has("allocations")) await request(relay.child, { type: "sample-start" }, "sample-start");
  const clientCpuBefore = await Promise.all(
    groups.map(({ child }) => request<SubscriberReport>(child, { type: "cpu" }, "cpu")),
  );

  // Publish for `seconds` at 30 fps, paced against the clock (no drift).
  const total = seconds * FPS;
  const startedAt = performance.now();
  let group = track.appendGroup();
  for (let i = 0; i < total; i++) {
    const due = startedAt + (i * 1000) / FPS;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    if (i > 0 && i % GROUP_FRAMES === 0) {
      group.close();
      group = track.appendGroup();
    }
    group.writeFrame(frame(i, i % GROUP_FRAMES === 0 ? KEY_BYTES : DELTA_BYTES));
  }
  group.close();
  const after = await request<RelayStats>(relay.child, { type: "stats" }, "stats");
  if (args.has("spaces"))
    console.log(
      "  relay heap spaces [size, used] MB:",
      JSON.stringify((after as unknown as { spaces: unknown }).spaces),
    );
  if (args.has("allocations")) {
    const { file } = await request<{ file: string }>(relay.child, { type: "sample-stop" }, "sample-stop");
    console.log(`  relay allocation profile (collected objects included): ${file}`);
  }
  if (args.has("snapshot")) {
    const { file } = await request<{ file: string }>(relay.child, { type: "snapshot" }, "snapshot");
    console.log(`  relay heap snapshot: ${file}`);
  }
  const clientCpuAfter = await Promise.all(
    groups.map(({ child }) => request<SubscriberReport>(child, { type: "cpu" }, "cpu")),
  );
  // Let the last frames arrive (fast subscribers need milliseconds).
  await sleep(1000);
  const reports = await Promise.all(
    groups.map(({ child }) => request<SubscriberReport>(child, { type: "report" }, "report")),
  );

  const fast = reports.slice(0, options.slow ? -1 : undefined);
  const frames = fast.flatMap((r) => r.frames);
  const delays = fast.flatMap((r) => r.delays).sort((a, b) => a - b);
  const failures = reports.flatMap((r) => r.failures);
  if (failures.length > 0) console.warn(`  ${failures.length} subscriber failures, e.g. ${failures[0]}`);
  const result: RunResult = {
    n,
    seconds,
    cpuPercent: ((after.cpuMicros - before.cpuMicros) / 1000 / (after.atMs - before.atMs)) * 100,
    systemPercent: ((after.systemMicros - before.systemMicros) / 1000 / (after.atMs - before.atMs)) * 100,
    clientCpuPercent:
      (clientCpuAfter.reduce((sum, r, i) => sum + r.cpuMicros - clientCpuBefore[i]!.cpuMicros, 0) /
        1000 /
        (after.atMs - before.atMs)) *
      100,
    rssMb: after.rss / 2 ** 20,
    anonymousRssMb: after.anonymousRss === undefined ? undefined : after.anonymousRss / 2 ** 20,
    peakRssMb: after.peakRss / 2 ** 20,
    heapMb: after.heapUsed / 2 ** 20,
    heapTotalMb: after.heapTotal / 2 ** 20,
    externalMb: after.external / 2 ** 20,
    framesSent: total,
    framesDelivered: frames.reduce((a, b) => a + b, 0),
    complete: frames.filter((count) => count === total).length,
    p50: percentile(delays, 50),
    p95: percentile(delays, 95),
    p99: percentile(delays, 99),
    peakQueuedKb: after.peakQueued / 1024,
    peakConnectionKb: after.peakTransportBuffered / 1024,
    ...(options.slow ? { slowFrames: reports.at(-1)!.frames[0] } : {}),
  };

  publisher.close();
  for (const { child } of groups) child.send({ type: "close" });
  relay.child.send({ type: "close" });
  await new Promise((resolve) => relay.child.once("exit", resolve));
  if (profileDir) console.log(`  relay CPU profile in ${profileDir}`);
  return result;
}

/** Runs in which some fast subscriber missed a frame. */
const incomplete: string[] = [];

function print(result: RunResult): void {
  if (result.complete !== result.n) incomplete.push(`N=${result.n}: ${result.complete}/${result.n} complete`);
  const ms = (v: number) => `${v.toFixed(1)} ms`;
  console.log(
    [
      `N=${String(result.n).padStart(3)}`,
      `relay CPU ${result.cpuPercent.toFixed(1)}% of a core (${result.systemPercent.toFixed(1)}% kernel)`,
      `clients ${result.clientCpuPercent.toFixed(0)}%`,
      `RSS ${result.rssMb.toFixed(0)} MB (peak ${result.peakRssMb.toFixed(0)}; ${result.anonymousRssMb === undefined ? "" : `${result.anonymousRssMb.toFixed(0)} anonymous, the rest the executable's pages; `}heap ${result.heapMb.toFixed(0)} used of ${result.heapTotalMb.toFixed(0)}, external ${result.externalMb.toFixed(0)})`,
      `frames ${result.framesDelivered}/${result.framesSent * result.n} (${result.complete}/${result.n} complete)`,
      `delay p50 ${ms(result.p50)} p95 ${ms(result.p95)} p99 ${ms(result.p99)}`,
      `max queued per subscription ${result.peakQueuedKb.toFixed(0)} KiB (per connection ${result.peakConnectionKb.toFixed(0)} KiB)`,
      ...(result.slowFrames !== undefined ? [`slow subscriber got ${result.slowFrames} frames`] : []),
    ].join(" | "),
  );
}

const only = args.get("n");
const seconds = Number(args.get("seconds") ?? (smoke ? 4 : 20));
console.log(
  `moq-lite fan-out: ${BITRATE / 1e6} Mbit/s, ${FPS} fps, ${GROUP_FRAMES}-frame groups (key ${KEY_BYTES} B, delta ${DELTA_BYTES} B), ${seconds} s per run, loopback WebSocket (qmux-00, lite-02); relay node ${args.get("relay-flags") ?? RELAY_NODE_FLAGS.join(" ")}`,
);
if (only) {
  print(await run(Number(only), seconds, { profile: args.has("profile"), slow: args.has("slow") ? 1 : 0 }));
} else {
  const sizes = smoke ? [1, 20] : [1, 100, 400];
  const results: RunResult[] = [];
  for (const n of sizes) {
    const result = await run(n, seconds);
    print(result);
    results.push(result);
  }
  console.log("slow subscriber (reads at 10 % of the bitrate) next to fast ones:");
  const slowN = smoke ? 20 : 100;
  const baseline = results.find((r) => r.n === slowN) ?? (await run(slowN, seconds));
  const withSlow = await run(slowN, seconds, { slow: 1 });
  print(withSlow);
  console.log(
    `  fast subscribers' p95 delay ${baseline.p95.toFixed(1)} ms alone -> ${withSlow.p95.toFixed(1)} ms with the slow one (change ${(withSlow.p95 - baseline.p95).toFixed(1)} ms, target < 20 ms)`,
  );
  const at100 = results.find((r) => r.n === 100);
  const at400 = results.find((r) => r.n === 400);
  if (at100 && at400) {
    console.log("targets:");
    console.log(
      `  every subscriber gets every frame at N=400: ${at400.complete === 400 ? "yes" : "NO"} (${at400.complete}/400)`,
    );
    console.log(
      `  relay CPU at N=100 <= 10% of a core: ${at100.cpuPercent <= 10 ? "yes" : "NO"} (${at100.cpuPercent.toFixed(1)}%)`,
    );
    console.log(
      `  relay RSS at N=400 <= 100 MB: ${at400.peakRssMb <= 100 ? "yes" : "NO"} (peak ${at400.peakRssMb.toFixed(0)} MB)`,
    );
  }
}
// A delivery failure is a bug, not a performance result: fail the run (CI runs --smoke).
if (incomplete.length > 0) console.error(`incomplete delivery: ${incomplete.join("; ")}`);
process.exit(incomplete.length > 0 ? 1 : 0);
