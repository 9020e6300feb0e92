/**
 * What `publishRtmp` sends: an {@link FlvTagSource} is one loop of FLV tags split into what is
 * sent once (metadata, sequence headers), what is repeated (media) and what ends a clean publish
 * (end-of-sequence), plus the loop length that keeps timestamps continuous when it repeats.
 *
 * Sources come from FLV files ({@link flvSourceFromFile}), from any tag list
 * ({@link flvSourceFromTags}) or from the synthetic encoders ({@link syntheticSource}), and can
 * be written back as an FLV file ({@link writeFlvFile}) for other tools.
 */
import {
  AmfEcmaArray,
  type AmfObject,
  buildAacRawTag,
  buildAacSequenceHeaderTag,
  buildAvcEndOfSequenceTag,
  buildAvcNaluTag,
  buildAvcSequenceHeaderTag,
  decodeAmf0,
  encodeAmf0,
  parseAudioTag,
  parseFlvFile,
  parseVideoTag,
} from "@lvqr/ingest-rtmp";
import { TestUtilsError } from "../errors.ts";
import { type SyntheticAacOptions, syntheticAacConfig } from "./synthetic-aac.ts";
import {
  type SyntheticH264Options,
  syntheticH264Config,
  syntheticIdrSlice,
  syntheticPSlice,
} from "./synthetic-h264.ts";

/** FLV tag types. */
export const FlvTagType = { Audio: 8, Video: 9, Script: 18 } as const;

/** One FLV tag: its type, decode timestamp in ms and body (the RTMP message payload). */
export interface FlvTag {
  /** 8 audio, 9 video, 18 script data. */
  readonly type: number;
  /** Decode timestamp in milliseconds. */
  readonly timestamp: number;
  readonly body: Uint8Array;
}

/** Counts describing one loop of a source. */
export interface FlvSourceSummary {
  readonly videoFrames: number;
  readonly audioFrames: number;
  readonly keyframes: number;
  readonly firstTimestampMs: number;
  readonly lastTimestampMs: number;
  /** Bytes of all media tag bodies in one loop. */
  readonly mediaBytes: number;
}

/** One loop of FLV tags, split for publishing. Build with the functions of this module. */
export interface FlvTagSource {
  /** What this is, for messages ("fixture av.flv", "synthetic 320x180@30 + AAC 48 kHz"). */
  readonly description: string;
  /** `onMetaData` values, sent once before any media (`@setDataFrame`). */
  readonly metadata: AmfObject | undefined;
  /** Sequence headers sent once before the media (a header that changes mid-stream stays in `media`). */
  readonly headers: readonly FlvTag[];
  /** Media tags of one loop, in send order. */
  readonly media: readonly FlvTag[];
  /** End-of-sequence tags, sent after the last loop of a publish that runs to completion. */
  readonly trailer: readonly FlvTag[];
  /** Length of one loop in ms: repeat k is sent with timestamps shifted by `k * loopDurationMs`. */
  readonly loopDurationMs: number;
  readonly summary: FlvSourceSummary;
}

/** True for a video tag body that is a keyframe carrying coded data (legacy or Enhanced RTMP). */
export function isVideoKeyframe(body: Uint8Array): boolean {
  try {
    const packet = parseVideoTag(body);
    return packet.type === "frame" && packet.keyframe;
  } catch {
    return false;
  }
}

type TagRole = "metadata" | "header" | "media" | "trailer" | "skip";

function roleOf(tag: FlvTag): TagRole {
  if (tag.type === FlvTagType.Script) {
    try {
      return decodeAmf0(tag.body)[0] === "onMetaData" ? "metadata" : "skip";
    } catch {
      return "skip";
    }
  }
  try {
    const packet = tag.type === FlvTagType.Video ? parseVideoTag(tag.body) : parseAudioTag(tag.body);
    if (packet.type === "sequence-start") return "header";
    if (packet.type === "sequence-end") return "trailer";
    return "media";
  } catch {
    // Codecs the ingest does not know are still sent: a test may want to see them refused.
    return "media";
  }
}

function metadataOf(body: Uint8Array): AmfObject | undefined {
  const values = decodeAmf0(body);
  const value = values[1];
  if (value instanceof AmfEcmaArray) return value.entries;
  if (typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date)) {
    return value as AmfObject;
  }
  return undefined;
}

// The mean tag interval of a track times its tag count: for a constant-rate track this is the
// exact loop length even though every timestamp was rounded to whole milliseconds.
function trackSpan(timestamps: readonly number[]): number {
  if (timestamps.length === 0) return 0;
  if (timestamps.length === 1) return 1;
  const first = timestamps[0]!;
  const last = timestamps[timestamps.length - 1]!;
  return ((last - first) / (timestamps.length - 1)) * timestamps.length;
}

/** Options of {@link flvSourceFromTags}. */
export interface FlvSourceOptions {
  readonly description?: string;
  /** Override the loop length (default: from the media timestamps; see {@link FlvTagSource}). */
  readonly loopDurationMs?: number;
}

/**
 * Splits a tag list (file order) into a source. Sequence headers before the first media tag are
 * headers; later ones stay in the media (a mid-stream configuration change). `onMetaData` is
 * taken from the first script tag that carries it; other script tags are dropped.
 */
export function flvSourceFromTags(tags: readonly FlvTag[], options: FlvSourceOptions = {}): FlvTagSource {
  const description = options.description ?? "FLV tags";
  let metadata: AmfObject | undefined;
  const headers: FlvTag[] = [];
  const media: FlvTag[] = [];
  const trailer: FlvTag[] = [];
  const video: number[] = [];
  const audio: number[] = [];
  let keyframes = 0;
  let mediaBytes = 0;
  for (const tag of tags) {
    if (tag.type !== FlvTagType.Audio && tag.type !== FlvTagType.Video && tag.type !== FlvTagType.Script)
      continue;
    const role = roleOf(tag);
    if (role === "metadata") {
      if (metadata === undefined) {
        try {
          metadata = metadataOf(tag.body);
        } catch {
          // Unreadable metadata is left out rather than failing the publish.
        }
      }
    } else if (role === "header") {
      (media.length === 0 ? headers : media).push(tag);
    } else if (role === "trailer") {
      trailer.push(tag);
    } else if (role === "media") {
      media.push(tag);
      mediaBytes += tag.body.byteLength;
      if (tag.type === FlvTagType.Video) {
        video.push(tag.timestamp);
        if (isVideoKeyframe(tag.body)) keyframes++;
      } else {
        audio.push(tag.timestamp);
      }
    }
  }
  if (media.length === 0) {
    throw new TestUtilsError(
      "TEST_UTILS_SOURCE_INVALID",
      `${description} has no audio or video frames to publish`,
    );
  }
  const timestamps = media.map((t) => t.timestamp);
  const loopDurationMs = options.loopDurationMs ?? Math.max(trackSpan(video), trackSpan(audio), 1);
  if (!(loopDurationMs > 0) || !Number.isFinite(loopDurationMs)) {
    throw new TestUtilsError(
      "TEST_UTILS_INVALID_OPTION",
      `loopDurationMs ${loopDurationMs} must be a positive number of milliseconds`,
    );
  }
  return {
    description,
    metadata,
    headers,
    media,
    trailer,
    loopDurationMs,
    summary: {
      videoFrames: video.length,
      audioFrames: audio.length,
      keyframes,
      firstTimestampMs: Math.min(...timestamps),
      lastTimestampMs: Math.max(...timestamps),
      mediaBytes,
    },
  };
}

/** Reads an FLV file (bytes) into a source. Throws `TEST_UTILS_SOURCE_INVALID` for a file that is not FLV. */
export function flvSourceFromFile(bytes: Uint8Array, options: FlvSourceOptions = {}): FlvTagSource {
  let tags: FlvTag[];
  try {
    tags = parseFlvFile(bytes);
  } catch (error) {
    throw new TestUtilsError(
      "TEST_UTILS_SOURCE_INVALID",
      `${options.description ?? "the FLV file"} cannot be read: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return flvSourceFromTags(tags, { description: "FLV file", ...options });
}

/**
 * Writes tags as an FLV file (header with the audio/video flags, then tags with their
 * PreviousTagSize fields). With a source, writes `loops` repeats of it with continuous timestamps.
 */
export function writeFlvFile(input: FlvTagSource | readonly FlvTag[], loops = 1): Uint8Array {
  const tags: FlvTag[] = [];
  if (Array.isArray(input)) {
    tags.push(...(input as readonly FlvTag[]));
  } else {
    const source = input as FlvTagSource;
    if (source.metadata !== undefined) {
      tags.push({
        type: FlvTagType.Script,
        timestamp: 0,
        body: encodeAmf0(["onMetaData", new AmfEcmaArray(source.metadata)]),
      });
    }
    tags.push(...source.headers);
    for (let k = 0; k < loops; k++) {
      const shift = Math.round(k * source.loopDurationMs);
      for (const tag of source.media) tags.push({ ...tag, timestamp: tag.timestamp + shift });
    }
    const end = Math.round((loops - 1) * source.loopDurationMs) + source.summary.lastTimestampMs;
    for (const tag of source.trailer) tags.push({ ...tag, timestamp: end });
  }
  let size = 9 + 4;
  let flags = 0;
  for (const tag of tags) {
    if (tag.body.byteLength > 0xffffff) throw new RangeError("an FLV tag body is at most 16 MiB");
    size += 11 + tag.body.byteLength + 4;
    if (tag.type === FlvTagType.Audio) flags |= 4;
    if (tag.type === FlvTagType.Video) flags |= 1;
  }
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set([0x46, 0x4c, 0x56, 1, flags], 0);
  view.setUint32(5, 9);
  view.setUint32(9, 0); // PreviousTagSize0
  let o = 13;
  for (const tag of tags) {
    const ts = Math.max(0, Math.round(tag.timestamp));
    out[o] = tag.type;
    out[o + 1] = tag.body.byteLength >>> 16;
    out[o + 2] = (tag.body.byteLength >>> 8) & 0xff;
    out[o + 3] = tag.body.byteLength & 0xff;
    out[o + 4] = (ts >>> 16) & 0xff;
    out[o + 5] = (ts >>> 8) & 0xff;
    out[o + 6] = ts & 0xff;
    out[o + 7] = (ts >>> 24) & 0xff; // TimestampExtended
    // StreamID (3 bytes) stays 0.
    out.set(tag.body, o + 11);
    view.setUint32(o + 11 + tag.body.byteLength, 11 + tag.body.byteLength);
    o += 11 + tag.body.byteLength + 4;
  }
  return out;
}

/** Options of {@link syntheticSource}. */
export interface SyntheticSourceOptions extends SyntheticH264Options {
  /** Frames from one keyframe to the next (default 32: 1.07 s at 30 fps, a whole number of AAC frames at 48 kHz). */
  readonly gopFrames?: number;
  /** GOPs in one loop (default 2). */
  readonly gops?: number;
  /** Silent AAC-LC alongside the video (default true); `false` for video only, an object to configure it. */
  readonly audio?: boolean | SyntheticAacOptions;
  /** Leave the video out (audio only). */
  readonly video?: boolean;
}

/**
 * A synthetic A/V source: grey H.264 (decodable, a few bytes per frame; see `synthetic-h264.ts`)
 * and silent AAC-LC, interleaved by timestamp. One loop is `gops` GOPs; it loops seamlessly.
 */
export function syntheticSource(options: SyntheticSourceOptions = {}): FlvTagSource {
  const withVideo = options.video ?? true;
  const audioOption = options.audio ?? true;
  if (!withVideo && audioOption === false) {
    throw new TestUtilsError("TEST_UTILS_INVALID_OPTION", "a synthetic source needs video, audio or both");
  }
  const h264 = syntheticH264Config(options);
  const gopFrames = options.gopFrames ?? 32;
  const gops = options.gops ?? 2;
  if (!Number.isInteger(gopFrames) || gopFrames < 1 || gopFrames > 1000) {
    throw new TestUtilsError(
      "TEST_UTILS_INVALID_OPTION",
      `gopFrames ${gopFrames} must be an integer in 1..1000`,
    );
  }
  if (!Number.isInteger(gops) || gops < 1 || gops > 1000) {
    throw new TestUtilsError("TEST_UTILS_INVALID_OPTION", `gops ${gops} must be an integer in 1..1000`);
  }
  const frames = gopFrames * gops;
  const loopDurationMs = (frames * 1000) / h264.fps;
  const headers: FlvTag[] = [];
  const media: FlvTag[] = [];
  const trailer: FlvTag[] = [];
  const parts: string[] = [];
  if (withVideo) {
    headers.push({ type: FlvTagType.Video, timestamp: 0, body: buildAvcSequenceHeaderTag(h264.avcC) });
    for (let i = 0; i < frames; i++) {
      const inGop = i % gopFrames;
      const nal =
        inGop === 0 ? syntheticIdrSlice(h264, Math.floor(i / gopFrames)) : syntheticPSlice(h264, inGop);
      media.push({
        type: FlvTagType.Video,
        timestamp: Math.round((i * 1000) / h264.fps),
        body: buildAvcNaluTag({ keyframe: inGop === 0, nalus: [nal] }),
      });
    }
    trailer.push({ type: FlvTagType.Video, timestamp: 0, body: buildAvcEndOfSequenceTag() });
    parts.push(`H.264 ${h264.width}x${h264.height}@${h264.fps}`);
  }
  if (audioOption !== false) {
    const aac = syntheticAacConfig(audioOption === true ? {} : audioOption);
    headers.push({
      type: FlvTagType.Audio,
      timestamp: 0,
      body: buildAacSequenceHeaderTag(aac.audioSpecificConfig),
    });
    const body = buildAacRawTag(aac.silentFrame);
    const count = Math.round(loopDurationMs / aac.frameDurationMs);
    for (let i = 0; i < count; i++) {
      media.push({ type: FlvTagType.Audio, timestamp: Math.round(i * aac.frameDurationMs), body });
    }
    parts.push(`AAC ${aac.sampleRate / 1000} kHz ${aac.channels === 1 ? "mono" : "stereo"}`);
  }
  // Interleave by timestamp, video first on ties (what muxers do), keeping each track's order.
  media.sort((a, b) => a.timestamp - b.timestamp || b.type - a.type);
  return flvSourceFromTags([...headers, ...media, ...trailer], {
    description: `synthetic ${parts.join(" + ")}`,
    loopDurationMs,
  });
}
