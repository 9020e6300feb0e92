/**
 * H.264: the AVCDecoderConfigurationRecord (avcC, ISO/IEC 14496-15 §5.3.3) and the sequence
 * parameter set fields needed for the display size and codec string (ITU-T H.264 §7.3.2.1.1).
 */
import { BitReader } from "../bitreader.ts";
import { ByteReader } from "../byte-reader.ts";
import { RtmpError } from "../errors.ts";
import { unescapeRbsp } from "./nal.ts";

/** The fields of an avcC record. */
export interface AvcDecoderConfig {
  readonly profile: number;
  readonly compatibility: number;
  readonly level: number;
  /** Bytes in each NAL unit length prefix: 1, 2 or 4. */
  readonly nalLengthSize: number;
  readonly sps: Uint8Array[];
  readonly pps: Uint8Array[];
}

/** Parses an avcC record (views into `bytes`). */
export function parseAvcDecoderConfigurationRecord(bytes: Uint8Array): AvcDecoderConfig {
  const r = new ByteReader(bytes, "CODEC_CONFIG_INVALID", "avcC record");
  const version = r.u8();
  if (version !== 1) throw r.error(`avcC configurationVersion is ${version}, expected 1`);
  const profile = r.u8();
  const compatibility = r.u8();
  const level = r.u8();
  const lengthSizeMinusOne = r.u8() & 0x03;
  if (lengthSizeMinusOne === 2)
    throw r.error("avcC lengthSizeMinusOne is 2 (3-byte NAL lengths are not allowed)");
  const spsCount = r.u8() & 0x1f;
  const sps: Uint8Array[] = [];
  for (let i = 0; i < spsCount; i++) sps.push(r.bytesView(r.u16()));
  const ppsCount = r.u8();
  const pps: Uint8Array[] = [];
  for (let i = 0; i < ppsCount; i++) pps.push(r.bytesView(r.u16()));
  if (sps.length === 0) throw r.error("avcC record has no SPS");
  if (pps.length === 0) throw r.error("avcC record has no PPS");
  if (sps.some((s) => s.byteLength < 4)) throw r.error("avcC record has an SPS shorter than 4 bytes");
  return { profile, compatibility, level, nalLengthSize: lengthSizeMinusOne + 1, sps, pps };
}

/** The SPS fields this ingest uses. */
export interface AvcSps {
  readonly profileIdc: number;
  readonly constraintFlags: number;
  readonly levelIdc: number;
  readonly chromaFormatIdc: number;
  readonly bitDepthLuma: number;
  readonly bitDepthChroma: number;
  readonly frameMbsOnly: boolean;
  /** Cropped display size in pixels. */
  readonly width: number;
  readonly height: number;
}

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) {
      const delta = r.se();
      if (delta < -128 || delta > 127)
        throw new RtmpError("CODEC_CONFIG_INVALID", `H.264 SPS scaling list delta ${delta} is out of range`);
      next = (last + delta + 256) % 256;
    }
    last = next === 0 ? last : next;
  }
}

/** Parses an H.264 SPS NAL unit (with its one-byte header). */
export function parseAvcSps(nal: Uint8Array): AvcSps {
  if (nal.byteLength < 4)
    throw new RtmpError("CODEC_CONFIG_INVALID", `H.264 SPS of ${nal.byteLength} bytes is too short`);
  const type = nal[0]! & 0x1f;
  if (type !== 7)
    throw new RtmpError("CODEC_CONFIG_INVALID", `expected an H.264 SPS (NAL type 7), got NAL type ${type}`);
  const r = new BitReader(unescapeRbsp(nal.subarray(1)), "H.264 SPS");
  const profileIdc = r.bits(8);
  const constraintFlags = r.bits(8);
  const levelIdc = r.bits(8);
  const spsId = r.ue();
  if (spsId > 31) throw new RtmpError("CODEC_CONFIG_INVALID", `H.264 SPS id ${spsId} is out of range`);
  let chromaFormatIdc = 1;
  let separateColourPlane = false;
  let bitDepthLuma = 8;
  let bitDepthChroma = 8;
  if (HIGH_PROFILES.has(profileIdc)) {
    chromaFormatIdc = r.ue();
    if (chromaFormatIdc > 3)
      throw new RtmpError(
        "CODEC_CONFIG_INVALID",
        `H.264 chroma_format_idc ${chromaFormatIdc} is out of range`,
      );
    if (chromaFormatIdc === 3) separateColourPlane = r.flag();
    bitDepthLuma = 8 + r.ue();
    bitDepthChroma = 8 + r.ue();
    if (bitDepthLuma > 14 || bitDepthChroma > 14)
      throw new RtmpError("CODEC_CONFIG_INVALID", "H.264 bit depth is out of range");
    r.skip(1); // qpprime_y_zero_transform_bypass_flag
    if (r.flag()) {
      const lists = chromaFormatIdc !== 3 ? 8 : 12;
      for (let i = 0; i < lists; i++) if (r.flag()) skipScalingList(r, i < 6 ? 16 : 64);
    }
  }
  r.ue(); // log2_max_frame_num_minus4
  const pocType = r.ue();
  if (pocType === 0) {
    r.ue(); // log2_max_pic_order_cnt_lsb_minus4
  } else if (pocType === 1) {
    r.skip(1);
    r.se();
    r.se();
    const cycle = r.ue();
    if (cycle > 255)
      throw new RtmpError(
        "CODEC_CONFIG_INVALID",
        `H.264 num_ref_frames_in_pic_order_cnt_cycle ${cycle} is out of range`,
      );
    for (let i = 0; i < cycle; i++) r.se();
  } else if (pocType !== 2) {
    throw new RtmpError("CODEC_CONFIG_INVALID", `H.264 pic_order_cnt_type ${pocType} is out of range`);
  }
  r.ue(); // max_num_ref_frames
  r.skip(1); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1;
  const heightMapUnits = r.ue() + 1;
  const frameMbsOnly = r.flag();
  if (!frameMbsOnly) r.skip(1); // mb_adaptive_frame_field_flag
  r.skip(1); // direct_8x8_inference_flag
  let cropLeft = 0;
  let cropRight = 0;
  let cropTop = 0;
  let cropBottom = 0;
  if (r.flag()) {
    cropLeft = r.ue();
    cropRight = r.ue();
    cropTop = r.ue();
    cropBottom = r.ue();
  }
  const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
  const subWidth = chromaFormatIdc === 3 ? 1 : 2;
  const subHeight = chromaFormatIdc === 1 ? 2 : 1;
  const fieldFactor = frameMbsOnly ? 1 : 2;
  const cropUnitX = chromaArrayType === 0 ? 1 : subWidth;
  const cropUnitY = chromaArrayType === 0 ? fieldFactor : subHeight * fieldFactor;
  const width = widthMbs * 16 - cropUnitX * (cropLeft + cropRight);
  const height = fieldFactor * heightMapUnits * 16 - cropUnitY * (cropTop + cropBottom);
  if (width <= 0 || height <= 0 || width > 65535 || height > 65535) {
    throw new RtmpError("CODEC_CONFIG_INVALID", `H.264 SPS gives an impossible size ${width}x${height}`);
  }
  return {
    profileIdc,
    constraintFlags,
    levelIdc,
    chromaFormatIdc,
    bitDepthLuma,
    bitDepthChroma,
    frameMbsOnly,
    width,
    height,
  };
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

/** RFC 6381 codec string for H.264: `avc1.PPCCLL` in lowercase hex. */
export function avcCodecString(profile: number, compatibility: number, level: number): string {
  return `avc1.${hex2(profile)}${hex2(compatibility)}${hex2(level)}`;
}
