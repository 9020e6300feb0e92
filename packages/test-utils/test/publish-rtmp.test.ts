import {
  type MediaConfig,
  type MediaSample,
  type PublishEndReason,
  PublishRejectedError,
  type PublishSession,
  RtmpServer,
} from "@lvqr/ingest-rtmp";
import { afterEach, describe, expect, it } from "vitest";
import {
  FIXTURE_INFO,
  fixtureSource,
  isTestUtilsError,
  publishRtmp,
  syntheticSource,
  TestServer,
  waitFor,
} from "../src/index.ts";

interface Received {
  readonly session: PublishSession;
  readonly samples: (MediaSample & { arrivedAt: number })[];
  readonly configs: MediaConfig[];
  readonly metadata: Record<string, unknown>[];
  end: { reason: PublishEndReason; error?: unknown } | undefined;
}

/** A bare RTMP ingest server (the real one) that records everything every publish delivers. */
async function recordingServer(): Promise<{
  url: (stream: string) => string;
  sessions: Received[];
  server: RtmpServer;
}> {
  const server = new RtmpServer();
  const sessions: Received[] = [];
  server.on("publish", (session) => {
    const received: Received = { session, samples: [], configs: [], metadata: [], end: undefined };
    sessions.push(received);
    session.on("sample", (sample) => received.samples.push({ ...sample, arrivedAt: performance.now() }));
    session.on("config", (config) => received.configs.push(config));
    session.on("metadata", (metadata) => received.metadata.push(metadata));
    session.on("end", (reason, error) => {
      received.end = { reason, error };
    });
  });
  const address = await server.listen(0, "127.0.0.1");
  return { url: (stream) => `rtmp://127.0.0.1:${address.port}/live/${stream}`, sessions, server };
}

const servers: RtmpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function recorder() {
  const r = await recordingServer();
  servers.push(r.server);
  return r;
}

describe("publishRtmp", () => {
  it("replays the fixture's timestamps, configuration and metadata exactly, and unpublishes cleanly", async () => {
    const rec = await recorder();
    const source = await fixtureSource();
    const publish = await publishRtmp(rec.url("fixture"), "fixture", { realtime: false });
    const outcome = await publish.done;
    expect(outcome.reason).toBe("completed");
    expect(outcome.error).toBeUndefined();
    await waitFor(() => rec.sessions[0]?.end, { message: "the server to see the publish end" });
    const got = rec.sessions[0]!;
    expect(got.end?.reason).toBe("unpublish");

    expect(outcome.counters).toMatchObject({
      tags: FIXTURE_INFO.videoFrames + FIXTURE_INFO.audioFrames,
      videoTags: FIXTURE_INFO.videoFrames,
      audioTags: FIXTURE_INFO.audioFrames,
      keyframes: FIXTURE_INFO.keyframes,
      headers: 3, // onMetaData + AVC and AAC sequence headers
      loops: 1,
      lastTimestampMs: source.summary.lastTimestampMs,
    });
    expect(outcome.counters.payloadBytes).toBeGreaterThan(source.summary.mediaBytes);
    expect(outcome.counters.bytesSent).toBeGreaterThan(outcome.counters.payloadBytes);

    const video = got.configs.find((c) => c.kind === "video");
    const audio = got.configs.find((c) => c.kind === "audio");
    expect(video).toMatchObject({ codecString: FIXTURE_INFO.videoCodec, width: 640, height: 360 });
    expect(audio).toMatchObject({ codecString: FIXTURE_INFO.audioCodec, sampleRate: 48000, channels: 2 });
    expect(got.metadata[0]).toMatchObject({ width: 640, height: 360, framerate: 30 });

    // Every media tag arrived as one sample, in order, at the file's timestamp.
    const expected = source.media.map((t) => [t.type === 9 ? "video" : "audio", t.timestamp]);
    expect(got.samples.map((s) => [s.kind, s.dts])).toEqual(expected);
    expect(got.samples.filter((s) => s.kind === "video" && s.keyframe)).toHaveLength(FIXTURE_INFO.keyframes);
    // The composition offsets (B-frames) survive: pts runs ahead of dts for some frames.
    expect(got.samples.some((s) => s.kind === "video" && s.pts > s.dts)).toBe(true);
  });

  it("loops with continuous timestamps and stops at durationMs", async () => {
    const rec = await recorder();
    const durationMs = 3 * FIXTURE_INFO.durationMs - 500;
    const publish = await publishRtmp(rec.url("loop"), "fixture", {
      realtime: false,
      loop: true,
      durationMs,
    });
    const outcome = await publish.done;
    expect(outcome.reason).toBe("completed");
    await waitFor(() => rec.sessions[0]?.end);
    const got = rec.sessions[0]!;
    expect(got.end?.reason).toBe("unpublish");
    expect(outcome.counters.loops).toBe(2); // two full passes, the third cut at durationMs
    const video = got.samples.filter((s) => s.kind === "video").map((s) => s.dts);
    const audio = got.samples.filter((s) => s.kind === "audio").map((s) => s.dts);
    // No reset, no jump, no overlap at the loop points: every step is one frame (33.3 ms video,
    // 21.3 ms audio), give or take the whole-ms rounding of the file and of the loop shift.
    const steps = (list: number[]) => list.slice(1).map((v, i) => v - list[i]!);
    expect(Math.min(...steps(video))).toBeGreaterThanOrEqual(32);
    expect(Math.max(...steps(video))).toBeLessThanOrEqual(35);
    expect(Math.min(...steps(audio))).toBeGreaterThanOrEqual(20);
    expect(Math.max(...steps(audio))).toBeLessThanOrEqual(23);
    expect(video.at(-1)!).toBeLessThan(durationMs);
    expect(video.at(-1)!).toBeGreaterThan(durationMs - 40);
    expect(got.samples.filter((s) => s.keyframe && s.kind === "video")).toHaveLength(
      outcome.counters.keyframes,
    );
    // The third pass is cut 500 ms before its end, after its last keyframe (at 3.2 s of 4.27 s).
    expect(outcome.counters.keyframes).toBe(3 * FIXTURE_INFO.keyframes);
  });

  it("paces by timestamps in real time", async () => {
    const rec = await recorder();
    const started = performance.now();
    const publish = await publishRtmp(rec.url("paced"), syntheticSource(), { durationMs: 1500 });
    const outcome = await publish.done;
    const elapsed = performance.now() - started;
    expect(outcome.reason).toBe("completed");
    expect(elapsed).toBeGreaterThan(1400);
    expect(elapsed).toBeLessThan(6000);
    await waitFor(() => rec.sessions[0]?.end);
    const samples = rec.sessions[0]!.samples;
    const t0 = samples[0]!.arrivedAt - samples[0]!.dts;
    // Nothing arrives noticeably before its time (generous bound for a loaded machine on the late side).
    for (const s of samples) expect(s.arrivedAt - t0).toBeGreaterThan(s.dts - 50);
    expect(samples.at(-1)!.dts).toBeGreaterThan(1400);
  });

  it("stops cleanly or abruptly mid-stream, and the server sees the difference", async () => {
    const rec = await recorder();
    const clean = await publishRtmp(rec.url("clean"), "fixture", { loop: true });
    const abrupt = await publishRtmp(rec.url("abrupt"), "fixture", { loop: true });
    await waitFor(() => rec.sessions.length === 2 && rec.sessions.every((s) => s.samples.length > 10), {
      message: "both publishes to deliver samples",
    });
    const [a, b] = await Promise.all([clean.stop(), abrupt.stop({ abrupt: true })]);
    expect(a.reason).toBe("stopped");
    expect(b.reason).toBe("destroyed");
    await waitFor(() => rec.sessions.every((s) => s.end), { message: "both sessions to end" });
    const byName = (name: string) => rec.sessions.find((s) => s.session.name === `live/${name}`)!;
    expect(byName("clean").end?.reason).toBe("unpublish");
    expect(byName("abrupt").end?.reason).toBe("disconnect");
    expect(clean.publisher.closed).toBe(true);
    expect(await clean.stop()).toBe(a); // idempotent: same outcome
  });

  it("reports a server-side kick as failed, with the reason", async () => {
    const rec = await recorder();
    const publish = await publishRtmp(rec.url("kicked"), "fixture", { loop: true });
    await waitFor(() => rec.sessions[0]?.samples.length);
    rec.sessions[0]!.session.close("kicked");
    const outcome = await publish.done;
    expect(outcome.reason).toBe("failed");
    expect(outcome.error).toBeInstanceOf(Error);
  });

  it("holds the publish open with keepOpen until stop()", async () => {
    const rec = await recorder();
    const publish = await publishRtmp(rec.url("open"), syntheticSource({ gops: 1 }), {
      realtime: false,
      keepOpen: true,
    });
    await publish.sent;
    await waitFor(() => rec.sessions[0]?.samples.length === publish.counters.tags);
    expect(rec.sessions[0]!.end).toBeUndefined();
    const outcome = await publish.stop();
    expect(outcome.reason).toBe("completed");
    await waitFor(() => rec.sessions[0]!.end);
    expect(rec.sessions[0]!.end?.reason).toBe("unpublish");
  });

  it("stops when its AbortSignal fires", async () => {
    const rec = await recorder();
    const controller = new AbortController();
    const publish = await publishRtmp(rec.url("signal"), "fixture", {
      loop: true,
      signal: controller.signal,
    });
    await waitFor(() => rec.sessions[0]?.samples.length);
    controller.abort();
    expect((await publish.done).reason).toBe("stopped");
  });

  it("rejects a refused publish with the server's status, and rejects bad options", async () => {
    await using server = await TestServer.start({ auth: { publishKey: "k1" } });
    const refused = publishRtmp(server.rtmpUrl("live", "cam"), "fixture");
    await expect(refused).rejects.toBeInstanceOf(PublishRejectedError);
    await expect(refused).rejects.toMatchObject({ status: "NetStream.Publish.Unauthorized" });
    const accepted = await publishRtmp(server.rtmpUrl("live", "cam", { key: "k1" }), "fixture", {
      durationMs: 200,
    });
    expect((await accepted.done).reason).toBe("completed");

    const bad = await publishRtmp(server.rtmpUrl("live", "cam"), "fixture", { durationMs: -1 }).catch(
      (e) => e,
    );
    expect(isTestUtilsError(bad, "TEST_UTILS_INVALID_OPTION")).toBe(true);
    const notFlv = await publishRtmp(server.rtmpUrl("live", "cam"), new Uint8Array(20)).catch((e) => e);
    expect(isTestUtilsError(notFlv, "TEST_UTILS_SOURCE_INVALID")).toBe(true);
  });

  it("publishes into a TestServer: the broadcast appears in the Origin with its tracks", async () => {
    await using server = await TestServer.start();
    const publish = await publishRtmp(server.rtmpUrl("live", "synthetic"), syntheticSource(), { loop: true });
    const broadcast = await waitFor(() => server.origin.consume().consume("live/synthetic"), {
      message: "live/synthetic in the Origin",
    });
    await waitFor(
      () => broadcast.trackNames().includes("video") && broadcast.trackNames().includes("audio"),
      {
        message: "video and audio tracks",
      },
    );
    expect(broadcast.trackNames()).toEqual(
      expect.arrayContaining(["catalog.json", "0.mp4", "1.mp4", "0.timing"]),
    );
    await publish.stop();
    await waitFor(() => server.origin.consume().consume("live/synthetic") === undefined, {
      message: "the broadcast to end after unpublish",
    });
  });
});
