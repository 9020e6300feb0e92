/**
 * AAC configuration: the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) and the MPEG-4 ES
 * descriptor inside `esds` (ISO/IEC 14496-1 §7.2.6.5) that carries it. Sample rate and channel
 * count come from the ASC (what the decoder uses), not from container flags.
 */

import { PackagerError } from "../errors.ts";
import { FieldCursor } from "./box-reader.ts";

/** Sampling frequencies by `samplingFrequencyIndex`. */
const SAMPLE_RATES = [
  96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/** Output channels by `channelConfiguration` (0 = defined by a program config element). */
const CHANNELS = [0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8, 0];

/** Audio object types whose ASC continues with a GASpecificConfig (frameLengthFlag first). */
const GA_OBJECT_TYPES = new Set([1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23]);

/** The fields of an AudioSpecificConfig the packager uses. */
export interface AudioSpecificConfig {
  /** The signalled audio object type (2 AAC-LC, 5 HE-AAC, 29 HE-AACv2); this is what the codec string names. */
  readonly objectType: number;
  /** The core decoder's object type (2 for HE-AAC with explicit SBR signalling). */
  readonly coreObjectType: number;
  /** Core sampling rate in Hz: the media timescale and the rate at which one frame is `samplesPerFrame`. */
  readonly sampleRate: number;
  /** Output channels (0 when only a program config element defines them). */
  readonly channels: number;
  /** Samples per frame at `sampleRate`: 1024, or 960 with the frameLengthFlag. */
  readonly samplesPerFrame: number;
  /** RFC 6381 codec string: `mp4a.40.2`. */
  readonly codecString: string;
}

class BitCursor {
  readonly #bytes: Uint8Array;
  #bit = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  read(count: number, what: string): number {
    if (this.#bit + count > this.#bytes.byteLength * 8) {
      throw new PackagerError(
        "PACKAGER_INVALID_CONFIG",
        `AudioSpecificConfig is truncated: ${what} needs ${count} bit(s) at bit ${this.#bit} of ${this.#bytes.byteLength * 8}`,
      );
    }
    let value = 0;
    for (let i = 0; i < count; i++) {
      const bit = (this.#bytes[this.#bit >>> 3]! >>> (7 - (this.#bit & 7))) & 1;
      value = value * 2 + bit;
      this.#bit++;
    }
    return value;
  }
}

function readObjectType(bits: BitCursor): number {
  const type = bits.read(5, "audioObjectType");
  return type === 31 ? 32 + bits.read(6, "audioObjectTypeExt") : type;
}

function readSampleRate(bits: BitCursor): number {
  const index = bits.read(4, "samplingFrequencyIndex");
  if (index === 15) return bits.read(24, "samplingFrequency");
  const rate = SAMPLE_RATES[index];
  if (rate === undefined) {
    throw new PackagerError(
      "PACKAGER_INVALID_CONFIG",
      `AudioSpecificConfig uses reserved samplingFrequencyIndex ${index}`,
    );
  }
  return rate;
}

/** Parses an AudioSpecificConfig. */
export function parseAudioSpecificConfig(asc: Uint8Array): AudioSpecificConfig {
  const bits = new BitCursor(asc);
  const objectType = readObjectType(bits);
  if (objectType === 0)
    throw new PackagerError("PACKAGER_INVALID_CONFIG", "AudioSpecificConfig has object type 0 (null)");
  const sampleRate = readSampleRate(bits);
  if (sampleRate === 0)
    throw new PackagerError("PACKAGER_INVALID_CONFIG", "AudioSpecificConfig has sampling frequency 0");
  const channelConfiguration = bits.read(4, "channelConfiguration");
  let coreObjectType = objectType;
  if (objectType === 5 || objectType === 29) {
    // Explicit SBR/PS signalling: an extension rate, then the core object type. The core rate
    // (read above) stays the timescale: one AAC frame is 1024 samples at the core rate.
    readSampleRate(bits);
    coreObjectType = readObjectType(bits);
  }
  let samplesPerFrame = 1024;
  if (GA_OBJECT_TYPES.has(coreObjectType)) samplesPerFrame = bits.read(1, "frameLengthFlag") ? 960 : 1024;
  let channels = CHANNELS[channelConfiguration] ?? 0;
  // Parametric stereo decodes a mono core into two channels.
  if (objectType === 29 && channels === 1) channels = 2;
  return {
    objectType,
    coreObjectType,
    sampleRate,
    channels,
    samplesPerFrame,
    codecString: `mp4a.40.${objectType}`,
  };
}

/** What an `esds` box says about its stream. */
export interface EsDescriptorInfo {
  /** `objectTypeIndication` (0x40 = MPEG-4 Audio). */
  readonly objectTypeIndication: number;
  /** The DecoderSpecificInfo bytes (the AudioSpecificConfig for MPEG-4 Audio), zero-copy. */
  readonly decoderSpecificInfo: Uint8Array | undefined;
  /** `avgBitrate` from the DecoderConfigDescriptor (0 when unknown). */
  readonly avgBitrate: number;
}

const ES_DESCRIPTOR_TAG = 0x03;
const DECODER_CONFIG_TAG = 0x04;
const DECODER_SPECIFIC_INFO_TAG = 0x05;

/** Reads a descriptor header (tag, then a 1-4 byte length with continuation bits). */
function readDescriptorHeader(cursor: FieldCursor): { tag: number; end: number } {
  const tag = cursor.u8("descriptor tag");
  let length = 0;
  for (let i = 0; ; i++) {
    if (i === 4)
      throw new PackagerError("PACKAGER_MALFORMED_BOX", "esds: descriptor length uses more than 4 bytes");
    const byte = cursor.u8("descriptor length");
    length = length * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) break;
  }
  cursor.need(length, `descriptor 0x${tag.toString(16)} body`);
  return { tag, end: cursor.offset + length };
}

/** Parses the payload of an `esds` full box (after version and flags). */
export function parseEsDescriptor(bytes: Uint8Array, start: number, end: number): EsDescriptorInfo {
  const cursor = new FieldCursor(bytes, start, end, "esds");
  const es = readDescriptorHeader(cursor);
  if (es.tag !== ES_DESCRIPTOR_TAG) {
    throw new PackagerError(
      "PACKAGER_MALFORMED_BOX",
      `esds: expected an ES_Descriptor (tag 3), found tag ${es.tag}`,
    );
  }
  const body = new FieldCursor(bytes, cursor.offset, es.end, "ES_Descriptor");
  body.skip(2, "ES_ID");
  const flags = body.u8("ES flags");
  if (flags & 0x80) body.skip(2, "dependsOn_ES_ID");
  if (flags & 0x40) body.skip(body.u8("URLlength"), "URLstring");
  if (flags & 0x20) body.skip(2, "OCR_ES_Id");
  while (body.remaining > 0) {
    const child = readDescriptorHeader(body);
    if (child.tag !== DECODER_CONFIG_TAG) {
      body.offset = child.end;
      continue;
    }
    const config = new FieldCursor(bytes, body.offset, child.end, "DecoderConfigDescriptor");
    const objectTypeIndication = config.u8("objectTypeIndication");
    config.skip(1 + 3 + 4, "streamType/bufferSizeDB/maxBitrate");
    const avgBitrate = config.u32("avgBitrate");
    let decoderSpecificInfo: Uint8Array | undefined;
    while (config.remaining > 0) {
      const info = readDescriptorHeader(config);
      if (info.tag === DECODER_SPECIFIC_INFO_TAG) {
        decoderSpecificInfo = bytes.subarray(config.offset, info.end);
        break;
      }
      config.offset = info.end;
    }
    return { objectTypeIndication, decoderSpecificInfo, avgBitrate };
  }
  throw new PackagerError("PACKAGER_MISSING_BOX", "esds has no DecoderConfigDescriptor (tag 4)");
}
