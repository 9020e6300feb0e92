/**
 * From a broadcast's egress state to LL-HLS playlist models and back: URI naming, which parts a
 * playlist lists, the preload hint, rendition reports, the blocking-reload readiness test, and
 * the measured values of the multivariant playlist.
 */
import type { BroadcastEgress } from "../egress/broadcast.ts";
import { withQuery } from "../egress/http.ts";
import type {
  InitRecord,
  PartRecord,
  RenditionKind,
  RenditionTimeline,
  SegmentRecord,
} from "../egress/rendition.ts";
import type {
  MediaPlaylistModel,
  MultivariantPlaylistModel,
  PlaylistPart,
  PlaylistSegment,
  RenditionReport,
} from "./playlist.ts";

/** URI of a rendition's media playlist. */
export function playlistUri(kind: RenditionKind): string {
  return kind === "video" ? "playlist.m3u8" : "audio.m3u8";
}

/** URI of an init segment version (version 0 is the plain name; later versions add `?v=`). */
export function initUri(kind: RenditionKind, version: number): string {
  const name = kind === "video" ? "init.mp4" : "audio-init.mp4";
  return version === 0 ? name : `${name}?v=${version}`;
}

/** URI of a segment. */
export function segmentUri(kind: RenditionKind, msn: number): string {
  return `${kind === "video" ? "" : "audio-"}seg-${msn}.m4s`;
}

/** URI of a part. */
export function partUri(kind: RenditionKind, msn: number, index: number): string {
  return `${kind === "video" ? "" : "audio-"}part-${msn}-${index}.m4s`;
}

/** Position of the newest available part: what a playlist ends with. */
export interface PartPosition {
  readonly msn: number;
  readonly part: number;
}

/** The newest closed part of a rendition (open segment first, then the last closed segment). */
export function newestPart(rendition: RenditionTimeline): PartPosition | undefined {
  const open = rendition.open;
  if (open) {
    const closed = closedPartCount(open);
    if (closed > 0) return { msn: open.msn, part: closed - 1 };
  }
  const last = rendition.segments[rendition.segments.length - 1];
  return last ? { msn: last.msn, part: last.parts.length - 1 } : undefined;
}

/** Parts of `segment` that are complete (a prefix of its parts). */
export function closedPartCount(segment: SegmentRecord): number {
  const parts = segment.parts;
  let count = parts.length;
  while (count > 0 && !parts[count - 1]!.closed) count--;
  return count;
}

/**
 * Blocking reload (RFC 8216bis §6.2.5.2): true once the playlist contains segment `msn` (complete)
 * or, with `part`, part `part` of segment `msn` or anything later.
 */
export function satisfiesDirective(
  rendition: RenditionTimeline,
  msn: number,
  part: number | undefined,
): boolean {
  if (part === undefined) {
    const last = rendition.segments[rendition.segments.length - 1];
    return last !== undefined && last.msn >= msn;
  }
  const newest = newestPart(rendition);
  if (!newest) return false;
  return newest.msn > msn || (newest.msn === msn && newest.part >= part);
}

/** The part a preload hint names: the one being filled, or the next one expected. */
export function nextPart(rendition: RenditionTimeline): PartPosition {
  const open = rendition.open;
  if (!open) return { msn: rendition.nextMsn, part: 0 };
  const filling = rendition.openPart;
  if (filling) return { msn: open.msn, part: filling.index };
  if (rendition.segmenter?.nextPartLikelyStartsSegment()) return { msn: open.msn + 1, part: 0 };
  return { msn: open.msn, part: open.parts.length };
}

/**
 * True when part (`msn`, `index`) lies beyond the Advance Part Limit (RFC 8216bis §6.2.5.2: three
 * seconds of parts, `3 / PART-TARGET`) past the newest part, so no request should wait for it.
 */
export function beyondAdvancePartLimit(
  rendition: RenditionTimeline,
  msn: number,
  index: number,
  partTargetS: number,
): boolean {
  const limit = Math.ceil(3 / Math.min(partTargetS, 1));
  const newest = newestPart(rendition);
  const newestMsn = newest?.msn ?? rendition.nextMsn - 1;
  const newestIndex = newest?.part ?? -1;
  if (msn < newestMsn) return false;
  return index - (msn === newestMsn ? newestIndex : -1) > limit;
}

/** Looks up a closed part, if retained. */
export function findClosedPart(
  rendition: RenditionTimeline,
  msn: number,
  index: number,
): PartRecord | undefined {
  const part = rendition.findSegment(msn)?.parts[index];
  return part?.closed ? part : undefined;
}

/**
 * True when part (`msn`, `index`) can never exist (so a held request for it should 404): its
 * segment closed with fewer parts, was evicted, or the broadcast ended before producing it.
 */
export function partCannotExist(
  egress: BroadcastEgress,
  rendition: RenditionTimeline,
  msn: number,
  index: number,
): boolean {
  const segment = rendition.findSegment(msn);
  if (segment) return segment.closed && index >= segment.parts.length;
  if (egress.ended) return true;
  const first = rendition.segments[0]?.msn ?? rendition.open?.msn ?? rendition.nextMsn;
  if (msn < first) return true;
  // A segment number already passed without being retained (skipped by a break) never comes back.
  return msn < rendition.nextMsn;
}

/** Rounds a duration up to the precision it is printed with, so printed limits cover printed values. */
function ceilTo(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.ceil(Number((value * scale).toFixed(6))) / scale;
}

/** EXT-X-TARGETDURATION: at least the configured target and ceil of the longest EXTINF ever listed. */
export function targetDurationOf(egress: BroadcastEgress, rendition: RenditionTimeline): number {
  return Math.max(
    Math.ceil(egress.settings.targetDurationS),
    Math.ceil(ceilTo(rendition.maxSegmentDurationS, 5)),
  );
}

/** Options of {@link buildMediaPlaylistModel}. */
export interface MediaPlaylistOptions {
  /** Query string (no `?`) appended to every URI, e.g. credentials. */
  readonly query: string;
}

/** The media playlist model of `kind` in its current state. */
export function buildMediaPlaylistModel(
  egress: BroadcastEgress,
  kind: RenditionKind,
  options: MediaPlaylistOptions,
): MediaPlaylistModel {
  const rendition = egress.rendition(kind);
  const q = (uri: string) => withQuery(uri, options.query);
  const targetDurationS = targetDurationOf(egress, rendition);
  // The longest part actually produced (never above the configured target unless one frame is
  // longer): with 24 fps, 4-frame parts are 167 ms, and every part must be >= 85% of PART-TARGET.
  const partTargetS =
    rendition.maxPartDurationS > 0 ? ceilTo(rendition.maxPartDurationS, 3) : egress.settings.partTargetS;

  const all: SegmentRecord[] = [...rendition.segments];
  const open = rendition.open;
  if (open && closedPartCount(open) > 0) all.push(open);

  const hint = nextPart(rendition);
  // Parts are listed for the last three target durations, and at most the last three segments
  // (the hinted part counts as a segment when it starts one), as RFC 8216bis asks.
  const last = all[all.length - 1];
  let budget = last !== undefined && hint.msn > last.msn ? 2 : 3;
  let partsFrom = all.length;
  let span = 0;
  while (partsFrom > 0 && budget > 0 && span < 3 * targetDurationS) {
    partsFrom--;
    budget--;
    span += seconds(all[partsFrom]!);
  }

  const segments: PlaylistSegment[] = all.map((segment, index) => {
    const parts: PlaylistPart[] | undefined =
      index >= partsFrom
        ? segment.parts
            .filter((part) => part.closed)
            .map((part) => ({
              uri: q(partUri(kind, segment.msn, part.index)),
              durationS: part.durationTicks / segment.init.timescale,
              independent: part.independent,
            }))
        : undefined;
    return {
      msn: segment.msn,
      ...(segment.closed ? { uri: q(segmentUri(kind, segment.msn)) } : {}),
      durationS: seconds(segment),
      pdtMs: segment.pdtMs,
      discontinuity: segment.discontinuity,
      mapUri: q(initUri(kind, segment.init.version)),
      ...(parts ? { parts } : {}),
    };
  });

  const renditionReports: RenditionReport[] = [];
  const siblingKind: RenditionKind = kind === "video" ? "audio" : "video";
  if (egress.serves(siblingKind)) {
    const sibling = newestPart(egress.rendition(siblingKind));
    if (sibling) {
      renditionReports.push({
        uri: q(playlistUri(siblingKind)),
        lastMsn: sibling.msn,
        lastPart: sibling.part,
      });
    }
  }

  const first = all[0];
  return {
    targetDurationS,
    partTargetS,
    partHoldBackS: 3 * partTargetS,
    holdBackS: 3 * targetDurationS,
    canSkipUntilS: 6 * targetDurationS,
    mediaSequence: first ? first.msn : rendition.nextMsn,
    discontinuitySequence: rendition.evictedDiscontinuities,
    independentSegments: all.every((segment) => segment.independent),
    segments,
    ...(egress.ended ? {} : { preloadHintUri: q(partUri(kind, hint.msn, hint.part)) }),
    ended: egress.ended,
    renditionReports,
  };
}

/** Duration of a segment in seconds (so far, for the open one). */
function seconds(segment: SegmentRecord): number {
  return segment.durationTicks / segment.init.timescale;
}

/** Bitrates of a rendition over its retained closed segments: peak and average, bits/s. */
export function measuredBitrates(
  rendition: RenditionTimeline,
): { peak: number; average: number } | undefined {
  let bytes = 0;
  let duration = 0;
  let peak = 0;
  for (const segment of rendition.segments) {
    const s = seconds(segment);
    if (s <= 0) continue;
    bytes += segment.size;
    duration += s;
    peak = Math.max(peak, (segment.size * 8) / s);
  }
  if (duration <= 0) {
    // Nothing closed yet: estimate from the open segment.
    const open = rendition.open;
    const s = open ? seconds(open) : 0;
    if (!open || s <= 0) return undefined;
    const rate = (open.bytes.byteLength * 8) / s;
    return { peak: rate, average: rate };
  }
  return { peak, average: (bytes * 8) / duration };
}

/** Frames per second over the retained closed segments (or the open one). */
export function measuredFrameRate(rendition: RenditionTimeline): number | undefined {
  let samples = 0;
  let duration = 0;
  for (const segment of rendition.segments) {
    samples += segment.samples;
    duration += seconds(segment);
  }
  if (duration <= 0 && rendition.open) {
    samples = rendition.open.samples;
    duration = seconds(rendition.open);
  }
  return duration > 0 ? samples / duration : undefined;
}

/** The multivariant playlist model, measured from the stream. */
export function buildMultivariantModel(
  egress: BroadcastEgress,
  query: string,
): MultivariantPlaylistModel | undefined {
  const q = (uri: string) => withQuery(uri, query);
  const video = egress.serves("video") ? egress.video : undefined;
  const audio = egress.serves("audio") ? egress.audio : undefined;
  if (!video && !audio) return undefined;
  const videoInit: InitRecord | undefined = video?.init;
  const audioInit: InitRecord | undefined = audio?.init;
  const videoRates = video ? measuredBitrates(video) : undefined;
  const audioRates = audio ? measuredBitrates(audio) : undefined;
  const peak = (videoRates?.peak ?? 0) + (audioRates?.peak ?? 0);
  const average = (videoRates?.average ?? 0) + (audioRates?.average ?? 0);
  const frameRate = video ? measuredFrameRate(video) : undefined;
  return {
    ...(video && videoInit
      ? {
          video: {
            uri: q(playlistUri("video")),
            codec: videoInit.codec,
            ...(videoInit.width ? { width: videoInit.width } : {}),
            ...(videoInit.height ? { height: videoInit.height } : {}),
            ...(frameRate ? { frameRate } : {}),
          },
        }
      : {}),
    ...(audio && audioInit
      ? {
          audio: {
            uri: q(playlistUri("audio")),
            codec: audioInit.codec,
            ...(audioInit.channels ? { channels: audioInit.channels } : {}),
          },
        }
      : {}),
    bandwidth: peak > 0 ? peak : 1,
    ...(average > 0 ? { averageBandwidth: average } : {}),
  };
}
