/**
 * The egress state of one broadcast path: its video and audio timelines, continuity epochs
 * (republish, init change, timestamp jump), the wall clock that maps media time to
 * PROGRAM-DATE-TIME and DASH availability, DVR eviction, and the signal that held requests wait
 * on. It outlives the broadcast instances published at its path, so a republish continues the
 * same numbering with a discontinuity instead of starting over (or staying ended).
 */
import { ChangeSignal } from "./change-signal.ts";
import type { DvrSpill } from "./dvr-spill.ts";
import {
  type EgressFrame,
  type InitRecord,
  type PartRecord,
  type PushResult,
  type RenditionKind,
  RenditionTimeline,
  type SegmentContext,
  type SegmentRecord,
} from "./rendition.ts";

/** Timing and retention settings shared by HLS and DASH. */
export interface EgressSettings {
  /** Minimum segment duration (segments close at the first keyframe at or after it). Default 2. */
  readonly targetDurationS: number;
  /** Part target. Default 0.2. */
  readonly partTargetS: number;
  /** Sliding DVR window; 0 for no time limit (the byte budget alone bounds it). Default 120. */
  readonly dvrWindowS: number;
  /** Byte budget per broadcast; the oldest segments are evicted past it. Default 64 MiB. */
  readonly maxBytesPerBroadcast: number;
}

/** Default {@link EgressSettings}. */
export const DEFAULT_EGRESS_SETTINGS: EgressSettings = {
  targetDurationS: 2,
  partTargetS: 0.2,
  dvrWindowS: 120,
  maxBytesPerBroadcast: 64 * 1024 * 1024,
};

/** A continuity domain: one DASH Period, one run of segments between HLS discontinuities. */
export interface EpochRecord {
  readonly id: number;
  /** Wall-clock Unix ms of media time 0 on this epoch's clock. */
  readonly anchorMs: number;
  /** Media time (seconds) at which the epoch's first segment starts. */
  readonly startS: number;
}

/** Observers of a broadcast's output (latency samples, metrics). */
export interface EgressListener {
  /** A part became available. */
  part?(broadcast: BroadcastEgress, rendition: RenditionTimeline, part: PartRecord): void;
  /** A segment became available. */
  segment?(broadcast: BroadcastEgress, rendition: RenditionTimeline, segment: SegmentRecord): void;
}

/** Calls an observer; a throwing observer (a metrics hook) must not break the media path. */
function notifyListener(call: () => void): void {
  try {
    call();
  } catch {
    // Observers report; they cannot veto. Nothing to do with the error here.
  }
}

/** Timestamps further than this from the previous frame's end start a new epoch. */
const TIMESTAMP_JUMP_S = 10;
/** Closed segments a rendition keeps even over the byte budget (a playable minimum). */
const MIN_SEGMENTS_OVER_BUDGET = 2;

/** Init segment facts as parsed from the bytes. */
export interface InitFacts {
  readonly timescale: number;
  readonly codec: string;
  readonly width?: number;
  readonly height?: number;
  readonly sampleRate?: number;
  readonly channels?: number;
}

/**
 * Egress state of one broadcast path. The follower feeds it ({@link BroadcastEgress.beginInstance},
 * {@link BroadcastEgress.setInit}, {@link BroadcastEgress.pushFrame}, {@link BroadcastEgress.end});
 * HLS and DASH read it.
 */
export class BroadcastEgress {
  readonly path: string;
  readonly settings: EgressSettings;
  readonly video: RenditionTimeline;
  readonly audio: RenditionTimeline;
  /** Wakes held requests after every visible change. */
  readonly signal: ChangeSignal = new ChangeSignal();
  /** Retained epochs, oldest first. */
  readonly epochs: EpochRecord[] = [];
  /** True between the end of a broadcast instance and the next publish at this path. */
  ended = false;
  /** True once any broadcast instance has been attached. */
  started = false;
  /** Wall clock (Unix ms) of the first epoch's start: DASH `availabilityStartTime`. */
  availabilityStartMs: number | undefined;
  /** Frames that could not be used (malformed, or before their init). */
  droppedFrames = 0;
  #epoch: EpochRecord | undefined;
  #version = 0;
  #nextEpochId = 0;
  /** False when the next epoch needs a new clock anchor (new instance, timestamp jump). */
  #clockValid = false;
  /** Epoch of each rendition's newest segment, or -1. */
  readonly #renditionEpoch: Record<RenditionKind, number> = { video: -1, audio: -1 };
  readonly #lastEnd: Record<RenditionKind, number> = { video: Number.NaN, audio: Number.NaN };
  readonly #listeners: ReadonlySet<EgressListener>;
  /** Whether each rendition carries media in the current instance (catalog says so). */
  readonly #present: Record<RenditionKind, boolean> = { video: false, audio: false };
  readonly #spill: DvrSpill | undefined;

  /**
   * Empty state for `path`; numbering starts at `firstMsn` (continuing a forgotten predecessor).
   * With a `spill`, closed segments behind the live edge move to disk.
   */
  constructor(
    path: string,
    settings: EgressSettings,
    listeners: ReadonlySet<EgressListener>,
    firstMsn: { video: number; audio: number } = { video: 0, audio: 0 },
    spill?: DvrSpill,
  ) {
    this.path = path;
    this.settings = settings;
    this.#listeners = listeners;
    this.#spill = spill;
    const options = {
      targetDurationS: settings.targetDurationS,
      partTargetS: settings.partTargetS,
      maxSegmentBytes: Math.max(1024 * 1024, Math.floor(settings.maxBytesPerBroadcast / 4)),
    };
    this.video = new RenditionTimeline("video", { ...options, aligned: false }, firstMsn.video);
    // Audio aligns with video once the catalog shows video; an audio-only broadcast does not wait for it.
    this.audio = new RenditionTimeline("audio", { ...options, aligned: false }, firstMsn.audio);
  }

  /** Increases with every change a playlist or manifest could show (a cache key for renders). */
  get version(): number {
    return this.#version;
  }

  #changed(): void {
    this.#version++;
    this.signal.notify();
  }

  /** The timeline of `kind`. */
  rendition(kind: RenditionKind): RenditionTimeline {
    return kind === "video" ? this.video : this.audio;
  }

  /** True when the current instance's catalog lists a rendition of `kind` with a usable init. */
  has(kind: RenditionKind): boolean {
    return this.#present[kind] && this.rendition(kind).init !== undefined;
  }

  /** True when `kind` has anything to serve (present now, or retained from earlier). */
  serves(kind: RenditionKind): boolean {
    const rendition = this.rendition(kind);
    return rendition.init !== undefined && (this.#present[kind] || rendition.segments.length > 0);
  }

  /**
   * True when the broadcast has ended, or it serves at least one rendition and every rendition it
   * serves has a complete segment. Manifests wait for this (briefly): a player handed a rendition
   * with no segment yet may stall or, in ffmpeg's case, crash.
   */
  hasFirstSegments(): boolean {
    if (this.ended) return true;
    const video = this.serves("video");
    const audio = this.serves("audio");
    return (
      (video || audio) &&
      (!video || this.video.segments.length > 0) &&
      (!audio || this.audio.segments.length > 0)
    );
  }

  /** The epoch with that id, if retained. */
  epochById(id: number): EpochRecord | undefined {
    return this.epochs.find((epoch) => epoch.id === id);
  }

  /**
   * A new broadcast instance is published at this path (first publish or republish): the open
   * segments close, the next ones start a new epoch on a new clock, and the path is live again.
   */
  beginInstance(): void {
    this.#finishOpen();
    this.ended = false;
    this.started = true;
    this.#present.video = false;
    this.#present.audio = false;
    this.#newEpoch(true);
    this.#changed();
  }

  /** Marks whether the current instance carries `kind` (from its catalog). */
  setPresent(kind: RenditionKind, present: boolean): void {
    if (kind === "video") this.audio.setAligned(present);
    if (this.#present[kind] === present) return;
    this.#present[kind] = present;
    this.#changed();
  }

  /**
   * Sets `kind`'s init segment. A changed init within an instance starts a new epoch for every
   * rendition (HLS discontinuity, DASH Period) on the same clock.
   */
  setInit(kind: RenditionKind, bytes: Uint8Array, facts: InitFacts): InitRecord {
    const rendition = this.rendition(kind);
    const before = rendition.init;
    const record = rendition.setInit(bytes, facts);
    this.#present[kind] = true;
    if (kind === "video") this.audio.setAligned(true);
    if (before !== undefined && record !== before && this.#hasMediaInInstance()) {
      this.#finishOpen();
      this.#newEpoch(false);
    }
    this.#changed();
    return record;
  }

  /** Adds one frame to `kind`'s timeline. Frames before that rendition's init are dropped. */
  pushFrame(kind: RenditionKind, frame: EgressFrame, arrivalMs: number = Date.now()): void {
    const rendition = this.rendition(kind);
    const init = rendition.init;
    if (!init || this.ended) {
      this.droppedFrames++;
      return;
    }
    const lastEnd = this.#lastEnd[kind];
    const jump = TIMESTAMP_JUMP_S * init.timescale;
    if (!Number.isNaN(lastEnd) && (frame.dts < lastEnd - jump / 10 || frame.dts > lastEnd + jump)) {
      // The publisher's clock jumped (restarted encoder, spliced source): new epoch, new clock.
      this.#finishOpen();
      this.#newEpoch(true);
    }
    this.#lastEnd[kind] = frame.dts + Math.max(frame.duration, 0);
    const result = rendition.push(frame, (startDts, timescale) =>
      this.#segmentContext(kind, startDts, timescale, frame.ingestTimeMs ?? arrivalMs),
    );
    this.#afterPush(rendition, result);
  }

  /** The broadcast instance ended: close what is open and serve the result as ended (ENDLIST, static MPD). */
  end(): void {
    if (this.ended) return;
    this.#finishOpen();
    this.ended = true;
    this.#changed();
  }

  /** Wall-clock Unix ms of media time `seconds` in `epoch`. */
  wallClockMs(epoch: EpochRecord, seconds: number): number {
    return epoch.anchorMs + seconds * 1000;
  }

  /** Total bytes held (both renditions), in memory and spilled to disk. */
  get bytes(): number {
    return this.video.bytes + this.audio.bytes;
  }

  /** The part of {@link BroadcastEgress.bytes} spilled to disk. */
  get bytesOnDisk(): number {
    let total = 0;
    for (const rendition of [this.video, this.audio]) {
      for (const segment of rendition.segments) if (segment.spilled) total += segment.size;
    }
    return total;
  }

  #hasMediaInInstance(): boolean {
    return this.video.open !== undefined || this.audio.open !== undefined;
  }

  /** The next segment of every rendition starts a new epoch; `resetClock` for a new time base. */
  #newEpoch(resetClock: boolean): void {
    this.#epoch = undefined;
    if (resetClock) this.#clockValid = false;
    this.#lastEnd.video = Number.NaN;
    this.#lastEnd.audio = Number.NaN;
    this.video.breakNext();
    this.audio.breakNext();
  }

  #segmentContext(
    kind: RenditionKind,
    startDts: number,
    timescale: number,
    ingestMs: number,
  ): SegmentContext {
    const seconds = startDts / timescale;
    let epoch = this.#epoch;
    if (!epoch) {
      // The first segment of an epoch fixes its clock: PDT = anchor + media time, with no summing.
      const previous = this.epochs[this.epochs.length - 1];
      const anchorMs = this.#clockValid && previous ? previous.anchorMs : ingestMs - seconds * 1000;
      epoch = { id: this.#nextEpochId++, anchorMs, startS: seconds };
      this.epochs.push(epoch);
      this.#epoch = epoch;
      this.#clockValid = true;
      if (this.availabilityStartMs === undefined) this.availabilityStartMs = this.wallClockMs(epoch, seconds);
    }
    const previousEpoch = this.#renditionEpoch[kind];
    const discontinuity = previousEpoch >= 0 && previousEpoch !== epoch.id;
    this.#renditionEpoch[kind] = epoch.id;
    return { epoch: epoch.id, discontinuity, pdtMs: this.wallClockMs(epoch, seconds) };
  }

  #afterPush(rendition: RenditionTimeline, result: PushResult): void {
    let changed = result.closedParts.length > 0;
    if (result.closedSegment) {
      changed = true;
      this.#segmentClosed(rendition, result.closedSegment);
    }
    if (result.startedSegment) {
      changed = true;
      if (rendition.kind === "video") {
        const init = result.startedSegment.init;
        this.audio.addBoundary(result.startedSegment.startDts / init.timescale);
      }
    }
    for (const part of result.closedParts) {
      for (const listener of this.#listeners) notifyListener(() => listener.part?.(this, rendition, part));
    }
    // Every frame can change what a playlist shows (the preload hint follows the open part), but
    // only completed parts and segments are worth waking held requests for.
    this.#version++;
    if (changed) this.signal.notify();
  }

  #segmentClosed(rendition: RenditionTimeline, segment: SegmentRecord): void {
    for (const listener of this.#listeners)
      notifyListener(() => listener.segment?.(this, rendition, segment));
    this.#evict();
    this.#spill?.spillOlderThanLiveEdge(rendition.segments);
  }

  /** Drops every retained segment's file, if spilled (the hub forgot this broadcast). */
  releaseSpilled(): void {
    const spill = this.#spill;
    if (!spill) return;
    for (const rendition of [this.video, this.audio]) {
      for (const segment of rendition.segments) spill.release(segment);
    }
  }

  #finishOpen(): void {
    for (const rendition of [this.video, this.audio]) {
      const result = rendition.flush();
      this.#afterPush(rendition, result);
    }
  }

  /** Applies the DVR window per rendition, then the byte budget across both. */
  #evict(): void {
    const window = this.settings.dvrWindowS;
    for (const rendition of window > 0 ? [this.video, this.audio] : []) {
      while (rendition.segments.length > 1) {
        const oldest = rendition.segments[0]!;
        const oldestS = oldest.durationTicks / oldest.init.timescale;
        if (rendition.closedDurationS() - oldestS < window) break;
        this.#release(rendition.evictOldest());
      }
    }
    const budget = this.settings.maxBytesPerBroadcast;
    while (this.bytes > budget) {
      let victim: RenditionTimeline | undefined;
      for (const rendition of [this.video, this.audio]) {
        if (rendition.segments.length <= MIN_SEGMENTS_OVER_BUDGET) continue;
        if (!victim || rendition.segments[0]!.pdtMs < victim.segments[0]!.pdtMs) victim = rendition;
      }
      if (!victim) break;
      this.#release(victim.evictOldest());
    }
    this.#dropUnusedEpochs();
  }

  #release(segment: SegmentRecord | undefined): void {
    if (segment) this.#spill?.release(segment);
  }

  #dropUnusedEpochs(): void {
    const used = new Set<number>();
    for (const rendition of [this.video, this.audio]) {
      for (const segment of rendition.segments) used.add(segment.epoch);
      if (rendition.open) used.add(rendition.open.epoch);
    }
    for (let i = this.epochs.length - 1; i >= 0; i--) {
      const epoch = this.epochs[i]!;
      if (epoch === this.#epoch || used.has(epoch.id)) continue;
      this.epochs.splice(i, 1);
    }
  }
}
