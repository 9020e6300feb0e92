/**
 * End-to-end cluster benchmark with real server processes on one redis-server (lease 3 s, renew
 * 1 s, as the reference measurements in cluster-design §1.4 used), printed beside those numbers:
 *
 * - claim latency: the store round trip inside publish admission (server-side `claimMs`), and
 *   the whole RTMP publish admission as an encoder sees it, with and without clustering;
 * - failover after `kill -9` of the owner: republish accepted on B, the official MoQ viewer on C
 *   receiving B's media, HLS on C listing parts again;
 * - graceful handover (SIGTERM on the owner) and SIGSTOP of the owner: when B's republish is let in.
 *
 * Run from the repository root (build first, or set LVQR_CLUSTER_TEST_CLI=source):
 *
 *   node --conditions=@lvqr/source apps/server/test/cluster-support/cluster-e2e.bench.ts [--smoke]
 */

import { RtmpPublisher } from "@lvqr/ingest-rtmp";
import { connectOfficialViewer } from "../../../../packages/cluster/test/support/official-moq-client.ts";
import { startRedisServer } from "../../../../packages/cluster/test/support/redis-server.ts";
import { ownerOn, percentile, sleep, startNodes, stopNodes, waitUntil } from "./cluster.ts";
import { FlvLoopPublisher, testClip } from "./flv-loop-publisher.ts";
import { HlsPlaylistWatcher } from "./hls-viewer.ts";
import { ServerProcess } from "./server-process.ts";

const smoke = process.argv.includes("--smoke");
const CLAIMS = smoke ? 30 : 200;
const FAILOVER_RUNS = smoke ? 1 : 5;
const LEASE = { leaseMs: 3000, renewMs: 1000 } as const;

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const median = (values: readonly number[]) => percentile(values, 50);
const range = (values: readonly number[]) =>
  `${Math.round(median(values))} (${Math.round(Math.min(...values))}–${Math.round(Math.max(...values))})`;

async function admissionLatencies(node: ServerProcess, prefix: string, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const publisher = await RtmpPublisher.connect(node.rtmpUrl(`${prefix}/s${i}`), { timeoutMs: 10_000 });
    out.push(performance.now() - started);
    await publisher.close();
  }
  return out;
}

async function claimBench(redisUrl: string) {
  const [a] = await startNodes(redisUrl, ["bench-a", "bench-b", "bench-c"], LEASE).then((nodes) => {
    cleanup.push(() => stopNodes(nodes));
    return nodes;
  });
  await admissionLatencies(a!, "warm", 10);
  const clustered = await admissionLatencies(a!, "bench", CLAIMS);
  const claimMs = a!
    .lines("publish admitted with a cluster claim", (line) => String(line["broadcast"]).startsWith("bench/"))
    .map((line) => Number(line["claimMs"]));
  await cleanup.pop()!();
  // The same admissions on a node without clustering: the difference is what claiming costs.
  const plain = await ServerProcess.start({ nodeId: "bench-plain" });
  await admissionLatencies(plain, "warm", 10);
  const unclustered = await admissionLatencies(plain, "bench", CLAIMS);
  await plain.stop();
  return { claimMs, clustered, unclustered };
}

async function failoverRun(redisUrl: string, run: number) {
  const ids = [`fo${run}-a`, `fo${run}-b`, `fo${run}-c`];
  const nodes = await startNodes(redisUrl, ids, LEASE);
  const [a, b, c] = nodes as [ServerProcess, ServerProcess, ServerProcess];
  const name = `live/failover-${run}`;
  const publisherA = await FlvLoopPublisher.start(a.rtmpUrl(name));
  const viewer = await connectOfficialViewer(c.moqUrl());
  const followed = viewer.follow("live", name, "video");
  const hls = new HlsPlaylistWatcher(c.hlsUrl(name, "playlist.m3u8"), 100);
  try {
    await waitUntil(() => followed.groups.length >= 2 && hls.progress() > 0, 20_000, "playback on C");
    await sleep(1000);
    const killedAt = performance.now();
    await a.kill();
    void publisherA.abort();
    const { publisher: publisherB } = await FlvLoopPublisher.startWhenAccepted(b.rtmpUrl(name), {
      intervalMs: 100,
      timeoutMs: 20_000,
    });
    const acceptedMs = performance.now() - killedAt;
    const moqGroup = await waitUntil(
      () => followed.groups.find((group) => group.instance > 1),
      20_000,
      "MoQ on C to resume",
      5,
    );
    // B's media follows a discontinuity in the playlist; resumed = a part listed after it.
    const hlsSample = await waitUntil(
      () => hls.ok().find((sample) => sample.at > killedAt && sample.afterDiscontinuity > 0),
      20_000,
      "HLS on C to resume",
      20,
    );
    await publisherB.stop();
    return { acceptedMs, moqMs: moqGroup.firstFrameAt - killedAt, hlsMs: hlsSample.at - killedAt };
  } finally {
    hls.stop();
    await stopNodes(nodes);
    viewer.close();
  }
}

async function handoverRun(redisUrl: string, run: number, fault: "SIGTERM" | "SIGSTOP") {
  const nodes = await startNodes(redisUrl, [`ho${run}-a`, `ho${run}-b`], LEASE);
  const [a, b] = nodes as [ServerProcess, ServerProcess];
  const name = `live/handover-${fault}-${run}`;
  const publisherA = await FlvLoopPublisher.start(a.rtmpUrl(name));
  try {
    await waitUntil(() => ownerOn(b, name), 5000, "the claim");
    await sleep(1500);
    const at = performance.now();
    a.signal(fault);
    const { publisher } = await FlvLoopPublisher.startWhenAccepted(b.rtmpUrl(name), {
      intervalMs: fault === "SIGTERM" ? 5 : 50,
      timeoutMs: 20_000,
    });
    const acceptedMs = performance.now() - at;
    await publisher.stop();
    return acceptedMs;
  } finally {
    a.signal("SIGCONT");
    await publisherA.abort();
    await stopNodes(nodes);
  }
}

const cleanup: Array<() => Promise<unknown>> = [];

async function main(): Promise<void> {
  await testClip();
  const redis = await startRedisServer();
  try {
    const claims = await claimBench(redis.url);
    const failovers = [];
    for (let run = 0; run < FAILOVER_RUNS; run++) failovers.push(await failoverRun(redis.url, run));
    const graceful = [];
    const paused = [];
    for (let run = 0; run < (smoke ? 1 : 3); run++) {
      graceful.push(await handoverRun(redis.url, run, "SIGTERM"));
      paused.push(await handoverRun(redis.url, run, "SIGSTOP"));
    }
    const rows: Array<[string, string, string]> = [
      [
        "Claim inside publish admission, p50 (p99), ms",
        "0.16 (0.82) (store only)",
        `${round(percentile(claims.claimMs, 50))} (${round(percentile(claims.claimMs, 99))})`,
      ],
      [
        "RTMP publish admission with / without cluster, p50 (p99), ms",
        "—",
        `${round(percentile(claims.clustered, 50), 1)} (${round(percentile(claims.clustered, 99), 1)}) / ${round(
          percentile(claims.unclustered, 50),
          1,
        )} (${round(percentile(claims.unclustered, 99), 1)})`,
      ],
      [
        "Owner kill -9 → republish on B accepted, ms",
        "2303 (peer owns)",
        range(failovers.map((f) => f.acceptedMs)),
      ],
      ["…→ official MoQ viewer on C plays B's media, ms", "—", range(failovers.map((f) => f.moqMs))],
      ["…→ HLS on C lists new parts, ms", "—", range(failovers.map((f) => f.hlsMs))],
      ["Owner SIGTERM → republish on B accepted, ms", "2 (graceful release)", range(graceful)],
      ["Owner SIGSTOP → republish on B accepted, ms", "2824", range(paused)],
    ];
    console.log(
      `\nLVQR cluster end to end (${smoke ? "smoke" : "full"}: ${CLAIMS} claims, ${FAILOVER_RUNS} failovers), lease 3 s / renew 1 s, loopback\n`,
    );
    console.log("| Metric | Reference (cluster-design §1.4) | Server processes, median (min–max) |");
    console.log("| --- | --- | --- |");
    for (const [metric, reference, measured] of rows)
      console.log(`| ${metric} | ${reference} | ${measured} |`);
  } finally {
    while (cleanup.length) await cleanup.pop()!().catch(() => {});
    await redis.stop();
  }
}

await main();
