/**
 * Publishing an MP4 file as a live broadcast: {@link demuxMp4} reads a (progressive or
 * fragmented) MP4 with mp4box into codec configurations and samples, and {@link publishMp4}
 * drives a {@link BroadcastPublisher} with them the way an RTMP ingest would: configurations
 * first, then samples in decode order with whole-millisecond timestamps, optionally paced in real
 * time and looped with continuing timestamps. Useful for test channels, demos and load tests.
 *
 * ```ts
 * const media = demuxMp4(await readFile("clip.mp4"));
 * const playback = publishMp4(origin, "live/clip", media, { realtime: true, loop: true });
 * // ... later
 * await playback.stop();
 * ```
 */

import type { OriginProducer } from "@lvqr/moq-lite";
import { createFile, MP4BoxBuffer } from "mp4box";
import type { AudioTrackConfig, VideoTrackConfig } from "../cmaf/track-config.ts";
import { PackagerError } from "../errors.ts";
import { BroadcastPublisher, type BroadcastPublisherOptions } from "./broadcast-publisher.ts";
import type { MediaSample } from "./media-sample.ts";

/** A sample of a demuxed file, with exact (fractional) ms relative to the presentation start. */
export interface Mp4Sample {
  readonly kind: "video" | "audio";
  /** Decode time in ms; B-frame reordering makes the first ones negative. */
  readonly dtsMs: number;
  /** Presentation time in ms (edit lists applied). */
  readonly ptsMs: number;
  readonly keyframe: boolean;
  /** Zero-copy view into the file bytes. */
  readonly data: Uint8Array;
}

/** A demuxed MP4: the first video and the first AAC track. */
export interface Mp4Media {
  /** The file bytes the samples point into. */
  readonly bytes: Uint8Array;
  /** Video configuration, with the file's media timescale. */
  readonly video?: VideoTrackConfig & { readonly timescale: number };
  /** Audio configuration, with the file's media timescale. */
  readonly audio?: AudioTrackConfig & { readonly timescale: number };
  /** All samples, interleaved in decode order (AAC priming frames before time 0 are left out). */
  readonly samples: readonly Mp4Sample[];
  /** Presentation duration in ms: the loop period. */
  readonly durationMs: number;
}

interface Mp4BoxRange {
  start: number;
  hdr_size: number;
  size: number;
}

interface Mp4BoxMovie {
  duration: number;
  timescale: number;
  tracks: { id: number; timescale: number; video?: { width: number; height: number } }[];
}

interface Mp4BoxSample {
  dts: number;
  cts: number;
  offset: number;
  size: number;
  is_sync: boolean;
}

/**
 * Reads an MP4 file's first H.264/HEVC/AV1 video track and first AAC track with mp4box. Edit
 * lists are applied (presentation starts at 0). The whole file is held in memory. Throws
 * PACKAGER_UNSUPPORTED when mp4box cannot read it or it has neither track.
 */
export function demuxMp4(bytes: Uint8Array): Mp4Media {
  const mp4 = createFile(true);
  let movie: Mp4BoxMovie | undefined;
  let failure: string | undefined;
  mp4.onReady = (info) => {
    movie = info as unknown as Mp4BoxMovie;
  };
  mp4.onError = (module: string, message: string) => {
    failure = `${module}: ${message}`;
  };
  try {
    mp4.appendBuffer(MP4BoxBuffer.fromArrayBuffer(bytes.slice().buffer, 0));
    mp4.flush();
  } catch (err) {
    throw new PackagerError("PACKAGER_UNSUPPORTED", `mp4box could not read the file: ${String(err)}`, {
      cause: err,
    });
  }
  if (!movie)
    throw new PackagerError(
      "PACKAGER_UNSUPPORTED",
      `mp4box found no movie in the file${failure ? ` (${failure})` : ""}`,
    );

  const samples: Mp4Sample[] = [];
  let video: Mp4Media["video"];
  let audio: Mp4Media["audio"];
  for (const track of movie.tracks) {
    // biome-ignore lint/suspicious/noExplicitAny: mp4box's box tree is loosely typed.
    const trak = mp4.getTrackById(track.id) as any;
    const entry = trak?.mdia?.minf?.stbl?.stsd?.entries?.[0];
    if (!entry) continue;
    const mediaTime: number = trak.edts?.elst?.entries?.[0]?.media_time ?? 0;
    const timescale = track.timescale;
    const raw = (box: Mp4BoxRange) => bytes.subarray(box.start + box.hdr_size, box.start + box.size);
    let kind: "video" | "audio";
    const videoBox = entry.avcC ?? entry.hvcC ?? entry.av1C;
    if (videoBox && !video) {
      kind = "video";
      video = {
        codec: entry.avcC ? "h264" : entry.hvcC ? "h265" : "av1",
        codecString: String(entry.getCodec?.() ?? ""),
        description: raw(videoBox),
        width: track.video?.width ?? entry.width,
        height: track.video?.height ?? entry.height,
        timescale,
      };
    } else if (entry.esds && !audio) {
      const asc: Uint8Array | undefined = entry.esds.esd?.descs?.[0]?.descs?.[0]?.data;
      if (!asc) continue;
      kind = "audio";
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
    for (const sample of trak.samples as Mp4BoxSample[]) {
      const ptsMs = ((sample.cts - mediaTime) * 1000) / timescale;
      if (kind === "audio" && ptsMs < 0) continue; // encoder priming, trimmed by the edit list
      if (sample.offset + sample.size > bytes.byteLength) {
        throw new PackagerError("PACKAGER_MALFORMED_BOX", `a ${kind} sample lies past the end of the file`);
      }
      samples.push({
        kind,
        dtsMs: ((sample.dts - mediaTime) * 1000) / timescale,
        ptsMs,
        keyframe: kind === "audio" || sample.is_sync,
        data: bytes.subarray(sample.offset, sample.offset + sample.size),
      });
    }
  }
  if (!video && !audio)
    throw new PackagerError("PACKAGER_UNSUPPORTED", "the file has no H.264, HEVC, AV1 or AAC track");
  // Decode order across tracks, video first on ties (an encoder sends the keyframe first).
  samples.sort((a, b) => a.dtsMs - b.dtsMs || (a.kind === b.kind ? 0 : a.kind === "video" ? -1 : 1));
  return {
    bytes,
    ...(video ? { video } : {}),
    ...(audio ? { audio } : {}),
    samples,
    durationMs: (movie.duration * 1000) / movie.timescale,
  };
}

/** Options of {@link publishMp4}. */
export interface PublishMp4Options {
  /** Pace samples by decode time against the wall clock (default false: as fast as possible). */
  readonly realtime?: boolean;
  /** Repeat the file with continuing timestamps until `stop()` or `durationMs` (default false). */
  readonly loop?: boolean;
  /** Stop once samples up to this decode time (ms from the presentation start) have been fed. */
  readonly durationMs?: number;
  /** Leave the broadcast open when the file ends (default false: close it, as an unpublish). */
  readonly keepOpen?: boolean;
  /** Options for the publisher. */
  readonly publisher?: BroadcastPublisherOptions;
  /** Whole-ms timestamps like RTMP (default true); false keeps exact fractional ms. */
  readonly wholeMilliseconds?: boolean;
}

/** A running file publication. */
export interface Mp4Playback {
  /** The publisher being driven. */
  readonly publisher: BroadcastPublisher;
  /** Resolves when feeding has ended (end of file, `durationMs`, or `stop()`); rejects on a publisher error. */
  readonly done: Promise<void>;
  /** Samples pushed so far. */
  fed(): number;
  /** Stops feeding and closes the broadcast (even with `keepOpen`); resolves when feeding has ended. */
  stop(): Promise<void>;
}

/** Where the first sample's decode time lands (ms), so B-frame reordering never needs negative times. */
const START_MS = 100;

/**
 * Publishes demuxed media into `origin` at `path`. In fast mode the samples' ingest times
 * simulate a real-time ingest that started now (so wall-clock derived values such as HLS
 * PROGRAM-DATE-TIME stay consistent); in real-time mode they are the wall clock at push time.
 */
export function publishMp4(
  origin: OriginProducer,
  path: string,
  media: Mp4Media,
  options: PublishMp4Options = {},
): Mp4Playback {
  const publisher = new BroadcastPublisher(origin, path, options.publisher);
  const round = options.wholeMilliseconds === false ? (ms: number) => ms : Math.round;
  if (media.video) publisher.setVideoConfig(media.video);
  if (media.audio) publisher.setAudioConfig(media.audio);
  const firstDts = media.samples[0]?.dtsMs ?? 0;
  const limitMs = options.durationMs ?? Number.POSITIVE_INFINITY;
  const period = media.durationMs;
  const wallStart = Date.now();
  let stopped = false;
  let fed = 0;
  let wake: (() => void) | undefined;

  const run = async (): Promise<void> => {
    for (let loop = 0; !stopped; loop++) {
      const loopOffset = loop * period;
      for (const sample of media.samples) {
        if (stopped) return;
        const mediaMs = sample.dtsMs + loopOffset;
        if (mediaMs >= limitMs) return;
        if (options.realtime) {
          const wait = wallStart + mediaMs - firstDts - Date.now();
          if (wait > 0) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              setTimeout(resolve, wait);
            });
            wake = undefined;
            if (stopped) return;
          }
        } else if (fed % 32 === 0) {
          // Let consumers run between bursts.
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (stopped) return;
        }
        const sampleToPush: MediaSample = {
          dts: round(START_MS + sample.dtsMs - firstDts + loopOffset),
          pts: round(START_MS + sample.ptsMs - firstDts + loopOffset),
          keyframe: sample.keyframe,
          data: sample.data,
          ingestTimeMs: options.realtime ? Date.now() : wallStart + mediaMs - firstDts,
        };
        if (sample.kind === "video") publisher.pushVideo(sampleToPush);
        else publisher.pushAudio(sampleToPush);
        fed++;
      }
      if (!options.loop || period <= 0) return;
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
