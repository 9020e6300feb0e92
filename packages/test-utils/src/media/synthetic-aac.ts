/**
 * Silent AAC-LC without an encoder. A raw_data_block (ISO/IEC 14496-3, 4.4.2.1) whose channel
 * elements each carry a long window with `max_sfb` 0 has no spectral data at all, so every
 * decoder outputs 1024 samples of silence per frame: 4 bytes for mono, 7 for stereo.
 */
import { buildAudioSpecificConfig } from "@lvqr/ingest-rtmp";
import { TestUtilsError } from "../errors.ts";

/** Parameters of a synthetic AAC-LC track. */
export interface SyntheticAacOptions {
  /** 8000..96000, one of the AAC sampling frequencies (default 48000). */
  readonly sampleRate?: number;
  /** 1 (mono) or 2 (stereo, default). */
  readonly channels?: 1 | 2;
}

/** The configuration of a synthetic AAC track. */
export interface SyntheticAacConfig {
  readonly sampleRate: number;
  readonly channels: 1 | 2;
  /** AudioSpecificConfig (AAC-LC). */
  readonly audioSpecificConfig: Uint8Array;
  /** One silent raw AAC frame (1024 samples). */
  readonly silentFrame: Uint8Array;
  /** Duration of one frame in milliseconds (1024 / sampleRate). */
  readonly frameDurationMs: number;
}

class BitPacker {
  readonly #bits: number[] = [];

  u(bits: number, value: number): void {
    for (let i = bits - 1; i >= 0; i--) this.#bits.push((value >>> i) & 1);
  }

  bytes(): Uint8Array {
    while (this.#bits.length % 8 !== 0) this.#bits.push(0);
    const out = new Uint8Array(this.#bits.length / 8);
    for (let i = 0; i < this.#bits.length; i++) out[i >>> 3]! |= this.#bits[i]! << (7 - (i & 7));
    return out;
  }
}

// individual_channel_stream with nothing coded: global_gain, ics_info for one long window with
// max_sfb 0 (so no section, scale factor or spectral data), and no pulse, TNS or gain control.
function writeEmptyChannelStream(p: BitPacker): void {
  p.u(8, 100); // global_gain (any value: there are no coefficients to scale)
  p.u(1, 0); // ics_reserved_bit
  p.u(2, 0); // window_sequence ONLY_LONG_SEQUENCE
  p.u(1, 0); // window_shape
  p.u(6, 0); // max_sfb
  p.u(1, 0); // predictor_data_present
  p.u(1, 0); // pulse_data_present
  p.u(1, 0); // tns_data_present
  p.u(1, 0); // gain_control_data_present
}

/** One silent AAC-LC raw_data_block for 1 or 2 channels. */
export function silentAacFrame(channels: 1 | 2): Uint8Array {
  const p = new BitPacker();
  if (channels === 1) {
    p.u(3, 0); // ID_SCE
    p.u(4, 0); // element_instance_tag
    writeEmptyChannelStream(p);
  } else {
    p.u(3, 1); // ID_CPE
    p.u(4, 0); // element_instance_tag
    p.u(1, 0); // common_window
    writeEmptyChannelStream(p);
    writeEmptyChannelStream(p);
  }
  p.u(3, 7); // ID_END
  return p.bytes();
}

/** The AudioSpecificConfig and silent frame of a synthetic AAC-LC track. */
export function syntheticAacConfig(options: SyntheticAacOptions = {}): SyntheticAacConfig {
  const sampleRate = options.sampleRate ?? 48_000;
  const channels = options.channels ?? 2;
  if (channels !== 1 && channels !== 2) {
    throw new TestUtilsError(
      "TEST_UTILS_INVALID_OPTION",
      `synthetic AAC supports 1 or 2 channels, not ${channels}`,
    );
  }
  let audioSpecificConfig: Uint8Array;
  try {
    audioSpecificConfig = buildAudioSpecificConfig({ sampleRate, channels });
  } catch (error) {
    throw new TestUtilsError(
      "TEST_UTILS_INVALID_OPTION",
      `synthetic AAC sample rate ${sampleRate} is not an AAC sampling frequency (e.g. 44100, 48000)`,
      { cause: error },
    );
  }
  return {
    sampleRate,
    channels,
    audioSpecificConfig,
    silentFrame: silentAacFrame(channels),
    frameDurationMs: (1024 * 1000) / sampleRate,
  };
}
