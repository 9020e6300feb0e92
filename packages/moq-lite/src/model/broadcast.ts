import { MoqError, NotFoundError } from "../error.ts";
import { ChangeNotifier } from "./notifier.ts";
import {
  controlTrack,
  DEFAULT_TRACK_LIMITS,
  type TrackConsumer,
  type TrackLimits,
  TrackProducer,
} from "./track.ts";

/** A track some consumer asked for that the broadcast did not have; the request handler fills it. */
export interface TrackRequest {
  readonly name: string;
  /** Priority of the first subscriber that asked (higher is more important). */
  readonly priority: number;
  /** Write the track's groups here, or abort it (e.g. with NotFoundError). */
  readonly track: TrackProducer;
}

/** Options of a {@link BroadcastProducer}. */
export interface BroadcastOptions {
  /**
   * Serve unknown track names on demand: `subscribeTrack()` of a missing track creates it and
   * queues a {@link TrackRequest} for `requestedTrack()`. A relay uses this to subscribe upstream
   * only when someone downstream wants the track.
   */
  readonly onDemand?: boolean;
  /** Cache bounds for tracks this broadcast creates. */
  readonly trackLimits?: TrackLimits;
}

/** Options of {@link BroadcastConsumer.subscribeTrack}. */
export interface SubscribeOptions {
  /** Priority passed to an on-demand request (0-255, higher first). */
  readonly priority?: number;
}

interface TrackEntry {
  readonly producer: TrackProducer;
  readonly onDemand: boolean;
}

class BroadcastState {
  readonly onDemand: boolean;
  readonly trackLimits: TrackLimits;
  readonly tracks: Map<string, TrackEntry> = new Map();
  readonly requests: TrackRequest[] = [];
  done = false;
  error: MoqError | undefined;
  producers = 1;
  readonly notifier: ChangeNotifier = new ChangeNotifier();
  readonly closed: Promise<MoqError | undefined>;
  #resolveClosed: (error: MoqError | undefined) => void;

  constructor(options: BroadcastOptions) {
    this.onDemand = options.onDemand ?? false;
    this.trackLimits = options.trackLimits ?? DEFAULT_TRACK_LIMITS;
    const { promise, resolve } = Promise.withResolvers<MoqError | undefined>();
    this.closed = promise;
    this.#resolveClosed = resolve;
  }

  register(producer: TrackProducer, onDemand: boolean): void {
    const entry: TrackEntry = { producer, onDemand };
    this.tracks.set(producer.name, entry);
    controlTrack(producer).onFinish(() => {
      if (this.tracks.get(producer.name) === entry) this.tracks.delete(producer.name);
    });
  }

  finish(error?: MoqError): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    for (const entry of [...this.tracks.values()]) controlTrack(entry.producer).finish(error);
    for (const request of this.requests.splice(0)) controlTrack(request.track).finish(error);
    this.notifier.notify();
    this.#resolveClosed(error);
  }
}

// Gives the consumer classes (and internal helpers) access to the producer's private state.
let broadcastStateOf: (producer: BroadcastProducer) => BroadcastState;

/**
 * Writes a broadcast: a set of named tracks. Tracks are created up front with `createTrack()`, or
 * on demand when the broadcast was made with `onDemand: true`. Closing the broadcast ends all of
 * its tracks.
 */
export class BroadcastProducer {
  #state: BroadcastState;
  #closed = false;

  /** A new, empty broadcast. */
  constructor(options: BroadcastOptions = {}) {
    this.#state = new BroadcastState(options);
  }

  /** True once the broadcast has ended or been aborted. */
  get done(): boolean {
    return this.#state.done;
  }

  /** Resolves when the broadcast ends, with the abort error if there was one. */
  get closed(): Promise<MoqError | undefined> {
    return this.#state.closed;
  }

  /** Names of the tracks that currently exist. */
  trackNames(): string[] {
    return [...this.#state.tracks.keys()];
  }

  /** Creates a track. Throws when a live track of that name exists. */
  createTrack(name: string, limits?: TrackLimits): TrackProducer {
    const state = this.#state;
    if (state.done) throw new MoqError("MOQ_CLOSED", "broadcast has ended");
    const existing = state.tracks.get(name);
    if (existing && !existing.producer.done)
      throw new MoqError("MOQ_DUPLICATE", `track ${name} already exists`);
    const producer = new TrackProducer(name, limits ?? state.trackLimits);
    state.register(producer, false);
    return producer;
  }

  /** The live track of that name, if any. */
  getTrack(name: string): TrackProducer | undefined {
    return this.#state.tracks.get(name)?.producer;
  }

  /**
   * The next on-demand track request, or undefined once the broadcast has ended. Only
   * broadcasts created with `onDemand: true` receive requests.
   */
  async requestedTrack(): Promise<TrackRequest | undefined> {
    const state = this.#state;
    for (;;) {
      const request = state.requests.shift();
      if (request) return request;
      if (state.done) return undefined;
      await state.notifier.changed();
    }
  }

  /** Releases this handle; the broadcast ends once every handle is closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const state = this.#state;
    state.producers--;
    if (state.producers === 0) state.finish();
  }

  /** Ends the broadcast and all its tracks with `error`. */
  abort(error: MoqError): void {
    this.#closed = true;
    this.#state.finish(error);
  }

  /** Another producer handle to the same broadcast. */
  clone(): BroadcastProducer {
    const state = this.#state;
    state.producers++;
    const handle = new BroadcastProducer();
    handle.#state = state;
    return handle;
  }

  /** A consumer (a read view) of this broadcast. */
  consume(): BroadcastConsumer {
    return new BroadcastConsumer(this);
  }

  static {
    broadcastStateOf = (producer) => producer.#state;
  }
}

/** Reads a broadcast: subscribe to its tracks by name. */
export class BroadcastConsumer {
  readonly #state: BroadcastState;

  /** A consumer of `source`. */
  constructor(source: BroadcastProducer | BroadcastConsumer) {
    this.#state = source instanceof BroadcastConsumer ? source.#state : broadcastStateOf(source);
  }

  /** True once the broadcast has ended. */
  get done(): boolean {
    return this.#state.done;
  }

  /** Resolves when the broadcast ends, with the abort error if there was one. */
  get closed(): Promise<MoqError | undefined> {
    return this.#state.closed;
  }

  /** True when both consumers read the same broadcast. */
  sameAs(other: BroadcastConsumer): boolean {
    return this.#state === other.#state;
  }

  /** Names of the tracks that currently exist. */
  trackNames(): string[] {
    return [...this.#state.tracks.keys()];
  }

  /**
   * A consumer of the named track, starting at its newest group. When the track does not exist
   * the consumer fails with NotFoundError, unless the broadcast serves tracks on demand. Close
   * the returned consumer when done.
   */
  subscribeTrack(name: string, options: SubscribeOptions = {}): TrackConsumer {
    const state = this.#state;
    if (state.done)
      return failedTrack(name, state.error ?? new MoqError("MOQ_CLOSED", "broadcast has ended"));
    const existing = state.tracks.get(name);
    // An on-demand track with no consumers left is being torn down; ask again instead of joining it.
    if (
      existing &&
      !existing.producer.done &&
      !(existing.onDemand && existing.producer.consumerCount === 0)
    ) {
      return existing.producer.consume();
    }
    if (!state.onDemand) return failedTrack(name, new NotFoundError(`track ${name} not found`));
    if (existing) controlTrack(existing.producer).finish();
    const producer = new TrackProducer(name, state.trackLimits);
    state.register(producer, true);
    const consumer = producer.consume();
    state.requests.push({ name, priority: options.priority ?? 0, track: producer });
    state.notifier.notify();
    return consumer;
  }

  /** An equivalent consumer. */
  clone(): BroadcastConsumer {
    return new BroadcastConsumer(this);
  }
}

function failedTrack(name: string, error: MoqError): TrackConsumer {
  const producer = new TrackProducer(name);
  const consumer = producer.consume();
  producer.abort(error);
  return consumer;
}
