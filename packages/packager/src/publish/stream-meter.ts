/**
 * Measures what a catalog should say about a track but the codec configuration does not carry:
 * bitrate, frame rate and the largest composition delay (B-frame reordering), over a window of
 * media time.
 */

/** Media time a measurement covers before it is reported (ms). */
export const MEASURE_WINDOW_MS = 2000;

/** Common frame rates a measurement snaps to when it is within 0.2 %. */
const COMMON_FRAME_RATES = [23.976, 24, 25, 29.97, 30, 48, 50, 59.94, 60, 120];

/** A finished measurement. */
export interface StreamMeasurement {
  /** Bits per second of sample payload. */
  readonly bitrate: number;
  /** Samples per second (frames for video). */
  readonly framerate: number;
  /** Largest pts − dts seen, in ms. */
  readonly maxCompositionDelayMs: number;
}

/** Accumulates samples until {@link MEASURE_WINDOW_MS} of media time is covered. */
export class StreamMeter {
  #firstMs: number | undefined;
  #lastMs = 0;
  #bytes = 0;
  #samples = 0;
  #maxDelayMs = 0;
  #result: StreamMeasurement | undefined;

  /** The measurement, once the window is full. */
  get result(): StreamMeasurement | undefined {
    return this.#result;
  }

  /**
   * Adds a sample (decode time in media ms). Returns the measurement exactly once, on the sample
   * that completes the window.
   */
  add(decodeMs: number, bytes: number, compositionDelayMs: number): StreamMeasurement | undefined {
    if (this.#result) return undefined;
    if (this.#firstMs === undefined) this.#firstMs = decodeMs;
    const span = decodeMs - this.#firstMs;
    if (span >= MEASURE_WINDOW_MS && this.#samples > 0) {
      // The window is [first, this sample): this sample's bytes belong to the next window.
      const framerate = snapFrameRate((this.#samples * 1000) / span);
      this.#result = {
        bitrate: Math.round((this.#bytes * 8 * 1000) / span),
        framerate,
        maxCompositionDelayMs: this.#maxDelayMs,
      };
      return this.#result;
    }
    this.#lastMs = decodeMs;
    this.#bytes += bytes;
    this.#samples++;
    if (compositionDelayMs > this.#maxDelayMs) this.#maxDelayMs = compositionDelayMs;
    return undefined;
  }

  /** Media ms covered so far. */
  get spanMs(): number {
    return this.#firstMs === undefined ? 0 : this.#lastMs - this.#firstMs;
  }
}

function snapFrameRate(measured: number): number {
  let best: number | undefined;
  for (const rate of COMMON_FRAME_RATES) {
    const error = Math.abs(measured - rate) / rate;
    if (error < 0.002 && (best === undefined || error < Math.abs(measured - best) / best)) best = rate;
  }
  return best ?? Math.round(measured * 100) / 100;
}
