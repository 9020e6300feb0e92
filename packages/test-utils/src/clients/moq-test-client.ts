/**
 * `MoqTestClient`: a moq-lite subscriber over WebSocket (the `connectMoq` client of
 * `@lvqr/moq-lite`) that collects what a server sends, for assertions: groups and frames of any
 * track, the hang `catalog.json`, and the `0.timing` anchors. Collections are bounded in bytes
 * and groups; counters keep counting past the bounds.
 *
 * ```ts
 * await using moq = await MoqTestClient.connect(server.moqUrl());
 * const video = await moq.subscribe("live/cam0", "video");
 * await video.waitForGroups(2);
 * const catalog = await moq.catalog("live/cam0");
 * ```
 */
import {
  type BroadcastConsumer,
  type ConnectMoqOptions,
  connectMoq,
  type GroupConsumer,
  LaggedError,
  type MoqClient,
  type TrackConsumer,
} from "@lvqr/moq-lite";
import { type HangCatalog, parseHangCatalog } from "@lvqr/packager";
import { TestUtilsError } from "../errors.ts";
import { waitFor } from "../wait-for.ts";

/** Options of {@link MoqTestClient.connect}. */
export interface MoqTestClientOptions {
  /** Sent as `?token=` (replacing any token already in the URL). */
  readonly token?: string;
  /** Connect/SETUP timeout, and the default wait for broadcasts (default 10 000 ms). */
  readonly timeoutMs?: number;
  /** Anything else `connectMoq` accepts (framings, app protocols, limits). */
  readonly connect?: ConnectMoqOptions;
}

/** Bounds of a {@link TrackCollector}. */
export interface TrackCollectorOptions {
  /** Frame bytes kept for inspection, across groups (default 16 MiB); frames beyond are counted only. */
  readonly maxBytes?: number;
  /** Group records kept (default 1000); the oldest records go first. */
  readonly maxGroups?: number;
}

/** One group as received. */
export interface CollectedGroup {
  readonly sequence: number;
  /** When the group's first frame arrived (performance.now() clock). */
  readonly receivedAt: number;
  /** Frames received so far. */
  frameCount: number;
  /** Payload bytes received so far. */
  byteCount: number;
  /** The frames kept (fewer than `frameCount` once the byte bound was hit). */
  readonly frames: Uint8Array[];
  /** True once the group's stream ended. */
  complete: boolean;
}

/** Collects the groups and frames of one track until closed. Create with {@link MoqTestClient.subscribe}. */
export class TrackCollector {
  readonly broadcast: string;
  readonly track: string;
  /** The newest group records, oldest first (bounded by `maxGroups`). */
  readonly groups: CollectedGroup[] = [];
  /** Groups received in total. */
  groupCount = 0;
  /** Frames received in total. */
  frameCount = 0;
  /** Payload bytes received in total. */
  byteCount = 0;
  /** Times this collector fell behind the cache and skipped ahead. */
  lagged = 0;
  /** Frames whose bytes were not kept because of `maxBytes`. */
  framesNotKept = 0;
  /** Set when the track failed (not found, aborted). */
  error: Error | undefined;
  /** True once the track ended or the collector was closed. */
  ended = false;
  readonly #consumer: TrackConsumer;
  readonly #maxBytes: number;
  readonly #maxGroups: number;
  #keptBytes = 0;
  readonly #listeners = new Set<() => void>();
  readonly #done: Promise<void>;

  /** @internal Use {@link MoqTestClient.subscribe}. */
  constructor(broadcast: string, consumer: TrackConsumer, options: TrackCollectorOptions = {}) {
    this.broadcast = broadcast;
    this.track = consumer.name;
    this.#consumer = consumer;
    this.#maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
    this.#maxGroups = options.maxGroups ?? 1000;
    this.#done = this.#run();
  }

  /** Resolves when the track has ended (or the collector was closed). */
  get done(): Promise<void> {
    return this.#done;
  }

  /** All frames kept, in group order then frame order. */
  frames(): Uint8Array[] {
    return this.groups.flatMap((g) => g.frames);
  }

  /** Called after every frame and group; returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Waits until `count` groups have been received (in total). */
  waitForGroups(count: number, options: { timeoutMs?: number } = {}): Promise<CollectedGroup[]> {
    return this.#waitFor(() => this.groupCount >= count, `${count} group(s)`, options.timeoutMs).then(
      () => this.groups,
    );
  }

  /** Waits until `count` frames have been received (in total). */
  waitForFrames(count: number, options: { timeoutMs?: number } = {}): Promise<Uint8Array[]> {
    return this.#waitFor(() => this.frameCount >= count, `${count} frame(s)`, options.timeoutMs).then(() =>
      this.frames(),
    );
  }

  /** Stops collecting; the upstream subscription ends when nothing else reads the track. Idempotent. */
  close(): void {
    this.#consumer.close();
    this.ended = true;
    this.#notify();
  }

  #waitFor(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return waitFor(
      () => {
        if (done()) return true;
        if (this.error) throw this.error;
        if (this.ended) throw new TestUtilsError("TEST_UTILS_CLOSED", `track ${this.track} ended`);
        return false;
      },
      {
        timeoutMs,
        failFast: () => true,
        message: `${what} on ${this.broadcast}/${this.track} (so far ${this.groupCount} groups, ${this.frameCount} frames)`,
      },
    ).then(() => undefined);
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  async #run(): Promise<void> {
    // Groups are read concurrently (a new one starts while the last may still be open), at most
    // 64 at a time so a peer that never finishes its groups cannot pile up readers.
    const readers = new Set<Promise<void>>();
    try {
      for (;;) {
        let group: GroupConsumer | undefined;
        try {
          group = await this.#consumer.nextGroup();
        } catch (error) {
          if (error instanceof LaggedError) {
            this.lagged++;
            this.#consumer.skipToLatest();
            continue;
          }
          throw error;
        }
        if (group === undefined) break;
        const reader: Promise<void> = this.#readGroup(group).finally(() => readers.delete(reader));
        readers.add(reader);
        if (readers.size >= 64) await Promise.race(readers);
      }
      await Promise.all(readers);
    } catch (error) {
      this.error = error instanceof Error ? error : new Error(String(error));
    } finally {
      this.ended = true;
      this.#notify();
    }
  }

  async #readGroup(group: GroupConsumer): Promise<void> {
    const record: CollectedGroup = {
      sequence: group.sequence,
      receivedAt: performance.now(),
      frameCount: 0,
      byteCount: 0,
      frames: [],
      complete: false,
    };
    this.groups.push(record);
    this.groupCount++;
    while (this.groups.length > this.#maxGroups) {
      const evicted = this.groups.shift()!;
      for (const frame of evicted.frames) this.#keptBytes -= frame.byteLength;
    }
    this.#notify();
    try {
      for (;;) {
        const frame = await group.readFrame();
        if (frame === undefined) break;
        record.frameCount++;
        record.byteCount += frame.byteLength;
        this.frameCount++;
        this.byteCount += frame.byteLength;
        if (this.#keptBytes + frame.byteLength <= this.#maxBytes) {
          record.frames.push(frame);
          this.#keptBytes += frame.byteLength;
        } else {
          this.framesNotKept++;
        }
        this.#notify();
      }
      record.complete = true;
    } catch {
      // A group cut short (the publisher moved on, the session closed) keeps what arrived.
    }
    this.#notify();
  }
}

/** One `0.timing` record: a video group of `0.mp4` and the ingest wall clock of its keyframe. */
export interface TimingAnchor {
  /** Sequence of the `0.mp4` group this keyframe starts. */
  readonly groupSequence: number;
  /** Unix ms when the server ingested the keyframe. */
  readonly ingestTimeMs: number;
}

/** Decodes a `0.timing` frame: u64 LE group sequence, u64 LE ingest Unix ms. */
export function parseTimingAnchor(frame: Uint8Array): TimingAnchor {
  if (frame.byteLength !== 16) {
    throw new TestUtilsError(
      "TEST_UTILS_MEDIA_INVALID",
      `a 0.timing frame is 16 bytes, this one is ${frame.byteLength}`,
    );
  }
  const view = new DataView(frame.buffer, frame.byteOffset, 16);
  return {
    groupSequence: Number(view.getBigUint64(0, true)),
    ingestTimeMs: Number(view.getBigUint64(8, true)),
  };
}

/** A connected moq-lite subscriber for tests. */
export class MoqTestClient implements AsyncDisposable {
  /** The underlying client (session, stats, remote origin). */
  readonly client: MoqClient;
  readonly url: string;
  readonly #timeoutMs: number;
  readonly #collectors = new Set<TrackCollector>();
  #closed = false;

  private constructor(client: MoqClient, url: string, timeoutMs: number) {
    this.client = client;
    this.url = url;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Connects to a moq-lite server (`http://host:port/<root>`, as `TestServer.moqUrl()` gives)
   * and completes SETUP. Broadcast paths are relative to the URL's path.
   */
  static async connect(url: string, options: MoqTestClientOptions = {}): Promise<MoqTestClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const target = new URL(url);
    if (options.token !== undefined) target.searchParams.set("token", options.token);
    const client = await connectMoq(target, { timeoutMs, ...options.connect });
    return new MoqTestClient(client, target.toString(), timeoutMs);
  }

  /** Waits until the server announces `broadcast`. */
  broadcast(broadcast: string, options: { timeoutMs?: number } = {}): Promise<BroadcastConsumer> {
    this.#checkOpen();
    return this.client.waitForBroadcast(broadcast, { timeoutMs: options.timeoutMs ?? this.#timeoutMs });
  }

  /** Waits for `broadcast`, subscribes to `track` and collects it until closed. */
  async subscribe(
    broadcast: string,
    track: string,
    options: TrackCollectorOptions & { timeoutMs?: number } = {},
  ): Promise<TrackCollector> {
    const consumer = (await this.broadcast(broadcast, options)).subscribeTrack(track);
    const collector = new TrackCollector(broadcast, consumer, options);
    this.#collectors.add(collector);
    void collector.done.then(() => this.#collectors.delete(collector));
    return collector;
  }

  /** The current hang catalog (`catalog.json`) of `broadcast`, validated. */
  async catalog(broadcast: string, options: { timeoutMs?: number } = {}): Promise<HangCatalog> {
    const frame = await this.#firstFrame(broadcast, "catalog.json", options.timeoutMs);
    return parseHangCatalog(frame);
  }

  /** The reference layout's `.catalog` JSON of `broadcast`, parsed (not validated). */
  async referenceCatalog(broadcast: string, options: { timeoutMs?: number } = {}): Promise<unknown> {
    const frame = await this.#firstFrame(broadcast, ".catalog", options.timeoutMs);
    return JSON.parse(new TextDecoder().decode(frame));
  }

  /** Subscribes to `0.timing`; decode its frames with {@link parseTimingAnchor} or use {@link timingAnchors}. */
  timing(
    broadcast: string,
    options: TrackCollectorOptions & { timeoutMs?: number } = {},
  ): Promise<TrackCollector> {
    return this.subscribe(broadcast, "0.timing", options);
  }

  /** Closes every collector and the session, and waits for the connection to close. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const collector of this.#collectors) collector.close();
      this.#collectors.clear();
      this.client.close();
    }
    await this.client.closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new TestUtilsError("TEST_UTILS_CLOSED", "this MoqTestClient is closed");
  }

  async #firstFrame(broadcast: string, track: string, timeoutMs = this.#timeoutMs): Promise<Uint8Array> {
    const collector = await this.subscribe(broadcast, track, { timeoutMs, maxGroups: 4 });
    try {
      const frames = await collector.waitForFrames(1, { timeoutMs });
      return frames[0]!;
    } finally {
      collector.close();
    }
  }
}

/** The anchors a `0.timing` collector has received so far. */
export function timingAnchors(collector: TrackCollector): TimingAnchor[] {
  return collector.frames().map(parseTimingAnchor);
}
