/**
 * The AVCDecoderConfigurationRecord (`avcC`, ISO/IEC 14496-15 §5.3.3.1): what the packager needs
 * from it (NAL length size, parameter-set counts, the RFC 6381 codec string). The record itself is
 * carried unchanged into the sample entry and the catalog, so its NAL length size always matches
 * the sample data (the reference server forced it to 4 bytes).
 */

import { PackagerError } from "../errors.ts";
import { FieldCursor } from "./box-reader.ts";

/** The fields of an avcC record the packager uses. */
export interface AvcDecoderConfig {
  /** `AVCProfileIndication` (66 Baseline, 77 Main, 100 High, ...). */
  readonly profile: number;
  /** The `profile_compatibility` byte (constraint_set flags). */
  readonly compatibility: number;
  /** `AVCLevelIndication` (31 = level 3.1). */
  readonly level: number;
  /** Bytes in each NAL unit length prefix: 1, 2 or 4. */
  readonly nalLengthSize: number;
  /** Sequence parameter sets (zero-copy views). */
  readonly sps: readonly Uint8Array[];
  /** Picture parameter sets (zero-copy views). */
  readonly pps: readonly Uint8Array[];
  /** RFC 6381 codec string, lowercase hex: `avc1.64001f`. */
  readonly codecString: string;
}

function hex2(value: number): string {
  return value.toString(16).padStart(2, "0");
}

/** Parses an avcC record (the box payload, without the box header). */
export function parseAvcDecoderConfig(record: Uint8Array): AvcDecoderConfig {
  const cursor = new FieldCursor(record, 0, record.byteLength, "avcC");
  const version = cursor.u8("configurationVersion");
  if (version !== 1) {
    throw new PackagerError("PACKAGER_INVALID_CONFIG", `avcC configurationVersion is ${version}, expected 1`);
  }
  const profile = cursor.u8("AVCProfileIndication");
  const compatibility = cursor.u8("profile_compatibility");
  const level = cursor.u8("AVCLevelIndication");
  const lengthSizeMinusOne = cursor.u8("lengthSizeMinusOne") & 0x03;
  if (lengthSizeMinusOne === 2) {
    throw new PackagerError(
      "PACKAGER_INVALID_CONFIG",
      "avcC declares 3-byte NAL lengths, which H.264 does not allow",
    );
  }
  const spsCount = cursor.u8("numOfSequenceParameterSets") & 0x1f;
  const sps: Uint8Array[] = [];
  for (let i = 0; i < spsCount; i++) sps.push(cursor.take(cursor.u16("SPS length"), `SPS ${i}`));
  const ppsCount = cursor.u8("numOfPictureParameterSets");
  const pps: Uint8Array[] = [];
  for (let i = 0; i < ppsCount; i++) pps.push(cursor.take(cursor.u16("PPS length"), `PPS ${i}`));
  if (sps.length === 0 || pps.length === 0) {
    throw new PackagerError(
      "PACKAGER_INVALID_CONFIG",
      `avcC carries ${sps.length} SPS and ${pps.length} PPS; an avc1 sample entry needs at least one of each`,
    );
  }
  // Trailing bytes (the High-profile chroma/bit-depth extension) are kept as part of the record.
  return {
    profile,
    compatibility,
    level,
    nalLengthSize: lengthSizeMinusOne + 1,
    sps,
    pps,
    codecString: `avc1.${hex2(profile)}${hex2(compatibility)}${hex2(level)}`,
  };
}
