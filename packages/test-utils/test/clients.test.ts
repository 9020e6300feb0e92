import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DashTestClient,
  FIXTURE_INFO,
  HlsTestClient,
  MoqTestClient,
  parseTimingAnchor,
  publishRtmp,
  type RtmpPublishHandle,
  slo,
  TestServer,
  timingAnchors,
  waitForSlo,
} from "../src/index.ts";

describe("test clients against a live TestServer publishing the fixture", () => {
  let server: TestServer;
  let publish: RtmpPublishHandle;
  const broadcast = "live/clients";

  beforeAll(async () => {
    server = await TestServer.start({ dash: true });
    publish = await publishRtmp(server.rtmpUrl("live", "clients"), "fixture", { loop: true });
  });
  afterAll(async () => {
    await publish?.stop();
    await server?.stop();
  });

  it("MoqTestClient collects video groups, the catalog and 0.timing anchors, and closes cleanly", async () => {
    const moq = await MoqTestClient.connect(server.moqUrl());
    try {
      const catalog = await moq.catalog(broadcast);
      const video = Object.values(catalog.video?.renditions ?? {})[0];
      const audio = Object.values(catalog.audio?.renditions ?? {})[0];
      expect(video).toMatchObject({ codec: FIXTURE_INFO.videoCodec, codedWidth: 640, codedHeight: 360 });
      expect(audio).toMatchObject({ codec: FIXTURE_INFO.audioCodec, sampleRate: 48000, numberOfChannels: 2 });

      const track = await moq.subscribe(broadcast, "video");
      const timing = await moq.timing(broadcast);
      const groups = await track.waitForGroups(2, { timeoutMs: 10_000 });
      // Every video group starts at a keyframe: 32 frames at 30 fps, so a complete group has 32 frames.
      await track.waitForFrames(40);
      const complete = groups.filter((g) => g.complete);
      for (const g of complete) expect(g.frameCount).toBe(FIXTURE_INFO.gopFrames);
      const first = track.frames()[0]!;
      expect(String.fromCharCode(...first.subarray(4, 8))).toBe("moof");

      await timing.waitForFrames(1, { timeoutMs: 10_000 });
      const anchors = timingAnchors(timing);
      expect(anchors[0]!.ingestTimeMs).toBeGreaterThan(Date.now() - 60_000);
      expect(anchors[0]!.ingestTimeMs).toBeLessThanOrEqual(Date.now());
      expect(() => parseTimingAnchor(new Uint8Array(15))).toThrow(/16 bytes/);
    } finally {
      await moq.close();
    }
    await moq.close(); // idempotent
  });

  it("HlsTestClient follows the playlist with blocking reload and fetches moof segments", async () => {
    await using hls = await HlsTestClient.open(server.hlsUrl(broadcast), { fetchParts: true });
    expect(hls.multivariant?.variants[0]).toMatchObject({ resolution: { width: 640, height: 360 } });
    expect(hls.mediaUrl).toMatch(/playlist\.m3u8$/);
    const segments = await hls.waitForSegments(3, { timeoutMs: 20_000 });
    for (const s of segments) {
      expect(s.firstBox).toBe("moof");
      expect(s.durationS).toBeGreaterThan(1);
      expect(s.durationS).toBeLessThan(3);
      expect(s.partCount).toBeGreaterThan(0);
    }
    expect(hls.stats.blockingRequests).toBeGreaterThan(0);
    expect(hls.playlist.partTargetS).toBeGreaterThan(0);
    expect(hls.parts.every((p) => p.firstBox === undefined || p.firstBox === "moof")).toBe(true);
    expect(hls.stats.partsFetched).toBeGreaterThan(3);
    const init = await hls.fetchInit();
    expect(String.fromCharCode(...init.subarray(4, 8))).toBe("ftyp");
    expect(hls.errors).toEqual([]);
    // LL-HLS rules the server must keep: no part longer than PART-TARGET, and a segment lasts as
    // long as its parts together.
    const partTarget = hls.playlist.partTargetS!;
    for (const part of hls.parts) expect(part.durationS).toBeLessThanOrEqual(partTarget + 0.001);
    let checked = 0;
    for (const segment of segments) {
      const parts = hls.parts.filter((p) => p.msn === segment.msn);
      if (parts.length !== segment.partCount) continue; // parts listed before the client joined
      const sum = parts.reduce((total, p) => total + p.durationS, 0);
      expect(Math.abs(sum - segment.durationS)).toBeLessThan(0.01);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
  });

  it("HlsTestClient follows the audio rendition from the multivariant playlist", async () => {
    await using hls = await HlsTestClient.open(server.hlsUrl(broadcast), { rendition: "audio" });
    expect(hls.mediaUrl).toMatch(/audio\.m3u8$/);
    await hls.waitForSegments(1, { timeoutMs: 20_000 });
  });

  it("DashTestClient follows the MPD and fetches video and audio segments", async () => {
    await using dash = await DashTestClient.open(server.dashUrl(broadcast));
    expect(dash.mpd.type).toBe("dynamic");
    const video = await dash.waitForSegments(2, { contentType: "video", timeoutMs: 20_000 });
    await dash.waitForSegments(2, { contentType: "audio", timeoutMs: 20_000 });
    expect(video.every((s) => s.firstBox === "moof")).toBe(true);
    expect(dash.stats.initsFetched).toBeGreaterThanOrEqual(2);
    const init = await dash.fetchInit("video");
    expect(String.fromCharCode(...init.subarray(4, 8))).toBe("ftyp");
    expect(dash.errors).toEqual([]);
  });

  it("slo() reads /api/v1/slo and reports hls samples for the broadcast", async () => {
    const row = await waitForSlo(server, { broadcast, transport: "hls", minSamples: 3 });
    expect(row.p50_ms).toBeGreaterThanOrEqual(0);
    expect(row.max_ms).toBeGreaterThanOrEqual(row.p99_ms);
    const rows = await slo(server.adminUrl());
    expect(rows.some((r) => r.broadcast === broadcast && r.transport === "hls")).toBe(true);
  });
});
