import { LaggedError, MoqError, WireErrorCode } from "../error.ts";
import { type FrameConsumer, type FrameMeta, FrameProducer } from "./frame.ts";
import { ChangeNotifier } from "./notifier.ts";

/** Bounds on what one group retains for its readers. */
export interface GroupLimits {
  /** Frames retained per group; older frames are evicted past this. */
  readonly maxFrames: number;
  /** Declared frame bytes retained per group; older frames are evicted past this. */
  readonly maxBytes: number;
}

/** Defaults: far above any real GOP, low enough that one runaway group cannot exhaust memory. */
export const DEFAULT_GROUP_LIMITS: GroupLimits = { maxFrames: 8192, maxBytes: 16 * 1024 * 1024 };

/** Shared state of one group: a window of frames in order, bounded by {@link GroupLimits}. */
class GroupState {
  readonly sequence: number;
  readonly limits: GroupLimits;
  /** Retained frames; `frames[0]` has absolute index `first`. */
  frames: FrameProducer[] = [];
  first = 0;
  bytes = 0;
  done = false;
  error: MoqError | undefined;
  producers = 1;
  readonly notifier: ChangeNotifier = new ChangeNotifier();
  /** Told about every change in retained bytes, so the owning track can bound its cache. */
  onBytes: ((delta: number) => void) | undefined;

  constructor(sequence: number, limits: GroupLimits) {
    this.sequence = sequence;
    this.limits = limits;
  }

  append(frame: FrameProducer): void {
    this.frames.push(frame);
    this.bytes += frame.size;
    let delta = frame.size;
    while (
      this.frames.length > 1 &&
      (this.frames.length > this.limits.maxFrames || this.bytes > this.limits.maxBytes)
    ) {
      const evicted = this.frames.shift()!;
      this.first++;
      this.bytes -= evicted.size;
      delta -= evicted.size;
    }
    this.onBytes?.(delta);
    this.notifier.notify();
  }

  finish(error?: MoqError): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    // A frame still being written can never complete once its group has ended: end it too, so
    // its readers do not wait forever.
    for (const frame of this.frames) {
      if (frame.done) continue;
      frame.abort(
        error ??
          new MoqError(
            "MOQ_PROTOCOL_VIOLATION",
            `group ${this.sequence} ended with frame of ${frame.size} bytes incomplete (${frame.written} written)`,
            { wireCode: WireErrorCode.WrongSize },
          ),
      );
    }
    this.notifier.notifyFinal();
  }
}

// Gives the consumer classes (and internal helpers) access to the producer's private state.
let groupStateOf: (producer: GroupProducer) => GroupState;

/**
 * Writes one group: an ordered run of frames that a reader can start at (the first frame of a
 * video group is a keyframe). Frames past the group's limits evict the oldest ones.
 */
export class GroupProducer {
  #state: GroupState;
  #closed = false;

  /** A new, empty group with sequence number `sequence`. */
  constructor(sequence: number, limits: GroupLimits = DEFAULT_GROUP_LIMITS) {
    this.#state = new GroupState(sequence, limits);
  }

  /** The group's sequence number within its track. */
  get sequence(): number {
    return this.#state.sequence;
  }

  /** Frames written so far (including evicted ones). */
  get frameCount(): number {
    return this.#state.first + this.#state.frames.length;
  }

  /** Declared bytes of the retained frames. */
  get retainedBytes(): number {
    return this.#state.bytes;
  }

  /** True once the group is finished or aborted. */
  get done(): boolean {
    return this.#state.done;
  }

  /** Appends a complete frame, by reference as {@link FrameProducer.write} keeps chunks. */
  writeFrame(data: Uint8Array, meta?: FrameMeta): void {
    this.#append(FrameProducer.whole(data, meta));
  }

  /** Appends a frame of `size` bytes whose payload will be written in chunks. */
  createFrame(size: number, meta?: FrameMeta): FrameProducer {
    const frame = new FrameProducer(size, meta);
    this.#append(frame);
    return frame;
  }

  #append(frame: FrameProducer): void {
    const state = this.#state;
    if (state.done) throw new MoqError("MOQ_CLOSED", `group ${state.sequence} is already finished`);
    state.append(frame);
  }

  /** Releases this handle; the group is finished once every handle is closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const state = this.#state;
    state.producers--;
    if (state.producers === 0) state.finish();
  }

  /** Ends the group for every reader with `error`. */
  abort(error: MoqError): void {
    this.#closed = true;
    this.#state.finish(error);
  }

  /** Another producer handle to the same group. */
  clone(): GroupProducer {
    const state = this.#state;
    state.producers++;
    const handle = new GroupProducer(state.sequence, state.limits);
    handle.#state = state;
    return handle;
  }

  /** A reader starting at the group's first frame. */
  consume(): GroupConsumer {
    return new GroupConsumer(this);
  }

  static {
    groupStateOf = (producer) => producer.#state;
  }
}

/** @internal Lets the owning track observe a group's retained bytes, and finish it when the track ends. */
export function observeGroup(
  producer: GroupProducer,
  onBytes: ((delta: number) => void) | undefined,
): { readonly bytes: number; readonly done: boolean; finish(error?: MoqError): void } {
  const state = groupStateOf(producer);
  state.onBytes = onBytes;
  return state;
}

/** Reads one group's frames in order. Consumers are independent cursors. */
export class GroupConsumer {
  readonly #state: GroupState;
  #next: number;

  /** A reader of `source`: from a producer's first retained frame, or at another consumer's position. */
  constructor(source: GroupProducer | GroupConsumer) {
    if (source instanceof GroupConsumer) {
      this.#state = source.#state;
      this.#next = source.#next;
    } else {
      this.#state = groupStateOf(source);
      this.#next = this.#state.first;
    }
  }

  /** The group's sequence number within its track. */
  get sequence(): number {
    return this.#state.sequence;
  }

  /** Index of the next frame this consumer will return. */
  get position(): number {
    return this.#next;
  }

  /**
   * The next frame, or undefined when the group is finished. Throws {@link LaggedError} when the
   * next frame was evicted, and the abort error when the group was aborted.
   */
  async nextFrame(): Promise<FrameConsumer | undefined> {
    const state = this.#state;
    for (;;) {
      if (this.#next < state.first) {
        throw new LaggedError(
          `group ${state.sequence}: frame ${this.#next} was evicted (oldest retained is ${state.first})`,
        );
      }
      const index = this.#next - state.first;
      if (index < state.frames.length) {
        this.#next++;
        return state.frames[index]!.consume();
      }
      if (state.error) throw state.error;
      if (state.done) return undefined;
      await state.notifier.changed();
    }
  }

  /**
   * The next frame if one is available now (no wait): a consumer, `null` once the group is
   * finished, `undefined` when the next frame has not been written yet (await {@link changed}).
   * Throws like {@link nextFrame}. Lets a relay forward ready frames without a promise each.
   */
  tryNextFrame(): FrameConsumer | null | undefined {
    const state = this.#state;
    if (this.#next < state.first) {
      throw new LaggedError(
        `group ${state.sequence}: frame ${this.#next} was evicted (oldest retained is ${state.first})`,
      );
    }
    const index = this.#next - state.first;
    if (index < state.frames.length) {
      this.#next++;
      return state.frames[index]!.consume();
    }
    if (state.error) throw state.error;
    return state.done ? null : undefined;
  }

  /** Resolves at the group's next change: a frame appended, or the group finished or aborted. */
  changed(): Promise<void> {
    return this.#state.notifier.changed();
  }

  /** Calls `callback` once, synchronously, at the group's next change. It must not throw. */
  onNextChange(callback: () => void): void {
    this.#state.notifier.onNextChange(callback);
  }

  /** The next whole frame's bytes, or undefined when the group is finished. */
  async readFrame(): Promise<Uint8Array | undefined> {
    const frame = await this.nextFrame();
    return frame === undefined ? undefined : frame.readAll();
  }

  /** Resolves once the group is finished; throws its abort error. */
  async finished(): Promise<void> {
    const state = this.#state;
    while (!state.done) await state.notifier.changed();
    if (state.error) throw state.error;
  }

  /** An independent reader at the same position. */
  clone(): GroupConsumer {
    return new GroupConsumer(this);
  }
}
