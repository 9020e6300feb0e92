/**
 * From a broadcast's egress state to the DASH MPD model: one Period per epoch (republish, init
 * change), a SegmentTimeline of the real segment durations per rendition, measured codecs, size,
 * frame rate, bandwidth and sample rate, and period starts on the same wall clock as HLS's
 * PROGRAM-DATE-TIME (availabilityStartTime + Period start + media time = ingest wall clock).
 */
import type { BroadcastEgress, EpochRecord } from "../egress/broadcast.ts";
import { withQuery } from "../egress/http.ts";
import type { RenditionKind, SegmentRecord } from "../egress/rendition.ts";
import { measuredBitrates, measuredFrameRate } from "../hls/media-playlist.ts";
import type { AdaptationSetModel, MpdModel, PeriodModel, UtcTimingModel } from "./mpd.ts";

/** URI of a DASH init segment version (later versions add `?v=`). */
export function dashInitUri(kind: RenditionKind, version: number): string {
  const name = `init-${kind}.m4s`;
  return version === 0 ? name : `${name}?v=${version}`;
}

/** Options of {@link buildMpdModel}. */
export interface MpdOptions {
  /** Query string (no `?`) appended to every URI, e.g. credentials. */
  readonly query: string;
  /** Absolute URL of the `http-iso` time source. */
  readonly timeUrl?: string;
  readonly nowMs: number;
}

/** Without a time window: what the byte budget retains right now in every rendition. */
function retainedDurationS(egress: BroadcastEgress): number {
  const retained = [egress.video, egress.audio]
    .filter((rendition) => rendition.segments.length > 0)
    .map((rendition) => rendition.closedDurationS());
  const minimum = 3 * egress.settings.targetDurationS;
  return retained.length === 0 ? minimum : Math.max(minimum, Math.floor(Math.min(...retained)));
}

/** The MPD model of a broadcast in its current state, or undefined before any closed segment. */
export function buildMpdModel(egress: BroadcastEgress, options: MpdOptions): MpdModel | undefined {
  const ast = egress.availabilityStartMs;
  if (ast === undefined) return undefined;
  const settings = egress.settings;
  const periods: PeriodModel[] = [];
  let maxSegmentS = settings.targetDurationS;
  let endS = 0;
  for (const epoch of egress.epochs) {
    const startS = Math.max(0, (epoch.anchorMs + epoch.startS * 1000 - ast) / 1000);
    const sets: AdaptationSetModel[] = [];
    for (const kind of ["video", "audio"] as const) {
      const segments = egress.rendition(kind).segments.filter((segment) => segment.epoch === epoch.id);
      if (segments.length === 0) continue;
      const set = adaptationSet(egress, kind, epoch, segments, options.query);
      sets.push(set);
      for (const segment of segments)
        maxSegmentS = Math.max(maxSegmentS, segment.durationTicks / segment.init.timescale);
      const last = segments[segments.length - 1]!;
      const lastEnd = (last.startDts + last.durationTicks - set.presentationTimeOffset) / set.timescale;
      endS = Math.max(endS, startS + lastEnd);
    }
    if (sets.length > 0) periods.push({ id: `p${epoch.id}`, startS, adaptationSets: sets });
  }
  if (periods.length === 0) return undefined;
  const utcTimings: UtcTimingModel[] = [];
  if (options.timeUrl)
    utcTimings.push({ schemeIdUri: "urn:mpeg:dash:utc:http-iso:2014", value: options.timeUrl });
  utcTimings.push({
    schemeIdUri: "urn:mpeg:dash:utc:direct:2014",
    value: new Date(options.nowMs).toISOString(),
  });
  const dynamic = !egress.ended;
  // The longest segment ever seen (not just retained), so the delay does not shrink back and forth.
  const longestEverS = Math.max(
    maxSegmentS,
    egress.video.maxSegmentDurationS,
    egress.audio.maxSegmentDurationS,
  );
  return {
    dynamic,
    availabilityStartMs: ast,
    publishTimeMs: options.nowMs,
    minBufferTimeS: settings.targetDurationS,
    minimumUpdatePeriodS: settings.targetDurationS / 2,
    timeShiftBufferDepthS: settings.dvrWindowS || retainedDurationS(egress),
    // Segments are listed once complete: stay a segment and a half plus an MPD refresh behind.
    suggestedPresentationDelayS: Math.max(
      2 * settings.targetDurationS,
      Math.ceil((1.5 * longestEverS + settings.targetDurationS / 2) * 10) / 10,
    ),
    maxSegmentDurationS: Math.ceil(maxSegmentS * 1000) / 1000,
    ...(dynamic ? {} : { mediaPresentationDurationS: endS }),
    periods,
    utcTimings: dynamic ? utcTimings : [],
  };
}

function adaptationSet(
  egress: BroadcastEgress,
  kind: RenditionKind,
  epoch: EpochRecord,
  segments: readonly SegmentRecord[],
  query: string,
): AdaptationSetModel {
  const rendition = egress.rendition(kind);
  const init = segments[0]!.init;
  const timescale = init.timescale;
  const rates = measuredBitrates(rendition);
  const common = {
    representationId: kind,
    codecs: init.codec,
    bandwidth: rates?.peak ?? 1,
    timescale,
    presentationTimeOffset: Math.round(epoch.startS * timescale),
    initialization: withQuery(dashInitUri(kind, init.version), query),
    media: withQuery(`seg-${kind}-$Number$.m4s`, query),
    startNumber: segments[0]!.msn,
    timeline: segments.map((segment) => ({ t: segment.startDts, d: segment.durationTicks })),
  };
  if (kind === "video") {
    const frameRate = measuredFrameRate(rendition);
    return {
      id: 0,
      contentType: "video",
      mimeType: "video/mp4",
      ...common,
      ...(init.width ? { width: init.width } : {}),
      ...(init.height ? { height: init.height } : {}),
      ...(frameRate ? { frameRate } : {}),
    };
  }
  return {
    id: 1,
    contentType: "audio",
    mimeType: "audio/mp4",
    ...common,
    ...(init.sampleRate ? { sampleRate: init.sampleRate } : {}),
    ...(init.channels ? { channels: init.channels } : {}),
  };
}
