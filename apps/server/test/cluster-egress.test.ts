/**
 * Clustering with real server processes: three `lvqr serve` nodes (the built CLI) on one real
 * redis-server, all on loopback with ephemeral ports and advertised URLs filled from the bound
 * ports. A publisher (RTMP, an ffmpeg-encoded clip replayed in real time) on node A:
 *
 * - relay-pull (default), with JWT auth on, so node-to-node pulls use signed node tokens: the
 *   official `@moq/lite` client on C receives byte-identical frames to one on A, ffmpeg plays HLS
 *   from B, every node's `/api/v1/cluster/broadcasts` names the same owner and epoch, capacity is
 *   measured, and a second publisher of the name on another node is refused with `BadName`;
 * - redirect mode: HLS and DASH on B answer 302 to A with the query string kept, A never redirects
 *   to itself, and ffmpeg plays through the redirect.
 */

import { PublishRejectedError } from "@lvqr/ingest-rtmp";
import { connectMoq } from "@lvqr/moq-lite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HlsJsPlayer, launchHlsJsPlayer } from "../../../packages/cluster/test/support/hlsjs-player.ts";
import {
  connectOfficialViewer,
  type OfficialMoqViewer,
} from "../../../packages/cluster/test/support/official-moq-client.ts";
import { type RedisServer, startRedisServer } from "../../../packages/cluster/test/support/redis-server.ts";
import {
  type BroadcastRow,
  broadcastsOf,
  type NodeRow,
  signJwt,
  startNodes,
  stopNodes,
  waitUntil,
} from "./cluster-support/cluster.ts";
import { FlvLoopPublisher, testClip } from "./cluster-support/flv-loop-publisher.ts";
import { playWithFfmpeg } from "./cluster-support/hls-viewer.ts";
import type { ServerProcess } from "./cluster-support/server-process.ts";

// Default lease timings: these tests are about serving, not failover, and a 6 s lease tolerates a
// loaded machine stalling a node for seconds without a stepdown.
const LEASE = { leaseMs: 6000, renewMs: 2000 } as const;

let redis: RedisServer;
let hlsjs: HlsJsPlayer;

beforeAll(async () => {
  [redis, hlsjs] = await Promise.all([startRedisServer(), launchHlsJsPlayer(), testClip()]);
}, 60_000);

afterAll(async () => {
  await hlsjs?.close();
  await redis?.stop();
});

/** hls.js plays `src` for 8 s: it must start, advance at least 4 s of media, and hit no fatal error. */
async function expectHlsJsPlays(src: string): Promise<void> {
  const playback = await hlsjs.play(src, 8);
  expect(playback.errors.filter((error) => error.endsWith(":true"))).toEqual([]);
  expect(playback.startupMs).toBeGreaterThanOrEqual(0);
  expect(playback.currentTime).toBeGreaterThan(4);
}

describe("three nodes with relay-pull (the default) and JWT auth", () => {
  const secret = "cluster-egress-test-secret-0123456789abcdef";
  let nodes: ServerProcess[] = [];
  let a: ServerProcess;
  let b: ServerProcess;
  let c: ServerProcess;
  let publisher: FlvLoopPublisher;
  let subscribeJwt: string;
  const viewers: OfficialMoqViewer[] = [];

  beforeAll(async () => {
    const adminBearer = await signJwt(secret, "admin");
    subscribeJwt = await signJwt(secret, "subscribe");
    nodes = await startNodes(redis.url, ["node-a", "node-b", "node-c"], {
      ...LEASE,
      extraArgs: ["--jwt-secret", secret],
      adminBearer,
    });
    [a, b, c] = nodes as [ServerProcess, ServerProcess, ServerProcess];
    const publishJwt = await signJwt(secret, "publish");
    publisher = await FlvLoopPublisher.start(`${a.rtmpUrl("live/relay")}?key=${publishJwt}`);
  }, 60_000);

  afterAll(async () => {
    await publisher?.stop();
    // The servers close the viewers' sessions first: @moq/qmux 0.0.6 throws on data that arrives
    // after the client closed its side (see official-moq-client.ts).
    const exits = await stopNodes(nodes);
    for (const viewer of viewers) viewer.close();
    expect(exits.map((exit) => exit.code)).toEqual(nodes.map(() => 0));
  }, 30_000);

  it("an official @moq/lite viewer on C discovers the broadcast and receives A's exact frames", async () => {
    const onA = await connectOfficialViewer(a.moqUrl(`?jwt=${subscribeJwt}`));
    const onC = await connectOfficialViewer(c.moqUrl(`?jwt=${subscribeJwt}`));
    viewers.push(onA, onC);
    // Discovery as @moq/watch does it: wait for an active announcement under the prefix.
    await onC.waitAnnounced("live", "live/relay", 10_000);
    await onA.waitAnnounced("live", "live/relay", 10_000);
    const direct = onA.subscribe("live/relay", "video");
    const relayed = onC.subscribe("live/relay", "video");
    const common = () => [...relayed.groups.keys()].filter((sequence) => direct.groups.has(sequence));
    await waitUntil(() => common().length >= 3, 20_000, "three groups received on both A and C");
    for (const sequence of common()) {
      const fromA = direct.groups.get(sequence)!;
      const fromC = relayed.groups.get(sequence)!;
      expect(fromC.length).toBe(fromA.length);
      expect(fromA.length).toBeGreaterThan(0);
      fromA.forEach((frame, i) => {
        expect(Buffer.from(fromC[i]!).equals(Buffer.from(frame))).toBe(true);
      });
    }
    const relayLine = c.lines("relaying a remote broadcast", (line) => line["broadcast"] === "live/relay");
    expect(relayLine.map((line) => line["owner"])).toEqual(["node-a"]);
    expect(c.lines("relay upstream session opened").length).toBeGreaterThanOrEqual(1);
  }, 40_000);

  it("ffmpeg plays LL-HLS from B, served by relay-pull with a signed node token", async () => {
    const playback = await playWithFfmpeg(`${b.hlsUrl("live/relay")}?token=${subscribeJwt}`, 3);
    expect(playback.code, playback.stderr.slice(-2000)).toBe(0);
    expect(playback.frames, playback.stderr.slice(-3000)).toBeGreaterThanOrEqual(50);
    expect(b.lines("relaying a remote broadcast").map((line) => line["owner"])).toContain("node-a");
    // B never redirected: the playlist came from B itself.
    const response = await fetch(`${b.hlsUrl("live/relay", "playlist.m3u8")}?token=${subscribeJwt}`, {
      redirect: "manual",
    });
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("#EXT-X-PART");
    // Without credentials the edge refuses, like the owner does.
    expect((await fetch(b.hlsUrl("live/relay"), { redirect: "manual" })).status).toBe(401);
  }, 40_000);

  it("hls.js (low-latency) in Chromium plays from B through relay-pull", async () => {
    await expectHlsJsPlays(`${b.hlsUrl("live/relay")}?token=${subscribeJwt}`);
  }, 60_000);

  it("DASH on B is served by relay-pull too", async () => {
    const response = await fetch(`${b.dashUrl("live/relay")}?token=${subscribeJwt}`, { redirect: "manual" });
    expect(response.status).toBe(200);
    const mpd = await response.text();
    expect(mpd).toContain("<MPD");
    expect(mpd).toContain('mimeType="video/mp4"');
    const init = await fetch(`${b.dashUrl("live/relay", "init-video.m4s")}?token=${subscribeJwt}`);
    expect(init.status).toBe(200);
    expect(
      Buffer.from(await init.arrayBuffer())
        .subarray(4, 8)
        .toString("latin1"),
    ).toBe("ftyp");
  }, 20_000);

  it("a broadcast a MoQ client publishes on A is claimed by A and relayed to C", async () => {
    const publishJwt = await signJwt(secret, "publish");
    const publisherClient = await connectMoq(a.moqUrl(`?jwt=${publishJwt}`));
    const viewerClient = await connectMoq(c.moqUrl(`?jwt=${subscribeJwt}`));
    try {
      const broadcast = publisherClient.createBroadcast("live/moq-published");
      const track = broadcast.createTrack("data");
      const payload = (sequence: number) => new TextEncoder().encode(`moq-published group ${sequence}`);
      const timer = setInterval(() => {
        const group = track.appendGroup();
        group.writeFrame(payload(group.sequence));
        group.close();
      }, 50);
      try {
        const row = await waitUntil(
          async () => (await broadcastsOf(c)).find((entry) => entry.name === "live/moq-published"),
          10_000,
          "the claim of the MoQ-published broadcast",
        );
        expect(row.owner).toBe("node-a");
        const relayed = await viewerClient.waitForBroadcast("live/moq-published", { timeoutMs: 10_000 });
        const consumer = relayed.subscribeTrack("data");
        for (let i = 0; i < 3; i++) {
          const group = (await consumer.nextGroup())!;
          expect(new TextDecoder().decode((await group.readFrame())!)).toBe(
            new TextDecoder().decode(payload(group.sequence)),
          );
        }
        consumer.close();
      } finally {
        clearInterval(timer);
        broadcast.close();
      }
      // Ending the broadcast releases the claim.
      await waitUntil(
        async () => !(await broadcastsOf(c)).some((entry) => entry.name === "live/moq-published"),
        10_000,
        "the release",
      );
    } finally {
      publisherClient.close();
      viewerClient.close();
    }
  }, 40_000);

  it("every node's /api/v1/cluster/broadcasts names the same owner and epoch", async () => {
    const view = (list: BroadcastRow[]) =>
      list.filter((row) => row.name === "live/relay").map((row) => ({ owner: row.owner, epoch: row.epoch }));
    const rows = await Promise.all(nodes.map((node) => broadcastsOf(node)));
    expect(view(rows[0]!)).toHaveLength(1);
    expect(view(rows[0]!)[0]!.owner).toBe("node-a");
    expect(view(rows[1]!)).toEqual(view(rows[0]!));
    expect(view(rows[2]!)).toEqual(view(rows[0]!));
    // The epoch is the one A logged for its (latest) acquisition of the broadcast.
    const acquired = a
      .lines("cluster claim acquired", (line) => line["broadcast"] === "live/relay")
      .concat(
        a.lines("cluster claim re-acquired with a new epoch", (line) => line["broadcast"] === "live/relay"),
      );
    expect(acquired.map((line) => line["epoch"])).toContain(view(rows[0]!)[0]!.epoch);
    // Relayed broadcasts are never claimed by the nodes relaying them.
    expect(b.lines("cluster claim acquired")).toEqual([]);
    expect(c.lines("cluster claim acquired")).toEqual([]);
  });

  it("/api/v1/cluster/nodes lists every node with its bound endpoints and measured egress", async () => {
    const listed = await waitUntil(
      async () => {
        const rows = await b.admin<NodeRow[]>("/api/v1/cluster/nodes");
        const owner = rows.find((row) => row.id === "node-a");
        return owner?.capacity && owner.capacity.bytes_out_per_sec > 0 ? rows : undefined;
      },
      10_000,
      "node-a to report egress bytes",
    );
    expect(listed.map((row) => row.id)).toEqual(["node-a", "node-b", "node-c"]);
    for (const node of nodes) {
      const row = listed.find((entry) => entry.id === node.nodeId)!;
      expect(row.endpoints).toEqual({
        moq: `http://127.0.0.1:${node.ports.moq}`,
        hls: `http://127.0.0.1:${node.ports.hls}`,
        dash: `http://127.0.0.1:${node.ports.dash}`,
      });
    }
  });

  it("a second publisher of the name on another node gets BadName naming the owner", async () => {
    const publishJwt = await signJwt(secret, "publish");
    const attempt = FlvLoopPublisher.start(`${c.rtmpUrl("live/relay")}?key=${publishJwt}`);
    const error = await attempt.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(PublishRejectedError);
    expect((error as PublishRejectedError).status).toBe("NetStream.Publish.BadName");
    expect((error as PublishRejectedError).description).toBe("live/relay is being published on node node-a");
    expect((await broadcastsOf(c)).find((row) => row.name === "live/relay")?.owner).toBe("node-a");
  });
});

describe("three nodes in redirect mode", () => {
  let nodes: ServerProcess[] = [];
  let a: ServerProcess;
  let b: ServerProcess;
  let publisher: FlvLoopPublisher;

  beforeAll(async () => {
    nodes = await startNodes(redis.url, ["node-a", "node-b", "node-c"], { ...LEASE, egress: "redirect" });
    [a, b] = nodes as [ServerProcess, ServerProcess];
    publisher = await FlvLoopPublisher.start(a.rtmpUrl("live/redirect"));
    await waitUntil(
      async () => (await broadcastsOf(b)).some((row) => row.name === "live/redirect"),
      5000,
      "the claim",
    );
  }, 60_000);

  afterAll(async () => {
    await publisher?.stop();
    const exits = await stopNodes(nodes);
    expect(exits.map((exit) => exit.code)).toEqual(nodes.map(() => 0));
  }, 30_000);

  it("HLS and DASH on a non-owner answer 302 to the owner with the query kept; the owner serves itself", async () => {
    const query = "?token=abc%2Fdef&_HLS_msn=1&x=y";
    const hls = await fetch(`${b.hlsUrl("live/redirect", "playlist.m3u8")}${query}`, { redirect: "manual" });
    expect(hls.status).toBe(302);
    expect(hls.headers.get("location")).toBe(
      `http://127.0.0.1:${a.ports.hls}/hls/live/redirect/playlist.m3u8${query}`,
    );
    const dash = await fetch(`${b.dashUrl("live/redirect")}?sig=s1&exp=9`, { redirect: "manual" });
    expect(dash.status).toBe(302);
    expect(dash.headers.get("location")).toBe(
      `http://127.0.0.1:${a.ports.dash}/dash/live/redirect/manifest.mpd?sig=s1&exp=9`,
    );
    const own = await fetch(a.hlsUrl("live/redirect"), { redirect: "manual" });
    expect(own.status).toBe(200);
    // Nothing was relayed in redirect mode.
    expect(
      b.lines("relaying a remote broadcast", (line) => line["broadcast"] === "live/redirect"),
    ).toHaveLength(1);
    expect(b.lines("relay upstream session opened")).toHaveLength(0);
  });

  it("hls.js (low-latency) in Chromium plays from B by following the redirect to A", async () => {
    await expectHlsJsPlays(b.hlsUrl("live/redirect"));
  }, 60_000);

  it("ffmpeg plays LL-HLS from B by following the redirect to A", async () => {
    const playback = await playWithFfmpeg(b.hlsUrl("live/redirect"), 3);
    expect(playback.code, playback.stderr.slice(-2000)).toBe(0);
    expect(playback.frames, playback.stderr.slice(-3000)).toBeGreaterThanOrEqual(50);
    expect(playback.stderr).toContain(`127.0.0.1:${a.ports.hls}`);
  }, 40_000);
});
