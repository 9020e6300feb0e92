/** The media events a publish session emits: parsed codec configurations and samples. */

/** Video codec configuration, parsed from the FLV sequence header. */
export interface VideoConfig {
  readonly kind: "video";
  readonly codec: "h264" | "h265" | "av1";
  /** RFC 6381 codec string: "avc1.64001f", "hvc1.1.6.L93.B0", "av01.0.08M.08". */
  readonly codecString: string;
  /** The avcC / hvcC / av1C record exactly as received. */
  readonly description: Uint8Array;
  /** Display size from the SPS / sequence header (0 when the record carries none). */
  readonly width: number;
  readonly height: number;
  /** NAL unit length-prefix size (1, 2 or 4) from the avcC/hvcC; absent for AV1. */
  readonly nalLengthSize?: number;
}

/** Audio codec configuration, parsed from the AudioSpecificConfig (not the FLV flags). */
export interface AudioConfig {
  readonly kind: "audio";
  readonly codec: "aac";
  /** RFC 6381 codec string: "mp4a.40.2". */
  readonly codecString: string;
  /** The AudioSpecificConfig bytes exactly as received. */
  readonly description: Uint8Array;
  /** MPEG-4 audio object type (2 = AAC-LC, 5 = HE-AAC, 29 = HE-AACv2). */
  readonly objectType: number;
  /** Sampling rate of the core decoder, in Hz. */
  readonly sampleRate: number;
  readonly channels: number;
  /** Samples per frame at `sampleRate` (1024, or 960 for the short frame length). */
  readonly samplesPerFrame: number;
}

/** A parsed codec configuration. */
export type MediaConfig = VideoConfig | AudioConfig;

/** One coded frame. */
export interface MediaSample {
  readonly kind: "video" | "audio";
  /** Decode time in milliseconds on the publish's monotonic, wrap-free timeline. */
  readonly dts: number;
  /** Presentation time in milliseconds (dts + composition offset; equals dts for audio). */
  readonly pts: number;
  /** Random access point (audio: always true). */
  readonly keyframe: boolean;
  /**
   * Zero-copy view of the payload: length-prefixed NAL units (H.264/H.265), OBUs (AV1), or one
   * raw AAC frame. It stays valid; the ingest never reuses the memory behind it.
   */
  readonly data: Uint8Array;
  /** `Date.now()` when the tag was parsed, for latency tracking. */
  readonly ingestTimeMs: number;
  /** Set on the first sample after the timeline was rebased (a backwards or large forward jump). */
  readonly discontinuity?: boolean;
}
