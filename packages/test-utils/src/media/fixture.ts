/**
 * The committed publish fixture: `fixtures/av.flv`, 4.27 s of H.264 High 640x360 @ 30 fps (a
 * keyframe every 32 frames, B-frames) and AAC-LC 48 kHz stereo, made by
 * `fixtures/make-fixture.sh`. It ships with the package, so publishing real encoded media needs
 * no ffmpeg; it is found relative to this module, which works from `src/` and `dist/` alike.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { TestUtilsError } from "../errors.ts";
import { type FlvTagSource, flvSourceFromFile } from "./flv-source.ts";

/** Where the fixture file is (a `file:` URL). */
export const FIXTURE_FLV_URL: URL = new URL("../../fixtures/av.flv", import.meta.url);

/** What the fixture holds; tests assert against these rather than repeating numbers. */
export const FIXTURE_INFO: {
  readonly width: 640;
  readonly height: 360;
  readonly fps: 30;
  readonly videoFrames: 128;
  readonly gopFrames: 32;
  readonly keyframes: 4;
  readonly audioFrames: 200;
  readonly sampleRate: 48000;
  readonly channels: 2;
  readonly videoCodec: "avc1.64001e";
  readonly audioCodec: "mp4a.40.2";
  /** One loop: 128 frames at 30 fps. */
  readonly durationMs: number;
} = {
  width: 640,
  height: 360,
  fps: 30,
  videoFrames: 128,
  gopFrames: 32,
  keyframes: 4,
  audioFrames: 200,
  sampleRate: 48000,
  channels: 2,
  videoCodec: "avc1.64001e",
  audioCodec: "mp4a.40.2",
  durationMs: (128 * 1000) / 30,
};

/** The fixture's path on disk. */
export function fixtureFlvPath(): string {
  return fileURLToPath(FIXTURE_FLV_URL);
}

let cached: Promise<Uint8Array> | undefined;

/** The fixture's bytes (read once per process). */
export function readFixtureFlv(): Promise<Uint8Array> {
  cached ??= readFile(FIXTURE_FLV_URL).then(
    (buffer) => new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength),
    (error: unknown) => {
      cached = undefined;
      throw new TestUtilsError(
        "TEST_UTILS_SOURCE_INVALID",
        `the publish fixture is missing at ${fixtureFlvPath()} (is "fixtures" in the package's files?)`,
        { cause: error },
      );
    },
  );
  return cached;
}

/** The fixture as a publishable source, looping every {@link FIXTURE_INFO}.durationMs. */
export async function fixtureSource(): Promise<FlvTagSource> {
  return flvSourceFromFile(await readFixtureFlv(), {
    description: "fixture av.flv",
    loopDurationMs: FIXTURE_INFO.durationMs,
  });
}
