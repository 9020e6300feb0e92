/**
 * H.265: the HEVCDecoderConfigurationRecord (hvcC, ISO/IEC 14496-15 §8.3.3), the codec string
 * (§E.3) and the SPS fields needed for the display size (ITU-T H.265 §7.3.2.2).
 */
import { BitReader } from "../bitreader.ts";
import { ByteReader } from "../byte-reader.ts";
import { RtmpError } from "../errors.ts";
import { unescapeRbsp } from "./nal.ts";

/** One array of parameter sets in an hvcC record. */
export interface HevcNalArray {
  readonly nalType: number;
  readonly completeness: boolean;
  readonly nalus: Uint8Array[];
}

/** The fields of an hvcC record. */
export interface HevcDecoderConfig {
  readonly profileSpace: number;
  readonly tierFlag: boolean;
  readonly profileIdc: number;
  readonly profileCompatibility: number;
  /** The six general constraint indicator bytes. */
  readonly constraintIndicator: Uint8Array;
  readonly levelIdc: number;
  readonly chromaFormat: number;
  readonly bitDepthLuma: number;
  readonly bitDepthChroma: number;
  /** Bytes in each NAL unit length prefix: 1, 2 or 4. */
  readonly nalLengthSize: number;
  readonly arrays: HevcNalArray[];
}

/** NAL unit types of the parameter sets. */
export const HevcNalType = { VPS: 32, SPS: 33, PPS: 34 } as const;

/** Parses an hvcC record (views into `bytes`). */
export function parseHevcDecoderConfigurationRecord(bytes: Uint8Array): HevcDecoderConfig {
  const r = new ByteReader(bytes, "CODEC_CONFIG_INVALID", "hvcC record");
  const version = r.u8();
  if (version !== 1) throw r.error(`hvcC configurationVersion is ${version}, expected 1`);
  const b1 = r.u8();
  const profileSpace = b1 >>> 6;
  const tierFlag = (b1 & 0x20) !== 0;
  const profileIdc = b1 & 0x1f;
  const profileCompatibility = r.u32();
  const constraintIndicator = r.bytesView(6);
  const levelIdc = r.u8();
  r.u16(); // min_spatial_segmentation_idc
  r.u8(); // parallelismType
  const chromaFormat = r.u8() & 0x03;
  const bitDepthLuma = (r.u8() & 0x07) + 8;
  const bitDepthChroma = (r.u8() & 0x07) + 8;
  r.u16(); // avgFrameRate
  const b21 = r.u8();
  const lengthSizeMinusOne = b21 & 0x03;
  if (lengthSizeMinusOne === 2)
    throw r.error("hvcC lengthSizeMinusOne is 2 (3-byte NAL lengths are not allowed)");
  const arrayCount = r.u8();
  const arrays: HevcNalArray[] = [];
  for (let i = 0; i < arrayCount; i++) {
    const b = r.u8();
    const count = r.u16();
    // Each NAL unit needs at least its 2-byte length.
    if (count * 2 > r.remaining)
      throw r.error(`hvcC array declares ${count} NAL units but only ${r.remaining} bytes remain`);
    const nalus: Uint8Array[] = [];
    for (let j = 0; j < count; j++) nalus.push(r.bytesView(r.u16()));
    arrays.push({ completeness: (b & 0x80) !== 0, nalType: b & 0x3f, nalus });
  }
  return {
    profileSpace,
    tierFlag,
    profileIdc,
    profileCompatibility,
    constraintIndicator,
    levelIdc,
    chromaFormat,
    bitDepthLuma,
    bitDepthChroma,
    nalLengthSize: lengthSizeMinusOne + 1,
    arrays,
  };
}

function reverseBits32(v: number): number {
  let out = 0;
  for (let i = 0; i < 32; i++) {
    out = out * 2 + (v & 1);
    v >>>= 1;
  }
  return out;
}

/** RFC 6381 codec string for H.265, e.g. `hvc1.1.6.L93.B0`. */
export function hevcCodecString(config: HevcDecoderConfig, sampleEntry: "hvc1" | "hev1" = "hvc1"): string {
  const space = ["", "A", "B", "C"][config.profileSpace] ?? "";
  const compat = reverseBits32(config.profileCompatibility).toString(16).toUpperCase();
  const tier = config.tierFlag ? "H" : "L";
  let last = config.constraintIndicator.byteLength;
  while (last > 0 && config.constraintIndicator[last - 1] === 0) last--;
  const constraints: string[] = [];
  for (let i = 0; i < last; i++)
    constraints.push(config.constraintIndicator[i]!.toString(16).toUpperCase().padStart(2, "0"));
  const parts = [
    sampleEntry,
    `${space}${config.profileIdc}`,
    compat,
    `${tier}${config.levelIdc}`,
    ...constraints,
  ];
  return parts.join(".");
}

/** The SPS fields this ingest uses. */
export interface HevcSps {
  readonly chromaFormatIdc: number;
  readonly width: number;
  readonly height: number;
}

/** Parses an H.265 SPS NAL unit (with its two-byte header). */
export function parseHevcSps(nal: Uint8Array): HevcSps {
  if (nal.byteLength < 3)
    throw new RtmpError("CODEC_CONFIG_INVALID", `H.265 SPS of ${nal.byteLength} bytes is too short`);
  const type = (nal[0]! >>> 1) & 0x3f;
  if (type !== HevcNalType.SPS)
    throw new RtmpError("CODEC_CONFIG_INVALID", `expected an H.265 SPS (NAL type 33), got NAL type ${type}`);
  const r = new BitReader(unescapeRbsp(nal.subarray(2)), "H.265 SPS");
  r.skip(4); // sps_video_parameter_set_id
  const maxSubLayersMinus1 = r.bits(3);
  if (maxSubLayersMinus1 > 6)
    throw new RtmpError(
      "CODEC_CONFIG_INVALID",
      `H.265 sps_max_sub_layers_minus1 ${maxSubLayersMinus1} is out of range`,
    );
  r.skip(1); // sps_temporal_id_nesting_flag
  // profile_tier_level(1, maxSubLayersMinus1)
  r.skip(96);
  const profilePresent: boolean[] = [];
  const levelPresent: boolean[] = [];
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    profilePresent.push(r.flag());
    levelPresent.push(r.flag());
  }
  if (maxSubLayersMinus1 > 0) r.skip(2 * (8 - maxSubLayersMinus1));
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    if (profilePresent[i]) r.skip(88);
    if (levelPresent[i]) r.skip(8);
  }
  const spsId = r.ue();
  if (spsId > 15) throw new RtmpError("CODEC_CONFIG_INVALID", `H.265 SPS id ${spsId} is out of range`);
  const chromaFormatIdc = r.ue();
  if (chromaFormatIdc > 3)
    throw new RtmpError("CODEC_CONFIG_INVALID", `H.265 chroma_format_idc ${chromaFormatIdc} is out of range`);
  let separateColourPlane = false;
  if (chromaFormatIdc === 3) separateColourPlane = r.flag();
  let width = r.ue();
  let height = r.ue();
  if (r.flag()) {
    const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
    const subWidth = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
    const subHeight = chromaArrayType === 1 ? 2 : 1;
    const left = r.ue();
    const right = r.ue();
    const top = r.ue();
    const bottom = r.ue();
    width -= subWidth * (left + right);
    height -= subHeight * (top + bottom);
  }
  if (width <= 0 || height <= 0 || width > 65535 || height > 65535) {
    throw new RtmpError("CODEC_CONFIG_INVALID", `H.265 SPS gives an impossible size ${width}x${height}`);
  }
  return { chromaFormatIdc, width, height };
}
