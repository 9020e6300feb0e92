import { MoqError, WireErrorCode } from "../error.ts";
import { ChangeNotifier } from "./notifier.ts";

/**
 * In-process side data that rides along with a frame but never goes on the wire, such as the
 * ingest wall-clock time used for latency tracking. Egress must also work without it.
 */
export interface FrameMeta {
  /** Unix milliseconds at which the frame was ingested by this process. */
  readonly ingestTimeMs?: number;
}

/** Shared state of one frame: its declared size and the chunks written so far. */
class FrameState {
  readonly size: number;
  readonly meta: FrameMeta | undefined;
  readonly chunks: Uint8Array[] = [];
  written = 0;
  done = false;
  error: MoqError | undefined;
  producers = 1;
  readonly notifier: ChangeNotifier = new ChangeNotifier();

  constructor(size: number, meta: FrameMeta | undefined) {
    this.size = size;
    this.meta = meta;
  }

  finish(error?: MoqError): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    this.notifier.notifyFinal();
  }
}

const EMPTY = new Uint8Array(0);

/** Bytes a view may leave unused in its buffer before it is worth copying out. */
const PINNED_SLACK_BYTES = 4096;

/** True when keeping `chunk` would keep alive more than twice its size (and over 4 KiB more). */
function pinsMuchMore(chunk: Uint8Array): boolean {
  const unused = chunk.buffer.byteLength - chunk.byteLength;
  return unused > PINNED_SLACK_BYTES && unused > chunk.byteLength;
}

// Gives the consumer classes (and internal helpers) access to the producer's private state.
let frameStateOf: (producer: FrameProducer) => FrameState;

/**
 * Writes one frame, whole or in chunks. The size is declared up front (it is on the wire before
 * the payload), and the frame completes by itself once that many bytes are written.
 */
export class FrameProducer {
  #state: FrameState;
  #closed = false;

  /** Creates a frame of `size` bytes to be filled with `write()`. */
  constructor(size: number, meta?: FrameMeta) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`frame size ${size} is invalid`);
    this.#state = new FrameState(size, meta);
    if (size === 0) this.#state.finish();
  }

  /** A complete frame holding `data` (by reference, as {@link FrameProducer.write} keeps chunks). */
  static whole(data: Uint8Array, meta?: FrameMeta): FrameProducer {
    const frame = new FrameProducer(data.byteLength, meta);
    if (data.byteLength > 0) frame.write(data);
    return frame;
  }

  /** Declared size in bytes. */
  get size(): number {
    return this.#state.size;
  }

  /** Side data attached at creation. */
  get meta(): FrameMeta | undefined {
    return this.#state.meta;
  }

  /** Bytes written so far. */
  get written(): number {
    return this.#state.written;
  }

  /** True once the frame is complete or aborted. */
  get done(): boolean {
    return this.#state.done;
  }

  /**
   * Appends a chunk, kept by reference, except that a small view of a much larger buffer (a
   * slice of a socket read, say) is copied, so the cache never pins memory it does not count.
   * Throws when it would exceed the declared size.
   */
  write(chunk: Uint8Array): void {
    const state = this.#state;
    if (state.done) throw new MoqError("MOQ_CLOSED", "frame is already complete or aborted");
    if (state.written + chunk.byteLength > state.size) {
      const error = new MoqError(
        "MOQ_PROTOCOL_VIOLATION",
        `frame overflow: ${state.written + chunk.byteLength} bytes written to a frame declared as ${state.size}`,
        { wireCode: WireErrorCode.WrongSize },
      );
      state.finish(error);
      throw error;
    }
    if (chunk.byteLength === 0) return;
    state.chunks.push(pinsMuchMore(chunk) ? new Uint8Array(chunk) : chunk);
    state.written += chunk.byteLength;
    if (state.written === state.size) state.finish();
    else state.notifier.notify();
  }

  /** Releases this handle. A frame closed before all its bytes arrived is aborted as short. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const state = this.#state;
    state.producers--;
    if (state.producers === 0 && !state.done) {
      state.finish(
        new MoqError("MOQ_PROTOCOL_VIOLATION", `frame ended after ${state.written} of ${state.size} bytes`, {
          wireCode: WireErrorCode.WrongSize,
        }),
      );
    }
  }

  /** Ends the frame for every consumer with `error`. */
  abort(error: MoqError): void {
    this.#closed = true;
    this.#state.finish(error);
  }

  /** Another producer handle; the frame is short-closed only when every handle is closed. */
  clone(): FrameProducer {
    const state = this.#state;
    state.producers++;
    const handle = new FrameProducer(0);
    handle.#state = state;
    return handle;
  }

  /** A reader starting at the first byte. */
  consume(): FrameConsumer {
    return new FrameConsumer(this);
  }

  static {
    frameStateOf = (producer) => producer.#state;
  }
}

/** Reads one frame's bytes as they arrive. Several consumers of one frame are independent. */
export class FrameConsumer {
  readonly #state: FrameState;
  #chunk = 0;

  /** A reader of `source`: from the first byte of a producer's frame, or at another consumer's position. */
  constructor(source: FrameProducer | FrameConsumer) {
    if (source instanceof FrameConsumer) {
      this.#state = source.#state;
      this.#chunk = source.#chunk;
    } else {
      this.#state = frameStateOf(source);
    }
  }

  /** Declared size in bytes. */
  get size(): number {
    return this.#state.size;
  }

  /** Side data attached by the producer. */
  get meta(): FrameMeta | undefined {
    return this.#state.meta;
  }

  /** The next chunk, or undefined once every byte has been read. Throws the abort error. */
  async readChunk(): Promise<Uint8Array | undefined> {
    const state = this.#state;
    for (;;) {
      if (this.#chunk < state.chunks.length) return state.chunks[this.#chunk++];
      if (state.error) throw state.error;
      if (state.done) return undefined;
      await state.notifier.changed();
    }
  }

  /**
   * The whole payload if the frame is complete and was written as one chunk (the usual case for
   * relayed and published frames), without waiting or copying; otherwise undefined and nothing is
   * consumed (read it with {@link readChunk}).
   */
  readyPayload(): Uint8Array | undefined {
    const state = this.#state;
    if (!state.done || state.error || this.#chunk !== 0) return undefined;
    if (state.size === 0) return EMPTY;
    if (state.chunks.length !== 1) return undefined;
    this.#chunk = 1;
    return state.chunks[0]!;
  }

  /**
   * The next chunk if one is available now (no wait): the chunk, `null` once every byte has been
   * read, `undefined` when the next chunk has not been written yet (await {@link readChunk}).
   * Throws the abort error.
   */
  tryReadChunk(): Uint8Array | null | undefined {
    const state = this.#state;
    if (this.#chunk < state.chunks.length) return state.chunks[this.#chunk++];
    if (state.error) throw state.error;
    return state.done ? null : undefined;
  }

  /** Calls `callback` once, synchronously, at the frame's next change (a chunk, completion or abort). */
  onNextChange(callback: () => void): void {
    this.#state.notifier.onNextChange(callback);
  }

  /** The whole frame. Zero-copy when it was written as one chunk. */
  async readAll(): Promise<Uint8Array> {
    const state = this.#state;
    while (!state.done) await state.notifier.changed();
    if (state.error) throw state.error;
    this.#chunk = state.chunks.length;
    if (state.chunks.length === 1) return state.chunks[0]!;
    const out = new Uint8Array(state.size);
    let offset = 0;
    for (const chunk of state.chunks) {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return out;
  }

  /** An independent reader at the same position. */
  clone(): FrameConsumer {
    return new FrameConsumer(this);
  }
}
