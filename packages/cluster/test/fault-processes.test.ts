/**
 * Multi-process fault tests (cluster-design.md §1.6, reliability-tests.md row 20), at the lease
 * manager level: each node is a separate Node process (`child_process.fork` of
 * support/cluster-node-child.ts) with its own RedisStore and BroadcastClaims, against a real
 * redis-server. Faults are real signals (SIGKILL, SIGSTOP/SIGCONT), a userspace blackhole TCP
 * proxy between one node and Redis, and a Redis SIGKILL + restart without persistence.
 *
 * Every node writes "owner actions" to a fenced sink here in the parent: check isOwner(), hold
 * 30 ms, then write with the claim's epoch; the sink rejects epochs below the highest it accepted.
 *
 * Timings as in the design's measurements (§1.4): lease 3 s, renew 1 s, so stepdown 2 s after the
 * last renew was sent and staleMs 2.25 s. Soak durations are shortened for CI; set
 * LVQR_CLUSTER_SOAK_MS=30000 and LVQR_CLUSTER_OUTAGE_MS=30000 for the full-length runs.
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RedisStore } from "../src/index.ts";
import { BlackholeProxy } from "./support/blackhole-proxy.ts";
import { sleep, uniquePrefix } from "./support/harness.ts";
import { FencedSink, NodeProcess, type NodeReport } from "./support/node-process.ts";
import { type RedisServer, startRedisServer } from "./support/redis-server.ts";

const SOAK_MS = Number(process.env["LVQR_CLUSTER_SOAK_MS"] ?? 8000);
const OUTAGE_MS = Number(process.env["LVQR_CLUSTER_OUTAGE_MS"] ?? 8000);
const LEASE_MS = 3000;
const RENEW_MS = 1000;

let redis: RedisServer;
let nodes: NodeProcess[] = [];
let proxies: BlackholeProxy[] = [];
const results: Record<string, unknown> = {};

beforeAll(async () => {
  redis = await startRedisServer();
}, 20_000);

afterEach(async () => {
  await Promise.all(nodes.map((node) => node.stop()));
  await Promise.all(proxies.map((proxy) => proxy.close()));
  nodes = [];
  proxies = [];
  if (!redis.running) await redis.restart();
});

afterAll(async () => {
  await redis?.stop();
  // The numbers the final report quotes; visible with --reporter=verbose or in the log.
  console.log(`cluster fault measurements: ${JSON.stringify(results)}`);
});

async function startNode(
  nodeId: string,
  keyPrefix: string,
  sink: FencedSink,
  url = redis.url,
): Promise<NodeProcess> {
  const node = await NodeProcess.start(
    { nodeId, redisUrl: url, keyPrefix, leaseMs: LEASE_MS, renewIntervalMs: RENEW_MS },
    (report) => {
      if (report.type === "write") sink.write(report);
    },
  );
  nodes.push(node);
  await node.waitFor(
    (r) => r.type === "store-state" && r["state"] === "available",
    10_000,
    "store available",
  );
  return node;
}

/** Starts publishing on `node`: claim (retrying while busy), media every 20 ms, owner actions. */
function publish(node: NodeProcess, name: string, retryMs?: number): void {
  node.send({ op: "claim", name, ...(retryMs === undefined ? {} : { retryMs }) });
  node.send({ op: "media", name, periodMs: 20 });
  node.send({ op: "act", name, periodMs: 5, holdMs: 30 });
}

function lastBefore(reports: NodeReport[], wall: number): NodeReport | undefined {
  return reports.filter((r) => r.wall <= wall).at(-1);
}

function noUnhandled(...processes: NodeProcess[]): void {
  for (const node of processes) {
    expect(node.of("unhandled-rejection"), `${node.nodeId} unhandled rejections`).toEqual([]);
  }
}

describe("cluster nodes as separate processes against a real redis-server", () => {
  it("fails over after the owner is SIGKILLed, with a higher epoch", async () => {
    const prefix = uniquePrefix();
    const sink = new FencedSink();
    const a = await startNode("node-a", prefix, sink);
    const b = await startNode("node-b", prefix, sink);
    publish(a, "live/kill");
    const acquiredA = await a.waitFor((r) => r.type === "acquired", 5000, "A acquired");
    await sleep(200);
    publish(b, "live/kill", 50);
    await b.waitFor((r) => r.type === "busy", 5000, "B busy");
    await sleep(1500 + Math.random() * RENEW_MS);
    const killedAt = Date.now();
    a.signal("SIGKILL");
    await a.exited;
    const acquiredB = await b.waitFor((r) => r.type === "acquired", LEASE_MS + 2000, "B acquired");
    await b.waitFor((r) => r.type === "write", 2000, "B write");
    const failoverMs = acquiredB.wall - killedAt;
    results["sigkill_failover_ms"] = failoverMs;
    expect(acquiredB["epoch"] as number).toBeGreaterThan(acquiredA["epoch"] as number);
    // Within the lease (stale takeover needs staleMs since A's last reported media).
    expect(failoverMs).toBeLessThan(LEASE_MS + 200);
    expect(failoverMs).toBeGreaterThan(0);
    // The sink saw A's epoch, then B's, never back.
    const accepted = sink.accepted();
    expect(accepted.length).toBeGreaterThan(10);
    const firstB = accepted.findIndex((w) => w.node === "node-b");
    expect(firstB).toBeGreaterThan(0);
    expect(accepted.slice(firstB).every((w) => w.node === "node-b")).toBe(true);
    noUnhandled(b);
  }, 30_000);

  it("pauses the owner with SIGSTOP: it steps down before anyone claims, and its late write is fenced", async () => {
    const prefix = uniquePrefix();
    const sink = new FencedSink();
    const a = await startNode("node-a", prefix, sink);
    const b = await startNode("node-b", prefix, sink);
    publish(a, "live/pause");
    const acquiredA = await a.waitFor((r) => r.type === "acquired", 5000, "A acquired");
    publish(b, "live/pause", 50);
    await b.waitFor((r) => r.type === "busy", 5000, "B busy");
    await sleep(1200);
    // Stop A right after one of its writes, so that it is inside the next owner action (30 ms hold).
    const writesBefore = a.of("write").length;
    await a.waitFor((r) => r.type === "write" && a.of("write").length > writesBefore, 2000, "A write");
    a.signal("SIGSTOP");
    const stoppedAt = Date.now();
    const acquiredB = await b.waitFor((r) => r.type === "acquired", 2 * LEASE_MS, "B acquired");
    await b.waitFor((r) => r.type === "write", 2000, "B write");
    await sleep(Math.max(0, stoppedAt + 2 * LEASE_MS - Date.now()));
    const resumedAt = Date.now();
    a.signal("SIGCONT");
    const lostA = await a.waitFor((r) => r.type === "lost", 3000, "A lost");
    await sleep(300);

    // Stepdown before claim: A's last deadline (from its last successful renew) precedes B's acquisition.
    const deadlineA = lastBefore(
      a.reports.filter((r) => r.type === "renewed" || r.type === "acquired"),
      stoppedAt,
    );
    const gapMs = acquiredB.wall - (deadlineA!["deadlineWall"] as number);
    results["sigstop_stepdown_to_claim_gap_ms"] = gapMs;
    results["sigstop_peer_owns_after_ms"] = acquiredB.wall - stoppedAt;
    results["sigstop_old_owner_notices_after_resume_ms"] = lostA.wall - resumedAt;
    expect(gapMs).toBeGreaterThan(0);
    expect(acquiredB["epoch"] as number).toBeGreaterThan(acquiredA["epoch"] as number);
    // The old owner noticed within a second of resuming and did not start another owner action.
    expect(lostA.wall - resumedAt).toBeLessThan(1000);
    // B took the stale lease over before it expired; whether A hears that first from the event
    // ("stolen") or from its renew after the deadline ("expired") depends on which fires first.
    expect(["stolen", "expired"]).toContain(lostA["reason"]);
    // The write A was in the middle of when it froze arrived late and was rejected.
    const lateFromA = sink.writes.filter((w) => w.node === "node-a" && w.arrivedWall >= resumedAt);
    results["sigstop_stale_writes_accepted_rejected"] = [
      lateFromA.filter((w) => w.accepted).length,
      lateFromA.filter((w) => !w.accepted).length,
    ];
    expect(lateFromA.length).toBeGreaterThanOrEqual(1);
    expect(lateFromA.every((w) => !w.accepted)).toBe(true);
    expect(lateFromA.every((w) => w.startWall < stoppedAt + 50)).toBe(true);
    // No owner action of A started after B became owner.
    expect(a.of("write").filter((w) => (w["startWall"] as number) > acquiredB.wall)).toEqual([]);
    noUnhandled(a, b);
  }, 40_000);

  it(
    "partitions the owner from Redis: it steps down before the peer claims, then stays out",
    async () => {
      const prefix = uniquePrefix();
      const sink = new FencedSink();
      const proxy = await BlackholeProxy.start(redis.port);
      proxies.push(proxy);
      const a = await startNode("node-a", prefix, sink, proxy.url);
      const b = await startNode("node-b", prefix, sink);
      publish(a, "live/partition");
      const acquiredA = await a.waitFor((r) => r.type === "acquired", 5000, "A acquired");
      publish(b, "live/partition", 50);
      await b.waitFor((r) => r.type === "busy", 5000, "B busy");
      await sleep(1000 + Math.random() * RENEW_MS);
      const partitionedAt = Date.now();
      proxy.blackhole(true);
      const stepdownA = await a.waitFor((r) => r.type === "stepdown", LEASE_MS + 1000, "A stepdown");
      const acquiredB = await b.waitFor((r) => r.type === "acquired", 2 * LEASE_MS, "B acquired");
      // A stops acting as owner at its deadline (isOwner() reads the clock); the stepdown event is
      // the timer that reports it, which a loaded machine may run late.
      const deadlineA = lastBefore(
        a.reports.filter((r) => r.type === "renewed" || r.type === "acquired"),
        partitionedAt,
      )!["deadlineWall"] as number;
      const gapMs = acquiredB.wall - deadlineA;
      results["partition_stepdown_ms"] = deadlineA - partitionedAt;
      results["partition_stepdown_event_ms"] = stepdownA.wall - partitionedAt;
      results["partition_peer_claims_ms"] = acquiredB.wall - partitionedAt;
      results["partition_gap_ms"] = gapMs;
      expect(gapMs).toBeGreaterThan(0);
      // A's last owner action started before its deadline, so before B became owner.
      const lastStartA = Math.max(...a.of("write").map((w) => w["startWall"] as number));
      expect(lastStartA).toBeLessThan(deadlineA);
      expect(lastStartA).toBeLessThan(acquiredB.wall);

      const healedAt = Date.now();
      proxy.blackhole(false);
      const lostA = await a.waitFor((r) => r.type === "lost", 5000, "A lost after heal");
      expect(lostA["reason"]).toBe("expired");
      expect((lostA["owner"] as { nodeId: string }).nodeId).toBe("node-b");
      results["partition_heal_old_owner_learns_ms"] = lostA.wall - healedAt;
      // After healing: no re-claim by A, no flapping; B stays owner with the same epoch.
      await sleep(SOAK_MS);
      const observer = new RedisStore({ url: redis.url, keyPrefix: prefix });
      await observer.ready();
      const owner = await observer.owner("live/partition");
      await observer.close();
      expect(owner).toMatchObject({ nodeId: "node-b", epoch: acquiredB["epoch"] });
      expect(a.of("acquired")).toHaveLength(1);
      expect(b.of("acquired")).toHaveLength(1);
      expect(b.of("lost")).toEqual([]);
      expect(acquiredB["epoch"] as number).toBeGreaterThan(acquiredA["epoch"] as number);
      expect(sink.accepted().filter((w) => w.node === "node-a" && w.startWall > acquiredB.wall)).toEqual([]);
      noUnhandled(a, b);
    },
    40_000 + SOAK_MS,
  );

  it(
    "keeps one owner when two publishers start the same broadcast at once, without flapping",
    async () => {
      const prefix = uniquePrefix();
      const sink = new FencedSink();
      const a = await startNode("node-a", prefix, sink);
      const b = await startNode("node-b", prefix, sink);
      const startedAt = Date.now();
      // Both encoders keep retrying after "busy", as real encoders reconnect.
      publish(a, "live/twin", 250);
      publish(b, "live/twin", 250);
      await sleep(SOAK_MS);
      const acquired = [...a.of("acquired"), ...b.of("acquired")];
      expect(acquired).toHaveLength(1);
      const winner = acquired[0]!.node;
      const loser = winner === "node-a" ? b : a;
      expect(acquired[0]!.wall - startedAt).toBeLessThan(2000);
      // The loser kept trying all along (every 250 ms plus a round trip) and was refused every time.
      expect(loser.of("busy").length).toBeGreaterThanOrEqual(Math.floor(SOAK_MS / 500));
      for (const node of [a, b]) {
        expect(node.of("stolen")).toEqual([]);
        expect(node.of("lost")).toEqual([]);
        expect(node.of("stepdown")).toEqual([]);
      }
      expect(sink.writes.length).toBeGreaterThan(SOAK_MS / 100);
      expect(sink.writes.every((w) => w.node === winner && w.accepted)).toBe(true);
      results["split_brain_soak_ms"] = SOAK_MS;
      results["split_brain_busy_answers"] = loser.of("busy").length;
      noUnhandled(a, b);
    },
    30_000 + SOAK_MS,
  );

  it(
    "survives a Redis outage: no process exits, and every broadcast is re-claimed with a higher epoch",
    async () => {
      const prefix = uniquePrefix();
      const sink = new FencedSink();
      const a = await startNode("node-a", prefix, sink);
      const b = await startNode("node-b", prefix, sink);
      for (const name of ["live/a1", "live/a2"]) publish(a, name);
      for (const name of ["live/b1"]) publish(b, name);
      await Promise.all([
        a.waitFor((r) => r.type === "acquired" && r["name"] === "live/a2", 5000),
        b.waitFor((r) => r.type === "acquired" && r["name"] === "live/b1", 5000),
      ]);
      const epochsBefore = new Map<string, number>(
        [...a.of("acquired"), ...b.of("acquired")].map((r) => [r["name"] as string, r["epoch"] as number]),
      );
      await redis.kill();
      const killedAt = Date.now();
      await sleep(OUTAGE_MS);
      expect(a.of("stepdown")).toHaveLength(2);
      expect(b.of("stepdown")).toHaveLength(1);
      await redis.restart();
      const restartedAt = Date.now();
      const reclaimed = await Promise.all(
        [...epochsBefore.keys()].map((name) =>
          (name.startsWith("live/a") ? a : b).waitFor(
            (r) => r.type === "acquired" && r["name"] === name && r.wall > restartedAt,
            4 * RENEW_MS + 3000,
            `re-claim of ${name}`,
          ),
        ),
      );
      const reclaimMs = Math.max(...reclaimed.map((r) => r.wall - restartedAt));
      results["outage_ms"] = OUTAGE_MS;
      results["outage_reclaim_after_restart_ms"] = reclaimMs;
      results["outage_stepdown_after_kill_ms"] = Math.max(...a.of("stepdown").map((r) => r.wall - killedAt));
      for (const report of reclaimed) {
        expect(report["epoch"] as number).toBeGreaterThan(epochsBefore.get(report["name"] as string)!);
      }
      // "Within two renew intervals" of Redis being back (plus the reconnect backoff, capped at 1 s).
      expect(reclaimMs).toBeLessThan(2 * RENEW_MS + 1200);
      for (const node of [a, b]) {
        expect(node.of("lost")).toEqual([]);
        expect(node.of("store-state").map((r) => r["state"])).toEqual([
          "available",
          "unavailable",
          "available",
        ]);
        const warnings = node
          .of("log")
          .filter(
            (r) => r["message"] === "cluster store unavailable; continuing as a single node until it returns",
          );
        expect(warnings).toHaveLength(1);
      }
      // Both processes are alive and still writing as owners.
      const writesNow = sink.accepted().length;
      await sleep(300);
      expect(sink.accepted().length).toBeGreaterThan(writesNow);
      noUnhandled(a, b);
    },
    40_000 + OUTAGE_MS,
  );
});
