/**
 * A subscriber that stops reading its WebSocket must not grow the relay's memory or delay a fast
 * subscriber of the same track: its connection stops at the socket high-water mark, its queued
 * group streams stay under the per-subscription budget (stale groups are reset), and the fast
 * subscriber keeps receiving every group promptly.
 */
import { connectMoq, type MoqLogger } from "@lvqr/moq-lite";
import { afterEach, describe, expect, it } from "vitest";
import { patternBytes, sleep, startRelay, waitUntil } from "./helpers.ts";
import { CLIENT_DEFAULT_PARAMS, RawPeer } from "./raw-peer.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const BUDGET = 1024 * 1024;
const SOCKET_HIGH_WATER = 256 * 1024;
const GROUPS = 100;
const FRAMES_PER_GROUP = 10;
const FRAME_BYTES = 20_000;

describe("a slow subscriber", () => {
  for (const framing of ["qmux-00", "webtransport"] as const) {
    it(`stays under its bound and does not delay a fast subscriber (${framing})`, async () => {
      const skips: string[] = [];
      const logger: MoqLogger = {
        debug: (_fields, message) => {
          if (message?.includes("skipped to the newest group") || message?.includes("lagged"))
            skips.push(message);
        },
        info: () => {},
        warn: () => {},
        error: () => {},
      };
      const relay = await startRelay({
        logger,
        sessionLimits: { subscriberBudgetBytes: BUDGET },
        transportLimits: { socketHighWater: SOCKET_HIGH_WATER },
      });
      cleanups.push(() => relay.server.close());

      const publisher = await connectMoq(relay.url(), { announceInterest: [] });
      cleanups.push(() => publisher.close());
      const track = publisher.createBroadcast("live").createTrack("video");

      const fast = await connectMoq(relay.url());
      cleanups.push(() => fast.close());
      const fastTrack = (await fast.waitForBroadcast("live", { timeoutMs: 3000 })).subscribeTrack("video");
      await waitUntil(() => track.consumerCount === 1, 3000, "upstream subscription");

      // The slow peer grants effectively unlimited QMux credit, so only TCP backpressure holds it back.
      const slow = await RawPeer.connect(relay.url(), [framing], {
        ...CLIENT_DEFAULT_PARAMS,
        maxData: 2 ** 40,
        maxStreamDataUni: 2 ** 40,
        maxStreamsUni: 100_000,
      });
      cleanups.push(() => slow.close());
      await slow.setup();
      await slow.subscribe(4, 0, "live", "video", 60);
      slow.ws.pause();
      // Sessions are listed in the order they opened: publisher, fast subscriber, slow subscriber.
      const slowSession = [...relay.server.sessions].at(-1)!;

      const publishedAt = new Map<number, number>();
      const latencies = new Map<number, number>();
      void (async () => {
        for (;;) {
          const group = await fastTrack.recvGroup();
          if (!group) return;
          void (async () => {
            let frames = 0;
            for (;;) {
              const frame = await group.readFrame();
              if (!frame) break;
              frames++;
            }
            if (frames === FRAMES_PER_GROUP)
              latencies.set(group.sequence, Date.now() - publishedAt.get(group.sequence)!);
          })();
        }
      })();

      let maxBuffered = 0;
      const sampler = setInterval(() => {
        maxBuffered = Math.max(maxBuffered, slowSession.stats().bufferedBytes);
      }, 2);
      cleanups.push(() => clearInterval(sampler));
      for (let g = 0; g < GROUPS; g++) {
        const group = track.appendGroup();
        for (let f = 0; f < FRAMES_PER_GROUP; f++) group.writeFrame(patternBytes(FRAME_BYTES, g * 100 + f));
        group.close();
        publishedAt.set(g, Date.now());
        await sleep(10);
      }
      await waitUntil(() => latencies.size === GROUPS, 10_000, "every group at the fast subscriber");
      fastTrack.close();
      clearInterval(sampler);
      maxBuffered = Math.max(maxBuffered, slowSession.stats().bufferedBytes);

      // 20 MB went to the fast subscriber, while the slow connection held a bounded amount.
      const slowOut = slowSession.stats().bytesOut;
      expect(slowOut).toBeLessThan(GROUPS * FRAMES_PER_GROUP * FRAME_BYTES);
      expect(maxBuffered).toBeLessThanOrEqual(BUDGET + SOCKET_HIGH_WATER + 2 * FRAME_BYTES);
      expect(skips.length).toBeGreaterThan(0);
      expect(Math.max(...latencies.values())).toBeLessThan(1000);
      expect(slowSession.stats().subscriptions).toBe(1);
    }, 30_000);
  }
});
