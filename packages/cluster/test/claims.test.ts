/**
 * The lease manager (BroadcastClaims) on a MemoryStore and on a real redis-server: ownership,
 * renewal, policies, takeover notification, local stepdown under a partition, re-claim after
 * outages, local handover, and never an unhandled rejection.
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  BroadcastBusyError,
  type BroadcastClaim,
  BroadcastClaims,
  type BroadcastClaimsOptions,
  type ClusterStore,
  isClusterError,
  MemoryStore,
  RedisStore,
} from "../src/index.ts";
import { BlackholeProxy } from "./support/blackhole-proxy.ts";
import { sleep, uniquePrefix, waitSubscribed } from "./support/harness.ts";
import { type RedisServer, startRedisServer } from "./support/redis-server.ts";

const TIMING = { leaseMs: 2000, renewIntervalMs: 500, stepdownMarginMs: 500 } as const;

let redis: RedisServer;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
}, 20_000);

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});

afterAll(async () => {
  await redis?.stop();
});

function managed<T extends { close(): Promise<unknown> }>(thing: T): T {
  cleanups.push(() => thing.close());
  return thing;
}

function manager(
  store: ClusterStore,
  nodeId: string,
  extra: Partial<BroadcastClaimsOptions> = {},
): BroadcastClaims {
  return managed(new BroadcastClaims({ store, nodeId, ...TIMING, ...extra }));
}

async function redisStore(
  url: string,
  keyPrefix: string,
  extra: { operationTimeoutMs?: number } = {},
): Promise<RedisStore> {
  const store = managed(new RedisStore({ url, keyPrefix, ...extra }));
  return store;
}

function next<T>(
  claim: BroadcastClaim,
  event: "lost" | "stolen" | "acquired" | "stepdown" | "released",
): Promise<{ at: number; info: T }> {
  return new Promise((resolve) =>
    claim.once(event, (info?: unknown) => resolve({ at: performance.now(), info: info as T })),
  );
}

function withMedia(claim: BroadcastClaim, periodMs = 50): void {
  claim.markMedia();
  const timer = setInterval(() => claim.markMedia(), periodMs);
  cleanups.push(async () => clearInterval(timer));
  claim.once("lost", () => clearInterval(timer));
  claim.once("released", () => clearInterval(timer));
}

describe.each([
  ["MemoryStore", async () => managed(new MemoryStore())],
  [
    "RedisStore",
    async () => {
      const store = await redisStore(redis.url, uniquePrefix());
      await store.ready();
      await waitSubscribed(store);
      return store;
    },
  ],
])("BroadcastClaims on %s", (_name, makeStore) => {
  it("owns, renews and releases a broadcast", async () => {
    const store = await makeStore();
    const claims = manager(store, "node-a");
    const claim = await claims.claim("live/one");
    expect(claim.state).toBe("owner");
    expect(claim.isOwner()).toBe(true);
    const firstEpoch = claim.epoch!;
    let renewals = 0;
    claim.on("renewed", () => renewals++);
    await sleep(TIMING.leaseMs * 1.6);
    // Ownership outlives the lease because it is renewed, with the same epoch.
    expect(renewals).toBeGreaterThanOrEqual(4);
    expect(claim.isOwner()).toBe(true);
    expect(claim.epoch).toBe(firstEpoch);
    expect((await store.owner("live/one"))?.epoch).toBe(firstEpoch);
    expect(claims.stats()).toMatchObject({ owner: 1, pending: 0, steppedDown: 0 });
    const released = next(claim, "released");
    await claim.release();
    await released;
    await claim.release();
    expect(claim.state).toBe("released");
    expect(claim.isOwner()).toBe(false);
    expect(await store.owner("live/one")).toBeNull();
    expect(claims.get("live/one")).toBeUndefined();
  });

  it("answers busy to a second live publisher under takeover-if-stale and reject", async () => {
    const store = await makeStore();
    const a = manager(store, "node-a");
    const b = manager(store, "node-b");
    const claimA = await a.claim("live/busy");
    withMedia(claimA);
    for (const policy of ["takeover-if-stale", "reject"] as const) {
      const refused = await b.claim("live/busy", { policy }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(BroadcastBusyError);
      expect(isClusterError(refused, "CLUSTER_BUSY")).toBe(true);
      expect((refused as BroadcastBusyError).owner.nodeId).toBe("node-a");
    }
    expect(b.get("live/busy")).toBeUndefined();
    expect(claimA.isOwner()).toBe(true);
  });

  it("lets a forced takeover win and tells the old owner at once", async () => {
    const store = await makeStore();
    const a = manager(store, "node-a");
    const b = manager(store, "node-b");
    const claimA = await a.claim("live/force");
    withMedia(claimA);
    const stolen = next<{ by: { nodeId: string; epoch: number } }>(claimA, "stolen");
    const lost = next<{ reason: string }>(claimA, "lost");
    const start = performance.now();
    const claimB = await b.claim("live/force", { policy: "takeover" });
    const [s, l] = await Promise.all([stolen, lost]);
    expect(s.info.by).toMatchObject({ nodeId: "node-b", epoch: claimB.epoch });
    expect(l.info.reason).toBe("stolen");
    // Through the event, long before the next renew would have found out.
    expect(l.at - start).toBeLessThan(TIMING.renewIntervalMs / 2);
    expect(claimB.epoch!).toBeGreaterThan(claimA.epoch!);
    expect(claimA.isOwner()).toBe(false);
    expect(claimB.isOwner()).toBe(true);
  });

  it("takes over a holder whose media stopped, after staleMs", async () => {
    const store = await makeStore();
    const a = manager(store, "node-a");
    const b = manager(store, "node-b");
    const claimA = await a.claim("live/stale");
    claimA.markMedia();
    const lost = next<{ reason: string }>(claimA, "lost");
    const mediaStopped = performance.now();
    let claimB: BroadcastClaim | undefined;
    while (!claimB) {
      try {
        claimB = await b.claim("live/stale");
      } catch (err) {
        if (!(err instanceof BroadcastBusyError)) throw err;
        await sleep(50);
      }
    }
    const tookOver = performance.now() - mediaStopped;
    // staleMs defaults to lease - margin + renew/4 = 1625 ms, measured on the store's clock from
    // the last media reported by a renew (at most one renew interval after the real last frame).
    expect(b.staleMs).toBe(1625);
    expect(tookOver).toBeGreaterThan(b.staleMs - 100);
    expect(tookOver).toBeLessThan(b.staleMs + TIMING.renewIntervalMs + 400);
    expect((await lost).info.reason).toBe("stolen");
    expect(claimB.epoch!).toBeGreaterThan(claimA.epoch!);
  });

  it("hands a broadcast over locally to a newer claim of the same node", async () => {
    const store = await makeStore();
    const a = manager(store, "node-a");
    const first = await a.claim("live/local");
    const lost = next<{ reason: string }>(first, "lost");
    const second = await a.claim("live/local");
    expect((await lost).info.reason).toBe("superseded");
    expect(second.epoch!).toBeGreaterThan(first.epoch!);
    expect(a.get("live/local")).toBe(second);
    expect((await store.owner("live/local"))?.claimId).toBe(second.lease!.claimId);
    await first.release();
    expect((await store.owner("live/local"))?.claimId).toBe(second.lease!.claimId);
  });

  it("survives throwing listeners without unhandled rejections", async () => {
    const store = await makeStore();
    const a = manager(store, "node-a");
    const b = manager(store, "node-b");
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on("unhandledRejection", onRejection);
    try {
      const claimA = await a.claim("live/throw");
      claimA.on("renewed", () => {
        throw new Error("listener bug");
      });
      claimA.on("lost", () => {
        throw new Error("listener bug");
      });
      await sleep(TIMING.renewIntervalMs * 2.5);
      expect(claimA.isOwner()).toBe(true);
      await b.claim("live/throw", { policy: "takeover" });
      await sleep(200);
      expect(claimA.state).toBe("lost");
    } finally {
      process.off("unhandledRejection", onRejection);
    }
    expect(rejections).toEqual([]);
  });

  it("releases everything on close and refuses new claims", async () => {
    const store = await makeStore();
    const a = new BroadcastClaims({ store, nodeId: "node-a", ...TIMING });
    await a.claim("live/c1");
    await a.claim("live/c2");
    await a.close();
    await a.close();
    expect(await store.listBroadcasts()).toEqual([]);
    await expect(a.claim("live/c3")).rejects.toSatisfy((e) => isClusterError(e, "CLUSTER_CLOSED"));
  });
});

describe("BroadcastClaims options", () => {
  it("refuses timings that would make owners flap or step down between renews", () => {
    const store = managed(new MemoryStore());
    const bad: Partial<BroadcastClaimsOptions>[] = [
      { leaseMs: 2000, renewIntervalMs: 1500, stepdownMarginMs: 500 },
      { leaseMs: 2000, renewIntervalMs: 2000 },
      { leaseMs: 6000, renewIntervalMs: 2000, staleMs: 2000 },
      { leaseMs: 50 },
      { policy: "first-wins" as never },
    ];
    for (const options of bad) {
      expect(() => new BroadcastClaims({ store, nodeId: "n", ...options })).toThrow(
        expect.objectContaining({ code: "CLUSTER_INVALID_CONFIG" }),
      );
    }
    const defaults = new BroadcastClaims({ store, nodeId: "n" });
    expect(defaults).toMatchObject({
      leaseMs: 6000,
      renewIntervalMs: 2000,
      stepdownMarginMs: 1500,
      staleMs: 5000,
    });
    void defaults.close();
  });
});

describe("BroadcastClaims against an unreachable Redis", () => {
  it("steps down before the lease can expire when partitioned, and keeps the broadcast after a short partition", async () => {
    const proxy = managed(await BlackholeProxy.start(redis.port));
    const prefix = uniquePrefix();
    const store = await redisStore(proxy.url, prefix);
    await store.ready();
    const claims = manager(store, "node-a");
    const claim = await claims.claim("live/partition", { trackMedia: false });
    const epoch = claim.epoch;
    let lastRenewDeadline = claim.deadline;
    claim.on("renewed", (info) => {
      lastRenewDeadline = info.deadline;
    });
    await sleep(300);
    proxy.blackhole(true);
    const stepdown = await next<{ reason: string }>(claim, "stepdown");
    // It stepped down at its own deadline (last renew send + lease - margin), not later.
    expect(stepdown.at).toBeGreaterThanOrEqual(lastRenewDeadline - 1);
    expect(stepdown.at - lastRenewDeadline).toBeLessThan(250);
    expect(claim.isOwner()).toBe(false);
    expect(claim.state).toBe("stepped-down");
    // The lease has not expired in Redis yet: nobody else could have acquired it.
    const direct = await redisStore(redis.url, prefix);
    await direct.ready();
    const owner = await direct.owner("live/partition");
    expect(owner?.nodeId).toBe("node-a");
    expect(owner!.expiresAtMs).toBeGreaterThan(owner!.storeNowMs);
    const reacquired = next<{ epoch: number; previousEpoch: number }>(claim, "acquired");
    proxy.blackhole(false);
    const back = await reacquired;
    // Same lease, confirmed again.
    expect(back.info).toEqual({ epoch, previousEpoch: epoch });
    expect(claim.isOwner()).toBe(true);
  }, 20_000);

  it("re-claims with a higher epoch after a partition outlived the lease", async () => {
    const proxy = managed(await BlackholeProxy.start(redis.port));
    const store = await redisStore(proxy.url, uniquePrefix());
    await store.ready();
    const claims = manager(store, "node-a");
    const claim = await claims.claim("live/long-partition", { trackMedia: false });
    const epoch = claim.epoch!;
    proxy.blackhole(true);
    await next(claim, "stepdown");
    await sleep(TIMING.leaseMs);
    const reacquired = next<{ epoch: number; previousEpoch: number }>(claim, "acquired");
    const healedAt = performance.now();
    proxy.blackhole(false);
    const back = await reacquired;
    expect(back.info.previousEpoch).toBe(epoch);
    expect(back.info.epoch).toBeGreaterThan(epoch);
    expect(back.at - healedAt).toBeLessThan(2 * TIMING.renewIntervalMs + 2500);
    expect(claim.isOwner()).toBe(true);
  }, 20_000);

  it("accepts a broadcast locally while cut off, then reports refused if another node owns it", async () => {
    const proxy = managed(await BlackholeProxy.start(redis.port));
    const prefix = uniquePrefix();
    const storeA = await redisStore(proxy.url, prefix);
    const storeB = await redisStore(redis.url, prefix);
    await Promise.all([storeA.ready(), storeB.ready()]);
    const a = manager(storeA, "node-a");
    const b = manager(storeB, "node-b");
    proxy.blackhole(true);
    const pending = await a.claim("live/contested");
    expect(pending.state).toBe("pending");
    expect(pending.isOwner()).toBe(false);
    expect(pending.epoch).toBeNull();
    withMedia(pending);
    const claimB = await b.claim("live/contested");
    withMedia(claimB);
    const lost = next<{ reason: string; owner: { nodeId: string } }>(pending, "lost");
    proxy.blackhole(false);
    const outcome = await lost;
    expect(outcome.info).toMatchObject({ reason: "refused", owner: { nodeId: "node-b" } });
    expect(claimB.isOwner()).toBe(true);
    expect(a.get("live/contested")).toBeUndefined();
  }, 20_000);

  it("loses the broadcast to a node that acquired it while this one was cut off", async () => {
    const proxy = managed(await BlackholeProxy.start(redis.port));
    const prefix = uniquePrefix();
    const storeA = await redisStore(proxy.url, prefix);
    const storeB = await redisStore(redis.url, prefix);
    await Promise.all([storeA.ready(), storeB.ready()]);
    const a = manager(storeA, "node-a");
    const b = manager(storeB, "node-b");
    const claimA = await a.claim("live/taken");
    withMedia(claimA);
    let deadlineA = claimA.deadline;
    claimA.on("renewed", (info) => {
      deadlineA = info.deadline;
    });
    proxy.blackhole(true);
    const steppedDown = next(claimA, "stepdown");
    let claimB: BroadcastClaim | undefined;
    while (!claimB) {
      claimB = await b.claim("live/taken").catch(async (err: unknown) => {
        if (!(err instanceof BroadcastBusyError)) throw err;
        await sleep(25);
        return undefined;
      });
    }
    const acquiredB = performance.now();
    await steppedDown;
    // A's ownership ended (its deadline, which isOwner() checks) before B acquired the broadcast.
    expect(deadlineA).toBeLessThan(acquiredB);
    expect(claimA.isOwner()).toBe(false);
    const lost = next<{ reason: string; owner: { nodeId: string } }>(claimA, "lost");
    proxy.blackhole(false);
    const outcome = await lost;
    expect(outcome.info.reason).toBe("expired");
    expect(outcome.info.owner.nodeId).toBe("node-b");
    expect(claimB.isOwner()).toBe(true);
  }, 20_000);
});
