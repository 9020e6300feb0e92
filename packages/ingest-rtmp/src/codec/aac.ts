/**
 * AAC: the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1), including the explicit SBR/PS
 * signalling of HE-AAC and the channel count of a program config element.
 */
import { BitReader } from "../bitreader.ts";
import { RtmpError } from "../errors.ts";

/** Sampling frequencies by samplingFrequencyIndex. */
export const AAC_SAMPLE_RATES: readonly number[] = [
  96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

const CHANNELS_BY_CONFIG = [0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8];

/** The fields of an AudioSpecificConfig. */
export interface AudioSpecificConfig {
  /** Signalled audio object type (5 or 29 for explicit HE-AAC signalling). */
  readonly objectType: number;
  readonly samplingFrequencyIndex: number;
  /** Core sampling rate in Hz. */
  readonly sampleRate: number;
  readonly channelConfiguration: number;
  readonly channels: number;
  /** For HE-AAC: the SBR output rate and the underlying core object type. */
  readonly extensionSampleRate?: number;
  readonly coreObjectType?: number;
  /** 1024, or 960 when frameLengthFlag is set. */
  readonly samplesPerFrame: number;
}

function objectType(r: BitReader): number {
  const t = r.bits(5);
  return t === 31 ? 32 + r.bits(6) : t;
}

function samplingFrequency(r: BitReader): { index: number; rate: number } {
  const index = r.bits(4);
  if (index === 15) return { index, rate: r.bits(24) };
  const rate = AAC_SAMPLE_RATES[index];
  if (rate === undefined)
    throw new RtmpError("CODEC_CONFIG_INVALID", `AAC samplingFrequencyIndex ${index} is reserved`);
  return { index, rate };
}

// program_config_element() (§4.4.1.1): counts the channels it describes.
function pceChannels(r: BitReader): number {
  r.skip(4 + 2 + 4); // element_instance_tag, object_type, sampling_frequency_index
  const front = r.bits(4);
  const side = r.bits(4);
  const back = r.bits(4);
  const lfe = r.bits(2);
  const assoc = r.bits(3);
  const cc = r.bits(4);
  if (r.flag()) r.skip(4);
  if (r.flag()) r.skip(4);
  if (r.flag()) r.skip(3);
  let channels = 0;
  for (const n of [front, side, back]) {
    for (let i = 0; i < n; i++) {
      channels += r.flag() ? 2 : 1;
      r.skip(4);
    }
  }
  r.skip(4 * lfe);
  channels += lfe;
  r.skip(4 * assoc);
  r.skip(5 * cc);
  return channels;
}

/** Parses an AudioSpecificConfig. */
export function parseAudioSpecificConfig(bytes: Uint8Array): AudioSpecificConfig {
  if (bytes.byteLength < 2)
    throw new RtmpError(
      "CODEC_CONFIG_INVALID",
      `AudioSpecificConfig of ${bytes.byteLength} bytes is too short (needs 2)`,
    );
  const r = new BitReader(bytes, "AudioSpecificConfig");
  const aot = objectType(r);
  if (aot === 0)
    throw new RtmpError("CODEC_CONFIG_INVALID", "AudioSpecificConfig has audio object type 0 (null)");
  const freq = samplingFrequency(r);
  const channelConfiguration = r.bits(4);
  let extensionSampleRate: number | undefined;
  let coreObjectType: number | undefined;
  if (aot === 5 || aot === 29) {
    extensionSampleRate = samplingFrequency(r).rate;
    coreObjectType = objectType(r);
    if (coreObjectType === 22) r.skip(4);
  }
  const gaType = coreObjectType ?? aot;
  let samplesPerFrame = 1024;
  let channels = CHANNELS_BY_CONFIG[channelConfiguration] ?? 0;
  if ([1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23].includes(gaType)) {
    // GASpecificConfig()
    if (r.flag()) samplesPerFrame = 960;
    if (r.flag()) r.skip(14); // dependsOnCoreCoder, coreCoderDelay
    r.skip(1); // extensionFlag (what follows it is not needed)
    if (channelConfiguration === 0) channels = pceChannels(r);
  }
  if (freq.rate <= 0)
    throw new RtmpError("CODEC_CONFIG_INVALID", "AudioSpecificConfig has a sampling rate of 0");
  if (channels === 0)
    throw new RtmpError(
      "CODEC_CONFIG_INVALID",
      `AudioSpecificConfig channel configuration ${channelConfiguration} gives no channels`,
    );
  return {
    objectType: aot,
    samplingFrequencyIndex: freq.index,
    sampleRate: freq.rate,
    channelConfiguration,
    channels,
    ...(extensionSampleRate === undefined ? {} : { extensionSampleRate, coreObjectType }),
    samplesPerFrame,
  };
}

/** RFC 6381 codec string for AAC: `mp4a.40.<object type>`. */
export function aacCodecString(objectType: number): string {
  return `mp4a.40.${objectType}`;
}

/** Builds a minimal AudioSpecificConfig (for test kits and synthetic publishers). */
export function buildAudioSpecificConfig(options: {
  objectType?: number;
  sampleRate: number;
  channels: number;
}): Uint8Array {
  const aot = options.objectType ?? 2;
  if (aot < 1 || aot > 30) throw new RangeError(`audio object type ${aot} must be 1..30 for this builder`);
  const index = AAC_SAMPLE_RATES.indexOf(options.sampleRate);
  if (index < 0) throw new RangeError(`sample rate ${options.sampleRate} has no samplingFrequencyIndex`);
  const config = CHANNELS_BY_CONFIG.indexOf(options.channels);
  if (config <= 0) throw new RangeError(`${options.channels} channels have no channelConfiguration`);
  const bits = (aot << 11) | (index << 7) | (config << 3);
  return Uint8Array.of(bits >>> 8, bits & 0xff);
}
