/**
 * `UpstreamSession`: the one moq-lite client session a relaying node opens to a broadcast's owner.
 * It is opened lazily, on the first track subscription, asks the owner only about that broadcast
 * (`announceInterest: [broadcast]`), and is closed again once no track has been read for `idleMs`.
 * Track subscriptions are shared by the session itself: two local readers of one track make one
 * upstream SUBSCRIBE, cancelled when the last of them goes.
 *
 * A connection that drops while tracks are being read (the owner closed it when the node's
 * credential expired, a proxy restarted) is reopened in place, and readers re-subscribe on the new
 * connection and carry on: group sequences are the owner's, so nothing is repeated and nothing is
 * re-announced. A session that cannot be (re)opened, drops more than `maxReconnects` times in
 * `reconnectWindowMs`, or whose owner stops announcing the broadcast *fails*: it reports the
 * failure once (`onFailure`) and refuses further subscriptions. Retrying (with backoff, possibly
 * towards a new owner) is the caller's decision.
 */

import {
  type BroadcastConsumer,
  type ConnectMoqOptions,
  connectMoq,
  type MoqClient,
  MoqError,
  type TrackConsumer,
} from "@lvqr/moq-lite";
import { ClusterError } from "../error.ts";
import { type ClusterLogger, silentLogger } from "../logger.ts";

/** Opens a moq-lite client session (default `connectMoq`); injectable for tests. */
export type MoqConnector = (url: string, options: ConnectMoqOptions) => Promise<MoqClient>;

/** Options of {@link UpstreamSession}. */
export interface UpstreamSessionOptions {
  /** Broadcast path, relative to the session root of `url`. */
  readonly broadcast: string;
  /** The owner's MoQ base URL (`http://node-a:4443`); its path is the session root. */
  readonly url: string;
  /** Credential sent as `?token=`, fetched for every connection attempt (it may be short-lived). */
  readonly token?: () => string | undefined | Promise<string | undefined>;
  readonly connect?: MoqConnector;
  /** Connect and SETUP timeout, ms. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** How long the owner may take to announce the broadcast once connected, ms. Default 5000. */
  readonly announceTimeoutMs?: number;
  /** How long the session stays open with no track read, ms. Default 3000. */
  readonly idleMs?: number;
  /**
   * WebSocket ping interval, ms: a connection that misses a pong for an interval is dropped, so a
   * silent owner (partition, paused process) counts as a failure instead of a stall. Default 5000.
   */
  readonly pingIntervalMs?: number;
  /** In-place reconnects allowed within `reconnectWindowMs` before the session fails. Default 3. */
  readonly maxReconnects?: number;
  /** Window for `maxReconnects`, ms. Default 30000. */
  readonly reconnectWindowMs?: number;
  /** Called once when the session fails (never after `close()`). */
  readonly onFailure?: (error: Error) => void;
  readonly logger?: ClusterLogger;
  /** Fields added to this session's log lines (owner id, epoch). */
  readonly logFields?: Readonly<Record<string, unknown>>;
}

interface OpenClient {
  /** Which connection of this session (1, 2, ...). */
  readonly id: number;
  readonly client: MoqClient;
  /** The owner's broadcast, once announced. */
  readonly broadcast: Promise<BroadcastConsumer>;
}

/** A subscription made through {@link UpstreamSession.subscribe}. */
export interface UpstreamTrack {
  readonly consumer: TrackConsumer;
  /** The connection it was made on (see {@link UpstreamSession.dropped}). */
  readonly connection: number;
}

/** Connections remembered for {@link UpstreamSession.dropped}. */
const REMEMBERED_CONNECTIONS = 8;

/** A lazily opened, shared, idle-closed moq-lite session to one broadcast's owner. */
export class UpstreamSession {
  readonly broadcast: string;
  readonly url: string;
  readonly #options: UpstreamSessionOptions;
  readonly #logger: ClusterLogger;
  readonly #fields: Readonly<Record<string, unknown>>;
  #open: Promise<OpenClient> | undefined;
  #users = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  #failure: Error | undefined;
  #closed = false;
  #connections = 0;
  readonly #drops: number[] = [];
  readonly #history = new Map<number, { readonly closed: Promise<unknown>; byUs: boolean }>();

  constructor(options: UpstreamSessionOptions) {
    this.broadcast = options.broadcast;
    this.url = options.url;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#fields = { broadcast: options.broadcast, upstream: redactUrl(options.url), ...options.logFields };
  }

  /** The failure that ended this session, if any. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** True while a connection is open or being opened. */
  get connected(): boolean {
    return this.#open !== undefined;
  }

  /** Connections opened so far (each idle period ends one). */
  get connections(): number {
    return this.#connections;
  }

  /** Track readers currently holding the session open. */
  get users(): number {
    return this.#users;
  }

  /**
   * Subscribes to `track` of the owner's broadcast, opening the session if needed. The caller must
   * call {@link release} once it stops reading the returned consumer (and close the consumer).
   * Rejects when the session failed or fails while opening.
   */
  async subscribe(track: string, priority = 0): Promise<UpstreamTrack> {
    if (this.#closed) throw new ClusterError("CLUSTER_CLOSED", "the upstream session is closed");
    if (this.#failure) throw this.#failure;
    this.#users += 1;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    try {
      const open = await this.#connect();
      const broadcast = await open.broadcast;
      if (this.#failure) throw this.#failure;
      return { consumer: broadcast.subscribeTrack(track, { priority }), connection: open.id };
    } catch (err) {
      this.release();
      throw err;
    }
  }

  /**
   * True when `connection` closed without this session closing it (it dropped), within `graceMs`.
   * A track that ended because its connection dropped can be resumed with a new subscription;
   * one that ended on a live connection was ended by the owner.
   */
  async dropped(connection: number, graceMs = 100): Promise<boolean> {
    const record = this.#history.get(connection);
    if (!record) return true;
    const closed = await Promise.race([
      record.closed.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceMs)),
    ]);
    return closed && !record.byUs;
  }

  /**
   * Opens the session (if needed) and waits until the owner announces the broadcast. Rejects when
   * that fails, which also fails the session. Used to check a new owner before moving viewers to it.
   */
  async ready(): Promise<void> {
    if (this.#closed) throw new ClusterError("CLUSTER_CLOSED", "the upstream session is closed");
    if (this.#failure) throw this.#failure;
    this.#users += 1;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    try {
      const open = await this.#connect();
      await open.broadcast;
      if (this.#failure) throw this.#failure;
    } finally {
      this.release();
    }
  }

  /** Gives back one {@link subscribe}; the session closes after `idleMs` without users. */
  release(): void {
    if (this.#users > 0) this.#users -= 1;
    if (this.#users > 0 || this.#closed || this.#open === undefined) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#users === 0) this.#disconnect("idle");
    }, this.#options.idleMs ?? 3000);
    this.#idleTimer.unref?.();
  }

  /** Closes the connection for good. Idempotent; never reports a failure. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.#disconnect("closed");
  }

  #connect(): Promise<OpenClient> {
    if (this.#open) return this.#open;
    const attempt = this.#openClient();
    this.#open = attempt;
    attempt.catch((err: unknown) => {
      if (this.#open === attempt) this.#fail(err);
    });
    return attempt;
  }

  async #openClient(): Promise<OpenClient> {
    const options = this.#options;
    const token = await options.token?.();
    const url = new URL(options.url);
    if (token !== undefined && token !== "") url.searchParams.set("token", token);
    const connect = options.connect ?? connectMoq;
    const client = await connect(url.toString(), {
      announceInterest: [this.broadcast],
      timeoutMs: options.connectTimeoutMs ?? 5000,
      pingIntervalMs: options.pingIntervalMs ?? 5000,
    });
    const current = this.#open;
    if (this.#closed || this.#failure || current === undefined) {
      client.close();
      throw this.#failure ?? new ClusterError("CLUSTER_CLOSED", "the upstream session is closed");
    }
    this.#connections += 1;
    const id = this.#connections;
    this.#history.set(id, { closed: client.closed, byUs: false });
    if (this.#history.size > REMEMBERED_CONNECTIONS) this.#history.delete(this.#history.keys().next().value!);
    this.#logger.info(this.#fields, "relay upstream session opened");
    let connectionClosed = false;
    void client.closed.then((info) => {
      connectionClosed = true;
      if (this.#open !== current) return; // closed by us (idle or close())
      this.#onConnectionLost(
        new MoqError(
          "MOQ_TRANSPORT",
          `the owner closed the relay session (${info.code}${info.reason ? `: ${info.reason}` : ""})`,
        ),
      );
    });
    const broadcast = client
      .waitForBroadcast(this.broadcast, { timeoutMs: options.announceTimeoutMs ?? 5000 })
      .then((consumer) => {
        void consumer.closed.then(async () => {
          // A dropped connection ends the imported broadcast too; that is handled above.
          await Promise.race([client.closed, new Promise((resolve) => setTimeout(resolve, 50))]);
          if (this.#open !== current || connectionClosed) return;
          this.#fail(new MoqError("MOQ_NOT_FOUND", `the owner stopped announcing ${this.broadcast}`));
        });
        return consumer;
      });
    broadcast.catch((err: unknown) => {
      if (this.#open === current) this.#fail(err);
    });
    return { id, client, broadcast };
  }

  /** The connection dropped: reopen it in place while tracks are being read (bounded), else forget it. */
  #onConnectionLost(error: Error): void {
    this.#open = undefined;
    if (this.#users === 0) {
      this.#logger.info(
        { ...this.#fields, err: error.message },
        "relay upstream session closed by the owner",
      );
      return;
    }
    const now = performance.now();
    const windowMs = this.#options.reconnectWindowMs ?? 30_000;
    while (this.#drops.length > 0 && now - this.#drops[0]! > windowMs) this.#drops.shift();
    this.#drops.push(now);
    if (this.#drops.length > (this.#options.maxReconnects ?? 3)) {
      this.#fail(error);
      return;
    }
    this.#logger.info(
      { ...this.#fields, err: error.message },
      "relay upstream session dropped; reconnecting",
    );
    // Readers re-subscribe as their tracks end; opening now saves them the connect time.
    this.#connect().catch(() => {});
  }

  #disconnect(reason: "idle" | "closed" | "failed"): void {
    const open = this.#open;
    this.#open = undefined;
    if (!open) return;
    open.then(
      ({ id, client }) => {
        const record = this.#history.get(id);
        if (record) record.byUs = true;
        client.close();
        if (reason !== "failed")
          this.#logger.info({ ...this.#fields, reason }, "relay upstream session closed");
      },
      () => {},
    );
  }

  #fail(err: unknown): void {
    if (this.#closed || this.#failure) return;
    const error = err instanceof Error ? err : new Error(String(err));
    this.#failure = error;
    clearTimeout(this.#idleTimer);
    this.#logger.warn({ ...this.#fields, err: error.message }, "relay upstream session failed");
    this.#disconnect("failed");
    try {
      this.#options.onFailure?.(error);
    } catch (listenerError) {
      this.#logger.error(
        { ...this.#fields, err: (listenerError as Error)?.message },
        "a relay failure listener threw",
      );
    }
  }
}

/** The URL without credentials, for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.search = "";
    parsed.username = "";
    parsed.password = "";
    return parsed.toString();
  } catch {
    return "(invalid URL)";
  }
}
