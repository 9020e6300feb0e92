/**
 * The HEVCDecoderConfigurationRecord (`hvcC`, ISO/IEC 14496-15 §8.3.3.1) and the RFC 6381 codec
 * string derived from it (ISO/IEC 14496-15 Annex E.3):
 * `hvc1.<profile space letter><profile idc>.<compatibility flags, bit-reversed, hex>.<L|H><level>[.<constraint bytes>]`.
 */

import { PackagerError } from "../errors.ts";
import { FieldCursor } from "./box-reader.ts";

/** The fields of an hvcC record the packager uses. */
export interface HevcDecoderConfig {
  /** `general_profile_space` (0-3). */
  readonly profileSpace: number;
  /** `general_tier_flag` (0 Main, 1 High). */
  readonly tier: number;
  /** `general_profile_idc` (1 Main, 2 Main 10, ...). */
  readonly profileIdc: number;
  /** `general_profile_compatibility_flags` as read (bit 31 = flag 0). */
  readonly compatibilityFlags: number;
  /** The six `general_constraint_indicator_flags` bytes. */
  readonly constraintBytes: Uint8Array;
  /** `general_level_idc` (level × 30). */
  readonly levelIdc: number;
  /** Bytes in each NAL unit length prefix: 1, 2 or 4. */
  readonly nalLengthSize: number;
  /** NAL unit arrays (VPS/SPS/PPS/SEI), by NAL unit type. */
  readonly arrays: readonly { readonly nalUnitType: number; readonly units: readonly Uint8Array[] }[];
  /** RFC 6381 codec string with the `hvc1` sample entry: `hvc1.1.6.L93.B0`. */
  readonly codecString: string;
}

/** Reverses the bit order of a 32-bit value (Annex E encodes the compatibility flags that way). */
function reverseBits32(value: number): number {
  let out = 0;
  for (let i = 0; i < 32; i++) {
    out = out * 2 + (value & 1);
    value >>>= 1;
  }
  return out;
}

/** The Annex E codec string for the given fields and sample entry type (`hvc1` or `hev1`). */
export function hevcCodecString(
  config: Pick<
    HevcDecoderConfig,
    "profileSpace" | "tier" | "profileIdc" | "compatibilityFlags" | "constraintBytes" | "levelIdc"
  >,
  sampleEntry = "hvc1",
): string {
  const space = ["", "A", "B", "C"][config.profileSpace] ?? "";
  const compatibility = reverseBits32(config.compatibilityFlags).toString(16).toUpperCase();
  let codec = `${sampleEntry}.${space}${config.profileIdc}.${compatibility}.${config.tier ? "H" : "L"}${config.levelIdc}`;
  // Constraint bytes are listed up to the last non-zero one.
  let last = config.constraintBytes.length - 1;
  while (last >= 0 && config.constraintBytes[last] === 0) last--;
  for (let i = 0; i <= last; i++) {
    codec += `.${config.constraintBytes[i]!.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return codec;
}

/** Parses an hvcC record (the box payload, without the box header). */
export function parseHevcDecoderConfig(record: Uint8Array): HevcDecoderConfig {
  const cursor = new FieldCursor(record, 0, record.byteLength, "hvcC");
  const version = cursor.u8("configurationVersion");
  if (version !== 1) {
    throw new PackagerError("PACKAGER_INVALID_CONFIG", `hvcC configurationVersion is ${version}, expected 1`);
  }
  const profileByte = cursor.u8("general_profile_space/tier/idc");
  const compatibilityFlags = cursor.u32("general_profile_compatibility_flags");
  const constraintBytes = cursor.take(6, "general_constraint_indicator_flags");
  const levelIdc = cursor.u8("general_level_idc");
  cursor.skip(8, "segmentation/parallelism/chroma/bit depth/frame rate fields");
  const lengthSizeMinusOne = cursor.u8("lengthSizeMinusOne") & 0x03;
  if (lengthSizeMinusOne === 2) {
    throw new PackagerError(
      "PACKAGER_INVALID_CONFIG",
      "hvcC declares 3-byte NAL lengths, which HEVC does not allow",
    );
  }
  const arrayCount = cursor.u8("numOfArrays");
  const arrays: { nalUnitType: number; units: Uint8Array[] }[] = [];
  for (let i = 0; i < arrayCount; i++) {
    const nalUnitType = cursor.u8("NAL_unit_type") & 0x3f;
    const count = cursor.u16("numNalus");
    // Each unit needs at least its 2-byte length, so the count is bounded by the bytes left.
    cursor.need(2 * count, `${count} NAL unit(s) of type ${nalUnitType}`);
    const units: Uint8Array[] = [];
    for (let j = 0; j < count; j++) units.push(cursor.take(cursor.u16("nalUnitLength"), "NAL unit"));
    arrays.push({ nalUnitType, units });
  }
  const fields = {
    profileSpace: profileByte >>> 6,
    tier: (profileByte >>> 5) & 1,
    profileIdc: profileByte & 0x1f,
    compatibilityFlags,
    constraintBytes,
    levelIdc,
  };
  return { ...fields, nalLengthSize: lengthSizeMinusOne + 1, arrays, codecString: hevcCodecString(fields) };
}
