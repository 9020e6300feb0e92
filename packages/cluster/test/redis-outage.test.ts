/**
 * Acceptance 4 in one process, with the default timings (lease 6 s, renew 2 s): Redis is SIGKILLed
 * for a while and restarted without its data. Nodes carry on as single nodes (claims step down but
 * are never dropped, new broadcasts start as pending claims, nothing throws), log the outage once,
 * and re-claim every broadcast within two renew intervals with a higher epoch.
 * LVQR_CLUSTER_OUTAGE_MS sets the outage length (default 8000; 30000 for the full-length run).
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BroadcastClaim, ClusterNode, isClusterError, type RedisStore } from "../src/index.ts";
import { sleep, uniquePrefix } from "./support/harness.ts";
import { recordingLogger } from "./support/recording-logger.ts";
import { type RedisServer, startRedisServer } from "./support/redis-server.ts";

const OUTAGE_MS = Number(process.env["LVQR_CLUSTER_OUTAGE_MS"] ?? 8000);

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedisServer();
}, 20_000);

afterAll(async () => {
  await redis?.stop();
});

describe("a Redis outage with default lease timings", () => {
  it(
    "keeps nodes serving, then re-claims every broadcast with a higher epoch",
    async () => {
      const prefix = uniquePrefix();
      const logA = recordingLogger();
      const logB = recordingLogger();
      const a = await ClusterNode.start({
        nodeId: "a",
        redisUrl: redis.url,
        keyPrefix: prefix,
        logger: logA,
      });
      const b = await ClusterNode.start({
        nodeId: "b",
        redisUrl: redis.url,
        keyPrefix: prefix,
        logger: logB,
      });
      const rejections: unknown[] = [];
      const onRejection = (reason: unknown) => rejections.push(reason);
      process.on("unhandledRejection", onRejection);
      const timers: NodeJS.Timeout[] = [];
      try {
        await (a.store as RedisStore).ready();
        await (b.store as RedisStore).ready();
        const claims: BroadcastClaim[] = [];
        for (const [node, name] of [
          [a, "live/a1"],
          [a, "live/a2"],
          [a, "live/a3"],
          [b, "live/b1"],
          [b, "live/b2"],
        ] as const) {
          const claim = await node.claims.claim(name);
          claims.push(claim);
          timers.push(setInterval(() => claim.markMedia(), 40));
        }
        const epochs = new Map(claims.map((c) => [c.broadcast, c.epoch!]));
        const lost: string[] = [];
        for (const claim of claims) claim.on("lost", () => lost.push(claim.broadcast));

        await redis.kill();
        const killedAt = performance.now();
        // A broadcast that starts during the outage is accepted locally as a pending claim.
        await sleep(1000);
        const during = await a.claims.claim("live/during");
        expect(during.state).toBe("pending");
        expect(during.isOwner()).toBe(false);
        timers.push(setInterval(() => during.markMedia(), 40));
        // Admin routes report the store as unavailable (503 later), not a crash.
        const nodesError = await a.nodesJson().catch((e: unknown) => e);
        expect(isClusterError(nodesError, "CLUSTER_STORE_UNAVAILABLE")).toBe(true);

        await sleep(Math.max(0, OUTAGE_MS - (performance.now() - killedAt)));
        // Everyone stepped down (lease 6 s - margin 1.5 s after the last renew), nobody was dropped.
        for (const claim of claims) expect(claim.state).toBe("stepped-down");
        expect(lost).toEqual([]);
        expect(a.claims.stats()).toMatchObject({
          owner: 0,
          steppedDown: 3,
          pending: 1,
          storeState: "unavailable",
        });

        await redis.restart();
        const restartedAt = performance.now();
        const all = [...claims, during];
        while (!all.every((c) => c.isOwner())) {
          if (performance.now() - restartedAt > 2 * 2000 + 1500) break;
          await sleep(20);
        }
        const reclaimMs = performance.now() - restartedAt;
        console.log(
          `redis outage ${OUTAGE_MS} ms: every broadcast re-claimed ${Math.round(reclaimMs)} ms after the restart`,
        );
        expect(all.every((c) => c.isOwner())).toBe(true);
        // Two renew intervals, plus the reconnect backoff (capped at 1 s).
        expect(reclaimMs).toBeLessThan(2 * 2000 + 1200);
        for (const claim of claims) expect(claim.epoch!).toBeGreaterThan(epochs.get(claim.broadcast)!);
        expect(lost).toEqual([]);
        const owners = await b.broadcastsJson();
        expect(owners.map((o) => [o.name, o.owner])).toEqual([
          ["live/a1", "a"],
          ["live/a2", "a"],
          ["live/a3", "a"],
          ["live/b1", "b"],
          ["live/b2", "b"],
          ["live/during", "a"],
        ]);
        // The registry comes back with the next heartbeat.
        await sleep(2100);
        expect((await a.nodesJson()).map((n) => n.id)).toEqual(["a", "b"]);
        // One log line per store state change: unavailable once, available at start and after recovery.
        for (const log of [logA, logB]) {
          expect(log.messages("warn").filter((m) => m.startsWith("cluster store unavailable"))).toHaveLength(
            1,
          );
          expect(log.messages("info").filter((m) => m === "cluster store available")).toHaveLength(2);
        }
      } finally {
        for (const timer of timers) clearInterval(timer);
        process.off("unhandledRejection", onRejection);
        await a.close();
        await b.close();
      }
      expect(rejections).toEqual([]);
    },
    40_000 + OUTAGE_MS,
  );
});
