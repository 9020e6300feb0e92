/**
 * The LL-HLS / DASH segmenter: a pure state machine over frame timings. It decides, frame by
 * frame, where parts and segments begin and end; it never touches bytes, so it is cheap to test
 * exhaustively and the same decisions drive both projections.
 *
 * Rules (RFC 8216bis §4.4.4.9 and Apple's LL-HLS profile):
 * - a part is a run of whole frames whose duration never exceeds the part target by more than
 *   one millisecond (the rounding of millisecond timestamps: six 30 fps frames from RTMP span
 *   199 to 201 ms) and a single frame longer than the target is a part on its own; a part is
 *   closed as soon as the next frame would not fit, so it becomes available one processing step
 *   after its last frame, not one frame later;
 * - with `splitPartsAtKeyframes` (video) a keyframe starts a part (`INDEPENDENT=YES`) unless the
 *   open part is shorter than 85% of the target: every part but a segment's last stays at least
 *   85% of the target, as RFC 8216bis asks;
 * - a segment starts at the first keyframe at or after the target duration (segments are
 *   GOP-aligned and at least the target long), at an aligned boundary (audio follows the video's
 *   segment starts), after `forceBreak()`, or when it reaches `maxSegmentDurationS` without a
 *   keyframe (a safety cap for pathological encoders).
 */

import { PackagerError } from "../errors.ts";

/** Timing of one frame (one moof+mdat) in track timescale units. */
export interface FrameTiming {
  /** Decode time of the first sample (tfdt), in timescale units. */
  readonly dts: number;
  /** Summed sample durations (trun), in timescale units. */
  readonly duration: number;
  /** True when the first sample is a sync sample. */
  readonly keyframe: boolean;
}

/** Where one frame goes, as decided by {@link Segmenter.push}. */
export interface FramePlacement {
  /** Close the open segment (and part) before this frame: the frame starts a new segment. */
  readonly startsSegment: boolean;
  /** Close the open part before this frame: the frame starts a new part (true when `startsSegment`). */
  readonly startsPart: boolean;
  /** The part holding this frame is complete after it: close the part now. */
  readonly endsPart: boolean;
}

/** Configuration of a {@link Segmenter}. */
export interface SegmenterOptions {
  /** Track timescale (ticks per second). */
  readonly timescale: number;
  /** Minimum segment duration in seconds (segments close at the first keyframe at or after it). */
  readonly targetDurationS: number;
  /** Maximum part duration in seconds (unless one frame alone is longer). */
  readonly partTargetS: number;
  /** Start a new part at every keyframe (video). Audio, where every frame is a sync sample, leaves it off. */
  readonly splitPartsAtKeyframes: boolean;
  /**
   * Follow boundaries given to {@link Segmenter.addBoundary} instead of the keyframe rule (audio
   * aligned with video). Without a usable boundary a segment still closes at
   * `alignmentFallbackS`.
   */
  readonly alignToBoundaries?: boolean;
  /** Aligned mode: close a segment anyway once it is this long (seconds). Default 3 × target. */
  readonly alignmentFallbackS?: number;
  /** Force a segment boundary (even at a non-keyframe) once a segment is this long. Default 10 × target. */
  readonly maxSegmentDurationS?: number;
}

/** Boundaries further than this from the current media time are ignored (tracks on unrelated clocks). */
const BOUNDARY_SANITY_S = 10;

/**
 * Decides part and segment boundaries for one track. Feed it every frame in decode order with
 * {@link Segmenter.push}; it holds only a few numbers of state.
 */
export class Segmenter {
  readonly #timescale: number;
  readonly #targetTicks: number;
  readonly #partTicks: number;
  /** Longest part allowed: the target plus one millisecond of timestamp rounding. */
  readonly #partLimit: number;
  /** Shortest part (85% of the target) that may be cut at a mid-segment keyframe. */
  readonly #partMinimum: number;
  readonly #maxSegmentTicks: number;
  readonly #fallbackTicks: number;
  readonly #splitAtKeyframes: boolean;
  #aligned: boolean;
  /** Pending aligned boundaries, in ticks, ascending. */
  #boundaries: number[] = [];

  #inSegment = false;
  #segmentStart = 0;
  #partOpen = false;
  #partDuration = 0;
  #forceBreak = false;
  #lastKeyframeDts = Number.NaN;
  #gopTicks = Number.NaN;
  #lastEnd = Number.NaN;
  #lastDuration = 0;
  /** The last few frame durations; their minimum predicts the next one (timestamps jitter by a tick). */
  readonly #recent: number[] = [];

  /** A segmenter in its initial state: the first frame starts a segment. */
  constructor(options: SegmenterOptions) {
    const { timescale, targetDurationS, partTargetS } = options;
    if (!(timescale > 0) || !(targetDurationS > 0) || !(partTargetS > 0)) {
      throw new PackagerError(
        "PACKAGER_INVALID_OPTION",
        `segmenter timescale (${timescale}), target duration (${targetDurationS} s) and part target (${partTargetS} s) must be positive`,
      );
    }
    this.#timescale = timescale;
    this.#targetTicks = Math.round(targetDurationS * timescale);
    this.#partTicks = Math.round(partTargetS * timescale);
    this.#partLimit = this.#partTicks + Math.max(1, Math.round(timescale / 1000));
    this.#partMinimum = Math.round(this.#partTicks * 0.85);
    this.#maxSegmentTicks = Math.round((options.maxSegmentDurationS ?? targetDurationS * 10) * timescale);
    this.#fallbackTicks = Math.round((options.alignmentFallbackS ?? targetDurationS * 3) * timescale);
    this.#splitAtKeyframes = options.splitPartsAtKeyframes;
    this.#aligned = options.alignToBoundaries ?? false;
  }

  /** Track timescale. */
  get timescale(): number {
    return this.#timescale;
  }

  /** Part target in timescale units. */
  get partTargetTicks(): number {
    return this.#partTicks;
  }

  /** Observed distance between the last two keyframes in ticks, or NaN. */
  get gopTicks(): number {
    return this.#gopTicks;
  }

  /** Places the next frame (decode order). */
  push(frame: FrameTiming): FramePlacement {
    const { dts, duration, keyframe } = frame;
    let startsSegment = false;
    if (!this.#inSegment || this.#forceBreak) {
      startsSegment = true;
    } else {
      const elapsed = dts - this.#segmentStart;
      if (this.#aligned) {
        // A boundary just after this segment began (audio that started a frame or two before the
        // first video keyframe) is absorbed rather than cut into a segment of one or two frames,
        // which some DASH readers cannot move past.
        const crossed = this.#crossesBoundary(dts, duration);
        startsSegment = (crossed && elapsed >= this.#targetTicks / 2) || elapsed >= this.#fallbackTicks;
      } else if (keyframe && elapsed >= this.#targetTicks) {
        startsSegment = true;
      }
      if (elapsed >= this.#maxSegmentTicks) startsSegment = true;
    }
    let startsPart = startsSegment || !this.#partOpen;
    if (!startsPart) {
      if (keyframe && this.#splitAtKeyframes && this.#partDuration >= this.#partMinimum) startsPart = true;
      else if (this.#partDuration + duration > this.#partLimit) startsPart = true;
    }

    if (keyframe) {
      if (!Number.isNaN(this.#lastKeyframeDts) && dts > this.#lastKeyframeDts) {
        this.#gopTicks = dts - this.#lastKeyframeDts;
      }
      this.#lastKeyframeDts = dts;
    }
    if (startsSegment) {
      this.#inSegment = true;
      this.#segmentStart = dts;
      this.#forceBreak = false;
    }
    if (startsPart) this.#partDuration = 0;
    this.#partOpen = true;
    this.#partDuration += duration;
    this.#lastEnd = dts + duration;
    if (duration > 0) {
      this.#lastDuration = duration;
      this.#recent.push(duration);
      if (this.#recent.length > 4) this.#recent.shift();
    }

    // Close eagerly when even the shortest recent frame duration would not fit in this part.
    const nextDuration = this.#recent.length > 0 ? Math.min(...this.#recent) : 0;
    let endsPart = this.#partDuration + nextDuration > this.#partLimit;
    if (!endsPart && this.#splitAtKeyframes && this.#partDuration >= this.#partMinimum) {
      // A keyframe is due and will start the next part. (A shorter part waits for the keyframe
      // itself: if the prediction is wrong, the part must not have ended under 85% of the target.)
      endsPart = this.nextFrameLikelyKeyframe();
    }
    if (endsPart) this.#partOpen = false;
    return { startsSegment, startsPart, endsPart };
  }

  /**
   * True when, by the observed GOP cadence, the next frame should be a keyframe: it starts within
   * half a frame of one GOP after the last keyframe. Once that time has passed without a
   * keyframe the cadence is broken and nothing is predicted until the next keyframe.
   */
  nextFrameLikelyKeyframe(): boolean {
    if (Number.isNaN(this.#gopTicks) || Number.isNaN(this.#lastEnd)) return false;
    const offset = this.#lastEnd - this.#lastKeyframeDts - this.#gopTicks;
    return Math.abs(offset) <= this.#lastDuration / 2;
  }

  /**
   * True when the next part (the one a preload hint would name) is expected to start a new
   * segment: the open segment has reached its target and the next frame should be a keyframe
   * (or, aligned, the next frame crosses a known boundary).
   */
  nextPartLikelyStartsSegment(): boolean {
    if (!this.#inSegment || this.#forceBreak) return true;
    if (Number.isNaN(this.#lastEnd)) return false;
    const elapsed = this.#lastEnd - this.#segmentStart;
    if (this.#aligned) {
      const next = this.#boundaries[0];
      return next !== undefined && this.#lastEnd >= next - this.#lastDuration / 2;
    }
    return elapsed >= this.#targetTicks && this.nextFrameLikelyKeyframe();
  }

  /** The open part's last frame turned out `delta` ticks longer (or shorter) than it was pushed with. */
  adjustPartDuration(delta: number): void {
    if (this.#partOpen) this.#partDuration += delta;
    this.#lastEnd += delta;
  }

  /** The next frame starts a new segment whatever its timing (discontinuity, gap). */
  forceBreak(): void {
    this.#forceBreak = true;
    this.#partOpen = false;
  }

  /**
   * Switches aligned mode (audio follows video only while the broadcast has video; an audio-only
   * broadcast segments by its own target duration).
   */
  setAligned(aligned: boolean): void {
    this.#aligned = aligned;
    if (!aligned) this.#boundaries = [];
  }

  /**
   * Aligned mode: a segment boundary at `seconds` of media time (the start of another track's
   * segment). The first frame at or after it starts a segment.
   */
  addBoundary(seconds: number): void {
    if (!this.#aligned) return;
    const ticks = Math.round(seconds * this.#timescale);
    const last = this.#boundaries[this.#boundaries.length - 1];
    if (last !== undefined && ticks <= last) return;
    this.#boundaries.push(ticks);
    // A boundary queue longer than a few segments means this track is not advancing; keep it small.
    if (this.#boundaries.length > 16) this.#boundaries.shift();
  }

  /** Aligned mode: true when this frame is the one nearest the next boundary. */
  #crossesBoundary(dts: number, duration: number): boolean {
    const sanity = BOUNDARY_SANITY_S * this.#timescale;
    let crossed = false;
    while (this.#boundaries.length > 0) {
      const next = this.#boundaries[0]!;
      if (next <= this.#segmentStart || next < dts - sanity) {
        // Already inside this segment, or so old that the clocks do not match: useless.
        this.#boundaries.shift();
        continue;
      }
      if (next > dts + sanity) {
        this.#boundaries.length = 0;
        break;
      }
      // Cut at the frame whose start is nearest the boundary: aligned within half a frame, no drift.
      // (An aligned segment can then be up to half a frame longer than the other track's.)
      if (dts >= next - duration / 2) {
        this.#boundaries.shift();
        crossed = true;
        continue;
      }
      break;
    }
    return crossed;
  }
}
