/**
 * The timeline of one publish: RTMP's 32-bit millisecond timestamps unwrapped onto one
 * wrap-free, monotonic scale shared by audio and video (so A/V sync is kept), with rebasing when
 * a publisher's clock jumps.
 */

/** Where a sample landed on the timeline. */
export interface TimelinePoint {
  readonly dts: number;
  readonly discontinuity: boolean;
}

const TWO_32 = 0x1_0000_0000;
const HALF = 0x8000_0000;

/** Default largest forward step taken at face value. */
export const DEFAULT_MAX_TIMESTAMP_JUMP_MS = 10_000;

/**
 * Maps message timestamps to decode times. The first timestamp is kept as is (so a stream that
 * starts at 20,000 s stays there); after that each timestamp is unwrapped against the previous
 * one (steps within ±2^31 ms), so the 2^32 wrap and extended timestamps are seamless.
 *
 * If a kind's decode time would go backwards, or jump forward by more than `maxJumpMs` past the
 * newest sample of either kind, the timeline is rebased: the sample is placed one step (the
 * kind's last frame interval) after the newest sample, later samples keep their spacing from it,
 * and the point is flagged as a discontinuity. Decode times per kind therefore never decrease.
 */
export class MediaTimeline {
  readonly #maxJumpMs: number;
  #lastRaw: number | undefined;
  #unwrapped = 0;
  #offset = 0;
  readonly #lastDts: { video: number | undefined; audio: number | undefined } = {
    video: undefined,
    audio: undefined,
  };
  readonly #lastStep: { video: number; audio: number } = { video: 0, audio: 0 };
  /** Rebases so far. */
  discontinuities = 0;

  constructor(maxJumpMs: number = DEFAULT_MAX_TIMESTAMP_JUMP_MS) {
    this.#maxJumpMs = maxJumpMs;
  }

  /** Newest decode time of either kind (undefined before the first sample). */
  get lastDts(): number | undefined {
    const { video, audio } = this.#lastDts;
    if (video === undefined) return audio;
    if (audio === undefined) return video;
    return Math.max(video, audio);
  }

  /** Places a sample with the 32-bit message timestamp `raw`. */
  map(kind: "video" | "audio", raw: number): TimelinePoint {
    raw = ((raw % TWO_32) + TWO_32) % TWO_32;
    if (this.#lastRaw === undefined) {
      this.#unwrapped = raw;
    } else {
      let diff = raw - this.#lastRaw;
      if (diff >= HALF) diff -= TWO_32;
      else if (diff < -HALF) diff += TWO_32;
      this.#unwrapped += diff;
    }
    this.#lastRaw = raw;
    let dts = this.#unwrapped + this.#offset;
    const lastKind = this.#lastDts[kind];
    const newest = this.lastDts;
    let discontinuity = false;
    if (
      (lastKind !== undefined && dts < lastKind) ||
      (newest !== undefined && dts > newest + this.#maxJumpMs)
    ) {
      const step = Math.min(Math.max(this.#lastStep[kind], 1), 1000);
      const rebased = newest! + step;
      this.#offset += rebased - dts;
      dts = rebased;
      discontinuity = true;
      this.discontinuities++;
    } else if (lastKind !== undefined) {
      this.#lastStep[kind] = dts - lastKind;
    }
    this.#lastDts[kind] = dts;
    return { dts, discontinuity };
  }
}
