// What a downstream project writes: a real LVQR server per test, the committed fixture published
// over RTMP with no ffmpeg, and assertions on MoQ, LL-HLS and the SLO API.
import {
  HlsTestClient,
  MoqTestClient,
  probe,
  publishRtmp,
  type TestServer,
  testServerFixture,
  waitForSlo,
} from "@lvqr/test-utils";
import { test as base, expect } from "vitest";

const test = base.extend<{ server: TestServer }>({ server: testServerFixture() });

test("a published fixture comes out over MoQ, LL-HLS and the SLO API", async ({ server }) => {
  const publish = await publishRtmp(server.rtmpUrl("live", "demo"), "fixture", { loop: true });

  await using moq = await MoqTestClient.connect(server.moqUrl());
  const catalog = await moq.catalog("live/demo");
  expect(Object.values(catalog.video?.renditions ?? {})[0]?.codec).toMatch(/^avc1\./);
  const video = await moq.subscribe("live/demo", "video");
  const groups = await video.waitForGroups(2);
  expect(groups[0]!.frameCount).toBeGreaterThan(0);
  expect(new TextDecoder().decode(video.frames()[0]!.subarray(4, 8))).toBe("moof");

  await using hls = await HlsTestClient.open(server.hlsUrl("live/demo"));
  const segments = await hls.waitForSegments(3, { timeoutMs: 30_000 });
  expect(segments.map((s) => s.firstBox)).toEqual(["moof", "moof", "moof"]);
  expect(hls.stats.blockingRequests).toBeGreaterThan(0);

  const hlsLatency = await waitForSlo(server, { broadcast: "live/demo", transport: "hls" });
  expect(hlsLatency.sample_count).toBeGreaterThan(0);

  // This project has no ffmpeg on PATH, and the kit says so instead of pretending.
  const ffprobe = await probe(server.hlsUrl("live/demo"));
  expect(ffprobe.status).toBe("skipped");

  const outcome = await publish.stop();
  expect(outcome.reason).toBe("stopped");
  expect(outcome.counters.keyframes).toBeGreaterThan(0);
});
