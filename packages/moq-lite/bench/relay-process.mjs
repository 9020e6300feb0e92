/**
 * The relay under test, alone in its process so its CPU and memory are measured by themselves.
 * Started by `fanout.ts`; reports its port, then answers `stats` requests over IPC with CPU time,
 * memory and the largest number of bytes any subscription had queued.
 */
// Plain JavaScript on the built package: a TypeScript entry would load Node's type stripper
// (tens of MB of WebAssembly) into the process whose memory is being measured.
import { readFileSync } from "node:fs";
import v8 from "node:v8";
import { OriginProducer, serveMoq } from "../dist/index.js";

const origin = new OriginProducer();
const server = await serveMoq({
  port: 0,
  host: "127.0.0.1",
  origin,
  ...(process.env.BENCH_NO_WEBTRANSPORT ? { webTransport: false } : {}),
  sessionLimits: { subscriberBudgetBytes: Number(process.env.BENCH_BUDGET_BYTES ?? 4 * 1024 * 1024) },
});

/**
 * Resident memory the process owns (anonymous pages: heap, buffers, stacks), as opposed to pages
 * of the Node executable mapped from disk and shared with every other Node process. Linux only.
 */
function anonymousRss() {
  try {
    const match = /^Anonymous:\s+(\d+) kB/m.exec(readFileSync("/proc/self/smaps_rollup", "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

let peakRss = 0;
/** @type {import("node:inspector/promises").Session | undefined} */
let inspector;
let peakQueued = 0;
let peakTransportBuffered = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  for (const session of server.sessions) {
    peakTransportBuffered = Math.max(peakTransportBuffered, session.transport.stats().bufferedBytes);
    for (const sub of session.subscriptions()) peakQueued = Math.max(peakQueued, sub.bufferedBytes);
  }
}, 100);

process.on("message", async (message) => {
  if (message.type === "reset") {
    peakRss = process.memoryUsage.rss();
    peakQueued = 0;
    peakTransportBuffered = 0;
    process.send?.({ type: "reset" });
  } else if (message.type === "stats") {
    const cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    const stats = server.stats();
    process.send?.({
      type: "stats",
      cpuMicros: cpu.user + cpu.system,
      systemMicros: cpu.system,
      atMs: performance.now(),
      rss: memory.rss,
      anonymousRss: anonymousRss(),
      peakRss: Math.max(peakRss, memory.rss),
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      spaces: Object.fromEntries(
        v8
          .getHeapSpaceStatistics()
          .map((space) => [
            space.space_name,
            [Math.round(space.space_size / 2 ** 20), Math.round(space.space_used_size / 2 ** 20)],
          ]),
      ),
      external: memory.external,
      arrayBuffers: memory.arrayBuffers,
      peakQueued,
      peakTransportBuffered,
      sessions: stats.sessionsOpen,
      bytesOut: stats.bytesOut,
    });
  } else if (message.type === "sample-start") {
    // Allocation sampling, including objects already collected: where the garbage comes from.
    const { Session } = await import("node:inspector/promises");
    inspector = new Session();
    inspector.connect();
    await inspector.post("HeapProfiler.startSampling", {
      samplingInterval: 16384,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    process.send?.({ type: "sample-start" });
  } else if (message.type === "sample-stop") {
    const { profile } = await inspector.post("HeapProfiler.stopSampling");
    const { writeFileSync } = await import("node:fs");
    const file = `${process.cwd()}/relay-${process.pid}.heapprofile`;
    writeFileSync(file, JSON.stringify(profile));
    process.send?.({ type: "sample-stop", file });
  } else if (message.type === "snapshot") {
    const v8 = await import("node:v8");
    process.send?.({ type: "snapshot", file: v8.writeHeapSnapshot() });
  } else if (message.type === "close") {
    clearInterval(sampler);
    void server.close().then(() => process.exit(0));
  }
});
process.send?.({ type: "ready", port: server.address.port });
