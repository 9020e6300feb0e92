/**
 * FLV tag bodies as RTMP audio (type 8) and video (type 9) messages carry them: legacy AVC and
 * AAC (FLV specification v10.1 annex E), Enhanced RTMP video and audio (FourCC signalling,
 * packet types, ModEx), and builders for the bodies a publisher sends. Also a bounded reader of
 * FLV files, for replaying recorded streams.
 */
import { ByteReader } from "./byte-reader.ts";
import { lengthPrefixNalUnits } from "./codec/nal.ts";
import { RtmpError } from "./errors.ts";

/** Video codecs this ingest carries. */
export type VideoCodec = "h264" | "h265" | "av1";

/** A parsed video tag body. */
export type FlvVideoPacket =
  | { readonly type: "sequence-start"; readonly codec: VideoCodec; readonly record: Uint8Array }
  | {
      readonly type: "frame";
      readonly codec: VideoCodec;
      readonly keyframe: boolean;
      /** Composition time offset in ms (signed). */
      readonly compositionTime: number;
      readonly data: Uint8Array;
    }
  | { readonly type: "sequence-end"; readonly codec: VideoCodec }
  | { readonly type: "ignore"; readonly reason: string };

/** A parsed audio tag body. */
export type FlvAudioPacket =
  | { readonly type: "sequence-start"; readonly codec: "aac"; readonly record: Uint8Array }
  | { readonly type: "frame"; readonly codec: "aac"; readonly data: Uint8Array }
  | { readonly type: "sequence-end"; readonly codec: "aac" }
  | { readonly type: "ignore"; readonly reason: string };

const VIDEO_CODEC_NAMES: Record<number, string> = {
  1: "JPEG",
  2: "Sorenson H.263",
  3: "Screen video",
  4: "On2 VP6",
  5: "On2 VP6 with alpha",
  6: "Screen video v2",
  7: "AVC",
  12: "HEVC",
};

const AUDIO_FORMAT_NAMES: Record<number, string> = {
  0: "Linear PCM (platform endian)",
  1: "ADPCM",
  2: "MP3",
  3: "Linear PCM (little endian)",
  4: "Nellymoser 16 kHz",
  5: "Nellymoser 8 kHz",
  6: "Nellymoser",
  7: "G.711 A-law",
  8: "G.711 mu-law",
  10: "AAC",
  11: "Speex",
  14: "MP3 8 kHz",
  15: "Device-specific sound",
};

/** Human-readable name of a legacy FLV video codec id. */
export function videoCodecName(id: number): string {
  return VIDEO_CODEC_NAMES[id] ?? "unknown";
}

/** Human-readable name of a legacy FLV audio format. */
export function audioFormatName(id: number): string {
  return AUDIO_FORMAT_NAMES[id] ?? "unknown";
}

/** Enhanced RTMP video packet types. */
export const VideoPacketType = {
  SequenceStart: 0,
  CodedFrames: 1,
  SequenceEnd: 2,
  CodedFramesX: 3,
  Metadata: 4,
  Mpeg2TsSequenceStart: 5,
  Multitrack: 6,
  ModEx: 7,
} as const;

/** Enhanced RTMP audio packet types. */
export const AudioPacketType = {
  SequenceStart: 0,
  CodedFrames: 1,
  SequenceEnd: 2,
  MultichannelConfig: 4,
  Multitrack: 5,
  ModEx: 7,
} as const;

const FOURCC_VIDEO: Record<string, VideoCodec> = { avc1: "h264", hvc1: "h265", av01: "av1" };

function fourCcString(bytes: Uint8Array): string {
  return String.fromCharCode(bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!);
}

function printable(fourCc: string): string {
  return /^[\x20-\x7e]{4}$/.test(fourCc) ? `'${fourCc}'` : "(not printable)";
}

// ModEx wraps the real packet type after modifier data (Enhanced RTMP v2). The only modifier
// defined today is a nanosecond timestamp offset, which a millisecond timeline does not need.
function skipModEx(r: ByteReader, packetType: number, modEx: number): number {
  while (packetType === modEx) {
    let size = r.u8() + 1;
    if (size === 256) size = r.u16() + 1;
    r.skip(size);
    packetType = r.u8() & 0x0f;
  }
  return packetType;
}

/** Parses a video message body. Unsupported codecs throw `RTMP_UNSUPPORTED_CODEC`. */
export function parseVideoTag(body: Uint8Array): FlvVideoPacket {
  if (body.byteLength === 0) return { type: "ignore", reason: "empty video message" };
  const r = new ByteReader(body, "FLV_INVALID", "FLV video tag");
  const b0 = r.u8();
  if (b0 & 0x80) return parseEnhancedVideo(r, b0);
  const frameType = b0 >>> 4;
  const codecId = b0 & 0x0f;
  if (frameType === 5) return { type: "ignore", reason: "video info/command frame" };
  if (codecId !== 7 && codecId !== 12) {
    throw new RtmpError(
      "RTMP_UNSUPPORTED_CODEC",
      `video codec id ${codecId} (${videoCodecName(codecId)}) is not supported; publish H.264 (codec id 7), or H.265/AV1 with Enhanced RTMP`,
    );
  }
  const codec: VideoCodec = codecId === 7 ? "h264" : "h265";
  const packetType = r.u8();
  const compositionTime = r.i24();
  switch (packetType) {
    case 0:
      return { type: "sequence-start", codec, record: r.rest() };
    case 1:
      return {
        type: "frame",
        codec,
        keyframe: frameType === 1 || frameType === 4,
        compositionTime,
        data: r.rest(),
      };
    case 2:
      return { type: "sequence-end", codec };
    default:
      throw r.error(
        `${codec === "h264" ? "AVC" : "HEVC"} packet type ${packetType} is not defined (0, 1 or 2)`,
      );
  }
}

function parseEnhancedVideo(r: ByteReader, b0: number): FlvVideoPacket {
  const frameType = (b0 >>> 4) & 0x07;
  const packetType = skipModEx(r, b0 & 0x0f, VideoPacketType.ModEx);
  if (packetType === VideoPacketType.Multitrack) {
    throw new RtmpError(
      "RTMP_UNSUPPORTED_CODEC",
      "Enhanced RTMP multitrack video is not supported; publish a single video track",
    );
  }
  const fourCc = fourCcString(r.bytesView(4));
  if (frameType === 5 && packetType !== VideoPacketType.Metadata)
    return { type: "ignore", reason: "video command frame" };
  const codec = FOURCC_VIDEO[fourCc];
  if (codec === undefined) {
    throw new RtmpError(
      "RTMP_UNSUPPORTED_CODEC",
      `Enhanced RTMP video FourCC ${printable(fourCc)} is not supported; publish avc1 (H.264), hvc1 (H.265) or av01 (AV1)`,
    );
  }
  const keyframe = frameType === 1 || frameType === 4;
  switch (packetType) {
    case VideoPacketType.SequenceStart:
      return { type: "sequence-start", codec, record: r.rest() };
    case VideoPacketType.CodedFrames: {
      // AV1 has no composition offset; AVC and HEVC carry one here (CodedFramesX omits it).
      const compositionTime = codec === "av1" ? 0 : r.i24();
      return { type: "frame", codec, keyframe, compositionTime, data: r.rest() };
    }
    case VideoPacketType.CodedFramesX:
      return { type: "frame", codec, keyframe, compositionTime: 0, data: r.rest() };
    case VideoPacketType.SequenceEnd:
      return { type: "sequence-end", codec };
    case VideoPacketType.Metadata:
      return { type: "ignore", reason: "video metadata packet" };
    case VideoPacketType.Mpeg2TsSequenceStart:
      return { type: "ignore", reason: "MPEG-2 TS sequence start" };
    default:
      throw r.error(`Enhanced RTMP video packet type ${packetType} is reserved`);
  }
}

/** Parses an audio message body. Unsupported codecs throw `RTMP_UNSUPPORTED_CODEC`. */
export function parseAudioTag(body: Uint8Array): FlvAudioPacket {
  if (body.byteLength === 0) return { type: "ignore", reason: "empty audio message" };
  const r = new ByteReader(body, "FLV_INVALID", "FLV audio tag");
  const b0 = r.u8();
  const format = b0 >>> 4;
  if (format === 10) {
    const packetType = r.u8();
    if (packetType === 0) return { type: "sequence-start", codec: "aac", record: r.rest() };
    if (packetType === 1) return { type: "frame", codec: "aac", data: r.rest() };
    throw r.error(`AAC packet type ${packetType} is not defined (0 or 1)`);
  }
  if (format === 9) {
    const packetType = skipModEx(r, b0 & 0x0f, AudioPacketType.ModEx);
    if (packetType === AudioPacketType.Multitrack) {
      throw new RtmpError(
        "RTMP_UNSUPPORTED_CODEC",
        "Enhanced RTMP multitrack audio is not supported; publish a single audio track",
      );
    }
    const fourCc = fourCcString(r.bytesView(4));
    if (fourCc !== "mp4a") {
      throw new RtmpError(
        "RTMP_UNSUPPORTED_CODEC",
        `Enhanced RTMP audio FourCC ${printable(fourCc)} is not supported; publish AAC (mp4a)`,
      );
    }
    switch (packetType) {
      case AudioPacketType.SequenceStart:
        return { type: "sequence-start", codec: "aac", record: r.rest() };
      case AudioPacketType.CodedFrames:
        return { type: "frame", codec: "aac", data: r.rest() };
      case AudioPacketType.SequenceEnd:
        return { type: "sequence-end", codec: "aac" };
      case AudioPacketType.MultichannelConfig:
        return { type: "ignore", reason: "multichannel configuration" };
      default:
        throw r.error(`Enhanced RTMP audio packet type ${packetType} is reserved`);
    }
  }
  throw new RtmpError(
    "RTMP_UNSUPPORTED_CODEC",
    `audio format ${format} (${audioFormatName(format)}) is not supported; publish AAC (format 10)`,
  );
}

/** Legacy `videocodecid` values and FourCCs this ingest accepts in `onMetaData`. */
const SUPPORTED_VIDEO_IDS = new Set<string>(["7", "12", "avc1", "hvc1", "av01"]);
const SUPPORTED_AUDIO_IDS = new Set<string>(["10", "mp4a"]);

function codecIdKey(value: unknown): string | undefined {
  if (typeof value === "string") return value.trim();
  if (typeof value !== "number" || !Number.isFinite(value)) return undefined;
  // Enhanced RTMP puts a FourCC in the number (e.g. 0x68766331 for 'hvc1').
  if (value > 0xffff) {
    const v = value >>> 0;
    return String.fromCharCode(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  }
  return String(value);
}

/**
 * Checks the codecs an `onMetaData` object declares. Returns why they cannot be carried, or
 * undefined when they can (or when none are declared).
 */
export function metadataCodecProblem(metadata: Record<string, unknown>): string | undefined {
  const video = codecIdKey(metadata["videocodecid"]);
  if (video !== undefined && video !== "0" && video !== "" && !SUPPORTED_VIDEO_IDS.has(video)) {
    const n = Number(video);
    const name = Number.isInteger(n) ? `${video} (${videoCodecName(n)})` : printable(video);
    return `onMetaData declares video codec ${name}; this server accepts H.264, H.265 and AV1`;
  }
  const audio = codecIdKey(metadata["audiocodecid"]);
  if (audio !== undefined && audio !== "" && !SUPPORTED_AUDIO_IDS.has(audio)) {
    const n = Number(audio);
    const name = Number.isInteger(n) ? `${audio} (${audioFormatName(n)})` : printable(audio);
    return `onMetaData declares audio codec ${name}; this server accepts AAC`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Builders (for publishers and test kits).

/** Builds an avcC record from SPS and PPS NAL units (profile and level taken from the first SPS). */
export function buildAvcDecoderConfigurationRecord(
  sps: readonly Uint8Array[],
  pps: readonly Uint8Array[],
  nalLengthSize = 4,
): Uint8Array {
  const first = sps[0];
  if (first === undefined || first.byteLength < 4)
    throw new RangeError("an avcC record needs at least one SPS of 4+ bytes");
  if (pps.length === 0) throw new RangeError("an avcC record needs at least one PPS");
  if (sps.length > 31 || pps.length > 255) throw new RangeError("too many parameter sets for an avcC record");
  if (nalLengthSize !== 1 && nalLengthSize !== 2 && nalLengthSize !== 4)
    throw new RangeError("nalLengthSize must be 1, 2 or 4");
  let size = 7;
  for (const s of [...sps, ...pps]) {
    if (s.byteLength > 0xffff) throw new RangeError("parameter set longer than 65535 bytes");
    size += 2 + s.byteLength;
  }
  const out = new Uint8Array(size);
  out[0] = 1;
  out[1] = first[1]!;
  out[2] = first[2]!;
  out[3] = first[3]!;
  out[4] = 0xfc | (nalLengthSize - 1);
  out[5] = 0xe0 | sps.length;
  let o = 6;
  for (const s of sps) {
    out[o] = s.byteLength >>> 8;
    out[o + 1] = s.byteLength & 0xff;
    out.set(s, o + 2);
    o += 2 + s.byteLength;
  }
  out[o++] = pps.length;
  for (const p of pps) {
    out[o] = p.byteLength >>> 8;
    out[o + 1] = p.byteLength & 0xff;
    out.set(p, o + 2);
    o += 2 + p.byteLength;
  }
  return out;
}

/** Legacy AVC video tag body: sequence header (AVCPacketType 0) carrying an avcC record. */
export function buildAvcSequenceHeaderTag(avcC: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + avcC.byteLength);
  out[0] = 0x17;
  out.set(avcC, 5);
  return out;
}

/** Options of {@link buildAvcNaluTag}. */
export interface AvcNaluTagOptions {
  readonly keyframe: boolean;
  /** Composition time offset (pts - dts) in ms, signed 24-bit. */
  readonly compositionTimeMs?: number;
  /** Length-prefixed NAL units (AVCC), or pass `nalus` instead. */
  readonly data?: Uint8Array;
  /** Bare NAL units, joined with 4-byte length prefixes. */
  readonly nalus?: readonly Uint8Array[];
}

function writeI24(out: Uint8Array, o: number, value: number): void {
  if (!Number.isInteger(value) || value < -0x800000 || value > 0x7fffff)
    throw new RangeError(`composition time ${value} does not fit 24 bits`);
  const v = value < 0 ? value + 0x1000000 : value;
  out[o] = v >>> 16;
  out[o + 1] = (v >>> 8) & 0xff;
  out[o + 2] = v & 0xff;
}

/** Legacy AVC video tag body: NALU packet (AVCPacketType 1) with composition time. */
export function buildAvcNaluTag(options: AvcNaluTagOptions): Uint8Array {
  const data = options.data ?? lengthPrefixNalUnits(options.nalus ?? []);
  const out = new Uint8Array(5 + data.byteLength);
  out[0] = options.keyframe ? 0x17 : 0x27;
  out[1] = 1;
  writeI24(out, 2, options.compositionTimeMs ?? 0);
  out.set(data, 5);
  return out;
}

/** Legacy AVC video tag body: end of sequence (AVCPacketType 2). */
export function buildAvcEndOfSequenceTag(): Uint8Array {
  return Uint8Array.of(0x17, 2, 0, 0, 0);
}

// SoundFormat 10 (AAC), 44 kHz, 16-bit, stereo: the flags FLV requires for AAC whatever the ASC says.
const AAC_FLAGS = 0xaf;

/** AAC audio tag body: AudioSpecificConfig (AACPacketType 0). */
export function buildAacSequenceHeaderTag(audioSpecificConfig: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + audioSpecificConfig.byteLength);
  out[0] = AAC_FLAGS;
  out[1] = 0;
  out.set(audioSpecificConfig, 2);
  return out;
}

/** AAC audio tag body: one raw AAC frame (AACPacketType 1). */
export function buildAacRawTag(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + frame.byteLength);
  out[0] = AAC_FLAGS;
  out[1] = 1;
  out.set(frame, 2);
  return out;
}

/** Options of {@link buildEnhancedVideoTag}. */
export interface EnhancedVideoTagOptions {
  readonly fourCc: "avc1" | "hvc1" | "av01" | (string & {});
  readonly packetType: number;
  readonly keyframe?: boolean;
  /** Written for CodedFrames of avc1/hvc1. */
  readonly compositionTimeMs?: number;
  readonly data?: Uint8Array;
}

/** Enhanced RTMP video tag body (ExVideoTagHeader + body). */
export function buildEnhancedVideoTag(options: EnhancedVideoTagOptions): Uint8Array {
  if (options.fourCc.length !== 4) throw new RangeError("a FourCC has four characters");
  const data = options.data ?? new Uint8Array(0);
  const withCts = options.packetType === VideoPacketType.CodedFrames && options.fourCc !== "av01";
  const out = new Uint8Array(5 + (withCts ? 3 : 0) + data.byteLength);
  out[0] = 0x80 | ((options.keyframe ?? false) ? 0x10 : 0x20) | (options.packetType & 0x0f);
  for (let i = 0; i < 4; i++) out[1 + i] = options.fourCc.charCodeAt(i) & 0xff;
  let o = 5;
  if (withCts) {
    writeI24(out, o, options.compositionTimeMs ?? 0);
    o += 3;
  }
  out.set(data, o);
  return out;
}

// ---------------------------------------------------------------------------------------------
// FLV files.

/** One tag of an FLV file. */
export interface FlvFileTag {
  /** 8 audio, 9 video, 18 script data. */
  readonly type: number;
  /** Milliseconds (32-bit, with the extended byte). */
  readonly timestamp: number;
  /** The tag body (a view into the file). */
  readonly body: Uint8Array;
}

/** Reads every tag of an FLV file (header, then tags with their PreviousTagSize fields). */
export function parseFlvFile(bytes: Uint8Array): FlvFileTag[] {
  const r = new ByteReader(bytes, "FLV_INVALID", "FLV file");
  if (r.remaining < 9 || bytes[0] !== 0x46 || bytes[1] !== 0x4c || bytes[2] !== 0x56)
    throw r.error("not an FLV file (no 'FLV' signature)");
  r.skip(5);
  const headerSize = r.u32();
  if (headerSize < 9 || headerSize > bytes.byteLength)
    throw r.error(`FLV header size ${headerSize} is invalid`);
  r.offset = headerSize;
  const tags: FlvFileTag[] = [];
  while (r.remaining >= 4) {
    r.u32(); // PreviousTagSize
    if (r.remaining === 0) break;
    if (r.remaining < 11) throw r.error(`FLV file ends inside a tag header at offset ${r.offset}`);
    const type = r.u8() & 0x1f;
    const size = r.u24();
    const low = r.u24();
    const high = r.u8();
    r.u24(); // StreamID
    const timestamp = high * 0x1000000 + low;
    tags.push({ type, timestamp, body: r.bytesView(size) });
  }
  return tags;
}
