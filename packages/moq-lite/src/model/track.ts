import { LaggedError, MoqError } from "../error.ts";
import type { FrameMeta } from "./frame.ts";
import {
  DEFAULT_GROUP_LIMITS,
  type GroupConsumer,
  type GroupLimits,
  GroupProducer,
  observeGroup,
} from "./group.ts";
import { ChangeNotifier } from "./notifier.ts";

/** Bounds on a track's cache of recent groups. The newest group is always kept. */
export interface TrackLimits {
  /** Groups retained; older ones (in arrival order) are evicted past this. */
  readonly maxGroups: number;
  /** Retained bytes across groups; older groups are evicted past this. */
  readonly maxBytes: number;
  /** Bounds applied to each group of the track. */
  readonly group: GroupLimits;
}

/**
 * Defaults: about 13 s of a 2.5 Mbit/s stream (the newest group is kept whatever its size), or
 * 5 s of one-group-per-frame audio. Far more than a healthy consumer ever lags, and small enough
 * for hundreds of tracks per process.
 */
export const DEFAULT_TRACK_LIMITS: TrackLimits = {
  maxGroups: 256,
  maxBytes: 4 * 1024 * 1024,
  group: DEFAULT_GROUP_LIMITS,
};

interface CachedGroup {
  readonly producer: GroupProducer;
  readonly view: ReturnType<typeof observeGroup>;
}

/** Shared state of one track: an arrival-ordered, bounded cache of groups. */
class TrackState {
  readonly name: string;
  readonly limits: TrackLimits;
  /** Cached groups in arrival order; `groups[0]` has absolute arrival index `first`. */
  groups: CachedGroup[] = [];
  first = 0;
  readonly bySequence: Map<number, CachedGroup> = new Map();
  /** Absolute arrival index of the group with the highest sequence, or -1. */
  latest = -1;
  maxSequence = -1;
  bytes = 0;
  done = false;
  error: MoqError | undefined;
  producers = 1;
  consumers = 0;
  readonly notifier: ChangeNotifier = new ChangeNotifier();
  readonly usage: ChangeNotifier = new ChangeNotifier();
  readonly finishListeners: Array<() => void> = [];
  readonly closed: Promise<MoqError | undefined>;
  #resolveClosed: (error: MoqError | undefined) => void;

  constructor(name: string, limits: TrackLimits) {
    this.name = name;
    this.limits = limits;
    const { promise, resolve } = Promise.withResolvers<MoqError | undefined>();
    this.closed = promise;
    this.#resolveClosed = resolve;
  }

  insert(producer: GroupProducer): void {
    const cached: CachedGroup = {
      producer,
      view: observeGroup(producer, (delta) => {
        this.bytes += delta;
        this.evict();
      }),
    };
    this.groups.push(cached);
    this.bySequence.set(producer.sequence, cached);
    this.bytes += cached.view.bytes;
    if (producer.sequence > this.maxSequence) {
      this.maxSequence = producer.sequence;
      this.latest = this.first + this.groups.length - 1;
    }
    this.evict();
    this.notifier.notify();
  }

  evict(): void {
    const { maxGroups, maxBytes } = this.limits;
    while (this.groups.length > 1 && (this.groups.length > maxGroups || this.bytes > maxBytes)) {
      if (this.first === this.latest) break;
      const evicted = this.groups.shift()!;
      this.first++;
      this.bytes -= evicted.view.bytes;
      observeGroup(evicted.producer, undefined);
      if (this.bySequence.get(evicted.producer.sequence) === evicted)
        this.bySequence.delete(evicted.producer.sequence);
    }
  }

  finish(error?: MoqError): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    for (const cached of this.groups) {
      if (!cached.view.done) cached.view.finish(error);
    }
    this.notifier.notify();
    this.#resolveClosed(error);
    for (const listener of this.finishListeners.splice(0)) listener();
  }
}

// Gives the consumer classes (and internal helpers) access to the producer's private state.
let trackStateOf: (producer: TrackProducer) => TrackState;

/**
 * Writes a track: a sequence of groups, each independently decodable from its first frame.
 * Producers are cheap handles; the track ends when the last handle is closed, or at once on abort.
 */
export class TrackProducer {
  #state: TrackState;
  #closed = false;

  /** A new track named `name`. */
  constructor(name: string, limits: TrackLimits = DEFAULT_TRACK_LIMITS) {
    this.#state = new TrackState(name, limits);
  }

  /** The track name (opaque; not a path). */
  get name(): string {
    return this.#state.name;
  }

  /** Highest group sequence created so far, or -1. */
  get latestSequence(): number {
    return this.#state.maxSequence;
  }

  /** Number of open consumers. */
  get consumerCount(): number {
    return this.#state.consumers;
  }

  /** Bytes retained in the group cache. */
  get cachedBytes(): number {
    return this.#state.bytes;
  }

  /** True once the track has ended or been aborted. */
  get done(): boolean {
    return this.#state.done;
  }

  /** Resolves when the track ends, with the abort error if there was one. */
  get closed(): Promise<MoqError | undefined> {
    return this.#state.closed;
  }

  /** Starts the next group (sequence = highest so far + 1). */
  appendGroup(): GroupProducer {
    return this.createGroup(this.#state.maxSequence + 1)!;
  }

  /**
   * Starts a group with an explicit sequence (a relay uses the sequence from the wire). Returns
   * undefined when a group with that sequence is still cached.
   */
  createGroup(sequence: number): GroupProducer | undefined {
    const state = this.#state;
    if (state.done) throw new MoqError("MOQ_CLOSED", `track ${state.name} has ended`);
    if (!Number.isSafeInteger(sequence) || sequence < 0)
      throw new RangeError(`group sequence ${sequence} is invalid`);
    if (state.bySequence.has(sequence)) return undefined;
    const group = new GroupProducer(sequence, state.limits.group);
    state.insert(group);
    return group;
  }

  /** Writes `data` as a group of its own (one frame), and finishes that group. */
  writeFrame(data: Uint8Array, meta?: FrameMeta): void {
    const group = this.appendGroup();
    group.writeFrame(data, meta);
    group.close();
  }

  /** Resolves once no consumer is open (at once if none is). Used to cancel on-demand upstream work. */
  async unused(): Promise<void> {
    const state = this.#state;
    while (state.consumers > 0 && !state.done) await state.usage.changed();
  }

  /** Resolves when a consumer is added, removed, or the track ends. */
  usageChanged(): Promise<void> {
    return this.#state.usage.changed();
  }

  /** Releases this handle; the track ends (normally) once every handle is closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const state = this.#state;
    state.producers--;
    if (state.producers === 0) this.#finish();
  }

  /** Ends the track for every consumer with `error`. */
  abort(error: MoqError): void {
    this.#closed = true;
    this.#finish(error);
  }

  #finish(error?: MoqError): void {
    this.#state.finish(error);
    this.#state.usage.notify();
  }

  /** Another producer handle to the same track. */
  clone(): TrackProducer {
    const state = this.#state;
    state.producers++;
    const handle = new TrackProducer(state.name, state.limits);
    handle.#state = state;
    return handle;
  }

  /** A consumer starting at the newest group, from its first frame. */
  consume(): TrackConsumer {
    return new TrackConsumer(this);
  }

  static {
    trackStateOf = (producer) => producer.#state;
  }
}

/** @internal Ends a track regardless of open handles, and lets its owner hear about the end. */
export function controlTrack(producer: TrackProducer): {
  finish(error?: MoqError): void;
  onFinish(listener: () => void): void;
} {
  const state = trackStateOf(producer);
  return {
    finish: (error) => {
      state.finish(error);
      state.usage.notify();
    },
    onFinish: (listener) => {
      if (state.done) listener();
      else state.finishListeners.push(listener);
    },
  };
}

/**
 * Reads a track's groups. It starts at the newest group and returns groups in arrival order,
 * skipping any whose sequence is not newer than the last one returned. A consumer that falls
 * behind the cache gets {@link LaggedError} and can `skipToLatest()`. Close it when done, so an
 * on-demand producer can stop.
 */
export class TrackConsumer {
  readonly #state: TrackState;
  #next: number;
  #lastSequence = -1;
  #closed = false;

  /** A consumer of `source`: at a producer's newest group, or at another consumer's position. */
  constructor(source: TrackProducer | TrackConsumer) {
    if (source instanceof TrackConsumer) {
      this.#state = source.#state;
      this.#next = source.#next;
      this.#lastSequence = source.#lastSequence;
    } else {
      this.#state = trackStateOf(source);
      this.#next =
        this.#state.latest >= 0 ? this.#state.latest : this.#state.first + this.#state.groups.length;
    }
    this.#state.consumers++;
    this.#state.usage.notify();
  }

  /** The track name. */
  get name(): string {
    return this.#state.name;
  }

  /** Sequence of the last group returned, or -1. */
  get lastSequence(): number {
    return this.#lastSequence;
  }

  /** Resolves when the track ends, with the abort error if there was one. */
  get closed(): Promise<MoqError | undefined> {
    return this.#state.closed;
  }

  /**
   * The next group, or undefined when the track has ended (or this consumer was closed). Throws
   * {@link LaggedError} when the next group was evicted, and the abort error on abort.
   */
  async nextGroup(): Promise<GroupConsumer | undefined> {
    const state = this.#state;
    for (;;) {
      if (this.#closed) return undefined;
      if (this.#next < state.first) {
        const missed = state.first - this.#next;
        throw new LaggedError(`track ${state.name}: fell ${missed} group(s) behind the cache`);
      }
      const index = this.#next - state.first;
      if (index < state.groups.length) {
        this.#next++;
        const group = state.groups[index]!.producer;
        if (group.sequence <= this.#lastSequence) continue;
        this.#lastSequence = group.sequence;
        return group.consume();
      }
      if (state.error) throw state.error;
      if (state.done) return undefined;
      await state.notifier.changed();
    }
  }

  /**
   * The next group in arrival order, including groups older than one already returned: a relay
   * forwards every group exactly once even when the upstream delivered them out of order (the
   * official publishers send newer groups first). Throws {@link LaggedError} when the next group
   * was evicted, and the abort error on abort; undefined once the track ended or this consumer
   * was closed.
   */
  async recvGroup(): Promise<GroupConsumer | undefined> {
    const state = this.#state;
    for (;;) {
      if (this.#closed) return undefined;
      if (this.#next < state.first) {
        const missed = state.first - this.#next;
        throw new LaggedError(`track ${state.name}: fell ${missed} group(s) behind the cache`);
      }
      const index = this.#next - state.first;
      if (index < state.groups.length) {
        this.#next++;
        const group = state.groups[index]!.producer;
        if (group.sequence > this.#lastSequence) this.#lastSequence = group.sequence;
        return group.consume();
      }
      if (state.error) throw state.error;
      if (state.done) return undefined;
      await state.notifier.changed();
    }
  }

  /** Moves the cursor to the newest cached group (after a {@link LaggedError}, for example). */
  skipToLatest(): void {
    const state = this.#state;
    this.#next = state.latest >= state.first ? state.latest : state.first + state.groups.length;
  }

  /** An independent consumer at the same position. */
  clone(): TrackConsumer {
    return new TrackConsumer(this);
  }

  /** Stops this consumer; pending and later `nextGroup()` calls return undefined. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const state = this.#state;
    state.consumers--;
    state.usage.notify();
    state.notifier.notify();
  }
}
