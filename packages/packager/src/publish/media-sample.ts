/** The media samples a {@link BroadcastPublisher} packages; they mirror the RTMP ingest's sample events. */

/** One coded frame. */
export interface MediaSample {
  /** Decode time in milliseconds on the source's monotonic timeline (RTMP gives whole ms). */
  readonly dts: number;
  /** Presentation time in milliseconds (equals `dts` for audio). */
  readonly pts: number;
  /** Random access point; every AAC frame is one. */
  readonly keyframe: boolean;
  /** Length-prefixed NAL units (H.264/H.265, length size from the config), OBUs (AV1) or one raw AAC frame. */
  readonly data: Uint8Array;
  /** Unix ms at which the frame was ingested; defaults to the publisher's clock on arrival. */
  readonly ingestTimeMs?: number;
  /** The source rebased its timeline before this sample (its timestamps are not continuous with the last). */
  readonly discontinuity?: boolean;
}
