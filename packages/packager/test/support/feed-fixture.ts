/**
 * Test support: demuxes a fixture MP4 with mp4box and drives a {@link BroadcastPublisher} with it,
 * the way the RTMP ingest would (whole-millisecond timestamps in decode order, configs first).
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
import { createFile, MP4BoxBuffer } from "mp4box";
import type { AudioTrackConfig, VideoTrackConfig } from "../../src/cmaf/track-config.ts";
import { BroadcastPublisher, type BroadcastPublisherOptions } from "../../src/publish/broadcast-publisher.ts";
import type { MediaSample } from "../../src/publish/media-sample.ts";

/** The committed H.264 + AAC fixture: 6.4 s, 640x360 @ 30 fps, 1 s GOP, AAC-LC 48 kHz stereo. */
export const AV_FIXTURE: string = fileURLToPath(new URL("../fixtures/av.mp4", import.meta.url));
/** The committed HEVC fixture: 1 s, 320x180 @ 30 fps, hvc1, no audio. */
export const HEVC_FIXTURE: string = fileURLToPath(new URL("../fixtures/hevc.mp4", import.meta.url));

/** Where the first sample's decode time lands (ms), so B-frame reordering never needs negative times. */
const START_MS = 100;

/** A sample of a demuxed fixture, with times in exact (fractional) ms relative to the presentation start. */
export interface FixtureSample {
  readonly kind: "video" | "audio";
  readonly dtsMs: number;
  readonly ptsMs: number;
  readonly keyframe: boolean;
  readonly data: Uint8Array;
}

/** A demuxed fixture. */
export interface Fixture {
  /** The MP4 file bytes. */
  readonly bytes: Uint8Array;
  readonly video?: VideoTrackConfig & { readonly timescale: number };
  readonly audio?: AudioTrackConfig & { readonly timescale: number };
  /** All samples, interleaved in decode order (audio priming frames before time 0 are left out). */
  readonly samples: readonly FixtureSample[];
  /** Presentation duration in ms: the loop period. */
  readonly durationMs: number;
}

const cache = new Map<string, Fixture>();

interface Mp4BoxLike {
  start: number;
  hdr_size: number;
  size: number;
}

/** Demuxes an MP4 file with mp4box (cached per path). Edit lists are applied, as a player would. */
export function loadFixture(file: string = AV_FIXTURE): Fixture {
  const cached = cache.get(file);
  if (cached) return cached;
  const bytes = new Uint8Array(readFileSync(file));
  const mp4 = createFile(true);
  let info:
    | {
        duration: number;
        timescale: number;
        tracks: { id: number; timescale: number; video?: { width: number; height: number } }[];
      }
    | undefined;
  let error: string | undefined;
  mp4.onReady = (movie) => {
    info = movie as never;
  };
  mp4.onError = (module: string, message: string) => {
    error = `${module}: ${message}`;
  };
  mp4.appendBuffer(MP4BoxBuffer.fromArrayBuffer(bytes.slice().buffer, 0));
  mp4.flush();
  if (!info) throw new Error(`mp4box could not read ${file}${error ? ` (${error})` : ""}`);

  const samples: FixtureSample[] = [];
  let video: Fixture["video"];
  let audio: Fixture["audio"];
  for (const track of info.tracks) {
    // biome-ignore lint/suspicious/noExplicitAny: mp4box's box tree is loosely typed.
    const trak = mp4.getTrackById(track.id) as any;
    const entry = trak.mdia.minf.stbl.stsd.entries[0];
    const mediaTime: number = trak.edts?.elst?.entries?.[0]?.media_time ?? 0;
    const timescale = track.timescale;
    const raw = (box: Mp4BoxLike) => bytes.subarray(box.start + box.hdr_size, box.start + box.size);
    let kind: "video" | "audio";
    if (entry.avcC || entry.hvcC || entry.av1C) {
      kind = "video";
      const codec = entry.avcC ? "h264" : entry.hvcC ? "h265" : "av1";
      const description = raw(entry.avcC ?? entry.hvcC ?? entry.av1C);
      video = {
        codec,
        codecString: String(entry.getCodec?.() ?? ""),
        description,
        width: track.video?.width ?? entry.width,
        height: track.video?.height ?? entry.height,
        timescale,
      };
    } else if (entry.esds) {
      kind = "audio";
      const asc: Uint8Array = entry.esds.esd.descs[0].descs[0].data;
      audio = {
        codec: "aac",
        codecString: String(entry.getCodec?.() ?? "mp4a.40.2"),
        description: new Uint8Array(asc),
        sampleRate: entry.getSampleRate?.() ?? timescale,
        channels: entry.getChannelCount?.() ?? 2,
        timescale,
      };
    } else {
      continue;
    }
    for (const sample of trak.samples as {
      dts: number;
      cts: number;
      offset: number;
      size: number;
      is_sync: boolean;
    }[]) {
      const ptsMs = ((sample.cts - mediaTime) * 1000) / timescale;
      if (kind === "audio" && ptsMs < 0) continue; // encoder priming, trimmed by the edit list
      samples.push({
        kind,
        dtsMs: ((sample.dts - mediaTime) * 1000) / timescale,
        ptsMs,
        keyframe: kind === "audio" || sample.is_sync,
        data: bytes.subarray(sample.offset, sample.offset + sample.size),
      });
    }
  }
  // Decode order across tracks, video first on ties (as an encoder would send a keyframe first).
  samples.sort((a, b) => a.dtsMs - b.dtsMs || (a.kind === b.kind ? 0 : a.kind === "video" ? -1 : 1));
  const fixture: Fixture = {
    bytes,
    ...(video ? { video } : {}),
    ...(audio ? { audio } : {}),
    samples,
    durationMs: (info.duration * 1000) / info.timescale,
  };
  cache.set(file, fixture);
  return fixture;
}

/** Options of {@link feedFixture}. */
export interface FeedFixtureOptions {
  /** Pace samples by decode time against the wall clock (default false: as fast as possible). */
  readonly realtime?: boolean;
  /** Repeat the file with continuing timestamps until `stop()` or `durationMs` (default false). */
  readonly loop?: boolean;
  /** Stop once this much media time (ms) has been fed. */
  readonly durationMs?: number;
  /** Leave the broadcast open when feeding ends (default false: close it, as an unpublish). */
  readonly keepOpen?: boolean;
  /** The MP4 to feed (default {@link AV_FIXTURE}). */
  readonly file?: string;
  /** Options for the publisher. */
  readonly publisher?: BroadcastPublisherOptions;
  /** Whole-ms timestamps like RTMP (default true); false keeps exact fractional ms. */
  readonly wholeMilliseconds?: boolean;
}

/** A running feed. */
export interface FixtureFeed {
  /** The publisher being driven. */
  readonly publisher: BroadcastPublisher;
  /** Resolves when feeding has ended (end of file, `durationMs`, or `stop()`); rejects on a publisher error. */
  readonly done: Promise<void>;
  /** Samples pushed so far. */
  readonly fed: () => number;
  /** Stops feeding and closes the broadcast (even with `keepOpen`); resolves when feeding has ended. */
  stop(): Promise<void>;
}

/**
 * Publishes a fixture into `origin` at `path` through a {@link BroadcastPublisher}: configs
 * first, then samples in decode order with whole-ms timestamps starting at 100 ms. In fast mode
 * the ingest times simulate a real-time ingest that started now; in real-time mode they are the
 * wall clock at push time.
 */
export function feedFixture(
  origin: OriginProducer,
  path: string,
  options: FeedFixtureOptions = {},
): FixtureFeed {
  const fixture = loadFixture(options.file ?? AV_FIXTURE);
  const publisher = new BroadcastPublisher(origin, path, options.publisher);
  const round = options.wholeMilliseconds === false ? (ms: number) => ms : Math.round;
  if (fixture.video) publisher.setVideoConfig(fixture.video);
  if (fixture.audio) publisher.setAudioConfig(fixture.audio);
  const firstDts = fixture.samples[0]?.dtsMs ?? 0;
  const limitMs = options.durationMs ?? Number.POSITIVE_INFINITY;
  const wallStart = Date.now();
  let stopped = false;
  let fed = 0;
  let wake: (() => void) | undefined;

  const run = async (): Promise<void> => {
    for (let loop = 0; !stopped; loop++) {
      const loopOffset = loop * fixture.durationMs;
      for (const sample of fixture.samples) {
        if (stopped) return;
        // Media time since the presentation start; the first B-frame-delayed decode times are negative.
        const mediaMs = sample.dtsMs + loopOffset;
        if (mediaMs >= limitMs) return;
        if (options.realtime) {
          const due = wallStart + mediaMs - firstDts;
          const wait = due - Date.now();
          if (wait > 0) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              setTimeout(resolve, wait);
            });
            wake = undefined;
            if (stopped) return;
          }
        } else if (fed % 32 === 0) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (stopped) return;
        }
        const media: MediaSample = {
          dts: round(START_MS + sample.dtsMs - firstDts + loopOffset),
          pts: round(START_MS + sample.ptsMs - firstDts + loopOffset),
          keyframe: sample.keyframe,
          data: sample.data,
          ingestTimeMs: options.realtime ? Date.now() : wallStart + mediaMs - firstDts,
        };
        if (sample.kind === "video") publisher.pushVideo(media);
        else publisher.pushAudio(media);
        fed++;
      }
      if (!options.loop) return;
    }
  };

  const done = run().finally(() => {
    if (!options.keepOpen) publisher.close();
  });
  return {
    publisher,
    done,
    fed: () => fed,
    async stop() {
      stopped = true;
      wake?.();
      await done.catch(() => undefined);
      publisher.close();
    },
  };
}
