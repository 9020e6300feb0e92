/**
 * Benchmarks of the out-of-the-Origin half (LL-HLS and DASH):
 *
 * 1. Egress CPU per 2.5 Mbit/s stream, fed as fast as possible: the same synthetic media is
 *    published twice, once with no egress and once followed by an `EgressHub` (catalog, tracks,
 *    fragment parsing, segmenting, part and segment storage); the CPU difference divided by the
 *    media time is the share of one core the egress costs per live stream.
 * 2. The same in real time: several streams paced by the wall clock, with and without the hub.
 * 3. Blocking-reload load: a server (one real-time stream, hub, HLS plugin) in a worker thread and
 *    N clients over HTTP/1.1 keep-alive in the main thread, each doing what a low-latency player
 *    does: a blocking playlist reload for the hinted part, then a GET of the newest part. Reported:
 *    playlist and part responses per second, and the newest-part age at listing (now minus the
 *    wall-clock start of the newest part in the answered playlist; a part is 200 ms long, so
 *    anything near 200 ms means it was listed as soon as it was complete).
 *
 *   node --conditions=@lvqr/source bench/egress.bench.ts [--smoke]
 */

import http from "node:http";
import { performance } from "node:perf_hooks";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { OriginProducer } from "@lvqr/moq-lite";
import Fastify from "fastify";
import { EgressHub, hlsPlugin } from "../src/index.ts";
import { feedFast, feedRealtime, SyntheticStream } from "./synthetic-stream.ts";

const smoke = process.argv.includes("--smoke") || (workerData as { smoke?: boolean } | null)?.smoke === true;

if (!isMainThread) {
  await serve();
} else {
  await main();
}

/** Worker thread: one real-time stream served over HLS on an ephemeral port. */
async function serve(): Promise<void> {
  const origin = new OriginProducer();
  const hub = new EgressHub({ origin: origin.consume() });
  const app = Fastify();
  await app.register(hlsPlugin, { egress: hub });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const stream = new SyntheticStream(origin, "bench/live", { realtime: true });
  const feed = feedRealtime([stream]);
  const address = app.server.address();
  parentPort!.postMessage({ port: typeof address === "object" && address ? address.port : 0 });
  let elu = performance.eventLoopUtilization();
  parentPort!.on("message", async (message: string) => {
    if (message === "elu") {
      // Event-loop utilization of the server thread since the last ask: its CPU share.
      const now = performance.eventLoopUtilization();
      parentPort!.postMessage({ elu: performance.eventLoopUtilization(now, elu).utilization });
      elu = now;
      return;
    }
    feed.stop();
    stream.close();
    await app.close();
    hub.close();
    parentPort!.postMessage("closed");
  });
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

async function main(): Promise<void> {
  const results: Record<string, string | number> = {};

  // -- 1. egress CPU per stream, as fast as possible ------------------------------------------------
  const mediaMs = (smoke ? 20 : 300) * 1000;
  const streams = smoke ? 2 : 4;
  const measure = async (withHub: boolean): Promise<number> => {
    const origin = new OriginProducer();
    const hub = withHub ? new EgressHub({ origin: origin.consume() }) : undefined;
    const list = Array.from({ length: streams }, (_, i) => new SyntheticStream(origin, `bench/fast-${i}`));
    // Let the hub subscribe before media flows.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const before = process.cpuUsage();
    await feedFast(list, mediaMs);
    await new Promise((resolve) => setImmediate(resolve));
    const used = cpuMs(before);
    if (hub) {
      const segments = list.reduce((n, _s, i) => n + (hub.get(`bench/fast-${i}`)?.video.nextMsn ?? 0), 0);
      if (segments < streams * (mediaMs / 2000 - 2))
        throw new Error(`the hub kept up with only ${segments} segments`);
    }
    for (const stream of list) stream.close();
    hub?.close();
    return used;
  };
  await measure(true); // warm-up (JIT)
  const publishOnly = await measure(false);
  const withEgress = await measure(true);
  const egressShare = ((withEgress - publishOnly) / (streams * mediaMs)) * 100;
  results["fast: media fed (streams x s)"] = `${streams} x ${mediaMs / 1000}`;
  results["fast: CPU ms publish only / publish + egress"] =
    `${Math.round(publishOnly)} / ${Math.round(withEgress)}`;
  results["fast: egress CPU per 2.5 Mbit/s stream (% of one core)"] = Math.max(egressShare, 0).toFixed(3);

  // -- 2. real time ---------------------------------------------------------------------------------
  const realtimeStreams = smoke ? 4 : 20;
  const realtimeSeconds = smoke ? 2 : 15;
  const realtime = async (withHub: boolean): Promise<number> => {
    const origin = new OriginProducer();
    const hub = withHub ? new EgressHub({ origin: origin.consume() }) : undefined;
    const list = Array.from(
      { length: realtimeStreams },
      (_, i) => new SyntheticStream(origin, `bench/rt-${i}`, { realtime: true }),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    const before = process.cpuUsage();
    const feed = feedRealtime(list);
    await new Promise((resolve) => setTimeout(resolve, realtimeSeconds * 1000));
    feed.stop();
    const used = cpuMs(before);
    for (const stream of list) stream.close();
    hub?.close();
    return used;
  };
  const rtPublish = await realtime(false);
  const rtEgress = await realtime(true);
  results[`real time: ${realtimeStreams} streams x ${realtimeSeconds} s, CPU ms publish only / + egress`] =
    `${Math.round(rtPublish)} / ${Math.round(rtEgress)}`;
  results["real time: egress CPU per stream (% of one core)"] = Math.max(
    ((rtEgress - rtPublish) / (realtimeStreams * realtimeSeconds * 1000)) * 100,
    0,
  ).toFixed(3);

  // -- 3. blocking-reload load ------------------------------------------------------------------------
  const worker = new Worker(new URL(import.meta.url), { workerData: { smoke } });
  const port = await new Promise<number>((resolve) =>
    worker.once("message", (m: { port: number }) => resolve(m.port)),
  );
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const get = (path: string): Promise<{ status: number; body: string; bytes: number }> =>
    new Promise((resolve, reject) => {
      const request = http.get({ host: "127.0.0.1", port, path, agent }, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: response.statusCode ?? 0,
            body: body.toString("latin1"),
            bytes: body.byteLength,
          });
        });
        response.on("error", reject);
      });
      request.on("error", reject);
    });

  const serverLoad = (): Promise<number> =>
    new Promise((resolve) => {
      worker.once("message", (m: { elu: number }) => resolve(m.elu));
      worker.postMessage("elu");
    });

  // Wait for the stream to have a few segments.
  for (let i = 0; i < 200; i++) {
    const response = await get("/hls/bench/live/playlist.m3u8");
    if (response.status === 200 && (response.body.match(/#EXTINF/g)?.length ?? 0) >= 2) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const levels = smoke ? [5] : [10, 100, 300];
  const seconds = smoke ? 3 : 10;
  for (const clients of levels) {
    let playlists = 0;
    let parts = 0;
    let errors = 0;
    const ages: number[] = [];
    const deadline = Date.now() + seconds * 1000;
    const before = process.cpuUsage();
    const started = performance.now();
    await serverLoad(); // reset the server thread's utilization window
    const client = async () => {
      let text = (await get("/hls/bench/live/playlist.m3u8")).body;
      while (Date.now() < deadline) {
        const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-(\d+)-(\d+)\.m4s"/.exec(text);
        if (!hint) {
          errors++;
          await new Promise((resolve) => setTimeout(resolve, 100));
          text = (await get("/hls/bench/live/playlist.m3u8")).body;
          continue;
        }
        const response = await get(`/hls/bench/live/playlist.m3u8?_HLS_msn=${hint[1]}&_HLS_part=${hint[2]}`);
        const now = Date.now();
        if (response.status !== 200) {
          errors++;
          continue;
        }
        playlists++;
        text = response.body;
        const newest = newestPartStart(text);
        if (newest) {
          ages.push(now - newest.startMs);
          const part = await get(`/hls/bench/live/${newest.uri}`);
          if (part.status === 200) parts++;
          else errors++;
        }
      }
    };
    await Promise.all(Array.from({ length: clients }, client));
    const wall = (performance.now() - started) / 1000;
    const cpu = cpuMs(before);
    const server = await serverLoad();
    ages.sort((a, b) => a - b);
    const pick = (q: number) => ages[Math.min(ages.length - 1, Math.floor(q * ages.length))] ?? Number.NaN;
    results[`load ${clients} clients: playlist / part responses per s`] =
      `${Math.round(playlists / wall)} / ${Math.round(parts / wall)}`;
    results[`load ${clients} clients: newest-part age ms median / p95`] =
      `${Math.round(pick(0.5))} / ${Math.round(pick(0.95))}`;
    results[`load ${clients} clients: server thread busy %, process CPU % (both threads), errors`] =
      `${Math.round(server * 100)}, ${Math.round((cpu / (wall * 1000)) * 100)}, ${errors}`;
  }
  agent.destroy();
  const closed = new Promise((resolve) => worker.once("message", resolve));
  worker.postMessage("stop");
  await closed;
  await worker.terminate();

  const width = Math.max(...Object.keys(results).map((k) => k.length));
  for (const [key, value] of Object.entries(results)) console.log(`${key.padEnd(width)}  ${value}`);
  console.log(JSON.stringify({ bench: "egress", smoke, results }));
}

/** The newest part of a media playlist and its wall-clock start (segment PDT + earlier parts). */
function newestPartStart(text: string): { uri: string; startMs: number } | undefined {
  const lines = text.split("\n");
  let pdt = Number.NaN;
  let offset = 0;
  let newest: { uri: string; startMs: number } | undefined;
  for (const line of lines) {
    if (line.startsWith("#EXT-X-PROGRAM-DATE-TIME:")) {
      pdt = Date.parse(line.slice(25));
      offset = 0;
    } else if (line.startsWith("#EXT-X-PART:")) {
      const duration = Number(/DURATION=([\d.]+)/.exec(line)?.[1]);
      const uri = /URI="([^"]+)"/.exec(line)?.[1];
      if (uri) newest = { uri, startMs: pdt + offset * 1000 };
      offset += duration;
    }
  }
  return newest;
}
