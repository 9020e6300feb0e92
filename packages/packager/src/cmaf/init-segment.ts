/**
 * CMAF init segments (ftyp + moov with one track and mvex/trex) for H.264 (avc1/avcC), HEVC
 * (hvc1/hvcC), AV1 (av01/av1C) and AAC (mp4a/esds), and a bounded parser that reads any
 * fragmented-MP4 init segment back into the facts an egress needs.
 *
 * The boxes are written by hand rather than with mp4box: mp4box 2.4.1's `addTrack` cannot
 * describe an AAC track (no AudioSpecificConfig option, and its esds box has no field writer, so
 * the descriptors would be hand-built anyway), writes `mvex` before `mvhd`, adds an `elng` box
 * defaulting to "fr-FR", and drops the reserved bits of hvcC's min_spatial_segmentation field.
 * It is also 4-7x slower (`bench/cmaf.bench.ts`). The tests check the result with ffprobe,
 * mp4box's parser and the official hang CMAF decoder.
 */

import { PackagerError } from "../errors.ts";
import { type EsDescriptorInfo, parseAudioSpecificConfig, parseEsDescriptor } from "./aac-config.ts";
import { parseAv1CodecConfig } from "./av1-config.ts";
import { parseAvcDecoderConfig } from "./avc-config.ts";
import { type BoxRange, FieldCursor, findBox, listBoxes, readBoxHeader, requireBox } from "./box-reader.ts";
import {
  type BoxField,
  box,
  bytes,
  cstring,
  fourcc,
  fullBox,
  i16,
  i32,
  u8,
  u16,
  u24,
  u32,
  writeBoxes,
  zeros,
} from "./box-writer.ts";
import { hevcCodecString, parseHevcDecoderConfig } from "./hevc-config.ts";
import { type AudioTrackConfig, isAudioTrackConfig, type VideoTrackConfig } from "./track-config.ts";

/** Media timescale of every video track the packager writes (the MPEG-TS / RTP convention). */
export const VIDEO_TIMESCALE = 90000;

/** Codec facts derived from a track configuration, validated against its description record. */
export type ResolvedTrack = ResolvedVideoTrack | ResolvedAudioTrack;

/** A validated video configuration. */
export interface ResolvedVideoTrack {
  readonly kind: "video";
  readonly codec: "h264" | "h265" | "av1";
  /** Sample entry type: `avc1`, `hvc1` or `av01`. */
  readonly sampleEntry: string;
  /** RFC 6381 codec string derived from the description record. */
  readonly codecString: string;
  readonly description: Uint8Array;
  readonly timescale: number;
  readonly width: number;
  readonly height: number;
}

/** A validated audio configuration. */
export interface ResolvedAudioTrack {
  readonly kind: "audio";
  readonly codec: "aac";
  readonly sampleEntry: "mp4a";
  readonly codecString: string;
  readonly description: Uint8Array;
  /** The core sampling rate, which is also the timescale. */
  readonly timescale: number;
  readonly sampleRate: number;
  readonly channels: number;
  /** Samples per AAC frame (1024, or 960). */
  readonly samplesPerFrame: number;
}

/** Checks a configuration's description record and derives codec string, timescale and sizes. */
export function resolveTrackConfig(config: VideoTrackConfig | AudioTrackConfig): ResolvedTrack {
  if (isAudioTrackConfig(config)) {
    const asc = parseAudioSpecificConfig(config.description);
    const channels = asc.channels || config.channels;
    if (!Number.isInteger(channels) || channels < 1 || channels > 255) {
      throw new PackagerError("PACKAGER_INVALID_CONFIG", `AAC channel count ${channels} is invalid (1..255)`);
    }
    return {
      kind: "audio",
      codec: "aac",
      sampleEntry: "mp4a",
      codecString: asc.codecString,
      description: config.description,
      timescale: asc.sampleRate,
      sampleRate: asc.sampleRate,
      channels,
      samplesPerFrame: asc.samplesPerFrame,
    };
  }
  for (const [name, value] of [
    ["width", config.width],
    ["height", config.height],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
      throw new PackagerError("PACKAGER_INVALID_CONFIG", `video ${name} ${value} is invalid (0..65535)`);
    }
  }
  let sampleEntry: string;
  let codecString: string;
  switch (config.codec) {
    case "h264":
      sampleEntry = "avc1";
      codecString = parseAvcDecoderConfig(config.description).codecString;
      break;
    case "h265":
      sampleEntry = "hvc1";
      codecString = parseHevcDecoderConfig(config.description).codecString;
      break;
    case "av1":
      sampleEntry = "av01";
      codecString = parseAv1CodecConfig(config.description).codecString;
      break;
    default:
      throw new PackagerError(
        "PACKAGER_UNSUPPORTED",
        `video codec ${String((config as { codec: unknown }).codec)} is not supported`,
      );
  }
  return {
    kind: "video",
    codec: config.codec,
    sampleEntry,
    codecString,
    description: config.description,
    timescale: VIDEO_TIMESCALE,
    width: config.width,
    height: config.height,
  };
}

/** Options of {@link buildInitSegment}. */
export interface InitSegmentOptions {
  /** track_ID in tkhd and trex, and the one fragments must carry in tfhd (default 1). */
  readonly trackId?: number;
}

const UNITY_MATRIX = [0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000];

function matrix(): BoxField[] {
  return UNITY_MATRIX.map((value) => i32(value));
}

/** "und" packed as three 5-bit letters (ISO 639-2/T minus 0x60). */
const LANGUAGE_UND =
  (("u".charCodeAt(0) - 0x60) << 10) | (("n".charCodeAt(0) - 0x60) << 5) | ("d".charCodeAt(0) - 0x60);

/** MPEG-4 descriptor: tag, then a length in 7-bit groups with continuation bits. */
function descriptor(tag: number, ...body: BoxField[]): BoxField[] {
  let length = 0;
  for (const field of body) length += field.byteLength;
  const lengthBytes: number[] = [length & 0x7f];
  for (let rest = length >>> 7; rest > 0; rest >>>= 7) lengthBytes.unshift((rest & 0x7f) | 0x80);
  return [u8(tag), ...lengthBytes.map((b) => u8(b)), ...body];
}

function flatLength(fields: BoxField[]): number {
  let length = 0;
  for (const field of fields) length += field.byteLength;
  return length;
}

function esdsBox(asc: Uint8Array): BoxField {
  const decoderSpecificInfo = descriptor(0x05, bytes(asc));
  const decoderConfig = descriptor(
    0x04,
    u8(0x40), // objectTypeIndication: MPEG-4 Audio (ISO/IEC 14496-3)
    u8(0x15), // streamType 5 (audio) << 2, upStream 0, reserved 1
    u24(0), // bufferSizeDB: unknown
    u32(0), // maxBitrate: unknown
    u32(0), // avgBitrate: unknown (variable)
    ...decoderSpecificInfo,
  );
  const slConfig = descriptor(0x06, u8(0x02)); // predefined SL config 2 (MP4 files)
  const esDescriptor = descriptor(
    0x03,
    u16(0), // ES_ID: 0 in MP4 files
    u8(0), // no streamDependence, URL or OCR stream
    ...decoderConfig,
    ...slConfig,
  );
  if (flatLength(esDescriptor) > 0xffff)
    throw new PackagerError("PACKAGER_INVALID_CONFIG", "AudioSpecificConfig is too large");
  return fullBox("esds", 0, 0, ...esDescriptor);
}

function sampleEntryBox(track: ResolvedTrack): BoxField {
  if (track.kind === "audio") {
    return box(
      "mp4a",
      zeros(6), // reserved
      u16(1), // data_reference_index
      zeros(8), // reserved (version/revision/vendor in QuickTime terms)
      u16(track.channels), // channelcount
      u16(16), // samplesize
      u16(0), // pre_defined
      u16(0), // reserved
      // samplerate is 16.16; rates above 65535 Hz do not fit, and decoders read the ASC anyway.
      u32(track.sampleRate <= 0xffff ? track.sampleRate * 0x10000 : 0),
      esdsBox(track.description),
    );
  }
  const configBox = track.codec === "h264" ? "avcC" : track.codec === "h265" ? "hvcC" : "av1C";
  const compressorName = new Uint8Array(32); // Pascal string: length byte then name, zero padded
  return box(
    track.sampleEntry,
    zeros(6), // reserved
    u16(1), // data_reference_index
    u16(0), // pre_defined
    u16(0), // reserved
    zeros(12), // pre_defined
    u16(track.width),
    u16(track.height),
    u32(0x00480000), // horizresolution 72 dpi
    u32(0x00480000), // vertresolution 72 dpi
    u32(0), // reserved
    u16(1), // frame_count
    bytes(compressorName),
    u16(0x0018), // depth: colour, no alpha
    i16(-1), // pre_defined
    box(configBox, bytes(track.description)),
  );
}

/**
 * Writes a CMAF init segment (ftyp + moov) for one track. Video uses timescale 90000; audio uses
 * the AAC core sampling rate. Throws PACKAGER_INVALID_CONFIG when the description record is bad.
 */
export function buildInitSegment(
  config: VideoTrackConfig | AudioTrackConfig,
  options: InitSegmentOptions = {},
): Uint8Array {
  return writeInitSegment(resolveTrackConfig(config), options);
}

/** Writes the init segment of an already resolved track (see {@link resolveTrackConfig}). */
export function writeInitSegment(track: ResolvedTrack, options: InitSegmentOptions = {}): Uint8Array {
  const trackId = options.trackId ?? 1;
  if (!Number.isInteger(trackId) || trackId < 1 || trackId > 0xfffffffe) {
    throw new RangeError(`track ID ${trackId} is invalid (1..2^32-2)`);
  }
  const video = track.kind === "video";
  const ftyp = box(
    "ftyp",
    fourcc("iso6"),
    u32(0),
    fourcc("iso6"),
    fourcc("cmfc"),
    fourcc("isom"),
    fourcc("mp41"),
  );
  const mvhd = fullBox(
    "mvhd",
    0,
    0,
    u32(0), // creation_time
    u32(0), // modification_time
    u32(track.timescale),
    u32(0), // duration: unknown (fragmented)
    u32(0x00010000), // rate 1.0
    u16(0x0100), // volume 1.0
    zeros(10), // reserved
    ...matrix(),
    zeros(24), // pre_defined
    u32(trackId + 1), // next_track_ID
  );
  const tkhd = fullBox(
    "tkhd",
    0,
    0x000003, // track_enabled | track_in_movie
    u32(0), // creation_time
    u32(0), // modification_time
    u32(trackId),
    u32(0), // reserved
    u32(0), // duration
    zeros(8), // reserved
    u16(0), // layer
    u16(0), // alternate_group
    u16(video ? 0 : 0x0100), // volume
    u16(0), // reserved
    ...matrix(),
    u32(video ? track.width * 0x10000 : 0), // width 16.16
    u32(video ? track.height * 0x10000 : 0), // height 16.16
  );
  const mdhd = fullBox(
    "mdhd",
    0,
    0,
    u32(0), // creation_time
    u32(0), // modification_time
    u32(track.timescale),
    u32(0), // duration
    u16(LANGUAGE_UND),
    u16(0), // pre_defined
  );
  const hdlr = fullBox(
    "hdlr",
    0,
    0,
    u32(0), // pre_defined
    fourcc(video ? "vide" : "soun"),
    zeros(12), // reserved
    cstring(video ? "LVQR Video" : "LVQR Audio"),
  );
  const mediaHeader = video
    ? fullBox("vmhd", 0, 1, u16(0), zeros(6)) // graphicsmode copy, opcolor 0
    : fullBox("smhd", 0, 0, i16(0), u16(0)); // balance centre
  const dinf = box("dinf", fullBox("dref", 0, 0, u32(1), fullBox("url ", 0, 1)));
  const stbl = box(
    "stbl",
    fullBox("stsd", 0, 0, u32(1), sampleEntryBox(track)),
    fullBox("stts", 0, 0, u32(0)),
    fullBox("stsc", 0, 0, u32(0)),
    fullBox("stsz", 0, 0, u32(0), u32(0)),
    fullBox("stco", 0, 0, u32(0)),
  );
  const trak = box("trak", tkhd, box("mdia", mdhd, hdlr, box("minf", mediaHeader, dinf, stbl)));
  const mvex = box(
    "mvex",
    fullBox(
      "trex",
      0,
      0,
      u32(trackId),
      u32(1), // default_sample_description_index
      u32(0), // default_sample_duration (every trun carries durations)
      u32(0), // default_sample_size
      u32(0), // default_sample_flags
    ),
  );
  return writeBoxes(ftyp, box("moov", mvhd, trak, mvex));
}

/** Per-sample defaults from `trex`, which fragments fall back to. */
export interface TrackFragmentDefaults {
  readonly sampleDescriptionIndex: number;
  readonly sampleDuration: number;
  readonly sampleSize: number;
  readonly sampleFlags: number;
}

/** What an init segment says about its (first audio or video) track. */
export interface InitSegmentInfo {
  readonly trackId: number;
  readonly timescale: number;
  readonly kind: "video" | "audio";
  /** Sample entry type: `avc1`, `avc3`, `hvc1`, `hev1`, `av01`, `mp4a`, `Opus`. */
  readonly sampleEntry: string;
  /** RFC 6381 codec string derived from the configuration record. */
  readonly codecString: string;
  /** The configuration record (avcC / hvcC / av1C payload, or the AudioSpecificConfig), zero-copy. */
  readonly description?: Uint8Array;
  readonly width?: number;
  readonly height?: number;
  readonly sampleRate?: number;
  readonly channels?: number;
  /** trex defaults for this track, when the init has an mvex. */
  readonly defaults?: TrackFragmentDefaults;
}

function handlerOf(bytes: Uint8Array, mdia: BoxRange[]): string {
  const hdlr = requireBox(mdia, "hdlr", "mdia");
  const cursor = FieldCursor.of(bytes, hdlr);
  cursor.fullHeader();
  cursor.skip(4, "pre_defined");
  const handler = cursor.take(4, "handler_type");
  return String.fromCharCode(...handler);
}

function parseVisualEntry(
  bytes: Uint8Array,
  entry: BoxRange,
): Partial<InitSegmentInfo> & { codecString: string } {
  const cursor = FieldCursor.of(bytes, entry);
  cursor.skip(24, "sample entry header and pre_defined fields");
  const width = cursor.u16("width");
  const height = cursor.u16("height");
  cursor.skip(50, "resolution, frame_count, compressorname, depth, pre_defined");
  const children = listBoxes(bytes, cursor.offset, entry.end, entry.type);
  const configOf = (type: string): Uint8Array => {
    const config = requireBox(children, type, entry.type);
    return bytes.subarray(config.payload, config.end);
  };
  switch (entry.type) {
    case "avc1":
    case "avc3": {
      const description = configOf("avcC");
      const codec = parseAvcDecoderConfig(description).codecString.replace("avc1", entry.type);
      return { codecString: codec, description, width, height };
    }
    case "hvc1":
    case "hev1": {
      const description = configOf("hvcC");
      return {
        codecString: hevcCodecString(parseHevcDecoderConfig(description), entry.type),
        description,
        width,
        height,
      };
    }
    case "av01": {
      const description = configOf("av1C");
      return { codecString: parseAv1CodecConfig(description).codecString, description, width, height };
    }
    default:
      throw new PackagerError(
        "PACKAGER_UNSUPPORTED",
        `video sample entry ${JSON.stringify(entry.type)} is not supported`,
      );
  }
}

function parseAudioEntry(
  bytes: Uint8Array,
  entry: BoxRange,
): Partial<InitSegmentInfo> & { codecString: string } {
  const cursor = FieldCursor.of(bytes, entry);
  cursor.skip(8, "sample entry header");
  const soundVersion = cursor.u16("sound version");
  cursor.skip(6, "revision/vendor");
  let channels = cursor.u16("channelcount");
  cursor.skip(6, "samplesize/pre_defined/reserved");
  let sampleRate = cursor.u32("samplerate") >>> 16;
  // QuickTime sound sample description versions 1 and 2 append fields before the child boxes.
  if (soundVersion === 1) cursor.skip(16, "QuickTime v1 sound fields");
  else if (soundVersion === 2) cursor.skip(36, "QuickTime v2 sound fields");
  const children = listBoxes(bytes, cursor.offset, entry.end, entry.type);
  if (entry.type === "mp4a") {
    const esds = findBox(children, "esds") ?? findWaveEsds(bytes, children);
    if (!esds) throw new PackagerError("PACKAGER_MISSING_BOX", "mp4a sample entry has no esds box");
    if (esds.end - esds.payload < 4)
      throw new PackagerError("PACKAGER_MALFORMED_BOX", "esds is shorter than its full-box header");
    const info: EsDescriptorInfo = parseEsDescriptor(bytes, esds.payload + 4, esds.end);
    if (info.objectTypeIndication !== 0x40) {
      // MPEG-2 AAC, MP3 and friends: the codec string names the objectTypeIndication.
      return { codecString: `mp4a.${info.objectTypeIndication.toString(16)}`, sampleRate, channels };
    }
    if (!info.decoderSpecificInfo) {
      throw new PackagerError(
        "PACKAGER_MISSING_BOX",
        "esds for MPEG-4 Audio has no DecoderSpecificInfo (AudioSpecificConfig)",
      );
    }
    const asc = parseAudioSpecificConfig(info.decoderSpecificInfo);
    sampleRate = asc.sampleRate;
    channels = asc.channels || channels;
    return { codecString: asc.codecString, description: info.decoderSpecificInfo, sampleRate, channels };
  }
  if (entry.type === "Opus") {
    const dops = requireBox(children, "dOps", "Opus");
    const fields = FieldCursor.of(bytes, dops);
    fields.skip(1, "Version");
    channels = fields.u8("OutputChannelCount");
    fields.skip(2, "PreSkip");
    sampleRate = fields.u32("InputSampleRate") || 48000;
    return { codecString: "opus", description: bytes.subarray(dops.payload, dops.end), sampleRate, channels };
  }
  throw new PackagerError(
    "PACKAGER_UNSUPPORTED",
    `audio sample entry ${JSON.stringify(entry.type)} is not supported`,
  );
}

/** QuickTime files may nest esds inside a `wave` box. */
function findWaveEsds(bytes: Uint8Array, children: BoxRange[]): BoxRange | undefined {
  const wave = findBox(children, "wave");
  return wave ? findBox(listBoxes(bytes, wave.payload, wave.end, "wave"), "esds") : undefined;
}

function parseTrex(bytes: Uint8Array, moov: BoxRange[], trackId: number): TrackFragmentDefaults | undefined {
  const mvex = findBox(moov, "mvex");
  if (!mvex) return undefined;
  for (const child of listBoxes(bytes, mvex.payload, mvex.end, "mvex")) {
    if (child.type !== "trex") continue;
    const cursor = FieldCursor.of(bytes, child);
    cursor.fullHeader();
    if (cursor.u32("track_ID") !== trackId) continue;
    return {
      sampleDescriptionIndex: cursor.u32("default_sample_description_index"),
      sampleDuration: cursor.u32("default_sample_duration"),
      sampleSize: cursor.u32("default_sample_size"),
      sampleFlags: cursor.u32("default_sample_flags"),
    };
  }
  return undefined;
}

/**
 * Reads an init segment (ftyp? + moov, other top-level boxes ignored) and describes its first
 * video or audio track. Throws only {@link PackagerError}.
 */
export function parseInitSegment(bytes: Uint8Array): InitSegmentInfo {
  const top = listBoxes(bytes, 0, bytes.byteLength, "init segment");
  const moovRange = requireBox(top, "moov", "init segment");
  const moov = listBoxes(bytes, moovRange.payload, moovRange.end, "moov");
  for (const trakRange of moov) {
    if (trakRange.type !== "trak") continue;
    const trak = listBoxes(bytes, trakRange.payload, trakRange.end, "trak");
    const mdiaRange = requireBox(trak, "mdia", "trak");
    const mdia = listBoxes(bytes, mdiaRange.payload, mdiaRange.end, "mdia");
    const handler = handlerOf(bytes, mdia);
    if (handler !== "vide" && handler !== "soun") continue;

    const tkhd = FieldCursor.of(bytes, requireBox(trak, "tkhd", "trak"));
    const { version: tkhdVersion } = tkhd.fullHeader();
    tkhd.skip(tkhdVersion === 1 ? 16 : 8, "creation/modification time");
    const trackId = tkhd.u32("track_ID");

    const mdhd = FieldCursor.of(bytes, requireBox(mdia, "mdhd", "mdia"));
    const { version: mdhdVersion } = mdhd.fullHeader();
    mdhd.skip(mdhdVersion === 1 ? 16 : 8, "creation/modification time");
    const timescale = mdhd.u32("timescale");
    if (timescale === 0) throw new PackagerError("PACKAGER_MALFORMED_BOX", "mdhd: timescale is 0");

    const minfRange = requireBox(mdia, "minf", "mdia");
    const minf = listBoxes(bytes, minfRange.payload, minfRange.end, "minf");
    const stblRange = requireBox(minf, "stbl", "minf");
    const stbl = listBoxes(bytes, stblRange.payload, stblRange.end, "stbl");
    const stsdRange = requireBox(stbl, "stsd", "stbl");
    const stsd = FieldCursor.of(bytes, stsdRange);
    stsd.fullHeader();
    if (stsd.u32("entry_count") < 1)
      throw new PackagerError("PACKAGER_MISSING_BOX", "stsd has no sample entry");
    const entry = readBoxHeader(bytes, stsd.offset, stsdRange.end, "stsd");
    const kind = handler === "vide" ? "video" : "audio";
    const facts = kind === "video" ? parseVisualEntry(bytes, entry) : parseAudioEntry(bytes, entry);
    const defaults = parseTrex(bytes, moov, trackId);
    return {
      trackId,
      timescale,
      kind,
      sampleEntry: entry.type,
      ...facts,
      ...(defaults ? { defaults } : {}),
    };
  }
  throw new PackagerError("PACKAGER_MISSING_BOX", "init segment has no video or audio track");
}
