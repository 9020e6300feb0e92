/**
 * One rendition's timeline (the video or the audio track of a broadcast): CMAF frames go in,
 * parts and segments come out, held in memory for HLS and DASH to serve. Segment numbers
 * (HLS media sequence numbers, DASH `$Number$`) only grow, across republishes too, so a URI always
 * names the same bytes.
 */
import { SegmentBuffer } from "./segment-buffer.ts";
import { type FramePlacement, Segmenter } from "./segmenter.ts";

/** The two kinds of rendition a broadcast projects. */
export type RenditionKind = "video" | "audio";

/** An init segment (ftyp+moov) and what it says about the track. */
export interface InitRecord {
  /** Per-rendition version; increases whenever the init bytes change. */
  readonly version: number;
  readonly bytes: Uint8Array;
  readonly timescale: number;
  /** RFC 6381 codec string, e.g. `avc1.64001f`. */
  readonly codec: string;
  readonly width?: number;
  readonly height?: number;
  readonly sampleRate?: number;
  readonly channels?: number;
}

/** One part: a run of whole frames inside a segment. */
export interface PartRecord {
  /** Index within its segment, from 0. */
  readonly index: number;
  /** Decode time of its first frame (ticks). */
  readonly startDts: number;
  durationTicks: number;
  /** The first frame is a sync sample. */
  readonly independent: boolean;
  /** Final once `closed`; empty before, and once its segment is spilled to disk. */
  bytes: Uint8Array;
  closed: boolean;
  /** Ingest wall-clock time of the first frame, when the publisher provided it. */
  readonly firstIngestMs: number | undefined;
}

/** One segment: its parts, concatenated. */
export interface SegmentRecord {
  /** Media sequence number (HLS) and `$Number$` (DASH). */
  readonly msn: number;
  /** Continuity domain: changes on republish, init change or timestamp jump (a DASH Period). */
  readonly epoch: number;
  /** First segment of a new epoch after an earlier one (EXT-X-DISCONTINUITY). */
  readonly discontinuity: boolean;
  readonly init: InitRecord;
  /** Decode time of the first frame (ticks of `init.timescale`). */
  readonly startDts: number;
  /** Sum of frame durations (ticks). */
  durationTicks: number;
  /** Wall-clock time of the first frame (EXT-X-PROGRAM-DATE-TIME), Unix ms. */
  readonly pdtMs: number;
  /** The first frame is a sync sample. */
  readonly independent: boolean;
  readonly parts: PartRecord[];
  /** Samples in the segment (for the frame rate). */
  samples: number;
  closed: boolean;
  /**
   * All bytes (final once closed; the bytes so far before). Empty once spilled to disk: read
   * a closed segment with `DvrSpill.segmentBytes`.
   */
  bytes: Uint8Array;
  /** Byte length once closed (it stays when the bytes move to disk); 0 while open. */
  size: number;
  /** Where the bytes are when a DVR spill moved them to disk. */
  spilled: SpilledBytes | undefined;
  /** Ingest wall-clock time of the first frame, when the publisher provided it. */
  readonly firstIngestMs: number | undefined;
}

/** Where a spilled segment's bytes are: a file, and each part's byte range in it. */
export interface SpilledBytes {
  readonly file: string;
  /** `[start, end)` of each part, by part index. */
  readonly parts: readonly (readonly [number, number])[];
}

/** One CMAF frame (moof+mdat) with its timing, as read from the Origin. */
export interface EgressFrame extends FramePlacementInput {
  readonly bytes: Uint8Array;
  /** Samples in the fragment. */
  readonly samples: number;
  /** Ingest wall-clock time from in-process frame metadata, when present. */
  readonly ingestTimeMs?: number;
}

interface FramePlacementInput {
  readonly dts: number;
  readonly duration: number;
  readonly keyframe: boolean;
}

/** What one {@link RenditionTimeline.push} changed. */
export interface PushResult {
  /** The segment closed before this frame, if any. */
  readonly closedSegment?: SegmentRecord;
  /** The segment this frame started, if any. */
  readonly startedSegment?: SegmentRecord;
  /** Parts that became complete (0, 1 or 2: the previous part and a single-frame part). */
  readonly closedParts: readonly PartRecord[];
}

/** Settings of a {@link RenditionTimeline}. */
export interface RenditionOptions {
  readonly targetDurationS: number;
  readonly partTargetS: number;
  /** Force a segment break when the open segment holds this many bytes. */
  readonly maxSegmentBytes: number;
  /** Audio: align segment starts with boundaries from the video rendition. */
  readonly aligned: boolean;
}

/** Where a new segment begins in wall-clock and continuity terms; supplied by the broadcast. */
export interface SegmentContext {
  readonly epoch: number;
  readonly discontinuity: boolean;
  readonly pdtMs: number;
}

/**
 * The parts and segments of one rendition. Closed segments are retained oldest-first until the
 * owner evicts them; the open segment is at the end. Part bytes are views into their segment's
 * single buffer.
 */
export class RenditionTimeline {
  readonly kind: RenditionKind;
  readonly #options: RenditionOptions;
  #segmenter: Segmenter | undefined;
  #init: InitRecord | undefined;
  #initVersion = -1;
  /** Closed segments, oldest first. */
  readonly segments: SegmentRecord[] = [];
  /** The open (growing) segment. */
  open: SegmentRecord | undefined;
  #openBuffer: SegmentBuffer | undefined;
  #openPart: PartRecord | undefined;
  #openPartStart = 0;
  #nextMsn: number;
  #lastSegmentBytes = 0;
  /** Bytes of the retained closed segments. */
  #closedBytes = 0;
  /** Longest part ever closed, in seconds (PART-TARGET must cover it). */
  maxPartDurationS = 0;
  /** Longest segment ever closed, in seconds (TARGETDURATION must cover it). */
  maxSegmentDurationS = 0;
  /** Video frames dropped while waiting for a keyframe (at the start, after a break). */
  droppedBeforeKeyframe = 0;
  /** Video only: frames are dropped until a keyframe (a segment must start decodable). */
  #needKeyframe: boolean;
  #aligned: boolean;
  /** Segments evicted so far that carried a discontinuity (EXT-X-DISCONTINUITY-SEQUENCE). */
  evictedDiscontinuities = 0;
  #lastDuration = 0;
  /** Recent frame durations as used (their minimum is the typical frame duration). */
  readonly #recentDurations: number[] = [];
  /** The previous frame, so the next frame's tfdt can settle its duration. */
  #previous: { dts: number; used: number; part: PartRecord; segment: SegmentRecord } | undefined;

  /** An empty timeline whose first segment will get `firstMsn`. */
  constructor(kind: RenditionKind, options: RenditionOptions, firstMsn = 0) {
    this.kind = kind;
    this.#options = options;
    this.#nextMsn = firstMsn;
    this.#needKeyframe = kind === "video";
    this.#aligned = options.aligned;
  }

  /** The current init segment. */
  get init(): InitRecord | undefined {
    return this.#init;
  }

  /** The msn the next segment will get. */
  get nextMsn(): number {
    return this.#nextMsn;
  }

  /** Bytes held: retained closed segments plus the open one. */
  get bytes(): number {
    return this.#closedBytes + (this.#openBuffer?.capacity ?? 0);
  }

  /** Segment timing decisions, for preload-hint prediction. */
  get segmenter(): Segmenter | undefined {
    return this.#segmenter;
  }

  /** The part being filled, if any. */
  get openPart(): PartRecord | undefined {
    return this.#openPart;
  }

  /**
   * Sets the init segment for the frames that follow. Returns the (possibly new) record; a
   * changed init (or timescale) ends the open segment at the next frame.
   */
  setInit(bytes: Uint8Array, info: Omit<InitRecord, "version" | "bytes">): InitRecord {
    const current = this.#init;
    if (current && sameBytes(current.bytes, bytes)) return current;
    this.#initVersion++;
    const record: InitRecord = { ...info, version: this.#initVersion, bytes };
    this.#init = record;
    if (!this.#segmenter || this.#segmenter.timescale !== info.timescale) {
      this.#segmenter = new Segmenter({
        timescale: info.timescale,
        targetDurationS: this.#options.targetDurationS,
        partTargetS: this.#options.partTargetS,
        splitPartsAtKeyframes: this.kind === "video",
        alignToBoundaries: this.#aligned,
      });
    }
    return record;
  }

  /**
   * The next frame starts a new segment, whatever its timing (new epoch, gap). Video frames are
   * skipped until a keyframe, so the new segment starts decodable.
   */
  breakNext(): void {
    this.#segmenter?.forceBreak();
    this.#previous = undefined;
    if (this.kind === "video") this.#needKeyframe = true;
  }

  /** Aligns this timeline's segments with boundaries from another rendition (audio with video), or not. */
  setAligned(aligned: boolean): void {
    this.#aligned = aligned;
    this.#segmenter?.setAligned(aligned);
  }

  /** Aligned (audio) timelines: a segment boundary at `seconds` of media time. */
  addBoundary(seconds: number): void {
    this.#segmenter?.addBoundary(seconds);
  }

  /**
   * Adds one frame. `context` supplies epoch and wall clock when the frame starts a segment.
   */
  push(frame: EgressFrame, context: (startDts: number, timescale: number) => SegmentContext): PushResult {
    const init = this.#init;
    const segmenter = this.#segmenter;
    if (!init || !segmenter) throw new Error("RenditionTimeline.push before setInit");
    if (this.#needKeyframe) {
      if (!frame.keyframe) {
        this.droppedBeforeKeyframe++;
        return { closedParts: [] };
      }
      this.#needKeyframe = false;
    }
    this.#settlePrevious(frame.dts, segmenter);
    const duration = this.#plausibleDuration(frame.duration);
    if (
      this.#openBuffer &&
      this.#openBuffer.length + frame.bytes.byteLength > this.#options.maxSegmentBytes &&
      this.#openBuffer.length > 0
    ) {
      segmenter.forceBreak();
    }
    if (this.open && this.open.init !== init) segmenter.forceBreak();
    const placement: FramePlacement = segmenter.push({ dts: frame.dts, duration, keyframe: frame.keyframe });
    const closedParts: PartRecord[] = [];
    let closedSegment: SegmentRecord | undefined;
    let startedSegment: SegmentRecord | undefined;
    if (placement.startsPart && this.#openPart) {
      const part = this.#closePart();
      if (part) closedParts.push(part);
    }
    if (placement.startsSegment) {
      closedSegment = this.#closeSegment();
      const ctx = context(frame.dts, init.timescale);
      const buffer = new SegmentBuffer(this.#lastSegmentBytes);
      startedSegment = {
        msn: this.#nextMsn++,
        epoch: ctx.epoch,
        discontinuity: ctx.discontinuity,
        init,
        startDts: frame.dts,
        durationTicks: 0,
        pdtMs: ctx.pdtMs,
        independent: frame.keyframe,
        parts: [],
        samples: 0,
        closed: false,
        bytes: new Uint8Array(0),
        size: 0,
        spilled: undefined,
        firstIngestMs: frame.ingestTimeMs,
      };
      this.open = startedSegment;
      this.#openBuffer = buffer;
    }
    const segment = this.open!;
    const buffer = this.#openBuffer!;
    if (placement.startsPart || !this.#openPart) {
      this.#openPart = {
        index: segment.parts.length,
        startDts: frame.dts,
        durationTicks: 0,
        independent: frame.keyframe,
        bytes: new Uint8Array(0),
        closed: false,
        firstIngestMs: frame.ingestTimeMs,
      };
      this.#openPartStart = buffer.length;
      segment.parts.push(this.#openPart);
    }
    buffer.append(frame.bytes);
    segment.bytes = buffer.view();
    segment.durationTicks += duration;
    segment.samples += frame.samples;
    this.#openPart.durationTicks += duration;
    this.#previous = { dts: frame.dts, used: duration, part: this.#openPart, segment };
    if (placement.endsPart) {
      const part = this.#closePart();
      if (part) closedParts.push(part);
    }
    return {
      closedParts,
      ...(closedSegment ? { closedSegment } : {}),
      ...(startedSegment ? { startedSegment } : {}),
    };
  }

  /** Closes the open part and segment (the broadcast ended or changed). Returns what closed. */
  flush(): PushResult {
    const closedParts: PartRecord[] = [];
    if (this.#openPart) {
      const part = this.#closePart();
      if (part) closedParts.push(part);
    }
    const closedSegment = this.#closeSegment();
    this.#segmenter?.forceBreak();
    this.#previous = undefined;
    return { closedParts, ...(closedSegment ? { closedSegment } : {}) };
  }

  /** Drops the oldest closed segment. Returns it (its URIs then 404). */
  evictOldest(): SegmentRecord | undefined {
    const segment = this.segments.shift();
    if (!segment) return undefined;
    this.#closedBytes -= segment.size;
    if (segment.discontinuity) this.evictedDiscontinuities++;
    return segment;
  }

  /** Total duration of the retained closed segments, in seconds. */
  closedDurationS(): number {
    let total = 0;
    for (const segment of this.segments) total += segment.durationTicks / segment.init.timescale;
    return total;
  }

  /**
   * The init bytes of `version` (the current init or a retained segment's). Without a version:
   * version 0 while a retained segment uses it (the unversioned URI names version 0), otherwise
   * the current init.
   */
  findInit(version: number | undefined): Uint8Array | undefined {
    const wanted = version ?? 0;
    const current = this.#init;
    if (current?.version === wanted) return current.bytes;
    for (const segment of this.segments) if (segment.init.version === wanted) return segment.init.bytes;
    if (this.open?.init.version === wanted) return this.open.init.bytes;
    return version === undefined ? current?.bytes : undefined;
  }

  /** The segment with that msn, closed or open, if retained. */
  findSegment(msn: number): SegmentRecord | undefined {
    const open = this.open;
    if (open && open.msn === msn) return open;
    const first = this.segments[0];
    if (!first) return undefined;
    const segment = this.segments[msn - first.msn];
    return segment && segment.msn === msn ? segment : undefined;
  }

  /**
   * Settles the previous frame's duration from this frame's decode time: a writer has to guess the
   * duration of a live frame (the next one has not arrived), but tfdt is exact, so once the next
   * frame is here the part and segment durations follow the timeline players align on.
   */
  #settlePrevious(dts: number, segmenter: Segmenter): void {
    const previous = this.#previous;
    this.#previous = undefined;
    if (!previous) return;
    const actual = dts - previous.dts;
    const delta = actual - previous.used;
    // Within a few frames' worth; anything larger is a gap or a jump, which stays a gap.
    if (actual <= 0 || delta === 0 || Math.abs(delta) > 3 * Math.max(previous.used, this.#typicalDuration()))
      return;
    previous.part.durationTicks += delta;
    previous.segment.durationTicks += delta;
    if (!previous.part.closed) segmenter.adjustPartDuration(delta);
    else this.#noteClosedPart(previous.part, previous.segment);
    if (previous.segment.closed) this.#noteClosedSegment(previous.segment);
  }

  /**
   * The duration to use for a frame: the writer's, unless it is zero (borrow the last) or far
   * longer than the frames before it (a writer that took a gap for the duration, e.g. after
   * dropping frames), which the next frame's tfdt then settles.
   */
  #plausibleDuration(claimed: number): number {
    const typical = this.#typicalDuration();
    let duration = claimed;
    if (duration <= 0) duration = this.#lastDuration;
    else if (this.#recentDurations.length >= 4 && duration > 3 * typical) duration = typical;
    if (duration > 0) {
      this.#lastDuration = duration;
      this.#recentDurations.push(duration);
      if (this.#recentDurations.length > 8) this.#recentDurations.shift();
    }
    return duration;
  }

  #typicalDuration(): number {
    return this.#recentDurations.length > 0 ? Math.min(...this.#recentDurations) : 0;
  }

  #noteClosedPart(part: PartRecord, segment: SegmentRecord): void {
    const seconds = part.durationTicks / segment.init.timescale;
    if (seconds > this.maxPartDurationS) this.maxPartDurationS = seconds;
  }

  #noteClosedSegment(segment: SegmentRecord): void {
    const seconds = segment.durationTicks / segment.init.timescale;
    if (seconds > this.maxSegmentDurationS) this.maxSegmentDurationS = seconds;
  }

  #closePart(): PartRecord | undefined {
    const part = this.#openPart;
    const buffer = this.#openBuffer;
    this.#openPart = undefined;
    if (!part || !buffer) return undefined;
    part.closed = true;
    buffer.track(this.#openPartStart, buffer.length, (view) => {
      part.bytes = view;
    });
    if (this.open) this.#noteClosedPart(part, this.open);
    return part;
  }

  #closeSegment(): SegmentRecord | undefined {
    if (this.#openPart) this.#closePart();
    const segment = this.open;
    const buffer = this.#openBuffer;
    this.open = undefined;
    this.#openBuffer = undefined;
    if (!segment || !buffer) return undefined;
    segment.bytes = buffer.seal();
    segment.size = segment.bytes.byteLength;
    segment.closed = true;
    this.#lastSegmentBytes = segment.size;
    this.#closedBytes += segment.size;
    this.segments.push(segment);
    this.#noteClosedSegment(segment);
    return segment;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
