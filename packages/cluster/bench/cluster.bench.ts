/**
 * Cluster benchmark: claim / renew / lookup latency and failover times against a real
 * redis-server on loopback, printed beside the reference measurements of cluster-design.md §1.4
 * (Redis 7.0.15, ioredis 6.0.0, lease TTL 3 s, 2-core Debian 12).
 *
 *   node bench/cluster.bench.ts           full run (5000 sequential ops, 5 runs per fault)
 *   node bench/cluster.bench.ts --smoke   short run for CI (300 ops, 1 run per fault)
 *
 * Failover numbers use separate node processes (the fault tests' child script) with the reference
 * timings: lease 3 s, renew every 1 s, so stepdown 2 s after the last renew was sent.
 */

import {
  type AcquireResult,
  BroadcastClaims,
  type ClusterStore,
  MemoryStore,
  RedisStore,
} from "../src/index.ts";
import { BlackholeProxy } from "../test/support/blackhole-proxy.ts";
import { FencedSink, NodeProcess } from "../test/support/node-process.ts";
import { startRedisServer } from "../test/support/redis-server.ts";

const SMOKE = process.argv.includes("--smoke");
const OPS = SMOKE ? 300 : 5000;
const RUNS = SMOKE ? 1 : 5;
const LEASE_MS = 3000;
const RENEW_MS = 1000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let prefixCounter = 0;
const prefix = () => `bench${process.pid}-${prefixCounter++}:`;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function median(values: number[]): number {
  return percentile(values, 50);
}

const fmt = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");

async function timeSequential(
  store: ClusterStore,
): Promise<{ claim: number[]; renew: number[]; lookup: number[] }> {
  const claim: number[] = [];
  const renew: number[] = [];
  const lookup: number[] = [];
  const leases = [];
  for (let i = 0; i < 200; i += 1) {
    await store.acquire({
      broadcast: `warm/${i}`,
      nodeId: "n1",
      claimId: `w${i}`,
      leaseMs: 60_000,
      mode: "claim",
    });
  }
  for (let i = 0; i < OPS; i += 1) {
    const t = performance.now();
    const result = await store.acquire({
      broadcast: `seq/${i}`,
      nodeId: "n1",
      claimId: `c${i}`,
      leaseMs: 60_000,
      mode: "claim",
    });
    claim.push(performance.now() - t);
    if (result.acquired) leases.push(result.lease);
  }
  for (const lease of leases) {
    const t = performance.now();
    await store.renew(lease, { leaseMs: 60_000, mediaAgeMs: 0 });
    renew.push(performance.now() - t);
  }
  for (let i = 0; i < OPS; i += 1) {
    const t = performance.now();
    await store.owner(`seq/${i}`);
    lookup.push(performance.now() - t);
  }
  return { claim, renew, lookup };
}

async function race(url: string): Promise<{ a: number; b: number; doubles: number }> {
  const keyPrefix = prefix();
  const a = new RedisStore({ url, keyPrefix });
  const b = new RedisStore({ url, keyPrefix });
  await Promise.all([a.ready(), b.ready()]);
  const names = Array.from({ length: 200 }, (_, i) => `race/${i}`);
  // Each client walks the names in its own random order with 8 acquisitions in flight, both
  // clients at once: names get contended at random moments, as between two processes.
  const run = async (store: RedisStore, nodeId: string) => {
    const out: AcquireResult[] = new Array(names.length);
    const order = names.map((_, i) => i).sort(() => Math.random() - 0.5);
    const worker = async () => {
      for (let i = order.pop(); i !== undefined; i = order.pop()) {
        const name = names[i]!;
        out[i] = await store.acquire({
          broadcast: name,
          nodeId,
          claimId: `${nodeId}${i}`,
          leaseMs: 10_000,
          mode: "claim",
        });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return out;
  };
  const [fromA, fromB] = await Promise.all([run(a, "a"), run(b, "b")]);
  const results = [...fromA, ...fromB];
  let winsA = 0;
  let winsB = 0;
  let doubles = 0;
  for (let i = 0; i < 200; i += 1) {
    const wa = results[i]!.acquired;
    const wb = results[200 + i]!.acquired;
    if (wa) winsA += 1;
    if (wb) winsB += 1;
    if (wa && wb) doubles += 1;
  }
  await Promise.all([a.close(), b.close()]);
  return { a: winsA, b: winsB, doubles };
}

async function releaseHandover(url: string): Promise<number> {
  const keyPrefix = prefix();
  const a = new RedisStore({ url, keyPrefix });
  const b = new RedisStore({ url, keyPrefix });
  await Promise.all([a.ready(), b.ready()]);
  await sleep(100);
  const held = await a.acquire({
    broadcast: "live/h",
    nodeId: "a",
    claimId: "ha",
    leaseMs: 10_000,
    mode: "claim",
  });
  if (!held.acquired) throw new Error("setup failed");
  const acquired = new Promise<number>((resolve) => {
    b.subscribe((event) => {
      if (event.type === "released" && event.broadcast === "live/h") {
        void b
          .acquire({ broadcast: "live/h", nodeId: "b", claimId: "hb", leaseMs: 10_000, mode: "claim" })
          .then((r) => r.acquired && resolve(performance.now()));
      }
    });
  });
  const start = performance.now();
  await a.release(held.lease);
  const took = (await acquired) - start;
  await Promise.all([a.close(), b.close()]);
  return took;
}

async function stealNotice(url: string): Promise<number> {
  const keyPrefix = prefix();
  const a = new RedisStore({ url, keyPrefix });
  const b = new RedisStore({ url, keyPrefix });
  await Promise.all([a.ready(), b.ready()]);
  await sleep(100);
  const claims = new BroadcastClaims({ store: a, nodeId: "a", leaseMs: LEASE_MS, renewIntervalMs: RENEW_MS });
  const claim = await claims.claim("live/steal");
  const lost = new Promise<number>((resolve) => claim.once("lost", () => resolve(performance.now())));
  const start = performance.now();
  await b.acquire({ broadcast: "live/steal", nodeId: "b", claimId: "thief", leaseMs: 10_000, mode: "force" });
  const took = (await lost) - start;
  await claims.close();
  await Promise.all([a.close(), b.close()]);
  return took;
}

interface FaultRun {
  peerOwnsMs: number;
  extra: Record<string, number>;
}

async function twoNodes(url: string, urlA = url) {
  const keyPrefix = prefix();
  const sink = new FencedSink();
  const start = (nodeId: string, redisUrl: string) =>
    NodeProcess.start(
      { nodeId, redisUrl, keyPrefix, leaseMs: LEASE_MS, renewIntervalMs: RENEW_MS },
      (report) => {
        if (report.type === "write") sink.write(report);
      },
    );
  const a = await start("node-a", urlA);
  const b = await start("node-b", url);
  await a.waitFor((r) => r.type === "store-state" && r["state"] === "available", 10_000);
  await b.waitFor((r) => r.type === "store-state" && r["state"] === "available", 10_000);
  for (const [node, retryMs] of [
    [a, undefined],
    [b, 50],
  ] as const) {
    node.send({ op: "claim", name: "live/f", ...(retryMs ? { retryMs } : {}) });
    node.send({ op: "media", name: "live/f", periodMs: 20 });
    node.send({ op: "act", name: "live/f", periodMs: 5, holdMs: 30 });
    if (node === a) await a.waitFor((r) => r.type === "acquired", 5000);
  }
  await b.waitFor((r) => r.type === "busy", 5000);
  return { a, b, sink };
}

async function sigkill(url: string): Promise<FaultRun> {
  const { a, b } = await twoNodes(url);
  await sleep(1000 + Math.random() * RENEW_MS);
  const killedAt = Date.now();
  a.signal("SIGKILL");
  const acquired = await b.waitFor((r) => r.type === "acquired", 3 * LEASE_MS);
  await b.stop();
  return { peerOwnsMs: acquired.wall - killedAt, extra: {} };
}

async function sigstop(url: string): Promise<FaultRun> {
  const { a, b, sink } = await twoNodes(url);
  await sleep(1000 + Math.random() * RENEW_MS);
  const writes = a.of("write").length;
  await a.waitFor(() => a.of("write").length > writes, 2000);
  a.signal("SIGSTOP");
  const stoppedAt = Date.now();
  const acquired = await b.waitFor((r) => r.type === "acquired", 3 * LEASE_MS);
  await sleep(Math.max(0, stoppedAt + 2 * LEASE_MS - Date.now()));
  const resumedAt = Date.now();
  a.signal("SIGCONT");
  const noticed = await a.waitFor((r) => r.type === "lost" || r.type === "stepdown", 3000);
  await sleep(300);
  const late = sink.writes.filter((w) => w.node === "node-a" && w.arrivedWall >= resumedAt);
  await Promise.all([a.stop(), b.stop()]);
  return {
    peerOwnsMs: acquired.wall - stoppedAt,
    extra: {
      noticeMs: noticed.wall - resumedAt,
      staleAccepted: late.filter((w) => w.accepted).length,
      staleRejected: late.filter((w) => !w.accepted).length,
    },
  };
}

async function partition(url: string, port: number): Promise<FaultRun> {
  const proxy = await BlackholeProxy.start(port);
  const { a, b } = await twoNodes(url, proxy.url);
  await sleep(1000 + Math.random() * RENEW_MS);
  const cutAt = Date.now();
  proxy.blackhole(true);
  await a.waitFor((r) => r.type === "stepdown", 2 * LEASE_MS);
  // Ownership ends at the deadline of the last successful renew (isOwner() reads the clock).
  const confirmations = a.reports.filter(
    (r) => (r.type === "renewed" || r.type === "acquired") && r.wall <= cutAt,
  );
  const deadlineWall = confirmations.at(-1)!["deadlineWall"] as number;
  const acquired = await b.waitFor((r) => r.type === "acquired", 3 * LEASE_MS);
  proxy.blackhole(false);
  await a.waitFor((r) => r.type === "lost", 5000).catch(() => undefined);
  await Promise.all([a.stop(), b.stop()]);
  await proxy.close();
  return {
    peerOwnsMs: acquired.wall - cutAt,
    extra: { stepdownMs: deadlineWall - cutAt, gapMs: acquired.wall - deadlineWall },
  };
}

async function repeat(label: string, run: () => Promise<FaultRun>): Promise<FaultRun[]> {
  const runs: FaultRun[] = [];
  for (let i = 0; i < RUNS; i += 1) {
    runs.push(await run());
    process.stderr.write(`  ${label} run ${i + 1}/${RUNS}: ${Math.round(runs.at(-1)!.peerOwnsMs)} ms\n`);
  }
  return runs;
}

async function main(): Promise<void> {
  const redis = await startRedisServer();
  try {
    process.stderr.write(`cluster bench (${SMOKE ? "smoke" : "full"}): redis-server on port ${redis.port}\n`);
    const redisStore = new RedisStore({ url: redis.url, keyPrefix: prefix() });
    await redisStore.ready();
    const redisTimes = await timeSequential(redisStore);
    await redisStore.close();
    const memoryTimes = await timeSequential(new MemoryStore());
    const raced = await race(redis.url);
    const releases: number[] = [];
    const steals: number[] = [];
    for (let i = 0; i < RUNS * 3; i += 1) {
      releases.push(await releaseHandover(redis.url));
      steals.push(await stealNotice(redis.url));
    }
    const kills = await repeat("SIGKILL", () => sigkill(redis.url));
    const stops = await repeat("SIGSTOP", () => sigstop(redis.url));
    const cuts = await repeat("partition", () => partition(redis.url, redis.port));

    const lat = (times: number[]) => `${fmt(percentile(times, 50))} (${fmt(percentile(times, 99))})`;
    const ms = (values: number[]) =>
      `${Math.round(median(values))}${values.length > 1 ? ` (${Math.round(Math.min(...values))}–${Math.round(Math.max(...values))})` : ""}`;
    const rows: [string, string, string][] = [
      ["Claim, sequential p50 (p99), ms", "0.16 (0.82)", lat(redisTimes.claim)],
      ["Renew, sequential p50 (p99), ms", "0.12 (1.0)", lat(redisTimes.renew)],
      ["Lookup, sequential p50 (p99), ms", "0.11 (2.3)", lat(redisTimes.lookup)],
      ["Race 2 × 200 names: split, double owners", "89/111, 0", `${raced.a}/${raced.b}, ${raced.doubles}`],
      ["Owner SIGKILL → peer owns after, ms", "2303", ms(kills.map((r) => r.peerOwnsMs))],
      ["Graceful release → peer owns after, ms", "2", fmt(median(releases), 1)],
      ["Steal → old owner learns (pub/sub), ms", "3.5", fmt(median(steals), 1)],
      ["SIGSTOP owner 6 s → peer owns after, ms", "2824", ms(stops.map((r) => r.peerOwnsMs))],
      ["…after SIGCONT, old owner notices, ms", "1", ms(stops.map((r) => r.extra["noticeMs"]!))],
      [
        "…stale fenced writes accepted / rejected",
        "0 / 1",
        `${stops.reduce((s, r) => s + r.extra["staleAccepted"]!, 0)} / ${stops.reduce((s, r) => s + r.extra["staleRejected"]!, 0)}`,
      ],
      [
        "Partition: old owner steps down at / peer claims at, ms",
        "2060 / 2906",
        `${ms(cuts.map((r) => r.extra["stepdownMs"]!))} / ${ms(cuts.map((r) => r.peerOwnsMs))}`,
      ],
      ["…stepdown-to-claim gap, ms (never overlapped)", "846", ms(cuts.map((r) => r.extra["gapMs"]!))],
    ];
    const widths = [0, 1, 2].map((c) =>
      Math.max(...rows.map((r) => r[c]!.length), ["Metric", "Reference (§1.4)", "@lvqr/cluster"][c]!.length),
    );
    const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
    console.log("");
    console.log(
      `@lvqr/cluster vs reference (Redis, lease 3 s, renew 1 s; ${OPS} sequential ops, ${RUNS} run(s) per fault; median (min–max))`,
    );
    console.log(line(["Metric", "Reference (§1.4)", "@lvqr/cluster"]));
    console.log(line(widths.map((w) => "-".repeat(w))));
    for (const row of rows) console.log(line(row));
    console.log("");
    console.log(
      `MemoryStore (single node), p50 (p99) ms: claim ${lat(memoryTimes.claim)}, renew ${lat(memoryTimes.renew)}, lookup ${lat(memoryTimes.lookup)}`,
    );
    if (
      raced.doubles !== 0 ||
      stops.some((r) => r.extra["staleAccepted"] !== 0) ||
      cuts.some((r) => r.extra["gapMs"]! <= 0)
    ) {
      console.error(
        "SAFETY VIOLATION: double owners, an accepted stale write, or a stepdown after the peer's claim",
      );
      process.exitCode = 1;
    }
  } finally {
    await redis.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
