/**
 * Store harnesses for the contract suite: the same tests run against a MemoryStore (with a manual
 * clock) and a RedisStore on a real redis-server (real clock). Each test gets a fresh key prefix so
 * tests never see each other's keys on the shared server.
 */

import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { type ClusterEventListener, type ClusterStore, MemoryStore, RedisStore } from "../../src/index.ts";
import type { RedisServer } from "./redis-server.ts";

export interface StoreHarness {
  readonly kind: "memory" | "redis";
  /** Two clients of one shared store (for memory: the same object twice). */
  readonly a: ClusterStore;
  readonly b: ClusterStore;
  /** A lease long enough to survive a few operations, short enough to wait out. */
  readonly shortLeaseMs: number;
  /** Lets time pass: moves the manual clock (memory) or sleeps (redis). */
  advance(ms: number): Promise<void>;
  /** Makes the store lose all its data, as a restart without persistence does. */
  loseData(): Promise<void>;
  /**
   * A third client (for lease managers) whose pub/sub can be cut: after `cut()`, events published
   * are lost to it. Redis: its subscriber connection is killed server-side (CLIENT KILL), so the
   * messages really go nowhere. Memory (no transport to break): delivery to it stops.
   */
  lossyClient(): Promise<{ store: ClusterStore; cut(): Promise<void> }>;
  close(): Promise<void>;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function uniquePrefix(): string {
  return `t${randomBytes(4).toString("hex")}:`;
}

export function memoryHarness(): StoreHarness {
  let now = 1_800_000_000_000;
  const store = new MemoryStore({ clock: () => now });
  return {
    kind: "memory",
    a: store,
    b: store,
    shortLeaseMs: 1000,
    async advance(ms) {
      now += ms;
    },
    async loseData() {
      store.flush();
    },
    async lossyClient() {
      // Shares the state but not the clock: lease managers run on real timers.
      let cut = false;
      const listeners = new Set<ClusterEventListener>();
      store.subscribe((event) => {
        if (!cut) for (const listener of listeners) listener(event);
      });
      const view: ClusterStore = {
        kind: store.kind,
        get state() {
          return store.state;
        },
        get available() {
          return store.available;
        },
        acquire: (request) => store.acquire(request),
        renew: (lease, request) => store.renew(lease, request),
        release: (lease) => store.release(lease),
        owner: (broadcast) => store.owner(broadcast),
        listBroadcasts: () => store.listBroadcasts(),
        putNode: (info, ttlMs) => store.putNode(info, ttlMs),
        removeNode: (nodeId) => store.removeNode(nodeId),
        listNodes: () => store.listNodes(),
        onStateChange: (listener) => store.onStateChange(listener),
        close: async () => {},
        subscribe: (listener: ClusterEventListener) => {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
      };
      return {
        store: view,
        async cut() {
          cut = true;
        },
      };
    },
    close: () => store.close(),
  };
}

export async function redisHarness(server: RedisServer): Promise<StoreHarness> {
  const keyPrefix = uniquePrefix();
  const a = new RedisStore({ url: server.url, keyPrefix });
  const b = new RedisStore({ url: server.url, keyPrefix });
  const extra: RedisStore[] = [];
  await Promise.all([a.ready(), b.ready()]);
  return {
    kind: "redis",
    a,
    b,
    shortLeaseMs: 400,
    advance: sleep,
    async loseData() {
      await server.kill();
      await server.restart();
      await Promise.all([waitAvailable(a), waitAvailable(b)]);
    },
    async lossyClient() {
      const store = new RedisStore({ url: server.url, keyPrefix });
      extra.push(store);
      await store.ready();
      await waitSubscribed(store);
      return {
        store,
        async cut() {
          const admin = new Redis(server.url);
          try {
            await admin.call("CLIENT", "KILL", "ADDR", `127.0.0.1:${store.subscriberLocalPort}`);
          } finally {
            admin.disconnect();
          }
        },
      };
    },
    async close() {
      await Promise.all([a.close(), b.close(), ...extra.map((s) => s.close())]);
    },
  };
}

/** Waits until the store's pub/sub subscription is active. */
export async function waitSubscribed(store: RedisStore, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!store.subscribed) {
    if (performance.now() > deadline) throw new Error("pub/sub subscription did not come up");
    await sleep(10);
  }
}

/** Waits until a store answers again after an outage (its state flag may lag the kill). */
export async function waitAvailable(store: RedisStore, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (store.available) {
      try {
        await store.owner("probe");
        return;
      } catch {
        // Not yet.
      }
    }
    await sleep(50);
  }
  throw new Error(`store did not become available within ${timeoutMs} ms`);
}
