/**
 * Benchmarks of the RTMP ingest.
 *
 * 1. Chunk-stream parsing throughput on one core: a realistic stream (2.5 Mbit/s video with
 *    keyframes, 128 kbit/s audio) written at several chunk sizes, fed to ChunkStreamReader in
 *    64 KiB reads, as a socket delivers it.
 * 2. The full server path (handshake, chunk stream, FLV, codec checks, timeline, events) over
 *    loopback with the publisher in a child process: server CPU per MB, as fast as possible.
 * 3. One realtime 2.5 Mbit/s publisher: the server process's CPU share of one core, next to the
 *    share a bare Node TCP server takes to read the same paced traffic (the floor under it).
 *
 *   node bench/chunk-parse.ts            full run
 *   node bench/chunk-parse.ts --smoke    short run (CI)
 */
import { fork } from "node:child_process";
import { createServer } from "node:net";
import { ChunkStreamReader, ChunkStreamWriter, RtmpServer } from "../src/index.ts";
import { mediaTags } from "./media-stream.ts";

const smoke = process.argv.includes("--smoke");
const MB = 1024 * 1024;

function stream(seconds: number, chunkSize: number): Uint8Array[] {
  const writer = new ChunkStreamWriter();
  const parts: Uint8Array[] = [
    writer.encode({
      chunkStreamId: 2,
      typeId: 1,
      streamId: 0,
      timestamp: 0,
      payload: Uint8Array.of(
        chunkSize >>> 24,
        (chunkSize >>> 16) & 0xff,
        (chunkSize >>> 8) & 0xff,
        chunkSize & 0xff,
      ),
    }),
  ];
  writer.setChunkSize(chunkSize);
  for (const tag of mediaTags(seconds, 2_500_000)) {
    parts.push(
      writer.encode({
        chunkStreamId: tag.type === 9 ? 6 : 4,
        typeId: tag.type,
        streamId: 1,
        timestamp: tag.timestamp,
        payload: tag.body,
      }),
    );
  }
  const all = Buffer.concat(parts);
  // Socket-sized reads, each its own buffer (as Node delivers them).
  const reads: Uint8Array[] = [];
  for (let o = 0; o < all.byteLength; o += 65536) reads.push(Uint8Array.from(all.subarray(o, o + 65536)));
  return reads;
}

function parseThroughput(chunkSize: number): { mbPerSec: number; messages: number; mb: number } {
  const reads = stream(smoke ? 20 : 120, chunkSize);
  const bytes = reads.reduce((n, r) => n + r.byteLength, 0);
  const warmup = 3;
  const rounds = warmup + (smoke ? 3 : 8);
  const rates: number[] = [];
  let messages = 0;
  for (let round = 0; round < rounds; round++) {
    const reader = new ChunkStreamReader();
    messages = 0;
    const started = performance.now();
    for (const r of reads) {
      reader.push(r);
      while (reader.next() !== null) messages++;
    }
    if (round >= warmup) rates.push(bytes / MB / ((performance.now() - started) / 1000));
  }
  rates.sort((a, b) => a - b);
  return { mbPerSec: rates[Math.floor(rates.length / 2)]!, messages, mb: bytes / MB };
}

async function serverRun(
  seconds: number,
  bitrate: number,
  realtime: boolean,
  bare = false,
  publishers = 1,
): Promise<{ cpuMs: number; wallMs: number; bytes: number; samples: number }> {
  let samples = 0;
  let port: number;
  let close: () => Promise<void>;
  if (bare) {
    const sink = createServer((socket) => socket.on("data", () => {}));
    await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
    port = (sink.address() as { port: number }).port;
    close = () => new Promise((resolve) => sink.close(() => resolve()));
  } else {
    const server = new RtmpServer();
    server.on("publish", (s) => s.on("sample", () => samples++));
    port = (await server.listen(0, "127.0.0.1")).port;
    close = () => server.close();
  }
  const url = bare ? `tcp://127.0.0.1:${port}` : `rtmp://127.0.0.1:${port}/bench/s`;
  const child = fork(new URL("./publisher-child.ts", import.meta.url), [
    url,
    String(seconds),
    String(bitrate),
    realtime ? "1" : "0",
    String(publishers),
  ]);
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  const result = await new Promise<{ bytes: number }>((resolve, reject) => {
    child.on("message", (m: { started?: boolean; done?: boolean; bytes: number }) => {
      if (m.started) {
        cpu0 = process.cpuUsage();
        t0 = performance.now();
      }
      if (m.done) resolve(m);
    });
    child.on("exit", (code) => code !== 0 && reject(new Error(`publisher exited ${code}`)));
  });
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  await close();
  return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs, bytes: result.bytes, samples };
}

const rows: [string, string][] = [];
for (const chunkSize of [128, 4096, 65536]) {
  const r = parseThroughput(chunkSize);
  rows.push([
    `chunk parse, chunk size ${chunkSize}`,
    `${r.mbPerSec.toFixed(0)} MB/s (${r.mb.toFixed(0)} MB, ${r.messages} messages)`,
  ]);
}
const fast = await serverRun(smoke ? 20 : 120, 2_500_000, false);
const mbPerCpuSecond = fast.bytes / MB / (fast.cpuMs / 1000);
rows.push([
  "server path, as fast as possible",
  `${mbPerCpuSecond.toFixed(0)} MB per CPU-second (${(fast.bytes / MB).toFixed(0)} MB, ${fast.samples} samples)`,
]);
rows.push([
  "  => one 2.5 Mbit/s publisher (extrapolated)",
  `${((2_500_000 / 8 / MB / mbPerCpuSecond) * 100).toFixed(3)} % of a core`,
]);
const liveSeconds = smoke ? 3 : 10;
const floor = await serverRun(liveSeconds, 2_500_000, true, true);
const live = await serverRun(liveSeconds, 2_500_000, true);
const floorPct = (floor.cpuMs / floor.wallMs) * 100;
const livePct = (live.cpuMs / live.wallMs) * 100;
rows.push([
  `realtime 2.5 Mbit/s, ${liveSeconds} s: bare Node TCP read (floor)`,
  `${floorPct.toFixed(2)} % of a core`,
]);
rows.push([
  `realtime 2.5 Mbit/s, ${liveSeconds} s: RtmpServer publish`,
  `${livePct.toFixed(2)} % of a core (${live.samples} samples)`,
]);
rows.push(["  => ingest cost above the floor", `${(livePct - floorPct).toFixed(2)} % of a core`]);
// What each publisher adds once the server is not idle between one publisher's reads: the
// per-wakeup cost of an otherwise idle process is shared, so this is the capacity figure.
for (const count of smoke ? [10] : [10, 40]) {
  const many = await serverRun(liveSeconds, 2_500_000, true, false, count);
  const pct = (many.cpuMs / many.wallMs) * 100;
  rows.push([
    `realtime 2.5 Mbit/s, ${liveSeconds} s: ${count} publishers at once`,
    `${pct.toFixed(2)} % of a core, ${(pct / count).toFixed(2)} % per publisher (${many.samples} samples)`,
  ]);
}

const width = Math.max(...rows.map(([k]) => k.length));
console.log(`\n@lvqr/ingest-rtmp benchmark${smoke ? " (smoke)" : ""} — Node ${process.version}\n`);
console.log(`${"measurement".padEnd(width)}  result`);
console.log(`${"-".repeat(width)}  ${"-".repeat(40)}`);
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
console.log("\ntargets: chunk parsing >= 400 MB/s on one core; one 2.5 Mbit/s publisher <= 1 % of a core");
