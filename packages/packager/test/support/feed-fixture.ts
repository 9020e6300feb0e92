/**
 * Test support: the committed fixture media, demuxed with mp4box, published into an Origin
 * through a {@link BroadcastPublisher} the way the RTMP ingest would (whole-millisecond
 * timestamps in decode order, configs first). A thin, cached layer over `demuxMp4` /
 * `publishMp4` from the package.
 *
 * ```ts
 * const origin = new OriginProducer();
 * const feed = feedFixture(origin, "live/test", { realtime: true, loop: true });
 * // ... watch origin.consume().consume("live/test")
 * await feed.stop(); // stops feeding and closes the broadcast
 * ```
 */

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { OriginProducer } from "@lvqr/moq-lite";
import {
  demuxMp4,
  type Mp4Media,
  type Mp4Playback,
  type Mp4Sample,
  type PublishMp4Options,
  publishMp4,
} from "../../src/publish/mp4-file.ts";

/** The committed H.264 + AAC fixture: 6.4 s, 640x360 @ 30 fps, 1 s GOP, AAC-LC 48 kHz stereo. */
export const AV_FIXTURE: string = fileURLToPath(new URL("../fixtures/av.mp4", import.meta.url));
/** The committed HEVC fixture: 1 s, 320x180 @ 30 fps, hvc1, no audio. */
export const HEVC_FIXTURE: string = fileURLToPath(new URL("../fixtures/hevc.mp4", import.meta.url));

/** A sample of a demuxed fixture, with times in exact (fractional) ms relative to the presentation start. */
export type FixtureSample = Mp4Sample;
/** A demuxed fixture. */
export type Fixture = Mp4Media;
/** Options of {@link feedFixture}: those of `publishMp4`, plus which file. */
export interface FeedFixtureOptions extends PublishMp4Options {
  /** The MP4 to feed (default {@link AV_FIXTURE}). */
  readonly file?: string;
}
/** A running feed. */
export type FixtureFeed = Mp4Playback;

const cache = new Map<string, Fixture>();

/** Demuxes an MP4 file with mp4box (cached per path). Edit lists are applied, as a player would. */
export function loadFixture(file: string = AV_FIXTURE): Fixture {
  let fixture = cache.get(file);
  if (!fixture) {
    fixture = demuxMp4(new Uint8Array(readFileSync(file)));
    cache.set(file, fixture);
  }
  return fixture;
}

/**
 * Publishes a fixture into `origin` at `path`: configs first, then samples in decode order with
 * whole-ms timestamps starting at 100 ms. In fast mode the ingest times simulate a real-time
 * ingest that started now; in real-time mode they are the wall clock at push time. The broadcast
 * is closed when feeding ends unless `keepOpen`.
 */
export function feedFixture(
  origin: OriginProducer,
  path: string,
  options: FeedFixtureOptions = {},
): FixtureFeed {
  const { file, ...publishOptions } = options;
  return publishMp4(origin, path, loadFixture(file ?? AV_FIXTURE), publishOptions);
}
