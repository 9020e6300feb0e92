/**
 * Codec configurations of the tracks the packager writes. They mirror the RTMP ingest's config
 * events field for field, so the server maps one onto the other without this package importing
 * the ingest.
 */

/** A video track's codec configuration. */
export interface VideoTrackConfig {
  readonly codec: "h264" | "h265" | "av1";
  /** RFC 6381 codec string as the source announced it (the packager derives its own from `description`). */
  readonly codecString: string;
  /** The avcC / hvcC / av1C record, exactly as the encoder produced it. */
  readonly description: Uint8Array;
  /** Coded size in pixels. */
  readonly width: number;
  readonly height: number;
  /** Frames per second, when the source declared it; otherwise the packager measures it. */
  readonly framerate?: number;
}

/** An audio track's codec configuration. */
export interface AudioTrackConfig {
  readonly codec: "aac";
  /** RFC 6381 codec string as the source announced it. */
  readonly codecString: string;
  /** The AudioSpecificConfig. */
  readonly description: Uint8Array;
  /** Sampling rate in Hz (the ASC's value wins when it differs). */
  readonly sampleRate: number;
  /** Channel count (the ASC's value wins unless it defers to a program config element). */
  readonly channels: number;
}

/** True for an audio configuration. */
export function isAudioTrackConfig(config: VideoTrackConfig | AudioTrackConfig): config is AudioTrackConfig {
  return config.codec === "aac";
}
