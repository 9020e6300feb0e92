/**
 * The bytes of one segment, written once: frames are appended into a single growing buffer and
 * every part is a zero-copy view into it, so a segment and its parts cost their bytes once (not
 * twice, as separate part and segment buffers would), and a closed segment is one contiguous
 * `Uint8Array` that HLS and DASH both serve.
 */

const MIN_CAPACITY = 16 * 1024;

/** A growable byte buffer for one segment; views handed out stay valid across growth. */
export class SegmentBuffer {
  #bytes: Uint8Array;
  #length = 0;
  /** Views handed out, re-pointed into the new buffer when it grows (so the old one can be freed). */
  readonly #views: Array<{ start: number; end: number; set(view: Uint8Array): void }> = [];

  /** An empty buffer; `expectedBytes` (e.g. the previous segment's size) avoids regrowth. */
  constructor(expectedBytes = 0) {
    this.#bytes = new Uint8Array(Math.max(MIN_CAPACITY, Math.ceil(expectedBytes * 1.25)));
  }

  /** Bytes written. */
  get length(): number {
    return this.#length;
  }

  /** Bytes reserved (what this buffer costs in memory). */
  get capacity(): number {
    return this.#bytes.byteLength;
  }

  /** Appends `chunk` (copied) and returns its offset. */
  append(chunk: Uint8Array): number {
    const offset = this.#length;
    const needed = offset + chunk.byteLength;
    if (needed > this.#bytes.byteLength) this.#grow(needed);
    this.#bytes.set(chunk, offset);
    this.#length = needed;
    return offset;
  }

  /**
   * A view of `[start, end)` that follows the buffer when it grows: `set` receives the new view.
   * Used for parts, whose bytes must stay one allocation with their segment.
   */
  track(start: number, end: number, set: (view: Uint8Array) => void): void {
    this.#views.push({ start, end, set });
    set(this.#bytes.subarray(start, end));
  }

  /** The written bytes as one view. */
  view(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }

  /**
   * Freezes the buffer: trims spare capacity when it is large (one copy) and re-points every
   * tracked view. Returns the final bytes.
   */
  seal(): Uint8Array {
    if (this.#bytes.byteLength > this.#length + Math.max(MIN_CAPACITY, this.#length >> 3)) {
      const exact = new Uint8Array(this.#length);
      exact.set(this.#bytes.subarray(0, this.#length));
      this.#bytes = exact;
      this.#repoint();
    }
    this.#views.length = 0;
    return this.#bytes.subarray(0, this.#length);
  }

  #grow(needed: number): void {
    let capacity = this.#bytes.byteLength;
    while (capacity < needed) capacity = Math.ceil(capacity * 1.5);
    const next = new Uint8Array(capacity);
    next.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = next;
    this.#repoint();
  }

  #repoint(): void {
    for (const view of this.#views) view.set(this.#bytes.subarray(view.start, view.end));
  }
}
