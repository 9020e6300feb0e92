/**
 * LL-HLS playlist text (RFC 8216bis): pure renderers over plain models, so the exact text is
 * golden-tested apart from any server state. The media playlist carries parts for the live edge,
 * PROGRAM-DATE-TIME on every segment, discontinuities, a preload hint, rendition reports and, on
 * request, a delta update (EXT-X-SKIP).
 */

/** One EXT-X-PART. */
export interface PlaylistPart {
  readonly uri: string;
  readonly durationS: number;
  readonly independent: boolean;
}

/** One segment of a media playlist: closed (with a URI) or the open one at the live edge. */
export interface PlaylistSegment {
  readonly msn: number;
  /** Segment URI; absent for the open segment, which is listed by its parts only. */
  readonly uri?: string;
  /** EXTINF duration (closed segments). */
  readonly durationS: number;
  /** EXT-X-PROGRAM-DATE-TIME, Unix ms. */
  readonly pdtMs: number;
  readonly discontinuity: boolean;
  /** EXT-X-MAP URI in force for this segment (emitted when it differs from the previous one). */
  readonly mapUri: string;
  /** Parts to list (the last few segments and the open one); undefined lists none. */
  readonly parts?: readonly PlaylistPart[];
}

/** EXT-X-RENDITION-REPORT for a sibling rendition. */
export interface RenditionReport {
  readonly uri: string;
  readonly lastMsn: number;
  readonly lastPart?: number;
}

/** Everything a media playlist says. */
export interface MediaPlaylistModel {
  /** EXT-X-TARGETDURATION (integer seconds). */
  readonly targetDurationS: number;
  /** EXT-X-PART-INF PART-TARGET in seconds (≥ every listed part). */
  readonly partTargetS: number;
  /** EXT-X-SERVER-CONTROL PART-HOLD-BACK in seconds. */
  readonly partHoldBackS: number;
  /** EXT-X-SERVER-CONTROL HOLD-BACK in seconds (≥ 3 × target duration). */
  readonly holdBackS: number;
  /** EXT-X-SERVER-CONTROL CAN-SKIP-UNTIL in seconds (≥ 6 × target duration). */
  readonly canSkipUntilS: number;
  readonly mediaSequence: number;
  readonly discontinuitySequence: number;
  /** EXT-X-INDEPENDENT-SEGMENTS: every segment starts with a sync sample. */
  readonly independentSegments: boolean;
  /** Oldest first; an open segment (no `uri`) may come last. */
  readonly segments: readonly PlaylistSegment[];
  /** EXT-X-PRELOAD-HINT part URI (live only). */
  readonly preloadHintUri?: string;
  /** EXT-X-ENDLIST. */
  readonly ended: boolean;
  readonly renditionReports: readonly RenditionReport[];
}

/** A delta-update request (`_HLS_skip=YES` or `_HLS_skip=v2`). */
export type SkipRequest = "YES" | "v2";

/** How many segments a delta update for `model` would skip (0: send the full playlist). */
export function countSkippableSegments(model: MediaPlaylistModel): number {
  let total = 0;
  for (const segment of model.segments) total += segmentSpan(segment);
  let skipped = 0;
  let elapsed = 0;
  for (const segment of model.segments) {
    // Only closed segments that begin before the skip boundary (measured from the playlist's end).
    if (segment.uri === undefined || total - elapsed <= model.canSkipUntilS) break;
    elapsed += segmentSpan(segment);
    skipped++;
  }
  return skipped;
}

/** Renders a media playlist; with `skip`, a delta update that replaces old segments by EXT-X-SKIP. */
export function renderMediaPlaylist(model: MediaPlaylistModel, skip?: SkipRequest): string {
  const skipped = skip === undefined || model.ended ? 0 : countSkippableSegments(model);
  const lines: string[] = [
    "#EXTM3U",
    // Version 9 covers EXT-X-SKIP; skipping date ranges (v2) needs 10.
    `#EXT-X-VERSION:${skipped > 0 && skip === "v2" ? 10 : 9}`,
    `#EXT-X-TARGETDURATION:${model.targetDurationS}`,
  ];
  if (model.independentSegments) lines.push("#EXT-X-INDEPENDENT-SEGMENTS");
  if (!model.ended) {
    lines.push(
      // No EXT-X-DATERANGE is ever emitted, so skipping date ranges (v2) is trivially supported.
      `#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=${decimal(model.canSkipUntilS, 3)}` +
        `,CAN-SKIP-DATERANGES=YES,HOLD-BACK=${decimal(model.holdBackS, 3)}` +
        `,PART-HOLD-BACK=${decimal(model.partHoldBackS, 3)}`,
    );
  }
  lines.push(`#EXT-X-PART-INF:PART-TARGET=${decimal(model.partTargetS, 3)}`);
  lines.push(`#EXT-X-MEDIA-SEQUENCE:${model.mediaSequence}`);
  // Before EXT-X-SKIP: players count the skip as segments, and this tag must precede them.
  lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${model.discontinuitySequence}`);
  if (skipped > 0) {
    lines.push(
      skip === "v2"
        ? `#EXT-X-SKIP:SKIPPED-SEGMENTS=${skipped},RECENTLY-REMOVED-DATERANGES=""`
        : `#EXT-X-SKIP:SKIPPED-SEGMENTS=${skipped}`,
    );
  }
  let mapUri: string | undefined;
  for (let i = skipped; i < model.segments.length; i++) {
    const segment = model.segments[i]!;
    // A skipped segment's DISCONTINUITY is skipped with it (the client already has it).
    if (segment.discontinuity) lines.push("#EXT-X-DISCONTINUITY");
    if (segment.mapUri !== mapUri) {
      lines.push(`#EXT-X-MAP:URI="${segment.mapUri}"`);
      mapUri = segment.mapUri;
    }
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${isoDate(segment.pdtMs)}`);
    for (const part of segment.parts ?? []) {
      lines.push(
        `#EXT-X-PART:DURATION=${decimal(part.durationS, 5)},URI="${part.uri}"${part.independent ? ",INDEPENDENT=YES" : ""}`,
      );
    }
    if (segment.uri !== undefined) {
      lines.push(`#EXTINF:${decimal(segment.durationS, 5)},`, segment.uri);
    }
  }
  if (model.ended) {
    lines.push("#EXT-X-ENDLIST");
  } else if (model.preloadHintUri !== undefined) {
    lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${model.preloadHintUri}"`);
  }
  if (!model.ended) {
    for (const report of model.renditionReports) {
      lines.push(
        `#EXT-X-RENDITION-REPORT:URI="${report.uri}",LAST-MSN=${report.lastMsn}` +
          (report.lastPart === undefined ? "" : `,LAST-PART=${report.lastPart}`),
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

/** The video variant of a multivariant playlist. */
export interface VariantVideo {
  readonly uri: string;
  readonly codec: string;
  readonly width?: number;
  readonly height?: number;
  readonly frameRate?: number;
}

/** The audio rendition of a multivariant playlist. */
export interface VariantAudio {
  readonly uri: string;
  readonly codec: string;
  readonly channels?: number;
}

/** Everything a multivariant (master) playlist says. */
export interface MultivariantPlaylistModel {
  readonly video?: VariantVideo;
  readonly audio?: VariantAudio;
  /** Peak bits per second of the variant (video + audio). */
  readonly bandwidth: number;
  /** Average bits per second of the variant, when measured. */
  readonly averageBandwidth?: number;
}

/** Renders the multivariant playlist: one variant, with audio as an EXT-X-MEDIA group. */
export function renderMultivariantPlaylist(model: MultivariantPlaylistModel): string {
  const lines = ["#EXTM3U", "#EXT-X-VERSION:9", "#EXT-X-INDEPENDENT-SEGMENTS"];
  const { video, audio } = model;
  const attributes = [`BANDWIDTH=${Math.max(1, Math.round(model.bandwidth))}`];
  if (model.averageBandwidth !== undefined) {
    attributes.push(`AVERAGE-BANDWIDTH=${Math.max(1, Math.round(model.averageBandwidth))}`);
  }
  const codecs = [video?.codec, audio?.codec].filter((codec) => codec !== undefined);
  attributes.push(`CODECS="${codecs.join(",")}"`);
  if (video) {
    if (video.width && video.height) attributes.push(`RESOLUTION=${video.width}x${video.height}`);
    if (video.frameRate !== undefined && video.frameRate > 0) {
      attributes.push(`FRAME-RATE=${decimal(video.frameRate, 3)}`);
    }
    if (audio) {
      const channels = audio.channels ? `,CHANNELS="${audio.channels}"` : "";
      lines.push(
        `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="default",DEFAULT=YES,AUTOSELECT=YES${channels},URI="${audio.uri}"`,
      );
      attributes.push(`AUDIO="audio"`);
    }
    lines.push(`#EXT-X-STREAM-INF:${attributes.join(",")}`, video.uri);
  } else if (audio) {
    lines.push(`#EXT-X-STREAM-INF:${attributes.join(",")}`, audio.uri);
  }
  return `${lines.join("\n")}\n`;
}

/** Media time a segment spans in the playlist (its parts for the open one). */
function segmentSpan(segment: PlaylistSegment): number {
  if (segment.uri !== undefined) return segment.durationS;
  let total = 0;
  for (const part of segment.parts ?? []) total += part.durationS;
  return total;
}

/** Fixed-point decimal with `digits` fraction digits. */
function decimal(value: number, digits: number): string {
  return value.toFixed(digits);
}

/** ISO 8601 UTC with millisecond precision. */
export function isoDate(ms: number): string {
  return new Date(Math.round(ms)).toISOString();
}
