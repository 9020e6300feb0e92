/**
 * The ClusterStore contract, run against MemoryStore (manual clock) and RedisStore (a real
 * redis-server, real clock). Both must give the same answers.
 */

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type AcquireRequest,
  type AcquireResult,
  BroadcastClaims,
  type ClusterEvent,
  type ClusterStore,
  isClusterError,
  type Lease,
} from "../src/index.ts";
import { memoryHarness, redisHarness, type StoreHarness, sleep } from "./support/harness.ts";
import { type RedisServer, startRedisServer } from "./support/redis-server.ts";

let counter = 0;
const claimId = () => `c${(counter++).toString(36)}x${Math.random().toString(36).slice(2, 8)}`;

function request(
  broadcast: string,
  nodeId: string,
  leaseMs: number,
  extra: Partial<AcquireRequest> = {},
): AcquireRequest {
  return { broadcast, nodeId, claimId: claimId(), leaseMs, mode: "claim", ...extra };
}

async function acquireLease(store: ClusterStore, req: AcquireRequest): Promise<Lease> {
  const result = await store.acquire(req);
  if (!result.acquired)
    throw new Error(`expected to acquire ${req.broadcast}, owner is ${result.owner.nodeId}`);
  return result.lease;
}

function collect(store: ClusterStore): { events: ClusterEvent[]; stop: () => void } {
  const events: ClusterEvent[] = [];
  const stop = store.subscribe((event) => events.push(event));
  return { events, stop };
}

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error("condition not met in time");
    await sleep(10);
  }
}

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedisServer();
}, 20_000);

afterAll(async () => {
  await redis?.stop();
});

const harnesses: [string, () => Promise<StoreHarness>][] = [
  ["MemoryStore", async () => memoryHarness()],
  ["RedisStore", () => redisHarness(redis)],
];

describe.each(harnesses)("ClusterStore contract: %s", (_name, makeHarness) => {
  let h: StoreHarness;

  beforeEach(async () => {
    h = await makeHarness();
  });

  afterEach(async () => {
    await h.close();
  });

  it("gives each of 200 names raced by 2 clients exactly one owner", async () => {
    const names = Array.from({ length: 200 }, (_, i) => `race/${i}`);
    // Each client walks the names in its own random order with 8 acquisitions in flight, both
    // clients at once: names get contended at random moments, as between two processes.
    const run = async (store: ClusterStore, nodeId: string) => {
      const out: AcquireResult[] = new Array(names.length);
      const order = names.map((_, i) => i).sort(() => Math.random() - 0.5);
      const worker = async () => {
        for (let i = order.pop(); i !== undefined; i = order.pop()) {
          const name = names[i]!;
          out[i] = await store.acquire(request(name, nodeId, 10_000));
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      return out;
    };
    const [fromA, fromB] = await Promise.all([run(h.a, "node-a"), run(h.b, "node-b")]);
    const results = [...fromA, ...fromB];
    const split = [fromA.filter((r) => r.acquired).length, fromB.filter((r) => r.acquired).length];
    if (h.kind === "redis") console.log(`race split on Redis: ${split.join("/")}`);
    const winsA = results.slice(0, 200).map((r) => r.acquired);
    const winsB = results.slice(200).map((r) => r.acquired);
    let doubles = 0;
    let none = 0;
    for (let i = 0; i < 200; i += 1) {
      if (winsA[i] && winsB[i]) doubles += 1;
      if (!winsA[i] && !winsB[i]) none += 1;
    }
    expect(doubles).toBe(0);
    expect(none).toBe(0);
    // The store agrees with the winners, and the loser was told who won.
    for (let i = 0; i < 200; i += 1) {
      const owner = await h.a.owner(names[i]!);
      expect(owner?.nodeId).toBe(winsA[i] ? "node-a" : "node-b");
      const loser = (winsA[i] ? results[200 + i] : results[i])!;
      expect(loser.acquired).toBe(false);
      if (!loser.acquired) expect(loser.owner.nodeId).toBe(owner?.nodeId);
    }
    const listed = await h.b.listBroadcasts();
    expect(listed.filter((r) => r.broadcast.startsWith("race/"))).toHaveLength(200);
  });

  it("reports lost to a renew after a steal, and publishes the steal", async () => {
    const { events, stop } = collect(h.a);
    const leaseA = await acquireLease(h.a, request("live/steal", "node-a", 10_000));
    const stolen = await h.b.acquire(request("live/steal", "node-b", 10_000, { mode: "force" }));
    expect(stolen.acquired).toBe(true);
    if (!stolen.acquired) return;
    expect(stolen.previous).toMatchObject({ nodeId: "node-a", claimId: leaseA.claimId, epoch: leaseA.epoch });
    expect(stolen.lease.epoch).toBeGreaterThan(leaseA.epoch);
    const renew = await h.a.renew(leaseA, { leaseMs: 10_000 });
    expect(renew.renewed).toBe(false);
    if (!renew.renewed) expect(renew.owner?.nodeId).toBe("node-b");
    // The old holder cannot release the new owner's claim either.
    expect(await h.a.release(leaseA)).toBe(false);
    expect((await h.a.owner("live/steal"))?.claimId).toBe(stolen.lease.claimId);
    await eventually(() => events.some((e) => e.type === "stolen"));
    const event = events.find((e) => e.type === "stolen");
    expect(event).toMatchObject({
      type: "stolen",
      broadcast: "live/steal",
      nodeId: "node-b",
      epoch: stolen.lease.epoch,
      previous: { nodeId: "node-a", claimId: leaseA.claimId, epoch: leaseA.epoch },
    });
    stop();
  });

  it("ignores a release by a non-holder and publishes a real release", async () => {
    const { events, stop } = collect(h.b);
    const lease = await acquireLease(h.a, request("live/release", "node-a", 10_000));
    const impostor: Lease = { ...lease, nodeId: "node-b", claimId: claimId() };
    expect(await h.b.release(impostor)).toBe(false);
    expect((await h.b.owner("live/release"))?.nodeId).toBe("node-a");
    expect(await h.a.release(lease)).toBe(true);
    expect(await h.a.release(lease)).toBe(false);
    expect(await h.b.owner("live/release")).toBeNull();
    await eventually(() => events.some((e) => e.type === "released"));
    expect(events.filter((e) => e.type === "released")).toEqual([
      {
        type: "released",
        broadcast: "live/release",
        nodeId: "node-a",
        claimId: lease.claimId,
        epoch: lease.epoch,
      },
    ]);
    stop();
  });

  it("expires a lease that is not renewed, and keeps one that is", async () => {
    const lease = h.shortLeaseMs;
    const kept = await acquireLease(h.a, request("live/kept", "node-a", lease));
    const dropped = await acquireLease(h.a, request("live/dropped", "node-a", lease));
    for (let i = 0; i < 4; i += 1) {
      await h.advance(Math.floor(lease / 2));
      const renewed = await h.a.renew(kept, { leaseMs: lease });
      expect(renewed.renewed).toBe(true);
    }
    expect(await h.b.owner("live/dropped")).toBeNull();
    const renewDropped = await h.a.renew(dropped, { leaseMs: lease });
    expect(renewDropped).toEqual({ renewed: false, owner: null });
    const keptOwner = await h.b.owner("live/kept");
    expect(keptOwner?.claimId).toBe(kept.claimId);
    expect(keptOwner!.expiresAtMs - keptOwner!.storeNowMs).toBeGreaterThan(0);
    expect(keptOwner!.expiresAtMs - keptOwner!.storeNowMs).toBeLessThanOrEqual(lease);
    // Once expired, anyone may claim it, with a higher epoch.
    const next = await acquireLease(h.b, request("live/dropped", "node-b", 10_000));
    expect(next.epoch).toBeGreaterThan(dropped.epoch);
    expect((await h.a.listBroadcasts()).map((r) => r.broadcast)).toEqual(["live/dropped", "live/kept"]);
  });

  it("increases the epoch across claim, steal, re-claim and a store that lost its data", async () => {
    const name = "live/epochs";
    const epochs: number[] = [];
    const first = await acquireLease(h.a, request(name, "node-a", 10_000));
    epochs.push(first.epoch);
    const stolen = await acquireLease(h.b, request(name, "node-b", 10_000, { mode: "force" }));
    epochs.push(stolen.epoch);
    expect(await h.b.release(stolen)).toBe(true);
    const again = await acquireLease(h.a, request(name, "node-a", 10_000));
    epochs.push(again.epoch);
    // Many claims in one millisecond still increase (prev + 1 beats the clock).
    for (let i = 0; i < 5; i += 1) {
      epochs.push((await acquireLease(h.b, request(name, "node-b", 10_000, { mode: "force" }))).epoch);
    }
    // Epochs may run a few ms ahead of the clock after a burst; a restart takes far longer than that.
    await h.advance(h.kind === "memory" ? 1000 : 20);
    await h.loseData();
    expect(await h.a.owner(name)).toBeNull();
    const afterLoss = await acquireLease(h.a, request(name, "node-a", 10_000));
    epochs.push(afterLoss.epoch);
    for (let i = 1; i < epochs.length; i += 1) expect(epochs[i]!).toBeGreaterThan(epochs[i - 1]!);
    // The epoch is at least the store clock in ms, which is what survives the data loss.
    const owner = await h.b.owner(name);
    expect(afterLoss.epoch).toBeLessThanOrEqual(owner!.storeNowMs + 1000);
    expect(afterLoss.epoch).toBeGreaterThan(owner!.storeNowMs - 60_000);
  }, 30_000);

  it("takes over only a holder that reported no media for staleMs", async () => {
    const name = "live/stale";
    const staleMs = h.shortLeaseMs;
    const lease = await acquireLease(h.a, request(name, "node-a", 60_000));
    const early = await h.b.acquire(request(name, "node-b", 60_000, { mode: "if-stale", staleMs }));
    expect(early.acquired).toBe(false);
    if (!early.acquired) expect(early.owner.nodeId).toBe("node-a");
    // Reporting media keeps the holder fresh even though time passes.
    await h.advance(Math.floor(staleMs * 0.7));
    expect((await h.a.renew(lease, { leaseMs: 60_000, mediaAgeMs: 0 })).renewed).toBe(true);
    await h.advance(Math.floor(staleMs * 0.7));
    expect((await h.b.acquire(request(name, "node-b", 60_000, { mode: "if-stale", staleMs }))).acquired).toBe(
      false,
    );
    // Renewing without media does not refresh it.
    await h.advance(Math.floor(staleMs * 0.7));
    const renewed = await h.a.renew(lease, { leaseMs: 60_000 });
    expect(renewed.renewed).toBe(true);
    if (renewed.renewed)
      expect(renewed.record.storeNowMs - renewed.record.lastMediaMs).toBeGreaterThan(staleMs * 0.5);
    await h.advance(Math.floor(staleMs * 0.5));
    const late = await h.b.acquire(request(name, "node-b", 60_000, { mode: "if-stale", staleMs }));
    expect(late.acquired).toBe(true);
    if (late.acquired) {
      expect(late.previous?.claimId).toBe(lease.claimId);
      expect(late.lease.epoch).toBeGreaterThan(lease.epoch);
    }
    // "claim" mode never takes over, however stale.
    await h.advance(staleMs * 2);
    expect((await h.a.acquire(request(name, "node-a", 60_000))).acquired).toBe(false);
  });

  it("makes a retried acquisition idempotent and lets a node supersede its own claim", async () => {
    const req = request("live/retry", "node-a", 10_000);
    const first = await h.a.acquire(req);
    const retry = await h.a.acquire(req);
    expect(first.acquired && retry.acquired).toBe(true);
    if (!first.acquired || !retry.acquired) return;
    expect(retry.lease).toEqual(first.lease);
    const refused = await h.a.acquire(request("live/retry", "node-a", 10_000));
    expect(refused.acquired).toBe(false);
    const handover = await h.a.acquire(
      request("live/retry", "node-a", 10_000, { supersedes: first.lease.claimId }),
    );
    expect(handover.acquired).toBe(true);
    if (handover.acquired) expect(handover.lease.epoch).toBeGreaterThan(first.lease.epoch);
  });

  it("lists broadcasts with awkward names exactly", async () => {
    const names = ["a{b}c", "glob*?[x]", "pipe|name", "ünïcode/名前", "sp ace", "x}"];
    for (const name of names) await acquireLease(h.a, request(name, "node-a", 10_000));
    const listed = await h.b.listBroadcasts();
    expect(listed.map((r) => r.broadcast)).toEqual([...names].sort());
    for (const record of listed) {
      expect(record.nodeId).toBe("node-a");
      expect(record.expiresAtMs).toBeGreaterThan(record.storeNowMs);
      expect((await h.b.owner(record.broadcast))?.claimId).toBe(record.claimId);
    }
  });

  it("registers nodes with a TTL and announces arrivals and departures", async () => {
    const { events, stop } = collect(h.b);
    const info = (nodeId: string) => ({
      nodeId,
      endpoints: { moq: `http://${nodeId}:4443`, hls: `http://${nodeId}:8888`, dash: null },
      capacity: { cpuPct: 12.5, rssBytes: 1234, bytesOutPerSec: 99, subscribers: 3 },
      version: "0.1.0",
      startedAtMs: 1_790_000_000_000,
    });
    await h.a.putNode(info("n1"), 60_000);
    await h.a.putNode(info("n2"), h.shortLeaseMs);
    const nodes = await h.b.listNodes();
    expect(nodes.map((n) => n.nodeId)).toEqual(["n1", "n2"]);
    expect(nodes[0]).toMatchObject({
      nodeId: "n1",
      endpoints: { moq: "http://n1:4443", hls: "http://n1:8888", dash: null },
      capacity: { cpuPct: 12.5, rssBytes: 1234, bytesOutPerSec: 99, subscribers: 3 },
      version: "0.1.0",
      startedAtMs: 1_790_000_000_000,
    });
    await h.advance(h.shortLeaseMs + 100);
    expect((await h.b.listNodes()).map((n) => n.nodeId)).toEqual(["n1"]);
    expect(await h.a.removeNode("n1")).toBe(true);
    expect(await h.a.removeNode("n1")).toBe(false);
    expect(await h.b.listNodes()).toEqual([]);
    await eventually(() => events.filter((e) => e.type === "node-down").length === 2);
    expect(events.filter((e) => e.type === "node-up").map((e) => (e as { nodeId: string }).nodeId)).toEqual([
      "n1",
      "n2",
    ]);
    expect(events.filter((e) => e.type === "node-down").map((e) => (e as { nodeId: string }).nodeId)).toEqual(
      ["n2", "n1"],
    );
    stop();
  });

  it("refuses names that cannot be stored safely", async () => {
    for (const bad of ["", "a\nb", "x".repeat(1025), "nul\u0000"]) {
      await expect(h.a.acquire(request(bad, "node-a", 1000))).rejects.toSatisfy((e) =>
        isClusterError(e, "CLUSTER_INVALID_NAME"),
      );
    }
    await expect(h.a.acquire(request("ok", "bad|node", 1000))).rejects.toSatisfy((e) =>
      isClusterError(e, "CLUSTER_INVALID_NAME"),
    );
    await expect(h.a.acquire(request("ok", "node-a", 0))).rejects.toSatisfy((e) =>
      isClusterError(e, "CLUSTER_INVALID_CONFIG"),
    );
  });
});

describe.each(harnesses)("lease manager on %s: a lost pub/sub message", (_name, makeHarness) => {
  it("still converges within one renew interval", async () => {
    const h = await makeHarness();
    const renewIntervalMs = 500;
    const lossy = await h.lossyClient();
    const seen: ClusterEvent[] = [];
    lossy.store.subscribe((event) => seen.push(event));
    const claimsA = new BroadcastClaims({
      store: lossy.store,
      nodeId: "node-a",
      leaseMs: 3000,
      renewIntervalMs,
    });
    try {
      const claim = await claimsA.claim("live/lossy", { trackMedia: false });
      expect(claim.isOwner()).toBe(true);
      const lost = new Promise<{ at: number; reason: string }>((resolve) =>
        claim.once("lost", (info) => resolve({ at: performance.now(), reason: info.reason })),
      );
      await lossy.cut();
      const stoleAt = performance.now();
      const steal = await h.b.acquire({
        broadcast: "live/lossy",
        nodeId: "node-b",
        claimId: "thief1",
        leaseMs: 10_000,
        mode: "force",
      });
      expect(steal.acquired).toBe(true);
      const outcome = await lost;
      // Found by the renew CAS, since the event never arrived.
      expect(seen.filter((e) => e.type === "stolen")).toHaveLength(0);
      expect(outcome.reason).toBe("stolen");
      expect(outcome.at - stoleAt).toBeLessThanOrEqual(renewIntervalMs + 250);
      expect(claim.isOwner()).toBe(false);
      expect(claim.state).toBe("lost");
    } finally {
      await claimsA.close();
      await h.close();
    }
  }, 15_000);
});
