/**
 * CMAF fragments (moof + mdat). The writer is the per-sample hot path: it computes the exact
 * size, allocates once and fills the boxes with direct DataView stores (no box objects), which
 * `bench/cmaf.bench.ts` measures against mp4box's `createMoof` + `write`. Sample data starts at the
 * first byte of the mdat payload, as the hang CMAF decoder assumes.
 *
 * The parser reads any moof + mdat: multi-sample and multiple truns, tfhd and trex defaults,
 * version 0 and 1 tfdt/trun, explicit or implied data offsets. It is bounded and raises only
 * {@link PackagerError}.
 */

import { PackagerError } from "../errors.ts";
import { type BoxRange, FieldCursor, findBox, listBoxes, requireBox } from "./box-reader.ts";
import type { TrackFragmentDefaults } from "./init-segment.ts";

/** sample_flags of a sync sample: sample_depends_on = 2 (does not depend on others). */
export const KEYFRAME_SAMPLE_FLAGS = 0x02000000;
/** sample_flags of a non-sync sample: sample_depends_on = 1, sample_is_non_sync_sample = 1. */
export const DELTA_SAMPLE_FLAGS = 0x01010000;
/** The sample_is_non_sync_sample bit. */
const NON_SYNC_FLAG = 0x00010000;

/** Samples a parsed fragment may describe before the parser refuses (far above any real fragment). */
export const MAX_FRAGMENT_SAMPLES = 65536;

/** One sample to write into a fragment. */
export interface FragmentSample {
  /** Duration in timescale units. */
  readonly duration: number;
  /** Sample bytes (length-prefixed NAL units, OBUs or one raw AAC frame). */
  readonly data: Uint8Array;
  /** Sync sample (keyframe); every audio sample is one. */
  readonly keyframe: boolean;
  /** pts − dts in timescale units (may be negative; then trun version 1 is written). */
  readonly compositionOffset?: number;
}

/** A fragment to write. */
export interface FragmentSpec {
  /** mfhd sequence_number (1-based, increasing per track). */
  readonly sequenceNumber: number;
  /** tfhd track_ID; must match the init segment's. */
  readonly trackId: number;
  /** tfdt baseMediaDecodeTime of the first sample, in timescale units. */
  readonly baseMediaDecodeTime: number;
  readonly samples: readonly FragmentSample[];
}

const MFHD_SIZE = 16;
const TFHD_SIZE = 16;
const TFDT_SIZE = 20;
const TRUN_HEADER_SIZE = 20; // header, version/flags, sample_count, data_offset
const TRUN_SAMPLE_SIZE = 16; // duration, size, flags, composition offset
const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000;
const TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800;

const MOOF = 0x6d6f6f66;
const MFHD = 0x6d666864;
const TRAF = 0x74726166;
const TFHD = 0x74666864;
const TFDT = 0x74666474;
const TRUN = 0x7472756e;
const MDAT = 0x6d646174;

function invalid(message: string): PackagerError {
  return new PackagerError("PACKAGER_INVALID_SAMPLE", message);
}

/** Bytes {@link buildFragment} writes before the first sample byte, for `sampleCount` samples. */
export function fragmentHeaderSize(sampleCount: number): number {
  return 8 + MFHD_SIZE + 8 + TFHD_SIZE + TFDT_SIZE + TRUN_HEADER_SIZE + TRUN_SAMPLE_SIZE * sampleCount + 8;
}

/**
 * Writes one moof + mdat: mfhd, traf (tfhd with default-base-is-moof, tfdt version 1, one trun
 * with data offset, per-sample duration, size, flags and composition offset), then the samples
 * back to back in the mdat. Throws PACKAGER_INVALID_SAMPLE on values the boxes cannot carry.
 */
export function buildFragment(spec: FragmentSpec): Uint8Array {
  const { samples, sequenceNumber, trackId, baseMediaDecodeTime } = spec;
  const count = samples.length;
  if (count === 0) throw invalid("a fragment needs at least one sample");
  if (!Number.isInteger(sequenceNumber) || sequenceNumber < 0 || sequenceNumber > 0xffffffff) {
    throw invalid(`sequence number ${sequenceNumber} is not a 32-bit unsigned integer`);
  }
  if (!Number.isInteger(trackId) || trackId < 1 || trackId > 0xffffffff)
    throw invalid(`track ID ${trackId} is invalid`);
  if (!Number.isSafeInteger(baseMediaDecodeTime) || baseMediaDecodeTime < 0) {
    throw invalid(`baseMediaDecodeTime ${baseMediaDecodeTime} is not a non-negative safe integer`);
  }
  let payload = 0;
  let signedOffsets = false;
  for (let i = 0; i < count; i++) {
    const sample = samples[i]!;
    const duration = sample.duration;
    if (!Number.isInteger(duration) || duration < 0 || duration > 0xffffffff) {
      throw invalid(`sample ${i} duration ${duration} is not a 32-bit unsigned integer`);
    }
    const offset = sample.compositionOffset ?? 0;
    if (!Number.isInteger(offset) || offset < -0x80000000 || offset > 0x7fffffff) {
      throw invalid(`sample ${i} composition offset ${offset} is not a 32-bit integer`);
    }
    if (offset < 0) signedOffsets = true;
    payload += sample.data.byteLength;
  }
  const trafSize = 8 + TFHD_SIZE + TFDT_SIZE + TRUN_HEADER_SIZE + TRUN_SAMPLE_SIZE * count;
  const moofSize = 8 + MFHD_SIZE + trafSize;
  const headerSize = moofSize + 8;
  const total = headerSize + payload;
  if (payload + 8 > 0xffffffff)
    throw invalid(`fragment payload of ${payload} bytes exceeds the 32-bit mdat size`);

  const out = new Uint8Array(total);
  const view = new DataView(out.buffer, out.byteOffset, total);
  let at = 0;
  // moof
  view.setUint32(at, moofSize);
  view.setUint32(at + 4, MOOF);
  at += 8;
  // mfhd: version 0, flags 0, sequence_number
  view.setUint32(at, MFHD_SIZE);
  view.setUint32(at + 4, MFHD);
  view.setUint32(at + 8, 0);
  view.setUint32(at + 12, sequenceNumber);
  at += MFHD_SIZE;
  // traf
  view.setUint32(at, trafSize);
  view.setUint32(at + 4, TRAF);
  at += 8;
  // tfhd: version 0, default-base-is-moof, track_ID
  view.setUint32(at, TFHD_SIZE);
  view.setUint32(at + 4, TFHD);
  view.setUint32(at + 8, TFHD_DEFAULT_BASE_IS_MOOF);
  view.setUint32(at + 12, trackId);
  at += TFHD_SIZE;
  // tfdt: version 1, 64-bit baseMediaDecodeTime
  view.setUint32(at, TFDT_SIZE);
  view.setUint32(at + 4, TFDT);
  view.setUint32(at + 8, 0x01000000);
  view.setUint32(at + 12, Math.floor(baseMediaDecodeTime / 0x100000000));
  view.setUint32(at + 16, baseMediaDecodeTime >>> 0);
  at += TFDT_SIZE;
  // trun: version 1 only when some composition offset is negative
  view.setUint32(at, TRUN_HEADER_SIZE + TRUN_SAMPLE_SIZE * count);
  view.setUint32(at + 4, TRUN);
  view.setUint32(at + 8, (signedOffsets ? 0x01000000 : 0) | TRUN_FLAGS);
  view.setUint32(at + 12, count);
  view.setUint32(at + 16, headerSize); // data_offset from the moof start to the first sample
  at += TRUN_HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    const sample = samples[i]!;
    view.setUint32(at, sample.duration);
    view.setUint32(at + 4, sample.data.byteLength);
    view.setUint32(at + 8, sample.keyframe ? KEYFRAME_SAMPLE_FLAGS : DELTA_SAMPLE_FLAGS);
    view.setInt32(at + 12, sample.compositionOffset ?? 0);
    at += TRUN_SAMPLE_SIZE;
  }
  // mdat
  view.setUint32(at, 8 + payload);
  view.setUint32(at + 4, MDAT);
  at += 8;
  for (let i = 0; i < count; i++) {
    const data = samples[i]!.data;
    out.set(data, at);
    at += data.byteLength;
  }
  return out;
}

/** One sample as a fragment describes it. */
export interface FragmentSampleInfo {
  /** Duration in timescale units. */
  readonly duration: number;
  /** Size in bytes. */
  readonly size: number;
  /** Sync sample: the non-sync bit of its sample flags is clear. */
  readonly keyframe: boolean;
  /** pts − dts in timescale units. */
  readonly compositionOffset: number;
  /** The effective sample_flags. */
  readonly flags: number;
  /** Offset of the sample's first byte within the parsed bytes. */
  readonly dataOffset: number;
}

/** What a moof + mdat says about its (first, or selected) track fragment. */
export interface FragmentInfo {
  /** mfhd sequence_number. */
  readonly sequenceNumber: number;
  readonly trackId: number;
  /** tfdt baseMediaDecodeTime (0 when the traf has no tfdt). */
  readonly baseMediaDecodeTime: number;
  readonly samples: readonly FragmentSampleInfo[];
  /** Sum of the sample durations. */
  readonly duration: number;
}

/** Options of {@link parseFragment}. */
export interface ParseFragmentOptions {
  /** Defaults from the init segment's trex (see {@link InitSegmentInfo.defaults}). */
  readonly defaults?: TrackFragmentDefaults;
  /** Read the traf of this track (default: the first traf). */
  readonly trackId?: number;
}

/**
 * Parses one fragment (optional styp/sidx/prft/emsg, moof, mdat). Sample data must lie inside
 * `bytes`. Throws only {@link PackagerError}.
 */
export function parseFragment(bytes: Uint8Array, options: ParseFragmentOptions = {}): FragmentInfo {
  const top = listBoxes(bytes, 0, bytes.byteLength, "fragment");
  const moofRange = requireBox(top, "moof", "fragment");
  if (!findBox(top, "mdat")) throw new PackagerError("PACKAGER_MISSING_BOX", "fragment has no mdat box");
  const moof = listBoxes(bytes, moofRange.payload, moofRange.end, "moof");
  const mfhd = FieldCursor.of(bytes, requireBox(moof, "mfhd", "moof"));
  mfhd.fullHeader();
  const sequenceNumber = mfhd.u32("sequence_number");

  // Data of a traf without an explicit base starts where the previous traf's data ended.
  let previousDataEnd = moofRange.start;
  let first = true;
  for (const trafRange of moof) {
    if (trafRange.type !== "traf") continue;
    const result = parseTraf(bytes, trafRange, moofRange, first ? moofRange.start : previousDataEnd, options);
    first = false;
    previousDataEnd = result.dataEnd;
    if (options.trackId !== undefined && result.trackId !== options.trackId) continue;
    return {
      sequenceNumber,
      trackId: result.trackId,
      baseMediaDecodeTime: result.baseMediaDecodeTime,
      samples: result.samples,
      duration: result.duration,
    };
  }
  throw new PackagerError(
    "PACKAGER_MISSING_BOX",
    options.trackId === undefined ? "moof has no traf box" : `moof has no traf for track ${options.trackId}`,
  );
}

interface TrafResult {
  readonly trackId: number;
  readonly baseMediaDecodeTime: number;
  readonly samples: FragmentSampleInfo[];
  readonly duration: number;
  readonly dataEnd: number;
}

function parseTraf(
  bytes: Uint8Array,
  trafRange: BoxRange,
  moofRange: BoxRange,
  implicitBase: number,
  options: ParseFragmentOptions,
): TrafResult {
  const traf = listBoxes(bytes, trafRange.payload, trafRange.end, "traf");
  const tfhd = FieldCursor.of(bytes, requireBox(traf, "tfhd", "traf"));
  const { flags: tfhdFlags } = tfhd.fullHeader();
  const trackId = tfhd.u32("track_ID");
  const defaults = options.defaults;
  let base = implicitBase;
  if (tfhdFlags & 0x000001) base = tfhd.u64("base_data_offset");
  else if (tfhdFlags & 0x020000) base = moofRange.start;
  if (tfhdFlags & 0x000002) tfhd.u32("sample_description_index");
  const defaultDuration =
    tfhdFlags & 0x000008 ? tfhd.u32("default_sample_duration") : (defaults?.sampleDuration ?? 0);
  const defaultSize = tfhdFlags & 0x000010 ? tfhd.u32("default_sample_size") : (defaults?.sampleSize ?? 0);
  const defaultFlags = tfhdFlags & 0x000020 ? tfhd.u32("default_sample_flags") : (defaults?.sampleFlags ?? 0);

  let baseMediaDecodeTime = 0;
  const tfdtRange = findBox(traf, "tfdt");
  if (tfdtRange) {
    const tfdt = FieldCursor.of(bytes, tfdtRange);
    const { version } = tfdt.fullHeader();
    baseMediaDecodeTime = version === 1 ? tfdt.u64("baseMediaDecodeTime") : tfdt.u32("baseMediaDecodeTime");
  }

  const samples: FragmentSampleInfo[] = [];
  let duration = 0;
  let dataCursor = base;
  for (const trunRange of traf) {
    if (trunRange.type !== "trun") continue;
    const trun = FieldCursor.of(bytes, trunRange);
    const { version, flags } = trun.fullHeader();
    const count = trun.u32("sample_count");
    if (flags & 0x000001) dataCursor = base + trun.i32("data_offset");
    const firstFlags = flags & 0x000004 ? trun.u32("first_sample_flags") : undefined;
    const perSample =
      (flags & 0x000100 ? 4 : 0) +
      (flags & 0x000200 ? 4 : 0) +
      (flags & 0x000400 ? 4 : 0) +
      (flags & 0x000800 ? 4 : 0);
    if (samples.length + count > MAX_FRAGMENT_SAMPLES) {
      throw new PackagerError(
        "PACKAGER_LIMIT_EXCEEDED",
        `fragment describes more than ${MAX_FRAGMENT_SAMPLES} samples (trun sample_count ${count})`,
      );
    }
    trun.need(perSample * count, `${count} trun sample record(s)`);
    for (let i = 0; i < count; i++) {
      const sampleDuration = flags & 0x000100 ? trun.u32() : defaultDuration;
      const size = flags & 0x000200 ? trun.u32() : defaultSize;
      let sampleFlags = flags & 0x000400 ? trun.u32() : defaultFlags;
      if (i === 0 && firstFlags !== undefined) sampleFlags = firstFlags;
      const compositionOffset = flags & 0x000800 ? (version === 0 ? trun.u32() : trun.i32()) : 0;
      if (dataCursor < 0 || dataCursor + size > bytes.byteLength) {
        throw new PackagerError(
          "PACKAGER_MALFORMED_BOX",
          `trun sample ${samples.length} (${size} bytes at offset ${dataCursor}) lies outside the ${bytes.byteLength}-byte fragment`,
        );
      }
      samples.push({
        duration: sampleDuration,
        size,
        keyframe: (sampleFlags & NON_SYNC_FLAG) === 0,
        compositionOffset,
        flags: sampleFlags,
        dataOffset: dataCursor,
      });
      duration += sampleDuration;
      dataCursor += size;
    }
  }
  return { trackId, baseMediaDecodeTime, samples, duration, dataEnd: dataCursor };
}
