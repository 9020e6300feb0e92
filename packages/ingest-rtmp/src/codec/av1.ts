/**
 * AV1: the AV1CodecConfigurationRecord (av1C, "AV1 Codec ISO Media File Format Binding" §2.3)
 * and the sequence header OBU fields needed for the display size (AV1 spec §5.5).
 */
import { BitReader } from "../bitreader.ts";
import { ByteReader } from "../byte-reader.ts";
import { RtmpError } from "../errors.ts";

/** The fields of an av1C record. */
export interface Av1CodecConfig {
  readonly seqProfile: number;
  readonly seqLevelIdx0: number;
  readonly seqTier0: number;
  readonly bitDepth: number;
  readonly monochrome: boolean;
  readonly chromaSubsamplingX: boolean;
  readonly chromaSubsamplingY: boolean;
  readonly chromaSamplePosition: number;
  /** The configOBUs (usually one sequence header OBU). */
  readonly configObus: Uint8Array;
}

/** Parses an av1C record. */
export function parseAv1CodecConfigurationRecord(bytes: Uint8Array): Av1CodecConfig {
  const r = new ByteReader(bytes, "CODEC_CONFIG_INVALID", "av1C record");
  const b0 = r.u8();
  if (b0 !== 0x81) throw r.error(`av1C marker/version byte is 0x${b0.toString(16)}, expected 0x81`);
  const b1 = r.u8();
  const b2 = r.u8();
  r.u8(); // initial_presentation_delay
  const highBitdepth = (b2 & 0x40) !== 0;
  const twelveBit = (b2 & 0x20) !== 0;
  return {
    seqProfile: b1 >>> 5,
    seqLevelIdx0: b1 & 0x1f,
    seqTier0: b2 >>> 7,
    bitDepth: highBitdepth ? (twelveBit ? 12 : 10) : 8,
    monochrome: (b2 & 0x10) !== 0,
    chromaSubsamplingX: (b2 & 0x08) !== 0,
    chromaSubsamplingY: (b2 & 0x04) !== 0,
    chromaSamplePosition: b2 & 0x03,
    configObus: r.rest(),
  };
}

/** RFC 6381-style codec string for AV1 (short form), e.g. `av01.0.08M.08`. */
export function av1CodecString(config: Av1CodecConfig): string {
  const level = String(config.seqLevelIdx0).padStart(2, "0");
  const tier = config.seqTier0 ? "H" : "M";
  return `av01.${config.seqProfile}.${level}${tier}.${String(config.bitDepth).padStart(2, "0")}`;
}

function readLeb128(r: ByteReader): number {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    const b = r.u8();
    value += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return value;
  }
  throw r.error("AV1 leb128 value is longer than 8 bytes");
}

/** Finds the sequence header OBU payload in a run of OBUs (low-overhead format). */
export function findAv1SequenceHeader(obus: Uint8Array): Uint8Array | undefined {
  const r = new ByteReader(obus, "CODEC_CONFIG_INVALID", "AV1 OBUs");
  while (r.remaining > 0) {
    const header = r.u8();
    if (header & 0x80) throw r.error("AV1 OBU forbidden bit is set");
    const type = (header >>> 3) & 0x0f;
    if (header & 0x04) r.u8(); // extension header
    const size = header & 0x02 ? readLeb128(r) : r.remaining;
    const payload = r.bytesView(size);
    if (type === 1) return payload;
  }
  return undefined;
}

/** The sequence header fields this ingest uses. */
export interface Av1SequenceHeader {
  readonly seqProfile: number;
  readonly width: number;
  readonly height: number;
}

/** Parses the start of an AV1 sequence header OBU payload, up to the maximum frame size. */
export function parseAv1SequenceHeader(payload: Uint8Array): Av1SequenceHeader {
  const r = new BitReader(payload, "AV1 sequence header");
  const seqProfile = r.bits(3);
  r.skip(1); // still_picture
  const reduced = r.flag();
  if (reduced) {
    r.skip(5); // seq_level_idx[0]
  } else {
    let decoderModelInfoPresent = false;
    let bufferDelayLength = 0;
    if (r.flag()) {
      // timing_info()
      r.skip(64);
      if (r.flag()) r.uvlc();
      decoderModelInfoPresent = r.flag();
      if (decoderModelInfoPresent) {
        bufferDelayLength = r.bits(5) + 1;
        r.skip(32 + 5 + 5);
      }
    }
    const initialDisplayDelayPresent = r.flag();
    const operatingPoints = r.bits(5) + 1;
    for (let i = 0; i < operatingPoints; i++) {
      r.skip(12); // operating_point_idc
      const level = r.bits(5);
      if (level > 7) r.skip(1); // seq_tier
      if (decoderModelInfoPresent && r.flag()) r.skip(2 * bufferDelayLength + 1);
      if (initialDisplayDelayPresent && r.flag()) r.skip(4);
    }
  }
  const widthBits = r.bits(4) + 1;
  const heightBits = r.bits(4) + 1;
  const width = r.bits(widthBits) + 1;
  const height = r.bits(heightBits) + 1;
  if (width > 65536 || height > 65536)
    throw new RtmpError(
      "CODEC_CONFIG_INVALID",
      `AV1 sequence header gives an impossible size ${width}x${height}`,
    );
  return { seqProfile, width, height };
}
