/**
 * RedisStore specifics the contract suite does not cover: error mapping, foreign data, script cache
 * loss, prefixes, hostile pub/sub payloads, starting while Redis is down, and closing.
 */

import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ClusterError,
  type ClusterEvent,
  isClusterError,
  RedisStore,
  type StoreState,
} from "../src/index.ts";
import { BlackholeProxy } from "./support/blackhole-proxy.ts";
import { sleep, uniquePrefix, waitSubscribed } from "./support/harness.ts";
import { recordingLogger } from "./support/recording-logger.ts";
import { type RedisServer, startRedisServer } from "./support/redis-server.ts";

let redis: RedisServer;
let admin: Redis;
const cleanups: (() => Promise<unknown>)[] = [];
const managed = <T extends { close(): Promise<unknown> }>(thing: T): T => {
  cleanups.push(() => thing.close());
  return thing;
};

beforeAll(async () => {
  redis = await startRedisServer();
  admin = new Redis(redis.url);
}, 20_000);

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});

afterAll(async () => {
  admin?.disconnect();
  await redis?.stop();
});

const acquire = (store: RedisStore, broadcast: string, claimId = "c1") =>
  store.acquire({ broadcast, nodeId: "n1", claimId, leaseMs: 10_000, mode: "claim" });

describe("RedisStore", () => {
  it("uses the documented keys with hash tags, under its prefix", async () => {
    const prefix = uniquePrefix();
    const store = managed(new RedisStore({ url: redis.url, keyPrefix: prefix }));
    await store.ready();
    const result = await acquire(store, "live/cam0");
    expect(result.acquired).toBe(true);
    expect(store.ownerKey("live/cam0")).toBe(`${prefix}own:{live/cam0}`);
    const value = await admin.get(`${prefix}own:{live/cam0}`);
    expect(value).toMatch(/^n1\|c1\|\d{13}\|\d{13}$/);
    expect(Number(await admin.get(`${prefix}fence:{live/cam0}`))).toBe(
      result.acquired ? result.lease.epoch : 0,
    );
    const pttl = await admin.pttl(`${prefix}own:{live/cam0}`);
    expect(pttl).toBeGreaterThan(9000);
    // Another prefix is another cluster.
    const other = managed(new RedisStore({ url: redis.url, keyPrefix: uniquePrefix() }));
    await other.ready();
    expect(await other.owner("live/cam0")).toBeNull();
    expect((await acquire(other, "live/cam0", "c2")).acquired).toBe(true);
  });

  it("refuses a key prefix that would break hash tags", () => {
    for (const keyPrefix of ["a{b", "x}", "has space", "x".repeat(65)]) {
      expect(() => new RedisStore({ url: redis.url, keyPrefix })).toThrow(
        expect.objectContaining({ code: "CLUSTER_INVALID_NAME" }),
      );
    }
    expect(() => new RedisStore({})).toThrow(expect.objectContaining({ code: "CLUSTER_INVALID_CONFIG" }));
  });

  it("reports foreign data under its keys as CLUSTER_STORE_PROTOCOL", async () => {
    const prefix = uniquePrefix();
    const store = managed(new RedisStore({ url: redis.url, keyPrefix: prefix }));
    await store.ready();
    await admin.set(`${prefix}own:{live/foreign}`, "not ours", "PX", 10_000);
    for (const operation of [
      () => acquire(store, "live/foreign"),
      () => store.owner("live/foreign"),
      () =>
        store.renew({ broadcast: "live/foreign", nodeId: "n1", claimId: "c1", epoch: 1 }, { leaseMs: 1000 }),
      () => store.listBroadcasts(),
    ]) {
      await expect(operation()).rejects.toSatisfy((e) => isClusterError(e, "CLUSTER_STORE_PROTOCOL"));
    }
    // A forced takeover may overwrite it.
    const forced = await store.acquire({
      broadcast: "live/foreign",
      nodeId: "n1",
      claimId: "c9",
      leaseMs: 1000,
      mode: "force",
    });
    expect(forced.acquired).toBe(true);
    if (forced.acquired) expect(forced.previous).toBeNull();
    await admin.set(`${prefix}own:{live/wrongtype}`, "x");
    await admin.del(`${prefix}own:{live/wrongtype}`);
    await admin.hset(`${prefix}own:{live/wrongtype}`, "a", "b");
    await expect(acquire(store, "live/wrongtype")).rejects.toSatisfy((e) =>
      isClusterError(e, "CLUSTER_STORE_PROTOCOL"),
    );
  });

  it("reloads its scripts after the server forgot them", async () => {
    const store = managed(new RedisStore({ url: redis.url, keyPrefix: uniquePrefix() }));
    await store.ready();
    expect((await acquire(store, "live/s1")).acquired).toBe(true);
    await admin.script("FLUSH");
    expect((await acquire(store, "live/s2")).acquired).toBe(true);
    expect((await store.owner("live/s2"))?.nodeId).toBe("n1");
  });

  it("drops malformed or oversized events and delivers well-formed ones", async () => {
    const prefix = uniquePrefix();
    const store = managed(new RedisStore({ url: redis.url, keyPrefix: prefix }));
    await store.ready();
    await waitSubscribed(store);
    const events: ClusterEvent[] = [];
    store.subscribe((event) => events.push(event));
    store.subscribe(() => {
      throw new Error("a listener bug must not stop delivery");
    });
    const channel = `${prefix}evt`;
    for (const junk of [
      "not json",
      "[]",
      "null",
      JSON.stringify({ type: "claimed", broadcast: "x", node: "n", claim: "c", epoch: "1e3" }),
      JSON.stringify({ type: "stolen", broadcast: "x", node: "n", claim: "c", epoch: "5" }),
      JSON.stringify({ type: "claimed", broadcast: "x".repeat(10_000), node: "n", claim: "c", epoch: "5" }),
      JSON.stringify({ type: "bogus", node: "n" }),
    ]) {
      await admin.publish(channel, junk);
    }
    await admin.publish(channel, JSON.stringify({ type: "node-up", node: "n7" }));
    await sleep(100);
    expect(events).toEqual([{ type: "node-up", nodeId: "n7" }]);
    expect(store.droppedEvents).toBe(7);
  });

  it("starts while Redis is down, logs it once, and becomes available when it appears", async () => {
    const late = await startRedisServer();
    const port = late.port;
    await late.kill();
    const logger = recordingLogger();
    const states: StoreState[] = [];
    const store = managed(
      new RedisStore({ url: `redis://127.0.0.1:${port}`, keyPrefix: uniquePrefix(), logger }),
    );
    store.onStateChange((state) => states.push(state));
    try {
      await sleep(1500);
      expect(store.state).toBe("unavailable");
      await expect(acquire(store, "live/x")).rejects.toSatisfy((e) =>
        isClusterError(e, "CLUSTER_STORE_UNAVAILABLE"),
      );
      await expect(store.ready(100)).rejects.toSatisfy((e) => isClusterError(e, "CLUSTER_STORE_UNAVAILABLE"));
      await late.restart();
      await store.ready(5000);
      expect((await acquire(store, "live/x")).acquired).toBe(true);
      expect(states).toEqual(["unavailable", "available"]);
      expect(logger.messages("warn").filter((m) => m.startsWith("cluster store unavailable"))).toHaveLength(
        1,
      );
    } finally {
      await late.stop();
    }
  }, 20_000);

  it("times out within the operation timeout on a silent link and recovers after it heals", async () => {
    const proxy = managed(await BlackholeProxy.start(redis.port));
    const store = managed(
      new RedisStore({ url: proxy.url, keyPrefix: uniquePrefix(), operationTimeoutMs: 300 }),
    );
    await store.ready();
    expect((await acquire(store, "live/t")).acquired).toBe(true);
    proxy.blackhole(true);
    const start = performance.now();
    const error = await store.owner("live/t").catch((e: unknown) => e);
    const elapsed = performance.now() - start;
    expect(isClusterError(error, "CLUSTER_STORE_TIMEOUT")).toBe(true);
    expect(elapsed).toBeGreaterThan(250);
    expect(elapsed).toBeLessThan(1500);
    // Later operations fail fast instead of queueing behind the dead link.
    await sleep(400);
    const fast = performance.now();
    const second = await store.owner("live/t").catch((e: unknown) => e);
    expect(second).toBeInstanceOf(ClusterError);
    expect(performance.now() - fast).toBeLessThan(400);
    expect(store.available).toBe(false);
    proxy.blackhole(false);
    await store.ready(8000);
    // Replies are never mismatched after the reset: each answer belongs to its own question.
    const [x, y] = await Promise.all([store.owner("live/t"), store.owner("live/none")]);
    expect(x?.nodeId).toBe("n1");
    expect(y).toBeNull();
  }, 20_000);

  it("closes idempotently and then refuses operations", async () => {
    const store = new RedisStore({ url: redis.url, keyPrefix: uniquePrefix() });
    await store.ready();
    await Promise.all([store.close(), store.close()]);
    expect(store.state).toBe("closed");
    await expect(store.owner("x")).rejects.toSatisfy((e) => isClusterError(e, "CLUSTER_CLOSED"));
    await expect(store.ready()).rejects.toSatisfy((e) => isClusterError(e, "CLUSTER_CLOSED"));
  });
});
