import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RtmpServer } from "../src/index.ts";
import {
  digestSamples,
  encodeArgs,
  publishWithFfmpeg,
  referenceSamples,
  requireFfmpeg,
  type SampleDigest,
} from "./helpers/ffmpeg.ts";
import { type Recording, recordAll, startServer, waitFor } from "./helpers/server.ts";

const servers: RtmpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
beforeAll(() => requireFfmpeg());

async function serve() {
  const s = await startServer();
  servers.push(s.server);
  return { ...s, sessions: recordAll(s.server) };
}

function summary(samples: readonly SampleDigest[]) {
  const video = samples.filter((s) => s.kind === "video");
  const audio = samples.filter((s) => s.kind === "audio");
  return {
    video: video.length,
    audio: audio.length,
    keyframes: video.filter((s) => s.keyframe).length,
    withCompositionOffset: video.filter((s) => s.pts !== s.dts).length,
  };
}

// Per kind, in order: the same frames with the same flags, times and bytes.
function expectSameSamples(rec: Recording, expected: SampleDigest[]): void {
  const got = digestSamples(rec.samples);
  for (const kind of ["video", "audio"] as const) {
    const g = got.filter((s) => s.kind === kind);
    const e = expected.filter((s) => s.kind === kind);
    const first = e.findIndex((x, i) => JSON.stringify(x) !== JSON.stringify(g[i]));
    // Name the first difference, so a failure says which frame and field differ.
    expect({
      kind,
      count: g.length,
      firstDifference: first < 0 ? null : { index: first, expected: e[first], received: g[first] },
    }).toEqual({
      kind,
      count: e.length,
      firstDifference: null,
    });
  }
  expect(rec.samples.every((s) => s.discontinuity === undefined)).toBe(true);
}

describe("ffmpeg publishing (libx264 + AAC from testsrc2 + sine)", () => {
  it("realtime (-re) for 10 s: every sample arrives with correct count, keyframe flags, DTS/PTS and bytes", async () => {
    const args = encodeArgs({ seconds: 10 });
    const expected = await referenceSamples(args);
    expect(summary(expected)).toMatchObject({ video: 300, keyframes: 5, withCompositionOffset: 0 });
    expect(summary(expected).audio).toBeGreaterThanOrEqual(468); // 10 s of 1024-sample frames at 48 kHz
    const { url, sessions } = await serve();
    const started = performance.now();
    await publishWithFfmpeg(args, url("live/realtime"), { realtime: true });
    expect(performance.now() - started).toBeGreaterThan(9000);
    await waitFor(() => sessions[0]?.ends.length === 1);
    const rec = sessions[0]!;
    expect(rec.ends).toEqual([["unpublish", undefined]]);
    expectSameSamples(rec, expected);
    expect(rec.configs.map((c) => c.codecString)).toEqual(["avc1.64001e", "mp4a.40.2"]);
    expect(rec.configs[0]).toMatchObject({ width: 640, height: 360 });
    expect(rec.configs[1]).toMatchObject({ sampleRate: 48000, channels: 1 });
    expect(rec.metadata[0]).toMatchObject({ width: 640, height: 360, videocodecid: 7, audiocodecid: 10 });
    // Ingest time is stamped as tags arrive, so in realtime it spans the publish.
    const first = rec.samples[0]!.ingestTimeMs;
    expect(rec.samples.at(-1)!.ingestTimeMs - first).toBeGreaterThan(8000);
  }, 60_000);

  it("with B-frames: non-zero composition times give pts != dts", async () => {
    const args = encodeArgs({ seconds: 4, bframes: 2 });
    const expected = await referenceSamples(args);
    expect(summary(expected).withCompositionOffset).toBeGreaterThan(50);
    const { url, sessions } = await serve();
    await publishWithFfmpeg(args, url("live/bframes"));
    await waitFor(() => sessions[0]?.ends.length === 1);
    expectSameSamples(sessions[0]!, expected);
    const video = sessions[0]!.samples.filter((s) => s.kind === "video");
    for (let i = 1; i < video.length; i++) expect(video[i]!.dts).toBeGreaterThanOrEqual(video[i - 1]!.dts);
  }, 60_000);

  it("video only and audio only", async () => {
    const { url, sessions } = await serve();
    const videoArgs = encodeArgs({ seconds: 3, audio: false });
    const audioArgs = encodeArgs({ seconds: 3, video: false });
    const [videoExpected, audioExpected] = await Promise.all([
      referenceSamples(videoArgs),
      referenceSamples(audioArgs),
    ]);
    await publishWithFfmpeg(videoArgs, url("live/video-only"));
    await publishWithFfmpeg(audioArgs, url("live/audio-only"));
    await waitFor(() => sessions.length === 2 && sessions.every((s) => s.ends.length === 1));
    expect(summary(videoExpected)).toMatchObject({ video: 90, audio: 0 });
    expect(summary(audioExpected).video).toBe(0);
    expectSameSamples(sessions[0]!, videoExpected);
    expectSameSamples(sessions[1]!, audioExpected);
    expect(sessions[0]!.configs.map((c) => c.kind)).toEqual(["video"]);
    expect(sessions[1]!.configs.map((c) => c.kind)).toEqual(["audio"]);
  }, 60_000);

  it("a stream starting at 20,000 s (timestamps past 0xFFFFFF: extended timestamps)", async () => {
    const args = encodeArgs({ seconds: 3, bframes: 2, offsetSeconds: 20000 });
    const expected = await referenceSamples(args);
    expect(expected[0]!.dts).toBeGreaterThan(0xffffff);
    const { url, sessions } = await serve();
    await publishWithFfmpeg(args, url("live/offset"));
    await waitFor(() => sessions[0]?.ends.length === 1);
    expectSameSamples(sessions[0]!, expected);
    expect(sessions[0]!.samples[0]!.dts).toBeGreaterThanOrEqual(19_999_900);
  }, 60_000);

  it("two simultaneous publishers", async () => {
    const argsA = encodeArgs({ seconds: 3, size: "320x240" });
    const argsB = encodeArgs({ seconds: 3, size: "480x270", bframes: 2 });
    const [expectedA, expectedB] = await Promise.all([referenceSamples(argsA), referenceSamples(argsB)]);
    const { server, url, sessions } = await serve();
    await Promise.all([
      publishWithFfmpeg(argsA, url("live/a"), { realtime: true }),
      publishWithFfmpeg(argsB, url("live/b"), { realtime: true }),
    ]);
    await waitFor(() => sessions.length === 2 && sessions.every((s) => s.ends.length === 1));
    const a = sessions.find((s) => s.session.name === "live/a")!;
    const b = sessions.find((s) => s.session.name === "live/b")!;
    expectSameSamples(a, expectedA);
    expectSameSamples(b, expectedB);
    expect(server.stats.publishesStarted).toBe(2);
  }, 60_000);

  it("publish, stop, publish again under the same name", async () => {
    const args = encodeArgs({ seconds: 2 });
    const expected = await referenceSamples(args);
    const { server, url, sessions } = await serve();
    await publishWithFfmpeg(args, url("live/same"));
    await waitFor(() => sessions[0]?.ends.length === 1);
    await publishWithFfmpeg(args, url("live/same"));
    await waitFor(() => sessions[1]?.ends.length === 1);
    expect(sessions.map((s) => s.session.name)).toEqual(["live/same", "live/same"]);
    expectSameSamples(sessions[0]!, expected);
    expectSameSamples(sessions[1]!, expected);
    expect(server.stats.publishing).toBe(0);
  }, 60_000);
});
