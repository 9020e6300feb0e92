/**
 * `publishRtmp`: pushes an FLV source (the committed fixture, a synthetic stream, any FLV file)
 * to an RTMP server with the TypeScript publish client of `@lvqr/ingest-rtmp`: no ffmpeg.
 *
 * Timestamps are replayed as they are in the source; looping adds one loop length per repeat, so
 * the server sees one continuous timeline. Pacing follows the timestamps in real time (like
 * `ffmpeg -re`) or sends as fast as the socket drains. A publish ends cleanly (FCUnpublish,
 * deleteStream) or abruptly (socket destroyed: what a crashed encoder or a dropped network
 * looks like), and counts what it sent.
 */
import { type AmfObject, RtmpError, RtmpPublisher, type RtmpPublisherOptions } from "@lvqr/ingest-rtmp";
import { TestUtilsError } from "../errors.ts";
import { fixtureSource } from "../media/fixture.ts";
import {
  type FlvTag,
  type FlvTagSource,
  FlvTagType,
  flvSourceFromFile,
  isVideoKeyframe,
} from "../media/flv-source.ts";

/** What to publish: a source, FLV file bytes, or `"fixture"` (the committed `av.flv`). */
export type PublishSource = FlvTagSource | Uint8Array | "fixture";

/** Options of {@link publishRtmp}. */
export interface PublishRtmpOptions {
  /** Pace tags by their timestamps (default true); false sends as fast as the socket drains. */
  readonly realtime?: boolean;
  /** Repeat the source forever (until `durationMs` or `stop()`), timestamps continuing (default false). */
  readonly loop?: boolean;
  /** Stop after this much media time (ms from the first media tag), looping as needed to reach it. */
  readonly durationMs?: number;
  /** Stay connected after the last tag instead of unpublishing (default false). */
  readonly keepOpen?: boolean;
  /** Send the source's `onMetaData` (default true). */
  readonly sendMetadata?: boolean;
  /** Options of the RTMP client (handshake, timeouts, chunk size). */
  readonly rtmp?: RtmpPublisherOptions;
  /** Aborting stops the publish cleanly, as `stop()` does. */
  readonly signal?: AbortSignal;
}

/** What a publish has sent so far (live counters; read them at any time). */
export interface PublishCounters {
  /** Media tags sent (audio + video, headers not included). */
  tags: number;
  videoTags: number;
  audioTags: number;
  /** Video keyframes sent. */
  keyframes: number;
  /** Sequence headers and metadata messages sent. */
  headers: number;
  /** Tag body bytes sent (media and headers). */
  payloadBytes: number;
  /** Bytes written to the socket, handshake and chunk headers included. */
  bytesSent: number;
  /** Completed passes over the source. */
  loops: number;
  /** Timestamp of the last media tag sent, or -1. */
  lastTimestampMs: number;
}

/** How a publish ended. */
export interface PublishOutcome {
  /**
   * - `completed`: the source (or `durationMs`) was sent and the publish closed cleanly (or stayed
   *   open with `keepOpen` until `stop()`);
   * - `stopped`: `stop()` (or the signal) ended it cleanly before that;
   * - `destroyed`: `stop({ abrupt: true })` / `destroy()` dropped the socket;
   * - `failed`: the connection broke or the server closed it; `error` says how.
   */
  readonly reason: "completed" | "stopped" | "destroyed" | "failed";
  readonly error?: Error;
  readonly counters: Readonly<PublishCounters>;
}

/** A running publish. */
export interface RtmpPublishHandle extends AsyncDisposable {
  /** The URL published to. */
  readonly url: string;
  readonly source: FlvTagSource;
  /** The RTMP client (its `statuses` hold every onStatus the server sent). */
  readonly publisher: RtmpPublisher;
  /** Live counters. */
  readonly counters: Readonly<PublishCounters>;
  /** Resolves (never rejects) when the publish has ended and its connection is closed. */
  readonly done: Promise<PublishOutcome>;
  /** Resolves once every tag of the source (or `durationMs`) has been sent, or the publish ended first. */
  readonly sent: Promise<void>;
  /**
   * Ends the publish: cleanly by default (FCUnpublish, deleteStream, then the socket closes), or
   * with `{ abrupt: true }` by destroying the socket. Idempotent; resolves with the outcome.
   */
  stop(options?: { abrupt?: boolean }): Promise<PublishOutcome>;
  /** Destroys the socket at once (no unpublish). */
  destroy(): void;
}

function positiveOrUndefined(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new TestUtilsError("TEST_UTILS_INVALID_OPTION", `${name} ${value} must be a positive number of ms`);
  }
  return value;
}

async function resolveSource(source: PublishSource): Promise<FlvTagSource> {
  if (source === "fixture") return fixtureSource();
  if (source instanceof Uint8Array) return flvSourceFromFile(source);
  if (typeof source === "object" && source !== null && Array.isArray(source.media)) return source;
  throw new TestUtilsError(
    "TEST_UTILS_INVALID_OPTION",
    'publishRtmp needs an FlvTagSource, FLV file bytes or "fixture" as its source',
  );
}

/**
 * Connects to `url` (`rtmp://host:port/app/stream[?key=...]`), publishes, and starts sending
 * `source` in the background. Resolves once the server answered `NetStream.Publish.Start`;
 * rejects with the client's `PublishRejectedError` when the server refuses the publish, or an
 * `RtmpError` when it cannot connect.
 *
 * ```ts
 * const publish = await publishRtmp(server.rtmpUrl("live", "cam0"), "fixture", { loop: true });
 * // ... assert on the outputs ...
 * await publish.stop();
 * ```
 */
export async function publishRtmp(
  url: string,
  source: PublishSource,
  options: PublishRtmpOptions = {},
): Promise<RtmpPublishHandle> {
  const durationMs = positiveOrUndefined("durationMs", options.durationMs);
  const resolved = await resolveSource(source);
  if (options.signal?.aborted) {
    throw new TestUtilsError("TEST_UTILS_CLOSED", "publishRtmp was aborted before it connected", {
      cause: options.signal.reason,
    });
  }
  const publisher = await RtmpPublisher.connect(url, options.rtmp);
  return new Publish(url, resolved, publisher, { ...options, durationMs });
}

/** Cancellable sleeps and the stop state of one publish. */
class Publish implements RtmpPublishHandle {
  readonly url: string;
  readonly source: FlvTagSource;
  readonly publisher: RtmpPublisher;
  readonly counters: PublishCounters = {
    tags: 0,
    videoTags: 0,
    audioTags: 0,
    keyframes: 0,
    headers: 0,
    payloadBytes: 0,
    bytesSent: 0,
    loops: 0,
    lastTimestampMs: -1,
  };
  readonly done: Promise<PublishOutcome>;
  readonly sent: Promise<void>;
  readonly #options: PublishRtmpOptions;
  #stopRequest: "clean" | "abrupt" | undefined;
  #wake: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => {
    void this.stop();
  };
  #resolveSent!: () => void;

  constructor(url: string, source: FlvTagSource, publisher: RtmpPublisher, options: PublishRtmpOptions) {
    this.url = url;
    this.source = source;
    this.publisher = publisher;
    this.#options = options;
    this.sent = new Promise((resolve) => {
      this.#resolveSent = resolve;
    });
    this.#signal = options.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.done = this.#run().finally(() => {
      this.#signal?.removeEventListener("abort", this.#onAbort);
      this.#resolveSent();
    });
  }

  stop(options: { abrupt?: boolean } = {}): Promise<PublishOutcome> {
    if (options.abrupt) {
      this.#stopRequest = "abrupt";
      this.publisher.destroy();
    } else {
      this.#stopRequest ??= "clean";
    }
    this.#wakeUp();
    return this.done;
  }

  destroy(): void {
    void this.stop({ abrupt: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #wakeUp(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Waits `ms` unless a stop request or the connection closing comes first. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(() => this.#wakeUp(), ms);
    });
  }

  #syncBytes(): void {
    this.counters.bytesSent = this.publisher.sent.bytesSent;
  }

  async #send(tag: FlvTag, timestamp: number): Promise<void> {
    const ts = Math.max(0, Math.round(timestamp));
    if (tag.type === FlvTagType.Video) await this.publisher.sendVideo(ts, tag.body);
    else await this.publisher.sendAudio(ts, tag.body);
    this.counters.payloadBytes += tag.body.byteLength;
    this.#syncBytes();
  }

  async #run(): Promise<PublishOutcome> {
    const closedEarly = this.publisher.whenClosed.then((error) => {
      this.#wakeUp();
      return error;
    });
    let failure: Error | undefined;
    let finished = false;
    try {
      finished = await this.#sendAll();
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error));
    }
    this.#resolveSent();
    const request = this.#stopRequest;
    if (request === "abrupt") {
      this.publisher.destroy();
      await this.publisher.whenClosed;
      this.#syncBytes();
      return { reason: "destroyed", counters: { ...this.counters } };
    }
    if (failure === undefined && this.publisher.closed) {
      failure = (await closedEarly) ?? new RtmpError("RTMP_CLOSED", "the server closed the connection");
    }
    if (failure !== undefined) {
      this.publisher.destroy();
      await this.publisher.whenClosed;
      this.#syncBytes();
      return { reason: "failed", error: failure, counters: { ...this.counters } };
    }
    if (finished && this.#options.keepOpen && request === undefined) {
      // Hold the publish until stop() or the server closes it.
      while (this.#stopRequest === undefined && !this.publisher.closed) await this.#sleep(60_000);
      if (this.#stopRequest === "abrupt") {
        await this.publisher.whenClosed;
        this.#syncBytes();
        return { reason: "destroyed", counters: { ...this.counters } };
      }
      if (this.publisher.closed) {
        const error = (await closedEarly) ?? new RtmpError("RTMP_CLOSED", "the server closed the connection");
        return { reason: "failed", error, counters: { ...this.counters } };
      }
    }
    await this.publisher.close();
    this.#syncBytes();
    return { reason: finished ? "completed" : "stopped", counters: { ...this.counters } };
  }

  /** Sends the source; true when it ran to its end (or `durationMs`), false when stopped first. */
  async #sendAll(): Promise<boolean> {
    const source = this.source;
    const options = this.#options;
    const realtime = options.realtime ?? true;
    const loop = options.loop ?? false;
    const durationMs = options.durationMs;
    if ((options.sendMetadata ?? true) && source.metadata !== undefined) {
      await this.publisher.sendMetadata(source.metadata as AmfObject);
      this.counters.headers++;
    }
    const first = source.summary.firstTimestampMs;
    for (const tag of source.headers) {
      if (this.#stopRequest !== undefined) return false;
      await this.#send(tag, Math.max(0, first));
      this.counters.headers++;
    }
    const startedAt = performance.now();
    let sinceYield = 0;
    for (let k = 0; ; k++) {
      const shift = Math.round(k * source.loopDurationMs);
      for (const tag of source.media) {
        if (this.#stopRequest !== undefined || this.publisher.closed) return false;
        const mediaTime = tag.timestamp + shift - first;
        if (durationMs !== undefined && mediaTime >= durationMs) return this.#finish();
        if (realtime) {
          const wait = startedAt + mediaTime - performance.now();
          if (wait > 1) {
            await this.#sleep(wait);
            if (this.#stopRequest !== undefined || this.publisher.closed) return false;
          }
        } else if (++sinceYield >= 64) {
          // A fast publish yields now and then so timers and other sockets keep running.
          sinceYield = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        await this.#send(tag, tag.timestamp + shift);
        this.counters.tags++;
        this.counters.lastTimestampMs = Math.max(0, Math.round(tag.timestamp + shift));
        if (tag.type === FlvTagType.Video) {
          this.counters.videoTags++;
          if (isVideoKeyframe(tag.body)) this.counters.keyframes++;
        } else {
          this.counters.audioTags++;
        }
      }
      this.counters.loops++;
      const more = loop || (durationMs !== undefined && (k + 1) * source.loopDurationMs < durationMs);
      if (!more) return this.#finish();
    }
  }

  async #finish(): Promise<boolean> {
    if (!this.#options.keepOpen) {
      const end = Math.max(0, this.counters.lastTimestampMs);
      for (const tag of this.source.trailer) await this.#send(tag, end);
    }
    this.#resolveSent();
    return true;
  }
}
