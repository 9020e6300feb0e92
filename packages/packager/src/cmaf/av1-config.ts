/**
 * The AV1CodecConfigurationRecord (`av1C`, AV1-ISOBMFF §2.3) and the codec string derived from it:
 * `av01.<profile>.<level, two digits><tier M|H>.<bit depth, two digits>`.
 */

import { PackagerError } from "../errors.ts";
import { FieldCursor } from "./box-reader.ts";

/** The fields of an av1C record the packager uses. */
export interface Av1CodecConfig {
  /** `seq_profile` (0 Main, 1 High, 2 Professional). */
  readonly profile: number;
  /** `seq_level_idx_0`. */
  readonly level: number;
  /** `seq_tier_0` (0 Main, 1 High). */
  readonly tier: number;
  /** 8, 10 or 12. */
  readonly bitDepth: number;
  /** Codec string: `av01.0.08M.08`. */
  readonly codecString: string;
}

/** Parses an av1C record (the box payload, without the box header). */
export function parseAv1CodecConfig(record: Uint8Array): Av1CodecConfig {
  const cursor = new FieldCursor(record, 0, record.byteLength, "av1C");
  const first = cursor.u8("marker/version");
  if (first !== 0x81) {
    throw new PackagerError(
      "PACKAGER_INVALID_CONFIG",
      `av1C starts with 0x${first.toString(16)}; expected marker 1 and version 1 (0x81)`,
    );
  }
  const second = cursor.u8("seq_profile/seq_level_idx_0");
  const third = cursor.u8("seq_tier_0/bit depth flags");
  cursor.skip(1, "initial_presentation_delay");
  const profile = second >>> 5;
  const level = second & 0x1f;
  const tier = third >>> 7;
  const highBitdepth = (third >>> 6) & 1;
  const twelveBit = (third >>> 5) & 1;
  const bitDepth = highBitdepth ? (twelveBit ? 12 : 10) : 8;
  const codecString = `av01.${profile}.${String(level).padStart(2, "0")}${tier ? "H" : "M"}.${String(bitDepth).padStart(2, "0")}`;
  return { profile, level, tier, bitDepth, codecString };
}
