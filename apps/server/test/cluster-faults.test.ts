/**
 * Cluster faults with real server processes (the built CLI) on one real redis-server, three nodes
 * each, lease 3 s / renew 1 s:
 *
 * - `kill -9` of the owner: its claims expire within the lease; a republish on B becomes owner with
 *   a higher epoch; the official MoQ viewer and the HLS viewer on C resume from B.
 * - SIGSTOP of the owner for longer than the lease, then SIGCONT: the owner's local deadline passed
 *   before B could claim; on resuming, its renew is refused (fenced), it disconnects its publisher
 *   and never owns or serves the broadcast again; every node agrees on B.
 * - SIGTERM of the owner: it releases while draining, B's republish gets in at once, exit code 0.
 * - Two publishers of one name on two nodes at once: one owner, the other refused; no flapping
 *   while the loser keeps retrying (8 s by default, `LVQR_CLUSTER_SOAK_MS=30000` for the long run).
 * - Redis SIGKILLed for 8 s (`LVQR_CLUSTER_OUTAGE_MS=30000` for the long run) and restarted: no
 *   process exits, local and relayed HLS keep advancing, publishers stay connected, and every live
 *   broadcast is re-claimed with a higher epoch within two renew intervals of Redis being back.
 *
 * Timings measured here are printed (`[cluster-faults]` lines) for the README's benchmark table.
 */

import { PublishRejectedError } from "@lvqr/ingest-rtmp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  connectOfficialViewer,
  type OfficialMoqViewer,
} from "../../../packages/cluster/test/support/official-moq-client.ts";
import { type RedisServer, startRedisServer } from "../../../packages/cluster/test/support/redis-server.ts";
import { broadcastsOf, ownerOn, sleep, startNodes, stopNodes, waitUntil } from "./cluster-support/cluster.ts";
import { FlvLoopPublisher, testClip } from "./cluster-support/flv-loop-publisher.ts";
import { HlsPlaylistWatcher } from "./cluster-support/hls-viewer.ts";
import type { LogLine, ServerProcess } from "./cluster-support/server-process.ts";

const LEASE_MS = 3000;
const RENEW_MS = 1000;
/** Default stepdown margin for a 3 s lease: max(1000, 25 %). */
const MARGIN_MS = 1000;
const SOAK_MS = Number(process.env["LVQR_CLUSTER_SOAK_MS"] ?? 8000);
const OUTAGE_MS = Number(process.env["LVQR_CLUSTER_OUTAGE_MS"] ?? 8000);

let redis: RedisServer;
let nodes: ServerProcess[] = [];
const closers: Array<() => unknown> = [];

beforeAll(async () => {
  [redis] = await Promise.all([startRedisServer(), testClip()]);
}, 60_000);

afterEach(async () => {
  // Servers first, so they close the viewers' sessions: @moq/qmux 0.0.6 throws on data that arrives
  // after the client closed its side (see official-moq-client.ts).
  for (const node of nodes) node.signal("SIGCONT");
  await stopNodes(nodes);
  nodes = [];
  while (closers.length) await closers.pop()!();
}, 30_000);

afterAll(async () => {
  await redis?.stop();
});

async function cluster(ids: string[]): Promise<ServerProcess[]> {
  nodes = await startNodes(redis.url, ids, { leaseMs: LEASE_MS, renewMs: RENEW_MS });
  return nodes;
}

async function publish(url: string): Promise<FlvLoopPublisher> {
  const publisher = await FlvLoopPublisher.start(url);
  closers.push(() => publisher.stop());
  return publisher;
}

async function viewer(url: string): Promise<OfficialMoqViewer> {
  const moq = await connectOfficialViewer(url);
  closers.push(() => moq.close());
  return moq;
}

function watch(url: string): HlsPlaylistWatcher {
  const watcher = new HlsPlaylistWatcher(url);
  closers.push(() => watcher.stop());
  return watcher;
}

const epochsRelayed = (node: ServerProcess, broadcast: string): Array<{ owner: unknown; epoch: number }> =>
  node
    .lines("relaying a remote broadcast", (line) => line["broadcast"] === broadcast)
    .map((line) => ({ owner: line["owner"], epoch: Number(line["epoch"]) }));

const report = (fields: Record<string, unknown>) => console.log(`[cluster-faults] ${JSON.stringify(fields)}`);

describe("cluster faults with three server processes", () => {
  it("kill -9 of the owner: the claim expires within the lease, a republish on B owns it with a higher epoch, and viewers on C resume", async () => {
    const [a, b, c] = (await cluster(["node-a", "node-b", "node-c"])) as [
      ServerProcess,
      ServerProcess,
      ServerProcess,
    ];
    const publisherA = await publish(a.rtmpUrl("live/crash"));
    await publish(a.rtmpUrl("live/idle"));
    const moqOnC = await viewer(c.moqUrl());
    const followed = moqOnC.follow("live", "live/crash", "video");
    closers.push(() => followed.close());
    await waitUntil(() => followed.groups.length >= 2, 15_000, "the viewer on C to play from A");
    const hlsOnC = watch(c.hlsUrl("live/crash", "playlist.m3u8"));
    await waitUntil(() => hlsOnC.progress() > 0, 15_000, "HLS on C to play from A");
    const before = await ownerOn(b, "live/crash");
    expect(before?.owner).toBe("node-a");

    const killedAt = performance.now();
    await a.kill();
    void publisherA.abort();
    // The encoder reconnects to another node and retries until the cluster lets it in.
    const republish = FlvLoopPublisher.startWhenAccepted(b.rtmpUrl("live/crash"), {
      intervalMs: 100,
      timeoutMs: 15_000,
    });
    const expired = waitUntil(
      async () => !(await ownerOn(c, "live/idle")),
      10_000,
      "live/idle to expire",
      25,
    ).then(() => performance.now() - killedAt);
    const { publisher: publisherB, refusals } = await republish;
    const acceptedAfterMs = performance.now() - killedAt;
    closers.push(() => publisherB.stop());
    const expiredAfterMs = await expired;

    // Every node (still running) agrees on B with a higher epoch.
    const after = await waitUntil(
      async () => {
        const rows = await Promise.all([b, c].map((node) => ownerOn(node, "live/crash")));
        return rows.every((row) => row?.owner === "node-b" && row.epoch === rows[0]!.epoch)
          ? rows[0]
          : undefined;
      },
      5000,
      "B's ownership on every node",
    );
    expect(after!.epoch).toBeGreaterThan(before!.epoch);
    expect(
      refusals.every(
        (err) => err instanceof PublishRejectedError && err.status === "NetStream.Publish.BadName",
      ),
    ).toBe(true);

    // Viewers on C resume: MoQ through a new announcement from B, HLS past where it stopped.
    const resumed = await waitUntil(
      () => followed.groups.find((group) => group.instance > 1),
      10_000,
      "the MoQ viewer on C to receive media from B",
      10,
    );
    const progressAtKill = hlsOnC.samples
      .filter((sample) => sample.at <= killedAt)
      .reduce((best, sample) => Math.max(best, sample.newestMsn * 1000 + sample.newestPart + 1), -1);
    await waitUntil(
      () => hlsOnC.progress() > progressAtKill + 3,
      15_000,
      "HLS on C to advance after the failover",
    );
    // B's media comes after an EXT-X-DISCONTINUITY in the same playlist (no ENDLIST, no restart).
    await waitUntil(
      () => hlsOnC.ok().find((sample) => sample.at > killedAt && sample.afterDiscontinuity > 0),
      10_000,
      "a discontinuity followed by B's parts",
    );
    expect(hlsOnC.ok().some((sample) => sample.ended)).toBe(false);
    const relayed = epochsRelayed(c, "live/crash");
    expect(relayed.at(-1)).toEqual({ owner: "node-b", epoch: after!.epoch });
    expect(relayed.map((entry) => entry.epoch)).toEqual(
      [...relayed.map((entry) => entry.epoch)].sort((x, y) => x - y),
    );

    const failoverMs = resumed.firstFrameAt - killedAt;
    report({
      test: "kill-9",
      expiredAfterMs: Math.round(expiredAfterMs),
      acceptedAfterMs: Math.round(acceptedAfterMs),
      moqViewerResumedAfterMs: Math.round(failoverMs),
      refusals: refusals.length,
    });
    expect(expiredAfterMs).toBeLessThanOrEqual(LEASE_MS + 300);
    expect(acceptedAfterMs).toBeLessThan(LEASE_MS + 500);
    expect(failoverMs).toBeLessThan(LEASE_MS + 2000);
  }, 90_000);

  it("SIGSTOP/SIGCONT of the owner: it steps down before B claims, its renew is fenced off, and there is never a second owner", async () => {
    const [a, b, c] = (await cluster(["node-a", "node-b", "node-c"])) as [
      ServerProcess,
      ServerProcess,
      ServerProcess,
    ];
    const publisherA = await publish(a.rtmpUrl("live/pause"));
    const moqOnC = await viewer(c.moqUrl());
    const followed = moqOnC.follow("live", "live/pause", "video");
    closers.push(() => followed.close());
    await waitUntil(() => followed.groups.length >= 2, 15_000, "the viewer on C to play from A");
    const before = (await ownerOn(c, "live/pause"))!;
    expect(before.owner).toBe("node-a");

    // Watch A's record in the store (Redis clock): its last expires_at_ms tells when its last renew ran.
    let lastRowOfA = before;
    let watching = true;
    const storeWatch = (async () => {
      while (watching) {
        const row = await ownerOn(c, "live/pause").catch(() => undefined);
        if (row?.owner === "node-a") lastRowOfA = row;
        await sleep(50);
      }
    })();
    const stoppedAt = performance.now();
    a.signal("SIGSTOP");
    const { publisher: publisherB } = await FlvLoopPublisher.startWhenAccepted(b.rtmpUrl("live/pause"), {
      intervalMs: 100,
      timeoutMs: 15_000,
    });
    closers.push(() => publisherB.stop());
    watching = false;
    await storeWatch;
    const claimedByB = await b.waitForLog(
      (line) => line.msg === "cluster claim acquired" && line["broadcast"] === "live/pause",
      5000,
      "B's claim",
    );
    const epochB = Number(claimedByB["epoch"]);
    // On the Redis clock: A's last renew ran at expires_at - lease, and A acts as owner until at most
    // (that renew's send time) + lease - margin, so its deadline is at most expires_at - margin. B's
    // epoch is the Redis time of B's claim. B must have claimed after A's deadline: no overlap.
    const deadlineOfA = lastRowOfA.expires_at_ms - MARGIN_MS;
    const gapMs = epochB - deadlineOfA;
    expect(gapMs).toBeGreaterThan(0);
    await sleep(Math.max(0, stoppedAt + LEASE_MS + 1000 - performance.now()));

    const resumedAt = performance.now();
    a.signal("SIGCONT");
    const lost = await a.waitForLog(
      (line) => line.msg === "cluster claim lost" && line["broadcast"] === "live/pause",
      5000,
      "A to learn it lost the claim",
    );
    await waitUntil(() => publisherA.closed, 5000, "A's publisher to be disconnected");
    const disconnectedAfterMs = performance.now() - resumedAt;
    expect(lost["owner"]).toBe("node-b");
    expect(Number(lost["ownerEpoch"])).toBe(epochB);
    expect(epochB).toBeGreaterThan(before.epoch);
    // A never acted as owner after resuming: its next renew was refused, not accepted.
    const resumedLines = a.logs.filter((line: LogLine) => line.at >= resumedAt);
    expect(resumedLines.some((line) => line.msg === "cluster claim acquired")).toBe(false);
    await a.waitForLog(
      (line) => line.msg === "publisher disconnected: the cluster claim was lost",
      5000,
      "A to disconnect its publisher",
    );
    expect(a.lines("publisher disconnected: the cluster claim was lost")).toHaveLength(1);

    // No split brain: for two seconds every node names B with B's epoch.
    for (let i = 0; i < 8; i++) {
      const rows = await Promise.all([a, b, c].map((node) => ownerOn(node, "live/pause")));
      expect(rows.map((row) => [row?.owner, row?.epoch])).toEqual([
        ["node-b", epochB],
        ["node-b", epochB],
        ["node-b", epochB],
      ]);
      await sleep(250);
    }
    // C moved to B and never went back to A's epoch; A itself now relays from B.
    const relayed = epochsRelayed(c, "live/pause");
    expect(relayed.at(-1)).toEqual({ owner: "node-b", epoch: epochB });
    expect(relayed.map((entry) => entry.epoch)).toEqual(
      [...relayed.map((entry) => entry.epoch)].sort((x, y) => x - y),
    );
    await waitUntil(
      () => epochsRelayed(a, "live/pause").at(-1)?.owner === "node-b",
      5000,
      "A to relay from B",
    );
    report({
      test: "sigstop",
      deadlineToPeerClaimGapMs: gapMs,
      claimedByBAfterStopMs: Math.round(claimedByB.at - stoppedAt),
      oldOwnerDisconnectedAfterResumeMs: Math.round(disconnectedAfterMs),
    });
    expect(disconnectedAfterMs).toBeLessThan(1500);
  }, 90_000);

  it("SIGTERM of the owner: it releases at once, a republish on B gets in right away, and A exits 0", async () => {
    const [a, b] = (await cluster(["node-a", "node-b"])) as [ServerProcess, ServerProcess];
    await publish(a.rtmpUrl("live/drain"));
    const before = await waitUntil(() => ownerOn(b, "live/drain"), 5000, "the claim");
    a.signal("SIGTERM");
    const { publisher, refusals } = await FlvLoopPublisher.startWhenAccepted(b.rtmpUrl("live/drain"), {
      intervalMs: 5,
      timeoutMs: 10_000,
    });
    closers.push(() => publisher.stop());
    const released = await a.waitForLog(
      (line) => line.msg === "cluster claim released" && line["broadcast"] === "live/drain",
      5000,
      "A's release",
    );
    const acquired = await b.waitForLog(
      (line) => line.msg === "cluster claim acquired" && line["broadcast"] === "live/drain",
      5000,
      "B's claim",
    );
    const handoverMs = acquired.at - released.at;
    expect(Number(acquired["epoch"])).toBeGreaterThan(before.epoch);
    expect((await a.exited).code).toBe(0);
    report({ test: "sigterm", releaseToPeerClaimMs: Math.round(handoverMs), refusals: refusals.length });
    // B's claim follows A's release within a pub/sub round trip plus one encoder retry.
    expect(handoverMs).toBeLessThan(500);
  }, 60_000);

  it(
    "two publishers of one name on two nodes at once: one owner, the other refused, no flapping",
    async () => {
      const [a, b, c] = (await cluster(["node-a", "node-b", "node-c"])) as [
        ServerProcess,
        ServerProcess,
        ServerProcess,
      ];
      const results = await Promise.allSettled([
        FlvLoopPublisher.start(a.rtmpUrl("live/split")),
        FlvLoopPublisher.start(b.rtmpUrl("live/split")),
      ]);
      for (const result of results)
        if (result.status === "fulfilled") closers.push(() => result.value.stop());
      const winners = results.flatMap((result, i) => (result.status === "fulfilled" ? [i] : []));
      expect(winners).toHaveLength(1);
      const winner = winners[0] === 0 ? a : b;
      const loser = winners[0] === 0 ? b : a;
      const refusal = (results[1 - winners[0]!] as PromiseRejectedResult).reason as PublishRejectedError;
      expect(refusal.status).toBe("NetStream.Publish.BadName");
      expect(refusal.description).toBe(`live/split is being published on node ${winner.nodeId}`);
      const owner = await waitUntil(() => ownerOn(c, "live/split"), 5000, "the claim");
      expect(owner.owner).toBe(winner.nodeId);

      // The loser's encoder keeps retrying; ownership must not move for the whole soak.
      const end = performance.now() + SOAK_MS;
      let retries = 0;
      const retrying = (async () => {
        while (performance.now() < end) {
          const attempt = await FlvLoopPublisher.start(loser.rtmpUrl("live/split")).then(
            (publisher) => publisher,
            (err: unknown) => err,
          );
          if (attempt instanceof FlvLoopPublisher) {
            await attempt.stop();
            throw new Error("the second publisher was admitted");
          }
          expect((attempt as PublishRejectedError).status).toBe("NetStream.Publish.BadName");
          retries += 1;
          await sleep(500);
        }
      })();
      let checks = 0;
      while (performance.now() < end) {
        const rows = await Promise.all([a, b, c].map((node) => broadcastsOf(node)));
        for (const list of rows) {
          const matching = list.filter((row) => row.name === "live/split");
          expect(matching.map((row) => [row.owner, row.epoch])).toEqual([[owner.owner, owner.epoch]]);
        }
        checks += 1;
        await sleep(250);
      }
      await retrying;
      for (const node of [a, b, c]) {
        expect(node.lines("cluster claim lost")).toEqual([]);
        expect(node.lines("cluster claim stepped down")).toEqual([]);
      }
      const acquisitions = [a, b, c].flatMap((node) => node.lines("cluster claim acquired"));
      expect(acquisitions.map((line) => line["broadcast"])).toEqual(["live/split"]);
      report({
        test: "split-brain",
        soakMs: SOAK_MS,
        loserRetries: retries,
        ownershipChecks: checks,
        ownerChanges: 0,
      });
    },
    60_000 + SOAK_MS,
  );

  it(
    "Redis killed and restarted: nobody exits, playback continues, every live broadcast is re-claimed within two renew intervals",
    async () => {
      const [a, b, c] = (await cluster(["node-a", "node-b", "node-c"])) as [
        ServerProcess,
        ServerProcess,
        ServerProcess,
      ];
      const publisherX = await publish(a.rtmpUrl("live/outage-x"));
      const publisherY = await publish(b.rtmpUrl("live/outage-y"));
      const before = await waitUntil(
        async () => {
          const rows = await broadcastsOf(c);
          const x = rows.find((row) => row.name === "live/outage-x");
          const y = rows.find((row) => row.name === "live/outage-y");
          return x && y ? { x, y } : undefined;
        },
        5000,
        "both claims",
      );
      const local = watch(a.hlsUrl("live/outage-x", "playlist.m3u8"));
      const relayed = watch(c.hlsUrl("live/outage-x", "playlist.m3u8"));
      const localY = watch(b.hlsUrl("live/outage-y", "playlist.m3u8"));
      await waitUntil(
        () => local.progress() > 0 && relayed.progress() > 0 && localY.progress() > 0,
        15_000,
        "HLS playback",
      );

      await redis.kill();
      const outageStart = performance.now();
      const progressAtStart = [local.progress(), relayed.progress(), localY.progress()];
      // While Redis is down: the cluster routes say 503 (with Retry-After), media keeps flowing.
      await waitUntil(
        async () => {
          const response = await fetch(`http://127.0.0.1:${c.ports.admin}/api/v1/cluster/broadcasts`);
          return response.status === 503 && response.headers.get("retry-after") === "1";
        },
        5000,
        "503 from the cluster routes",
      );
      await sleep(Math.max(0, outageStart + OUTAGE_MS - performance.now()));
      const progressAtEnd = [local.progress(), relayed.progress(), localY.progress()];
      for (let i = 0; i < 3; i++) expect(progressAtEnd[i]!).toBeGreaterThan(progressAtStart[i]! + 2);
      for (const node of [a, b, c]) expect(node.running).toBe(true);
      expect(publisherX.closed || publisherY.closed).toBe(false);

      await redis.restart();
      const restartedAt = performance.now();
      const reclaimed = await waitUntil(
        async () => {
          const rows = await broadcastsOf(c);
          const x = rows.find((row) => row.name === "live/outage-x");
          const y = rows.find((row) => row.name === "live/outage-y");
          return x && y ? { x, y, at: performance.now() } : undefined;
        },
        10_000,
        "both broadcasts to be re-claimed",
        20,
      );
      const reclaimedAfterMs = reclaimed.at - restartedAt;
      expect(reclaimed.x.owner).toBe("node-a");
      expect(reclaimed.y.owner).toBe("node-b");
      expect(reclaimed.x.epoch).toBeGreaterThan(before.x.epoch);
      expect(reclaimed.y.epoch).toBeGreaterThan(before.y.epoch);
      // Everyone agrees afterwards, nothing exited, the publishers were never cut off.
      await waitUntil(
        async () => {
          const views = await Promise.all([a, b, c].map((node) => broadcastsOf(node)));
          return views.every(
            (rows) => rows.filter((row) => row.name.startsWith("live/outage-")).length === 2,
          );
        },
        5000,
        "every node to see both claims",
      );
      for (const node of [a, b, c]) expect(node.running).toBe(true);
      expect(publisherX.closed || publisherY.closed).toBe(false);
      const progressAfter = [local.progress(), relayed.progress(), localY.progress()];
      await sleep(1500);
      expect(local.progress()).toBeGreaterThan(progressAfter[0]!);
      expect(relayed.progress()).toBeGreaterThan(progressAfter[1]!);
      report({
        test: "redis-outage",
        outageMs: OUTAGE_MS,
        reclaimedAfterRestartMs: Math.round(reclaimedAfterMs),
      });
      expect(reclaimedAfterMs).toBeLessThanOrEqual(2 * RENEW_MS);
    },
    90_000 + OUTAGE_MS,
  );
});
