/**
 * Store harnesses for the contract suite: the same tests run against a MemoryStore (with a manual
 * clock) and a RedisStore on a real redis-server (real clock). Each test gets a fresh key prefix so
 * tests never see each other's keys on the shared server.
 */

import { randomBytes } from "node:crypto";
import { type ClusterStore, MemoryStore, RedisStore } from "../../src/index.ts";
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
    close: () => store.close(),
  };
}

export async function redisHarness(server: RedisServer): Promise<StoreHarness> {
  const keyPrefix = uniquePrefix();
  const a = new RedisStore({ url: server.url, keyPrefix });
  const b = new RedisStore({ url: server.url, keyPrefix });
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
    async close() {
      await Promise.all([a.close(), b.close()]);
    },
  };
}

/** Waits until a store reports available again after an outage (the state may lag the kill). */
export async function waitAvailable(store: RedisStore, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  // The store may not have noticed the outage yet; wait for a probe to succeed, not just the flag.
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
