/**
 * Turns source timestamps (milliseconds, possibly whole ms, possibly rebased) into track decode
 * times that never go backwards.
 *
 * - {@link SourceClock} holds one offset for the whole broadcast. A discontinuity (flagged by the
 *   source, or a decode time that jumps backwards by more than {@link REBASE_THRESHOLD_MS}) moves
 *   the offset so the next sample lands where the furthest track ended; both tracks share it, so
 *   A/V sync survives the rebase and tfdt stays continuous.
 * - {@link VideoTimeline}: 90 kHz ticks from the ms timestamps; a sample whose decode time would
 *   not advance (rounding, a jittery source) is nudged one tick past the previous one.
 * - {@link AudioTimeline}: every AAC frame is exactly `samplesPerFrame` samples, so decode times
 *   come from a running sample count. Whole-ms timestamps jitter by up to half a millisecond (24
 *   samples at 48 kHz); following them would make tfdt jitter and drift. The count is trusted
 *   until the timestamps disagree by more than two frames: then a gap (lost frames) jumps the
 *   count forward, and a source running ahead of its timestamps gets one frame dropped, which is
 *   the only way to stay in sync without going backwards.
 */

/** A backwards jump larger than this (ms) is a discontinuity even when the source did not flag it. */
export const REBASE_THRESHOLD_MS = 500;

/** The shared mapping from source ms to broadcast media ms. */
export class SourceClock {
  #offsetMs = 0;
  #generation = 0;
  readonly #ends: Map<string, () => number> = new Map();

  /** Number of rebases so far. */
  get generation(): number {
    return this.#generation;
  }

  /** Registers (or replaces) a track's "where my media ends, in ms" so rebases land after every track. */
  setTrack(kind: string, endMs: () => number): void {
    this.#ends.set(kind, endMs);
  }

  /** Broadcast media time (ms) of a source time. */
  toMedia(sourceMs: number): number {
    return sourceMs + this.#offsetMs;
  }

  /** Moves the offset so that `sourceMs` maps to the furthest track end. */
  rebase(sourceMs: number): void {
    let end = 0;
    for (const endOf of this.#ends.values()) end = Math.max(end, endOf());
    this.#offsetMs = end - sourceMs;
    this.#generation++;
  }
}

/** Where one video sample goes on the track timeline. */
export interface VideoTiming {
  /** tfdt, in 90 kHz ticks. */
  readonly decodeTime: number;
  /** Estimated duration in ticks (see {@link VideoTimeline}). */
  readonly duration: number;
  /** pts − dts in ticks. */
  readonly compositionOffset: number;
}

/** Longest inter-frame gap (ticks) accepted as a duration estimate: 1 s. */
const MAX_FRAME_DELTA = 90000;

/**
 * Video decode times and durations. A live sample's duration is unknown until the next one
 * arrives. Policy: use the last inter-sample delta, which is exact for constant frame rates and
 * unbiased under whole-ms timestamp jitter, except that a delta more than twice the one before is
 * taken as a one-off gap (frames dropped while waiting for a keyframe, a stall) and ignored until
 * the next delta confirms a slower rate. tfdt is
 * always exact, so any error is local to one frame and never accumulates. The alternative,
 * holding each frame until its successor arrives, would add one frame interval (33 ms at 30 fps)
 * to every MoQ and LL-HLS viewer's latency.
 */
export class VideoTimeline {
  readonly #timescale: number;
  readonly #clock: SourceClock;
  #defaultDuration: number;
  #lastDecodeTime: number | undefined;
  #estimate: number;
  /** The inter-sample delta before the latest one, in ticks. */
  #previousDelta: number | undefined;
  #generation = -1;
  #samplesSinceRebase = 0;

  /** A timeline at `timescale` ticks per second; `framerate` seeds the first duration (else 30). */
  constructor(clock: SourceClock, timescale: number, framerate?: number) {
    this.#clock = clock;
    this.#timescale = timescale;
    this.#defaultDuration = Math.round(timescale / (framerate && framerate > 0 ? framerate : 30));
    this.#estimate = this.#defaultDuration;
    clock.setTrack("video", () => this.endMs);
  }

  /** Media time (ms) at which the last sample ends. */
  get endMs(): number {
    return this.#lastDecodeTime === undefined
      ? 0
      : ((this.#lastDecodeTime + this.#estimate) * 1000) / this.#timescale;
  }

  /** Decode time of the last sample placed, in ticks. */
  get lastDecodeTime(): number | undefined {
    return this.#lastDecodeTime;
  }

  /** Places a sample; `discontinuity` rebases the shared clock unless another track just did. */
  place(dtsMs: number, ptsMs: number, discontinuity: boolean): VideoTiming {
    this.#maybeRebase(dtsMs, discontinuity);
    const ticksPerMs = this.#timescale / 1000;
    let decodeTime = Math.round(this.#clock.toMedia(dtsMs) * ticksPerMs);
    const compositionOffset = Math.round((ptsMs - dtsMs) * ticksPerMs);
    const last = this.#lastDecodeTime;
    if (last !== undefined) {
      if (decodeTime <= last) {
        // A repeated or backwards timestamp is nudged one tick; that delta says nothing about frame length.
        decodeTime = last + 1;
      } else {
        const delta = decodeTime - last;
        const previous = this.#previousDelta;
        this.#previousDelta = delta;
        // A delta more than twice the one before is a one-off gap until the next delta confirms it.
        const candidate = previous !== undefined && delta > 2 * previous ? previous : delta;
        if (candidate <= MAX_FRAME_DELTA) this.#estimate = candidate;
      }
    }
    this.#lastDecodeTime = decodeTime;
    this.#samplesSinceRebase++;
    return { decodeTime, duration: this.#estimate, compositionOffset };
  }

  #maybeRebase(dtsMs: number, flagged: boolean): void {
    const clock = this.#clock;
    if (clock.generation !== this.#generation) {
      // Another track rebased: adopt it, and treat our own flag on the first sample as the same event.
      this.#generation = clock.generation;
      this.#samplesSinceRebase = 0;
    }
    const last = this.#lastDecodeTime;
    const media = clock.toMedia(dtsMs);
    const backwards =
      media < 0 || (last !== undefined && (last * 1000) / this.#timescale - media > REBASE_THRESHOLD_MS);
    if ((flagged && this.#samplesSinceRebase > 0) || backwards) {
      clock.rebase(dtsMs);
      this.#generation = clock.generation;
      this.#samplesSinceRebase = 0;
    }
  }
}

/** Where one audio frame goes, or that it is dropped. */
export type AudioTiming =
  | { readonly decodeTime: number; readonly duration: number }
  | { readonly drop: true };

/** AAC decode times from a running sample count (see the module comment). */
export class AudioTimeline {
  readonly #sampleRate: number;
  readonly #frameSamples: number;
  readonly #clock: SourceClock;
  readonly #floor: number;
  #next: number | undefined;
  #generation = -1;
  #samplesSinceRebase = 0;

  /**
   * A timeline at `sampleRate` with `frameSamples` samples per frame (1024, or 960). `floorMs`
   * keeps the first frame at or after the media time where a previous configuration ended.
   */
  constructor(clock: SourceClock, sampleRate: number, frameSamples: number, floorMs = 0) {
    this.#clock = clock;
    this.#sampleRate = sampleRate;
    this.#frameSamples = frameSamples;
    this.#floor = Math.ceil((floorMs * sampleRate) / 1000);
    clock.setTrack("audio", () => this.endMs);
  }

  /** Media time (ms) at which the last frame ends. */
  get endMs(): number {
    return this.#next === undefined ? 0 : (this.#next * 1000) / this.#sampleRate;
  }

  /** Places a frame, or says to drop it (the source ran more than two frames ahead of its timestamps). */
  place(dtsMs: number, discontinuity: boolean): AudioTiming {
    const clock = this.#clock;
    if (clock.generation !== this.#generation) {
      this.#generation = clock.generation;
      this.#samplesSinceRebase = 0;
    }
    const tolerance = 2 * this.#frameSamples;
    const fromTimestamp = () => Math.round((clock.toMedia(dtsMs) * this.#sampleRate) / 1000);
    if (clock.toMedia(dtsMs) < 0) {
      // A source timeline starting below zero: move it so media time stays non-negative.
      clock.rebase(dtsMs);
      this.#generation = clock.generation;
      this.#samplesSinceRebase = 0;
    }
    let decodeTime = fromTimestamp();
    const next = this.#next;
    if (next === undefined) {
      decodeTime = Math.max(decodeTime, this.#floor);
    } else {
      const backwardsMs = ((next - decodeTime) * 1000) / this.#sampleRate;
      if ((discontinuity && this.#samplesSinceRebase > 0) || backwardsMs > REBASE_THRESHOLD_MS) {
        clock.rebase(dtsMs);
        this.#generation = clock.generation;
        this.#samplesSinceRebase = 0;
        decodeTime = Math.max(next, fromTimestamp());
      } else {
        const drift = decodeTime - next;
        if (drift < -tolerance) return { drop: true };
        if (drift <= tolerance) decodeTime = next;
      }
    }
    this.#next = decodeTime + this.#frameSamples;
    this.#samplesSinceRebase++;
    return { decodeTime, duration: this.#frameSamples };
  }
}
