/**
 * MPEG-DASH MPD text (ISO/IEC 23009-1, live profile): a pure renderer over a plain model, so the
 * exact XML is golden-tested apart from server state. Segments are addressed with
 * `SegmentTemplate` + `SegmentTimeline` (real durations, run-length encoded) and `$Number$`.
 */

/** One segment of a timeline: start and duration in the track timescale. */
export interface TimelineEntry {
  readonly t: number;
  readonly d: number;
}

/** One AdaptationSet with a single Representation. */
export interface AdaptationSetModel {
  readonly id: number;
  readonly contentType: "video" | "audio";
  readonly mimeType: string;
  readonly representationId: string;
  readonly codecs: string;
  /** Peak bits per second. */
  readonly bandwidth: number;
  readonly width?: number;
  readonly height?: number;
  /** Measured frames per second. */
  readonly frameRate?: number;
  readonly sampleRate?: number;
  readonly channels?: number;
  readonly timescale: number;
  readonly presentationTimeOffset: number;
  readonly initialization: string;
  readonly media: string;
  readonly startNumber: number;
  /** Consecutive segments, oldest first (numbers `startNumber`, `startNumber + 1`, …). */
  readonly timeline: readonly TimelineEntry[];
}

/** One Period. */
export interface PeriodModel {
  readonly id: string;
  /** Period start relative to `availabilityStartTime`, seconds. */
  readonly startS: number;
  readonly adaptationSets: readonly AdaptationSetModel[];
}

/** A clock source for clients (`UTCTiming`). */
export interface UtcTimingModel {
  readonly schemeIdUri: string;
  readonly value: string;
}

/** Everything an MPD says. */
export interface MpdModel {
  /** `dynamic` while live; `static` once the broadcast has ended. */
  readonly dynamic: boolean;
  readonly availabilityStartMs: number;
  readonly publishTimeMs: number;
  readonly minBufferTimeS: number;
  /** Dynamic only. */
  readonly minimumUpdatePeriodS: number;
  /** Dynamic only: the DVR window. */
  readonly timeShiftBufferDepthS: number;
  /** Dynamic only. */
  readonly suggestedPresentationDelayS: number;
  readonly maxSegmentDurationS: number;
  /** Static only: total duration. */
  readonly mediaPresentationDurationS?: number;
  readonly periods: readonly PeriodModel[];
  readonly utcTimings: readonly UtcTimingModel[];
}

/** Renders the MPD. */
export function renderMpd(model: MpdModel): string {
  const mpd: Array<[string, string]> = [
    ["xmlns", "urn:mpeg:dash:schema:mpd:2011"],
    ["profiles", "urn:mpeg:dash:profile:isoff-live:2011"],
    ["type", model.dynamic ? "dynamic" : "static"],
  ];
  if (model.dynamic) {
    mpd.push(
      ["availabilityStartTime", isoDate(model.availabilityStartMs)],
      ["publishTime", isoDate(model.publishTimeMs)],
      ["minimumUpdatePeriod", duration(model.minimumUpdatePeriodS)],
      ["timeShiftBufferDepth", duration(model.timeShiftBufferDepthS)],
      ["suggestedPresentationDelay", duration(model.suggestedPresentationDelayS)],
    );
  } else {
    mpd.push(["mediaPresentationDuration", duration(model.mediaPresentationDurationS ?? 0)]);
  }
  mpd.push(["maxSegmentDuration", duration(model.maxSegmentDurationS)]);
  mpd.push(["minBufferTime", duration(model.minBufferTimeS)]);

  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>', `<MPD${attributes(mpd)}>`];
  for (const period of model.periods) {
    out.push(
      `  <Period${attributes([
        ["id", period.id],
        ["start", duration(period.startS)],
      ])}>`,
    );
    for (const set of period.adaptationSets) renderAdaptationSet(out, set);
    out.push("  </Period>");
  }
  for (const timing of model.utcTimings) {
    out.push(
      `  <UTCTiming${attributes([
        ["schemeIdUri", timing.schemeIdUri],
        ["value", timing.value],
      ])}/>`,
    );
  }
  out.push("</MPD>");
  return `${out.join("\n")}\n`;
}

function renderAdaptationSet(out: string[], set: AdaptationSetModel): void {
  const setAttributes: Array<[string, string]> = [
    ["id", String(set.id)],
    ["contentType", set.contentType],
    ["mimeType", set.mimeType],
    ["segmentAlignment", "true"],
    ["startWithSAP", "1"],
  ];
  if (set.contentType === "audio") setAttributes.push(["lang", "und"]);
  out.push(`    <AdaptationSet${attributes(setAttributes)}>`);
  const representation: Array<[string, string]> = [
    ["id", set.representationId],
    ["codecs", set.codecs],
    ["bandwidth", String(Math.max(1, Math.round(set.bandwidth)))],
  ];
  if (set.width && set.height) {
    representation.push(["width", String(set.width)], ["height", String(set.height)]);
  }
  if (set.frameRate !== undefined && set.frameRate > 0)
    representation.push(["frameRate", frameRate(set.frameRate)]);
  if (set.sampleRate) representation.push(["audioSamplingRate", String(set.sampleRate)]);
  out.push(`      <Representation${attributes(representation)}>`);
  if (set.channels) {
    out.push(
      `        <AudioChannelConfiguration${attributes([
        ["schemeIdUri", "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"],
        ["value", String(set.channels)],
      ])}/>`,
    );
  }
  const template: Array<[string, string]> = [
    ["timescale", String(set.timescale)],
    ["presentationTimeOffset", String(set.presentationTimeOffset)],
    ["initialization", set.initialization],
    ["media", set.media],
    ["startNumber", String(set.startNumber)],
  ];
  out.push(`        <SegmentTemplate${attributes(template)}>`);
  out.push("          <SegmentTimeline>");
  for (const run of runLengths(set.timeline)) {
    const s: Array<[string, string]> = [];
    if (run.t !== undefined) s.push(["t", String(run.t)]);
    s.push(["d", String(run.d)]);
    if (run.r > 0) s.push(["r", String(run.r)]);
    out.push(`            <S${attributes(s)}/>`);
  }
  out.push("          </SegmentTimeline>");
  out.push("        </SegmentTemplate>");
  out.push("      </Representation>");
  out.push("    </AdaptationSet>");
}

/** Groups equal consecutive durations into `S@r`; `S@t` only where the timeline is not contiguous. */
function runLengths(timeline: readonly TimelineEntry[]): Array<{ t?: number; d: number; r: number }> {
  const runs: Array<{ t?: number; d: number; r: number }> = [];
  let expected: number | undefined;
  for (const entry of timeline) {
    const last = runs[runs.length - 1];
    const contiguous = expected !== undefined && entry.t === expected;
    if (last && contiguous && last.d === entry.d) {
      last.r++;
    } else {
      runs.push(contiguous ? { d: entry.d, r: 0 } : { t: entry.t, d: entry.d, r: 0 });
    }
    expected = entry.t + entry.d;
  }
  return runs;
}

function attributes(list: ReadonlyArray<readonly [string, string]>): string {
  return list.map(([name, value]) => ` ${name}="${escapeXml(value)}"`).join("");
}

function escapeXml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** xs:duration in seconds with millisecond precision, e.g. `PT2.002S`. */
function duration(seconds: number): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  return `PT${ms % 1000 === 0 ? ms / 1000 : (ms / 1000).toFixed(3)}S`;
}

/** A DASH frame rate: an integer, or a fraction for NTSC-style and other rates. */
function frameRate(fps: number): string {
  const rounded = Math.round(fps);
  if (Math.abs(fps - rounded) < 0.01) return String(rounded);
  const ntsc = Math.round(fps * 1.001);
  if (Math.abs(fps - (ntsc * 1000) / 1001) < 0.01) return `${ntsc * 1000}/1001`;
  return `${Math.round(fps * 1000)}/1000`;
}

function isoDate(ms: number): string {
  return new Date(Math.round(ms)).toISOString();
}
