/**
 * `RedisStore`: the `ClusterStore` shared by several nodes through one Redis (or Valkey) server.
 *
 * Every ownership operation is one Lua script (see `scripts.ts`). The client is configured to fail
 * fast instead of queueing: no offline queue, no retries, a per-operation timeout (500 ms by
 * default), no re-sending of unanswered commands after a reconnect (a claim must never be applied
 * twice behind the caller's back), and reconnection with capped exponential backoff. A connection
 * that stops answering (a partition keeps the socket open but drops data) is destroyed after the
 * operation timeout, which also resets ioredis's reply queue so replies can never be matched to the
 * wrong command.
 *
 * Pub/sub runs on a second connection. Events are hints; the lease manager polls as well.
 *
 * Nothing here throws asynchronously or emits `error`: every ioredis `error` event has a listener,
 * failures surface as rejected operations with a `ClusterError`, and each change of availability is
 * logged once.
 */

import { Redis, type RedisOptions } from "ioredis";
import { ClusterError } from "../error.ts";
import { type ClusterLogger, silentLogger } from "../logger.ts";
import { compareStrings, FENCE_TTL_MS } from "../memory-store.ts";
import { validateBroadcastName, validateKeyPrefix, validateNodeId } from "../names.ts";
import {
  checkAcquireRequest,
  checkIntegerOption,
  checkLease,
  checkMediaAge,
  checkNodeInfo,
} from "../request-checks.ts";
import type {
  AcquireRequest,
  AcquireResult,
  ClusterEventListener,
  ClusterStore,
  Lease,
  NodeInfo,
  NodeRecord,
  OwnershipRecord,
  RenewRequest,
  RenewResult,
  StoreState,
} from "../store.ts";
import {
  decodeEvent,
  decodeNodeHash,
  decodeOwnerValue,
  encodeCapacity,
  replyArray,
  replyInteger,
  replyOptionalString,
  replyString,
} from "./codec.ts";
import { ACQUIRE, HEARTBEAT, INSPECT, type LuaScript, RELEASE, REMOVE_NODE, RENEW } from "./scripts.ts";

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /** `redis://[user:pass@]host:port[/db]` (or `rediss://`). Alternatively give `redis` options. */
  readonly url?: string;
  /**
   * Extra ioredis options (host, port, password, tls, sentinels...). The options that make the
   * store fail fast (offline queue, retries, timeouts, reconnect strategy) are always ours.
   */
  readonly redis?: RedisOptions;
  /** Prefix of every key and of the event channel; lets several clusters share one Redis. Default `lv:`. */
  readonly keyPrefix?: string;
  /** Timeout of each operation, ms. Default 500. */
  readonly operationTimeoutMs?: number;
  /** Longest wait between reconnection attempts, ms. Default 1000. */
  readonly reconnectMaxDelayMs?: number;
  /** How often idle connections are pinged to notice a dead link, ms. Default 1000. */
  readonly healthCheckIntervalMs?: number;
  /** Where state changes are logged (pino-compatible). */
  readonly logger?: ClusterLogger;
}

/** Most broadcasts {@link RedisStore.listBroadcasts} returns; a guard against a runaway keyspace. */
export const MAX_LISTED_BROADCASTS = 100_000;
/** Most nodes {@link RedisStore.listNodes} reads. */
export const MAX_LISTED_NODES = 10_000;

const SCAN_BATCH = 1000;

type Connection = "command" | "subscriber";

/** A `ClusterStore` on Redis or Valkey, through ioredis. */
export class RedisStore implements ClusterStore {
  readonly kind: string = "redis";
  /** The key prefix in use (also the prefix of the event channel). */
  readonly keyPrefix: string;
  readonly #client: Redis;
  readonly #subscriber: Redis;
  readonly #logger: ClusterLogger;
  readonly #operationTimeoutMs: number;
  readonly #channel: string;
  readonly #listeners = new Set<ClusterEventListener>();
  readonly #stateListeners = new Set<(state: StoreState) => void>();
  readonly #healthTimer: NodeJS.Timeout;
  readonly #notReadySince: Record<Connection, number> = { command: 0, subscriber: 0 };
  #state: StoreState = "connecting";
  #closed = false;
  #closing: Promise<void> | undefined;
  #droppedEvents = 0;
  #subscribed = false;
  readonly #readyWaiters = new Set<() => void>();

  constructor(options: RedisStoreOptions) {
    this.keyPrefix = options.keyPrefix ?? "lv:";
    validateKeyPrefix(this.keyPrefix);
    this.#operationTimeoutMs = options.operationTimeoutMs ?? 500;
    checkIntegerOption("operationTimeoutMs", this.#operationTimeoutMs, 10, 60_000);
    const reconnectMaxDelayMs = options.reconnectMaxDelayMs ?? 1000;
    checkIntegerOption("reconnectMaxDelayMs", reconnectMaxDelayMs, 10, 60_000);
    const healthCheckIntervalMs = options.healthCheckIntervalMs ?? 1000;
    checkIntegerOption("healthCheckIntervalMs", healthCheckIntervalMs, 10, 60_000);
    if (options.url === undefined && options.redis === undefined) {
      throw new ClusterError("CLUSTER_INVALID_CONFIG", "RedisStore needs a url or redis connection options");
    }
    this.#logger = options.logger ?? silentLogger;
    this.#channel = `${this.keyPrefix}evt`;

    const timeout = this.#operationTimeoutMs;
    const ours: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: timeout,
      socketTimeout: timeout,
      connectTimeout: Math.max(1000, 2 * timeout),
      protocol: 2,
      retryStrategy: (attempt: number) =>
        Math.min(reconnectMaxDelayMs, 50 * 2 ** Math.min(attempt, 10)) + Math.floor(Math.random() * 50),
    };
    const base: RedisOptions = { ...(options.redis ?? {}), ...ours };
    this.#client = options.url === undefined ? new Redis(base) : new Redis(options.url, base);
    this.#subscriber = options.url === undefined ? new Redis(base) : new Redis(options.url, base);
    this.#wire(this.#client, "command");
    this.#wire(this.#subscriber, "subscriber");
    this.#subscriber.on("message", (channel: string, message: string) => this.#onMessage(channel, message));
    // Subscribing on every "ready" covers a first connection that failed (ioredis only re-subscribes
    // channels it had subscribed before); a repeated SUBSCRIBE is harmless.
    this.#subscriber.on("ready", () => {
      this.#subscriber.subscribe(this.#channel).then(
        () => {
          this.#subscribed = this.#subscriber.status === "ready";
          this.#wakeReadyWaiters();
        },
        () => {},
      );
    });
    this.#client.connect().catch(() => {});
    this.#subscriber.connect().catch(() => {});
    this.#healthTimer = setInterval(() => this.#healthCheck(), healthCheckIntervalMs);
    this.#healthTimer.unref();
  }

  get state(): StoreState {
    return this.#state;
  }

  get available(): boolean {
    return this.#state === "available";
  }

  /** Pub/sub messages that were dropped because they were not well-formed events. */
  get droppedEvents(): number {
    return this.#droppedEvents;
  }

  /** True while the pub/sub subscription to the event channel is active. */
  get subscribed(): boolean {
    return this.#subscribed;
  }

  /**
   * Resolves once the store is available and subscribed to events, or rejects with
   * `CLUSTER_STORE_UNAVAILABLE` after `timeoutMs`. Nodes do not need to wait (they work as single
   * nodes meanwhile); tools and tests do.
   */
  async ready(timeoutMs = 5000): Promise<void> {
    this.#checkOpen();
    if (this.available && this.#subscribed) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.#closed) {
          done();
          reject(new ClusterError("CLUSTER_CLOSED", "the Redis cluster store was closed"));
        } else if (this.available && this.#subscribed) {
          done();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new ClusterError(
            "CLUSTER_STORE_UNAVAILABLE",
            `Redis did not become available within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#readyWaiters.delete(check);
      };
      this.#readyWaiters.add(check);
    });
  }

  /** The key holding the owner of `broadcast`. */
  ownerKey(broadcast: string): string {
    return `${this.keyPrefix}own:{${broadcast}}`;
  }

  /** The key holding the last fencing epoch of `broadcast`. */
  fenceKey(broadcast: string): string {
    return `${this.keyPrefix}fence:{${broadcast}}`;
  }

  /** The hash key of a node's registry entry. */
  nodeKey(nodeId: string): string {
    return `${this.keyPrefix}node:${nodeId}`;
  }

  /** The sorted set of registered nodes (score: last seen, store clock ms). */
  get nodesKey(): string {
    return `${this.keyPrefix}nodes`;
  }

  /** The pub/sub channel of ownership and membership events. */
  get eventChannel(): string {
    return this.#channel;
  }

  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    this.#checkOpen();
    checkAcquireRequest(request);
    const reply = replyArray(
      await this.#run(
        ACQUIRE,
        [this.ownerKey(request.broadcast), this.fenceKey(request.broadcast)],
        [
          request.nodeId,
          request.claimId,
          String(request.leaseMs),
          request.mode,
          String(request.staleMs ?? 0),
          request.supersedes ?? "",
          this.#channel,
          request.broadcast,
          String(FENCE_TTL_MS),
        ],
      ),
      4,
      "acquire",
    );
    const status = replyInteger(reply[0], "acquire status");
    const value = replyString(reply[1], "acquire value");
    const pttl = replyInteger(reply[2], "acquire ttl");
    const now = replyInteger(reply[3], "acquire time");
    // Status -1 (a value we did not write) makes the decoder raise CLUSTER_STORE_PROTOCOL.
    const record = decodeOwnerValue(request.broadcast, value, now + Math.max(pttl, 0), now);
    if (status === 0) return { acquired: false, owner: record };
    const previousValue = replyOptionalString(reply[4], "acquire previous value");
    let previous: Lease | null = null;
    if (previousValue !== null) {
      try {
        const old = decodeOwnerValue(request.broadcast, previousValue, now, now);
        previous = { broadcast: old.broadcast, nodeId: old.nodeId, claimId: old.claimId, epoch: old.epoch };
      } catch {
        // A foreign value overwritten by a forced takeover has no holder to report.
      }
    }
    const lease: Lease = {
      broadcast: record.broadcast,
      nodeId: record.nodeId,
      claimId: record.claimId,
      epoch: record.epoch,
    };
    return { acquired: true, lease, record, previous };
  }

  async renew(lease: Lease, request: RenewRequest): Promise<RenewResult> {
    this.#checkOpen();
    checkLease(lease);
    checkMediaAge(request.mediaAgeMs);
    checkIntegerOption("leaseMs", request.leaseMs, 1, 86_400_000);
    const mediaAge = request.mediaAgeMs === undefined ? "-1" : String(Math.floor(request.mediaAgeMs));
    const reply = replyArray(
      await this.#run(
        RENEW,
        [this.ownerKey(lease.broadcast)],
        [lease.claimId, String(request.leaseMs), mediaAge],
      ),
      4,
      "renew",
    );
    const status = replyInteger(reply[0], "renew status");
    const value = replyOptionalString(reply[1], "renew value");
    const pttl = replyInteger(reply[2], "renew ttl");
    const now = replyInteger(reply[3], "renew time");
    if (value === null) return { renewed: false, owner: null };
    const record = decodeOwnerValue(lease.broadcast, value, now + Math.max(pttl, 0), now);
    return status === 1 ? { renewed: true, record } : { renewed: false, owner: record };
  }

  async release(lease: Lease): Promise<boolean> {
    this.#checkOpen();
    checkLease(lease);
    const reply = await this.#run(
      RELEASE,
      [this.ownerKey(lease.broadcast)],
      [lease.claimId, this.#channel, lease.broadcast],
    );
    return replyInteger(reply, "release status") === 1;
  }

  async owner(broadcast: string): Promise<OwnershipRecord | null> {
    this.#checkOpen();
    validateBroadcastName(broadcast);
    const reply = replyArray(await this.#run(INSPECT, [this.ownerKey(broadcast)], []), 3, "inspect");
    const value = replyOptionalString(reply[0], "owner value");
    const pttl = replyInteger(reply[1], "owner ttl");
    const now = replyInteger(reply[2], "owner time");
    if (value === null || pttl === -2) return null;
    return decodeOwnerValue(broadcast, value, now + Math.max(pttl, 0), now);
  }

  async listBroadcasts(): Promise<OwnershipRecord[]> {
    this.#checkOpen();
    const start = `${this.keyPrefix}own:{`;
    const pattern = `${escapeGlob(start)}*`;
    const keys = new Set<string>();
    let cursor = "0";
    do {
      const reply = replyArray(
        await this.#call(() => this.#client.scan(cursor, "MATCH", pattern, "COUNT", SCAN_BATCH)),
        2,
        "scan",
      );
      cursor = replyString(reply[0], "scan cursor");
      for (const key of replyArray(reply[1], 0, "scan keys")) {
        const text = replyString(key, "scan key");
        if (text.startsWith(start) && text.endsWith("}")) keys.add(text);
      }
      if (keys.size > MAX_LISTED_BROADCASTS) {
        throw new ClusterError(
          "CLUSTER_STORE_PROTOCOL",
          `more than ${MAX_LISTED_BROADCASTS} ownership keys under prefix "${this.keyPrefix}"; refusing to list them all`,
        );
      }
    } while (cursor !== "0");

    const records: OwnershipRecord[] = [];
    const all = [...keys];
    for (let offset = 0; offset < all.length; offset += SCAN_BATCH) {
      const batch = all.slice(offset, offset + SCAN_BATCH);
      const pipeline = this.#client.pipeline();
      pipeline.time();
      for (const key of batch) pipeline.get(key).pttl(key);
      const rows = await this.#call(async () => pipelineValues(await pipeline.exec(), 1 + 2 * batch.length));
      const time = replyArray(rows[0], 2, "time");
      const now =
        replyInteger(time[0], "time seconds") * 1000 +
        Math.floor(replyInteger(time[1], "time micros") / 1000);
      batch.forEach((key, index) => {
        const value = replyOptionalString(rows[1 + 2 * index], "owner value");
        const pttl = replyInteger(rows[2 + 2 * index], "owner ttl");
        if (value === null || pttl === -2) return;
        const broadcast = key.slice(start.length, -1);
        records.push(decodeOwnerValue(broadcast, value, now + Math.max(pttl, 0), now));
      });
    }
    return records.sort((a, b) => compareStrings(a.broadcast, b.broadcast));
  }

  async putNode(info: NodeInfo, ttlMs: number): Promise<NodeRecord> {
    this.#checkOpen();
    checkNodeInfo(info, ttlMs);
    const endpoints = JSON.stringify({
      moq: info.endpoints.moq,
      hls: info.endpoints.hls,
      dash: info.endpoints.dash,
    });
    const reply = replyArray(
      await this.#run(
        HEARTBEAT,
        [this.nodeKey(info.nodeId), this.nodesKey],
        [
          info.nodeId,
          String(ttlMs),
          this.#channel,
          endpoints,
          encodeCapacity(info.capacity),
          info.version,
          String(Math.floor(info.startedAtMs)),
        ],
      ),
      2,
      "heartbeat",
    );
    const now = replyInteger(reply[1], "heartbeat time");
    return {
      nodeId: info.nodeId,
      endpoints: { ...info.endpoints },
      capacity: info.capacity ? { ...info.capacity } : null,
      version: info.version,
      startedAtMs: Math.floor(info.startedAtMs),
      lastSeenMs: now,
      expiresAtMs: now + ttlMs,
    };
  }

  async removeNode(nodeId: string): Promise<boolean> {
    this.#checkOpen();
    validateNodeId(nodeId);
    const reply = await this.#run(
      REMOVE_NODE,
      [this.nodeKey(nodeId), this.nodesKey],
      [nodeId, this.#channel, "1"],
    );
    return replyInteger(reply, "remove node status") === 1;
  }

  async listNodes(): Promise<NodeRecord[]> {
    this.#checkOpen();
    const ids = replyArray(
      await this.#call(() => this.#client.zrange(this.nodesKey, "0", String(MAX_LISTED_NODES - 1))),
      0,
      "nodes",
    ).map((id) => replyString(id, "node id"));
    if (ids.length === 0) return [];
    const pipeline = this.#client.pipeline();
    pipeline.time();
    for (const id of ids) pipeline.hgetall(this.nodeKey(id)).pttl(this.nodeKey(id));
    const rows = await this.#call(async () => pipelineValues(await pipeline.exec(), 1 + 2 * ids.length));
    const time = replyArray(rows[0], 2, "time");
    const now =
      replyInteger(time[0], "time seconds") * 1000 + Math.floor(replyInteger(time[1], "time micros") / 1000);
    const records: NodeRecord[] = [];
    const gone: string[] = [];
    ids.forEach((id, index) => {
      const hash = rows[1 + 2 * index];
      const pttl = replyInteger(rows[2 + 2 * index], "node ttl");
      const record =
        typeof hash === "object" && hash !== null && !Array.isArray(hash)
          ? decodeNodeHash(id, hash as Record<string, string>, pttl, now)
          : undefined;
      if (record) records.push(record);
      else gone.push(id);
    });
    // Entries whose hash expired are pruned (and announced as node-down) by whoever lists first.
    for (const id of gone) {
      try {
        validateNodeId(id);
      } catch {
        continue;
      }
      await this.#run(REMOVE_NODE, [this.nodeKey(id), this.nodesKey], [id, this.#channel, "0"]);
    }
    return records.sort((a, b) => compareStrings(a.nodeId, b.nodeId));
  }

  subscribe(listener: ClusterEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onStateChange(listener: (state: StoreState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /**
   * The local TCP port of the pub/sub connection, or undefined when it is not connected. Fault
   * tests use it to cut exactly this connection (`CLIENT KILL LADDR`) and lose its messages.
   */
  get subscriberLocalPort(): number | undefined {
    return this.#subscribed ? this.#subscriber.stream?.localPort : undefined;
  }

  async close(): Promise<void> {
    if (!this.#closing) this.#closing = this.#doClose();
    return this.#closing;
  }

  async #doClose(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#healthTimer);
    this.#listeners.clear();
    await Promise.all([
      quit(this.#client, this.#operationTimeoutMs),
      quit(this.#subscriber, this.#operationTimeoutMs),
    ]);
    this.#setState("closed", "closed by the application");
    this.#wakeReadyWaiters();
    this.#stateListeners.clear();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClusterError("CLUSTER_CLOSED", "the Redis cluster store is closed");
  }

  #wire(redis: Redis, connection: Connection): void {
    redis.on("error", (err: Error) => {
      this.#logger.debug({ connection, err: err.message }, "cluster store connection error");
    });
    redis.on("ready", () => {
      this.#notReadySince[connection] = 0;
      if (connection === "command") this.#setState("available", "connected");
    });
    const down = (reason: string) => () => {
      if (connection === "subscriber") this.#subscribed = false;
      if (this.#notReadySince[connection] === 0) this.#notReadySince[connection] = performance.now();
      if (connection === "command" && !this.#closed) this.#setState("unavailable", reason);
    };
    redis.on("close", down("connection closed"));
    redis.on("reconnecting", down("reconnecting"));
    redis.on("end", down("connection ended"));
  }

  #setState(state: StoreState, reason: string): void {
    if (this.#state === state || this.#state === "closed") return;
    // "connecting" -> "unavailable" only after the first attempt failed, which is a real state change.
    const previous = this.#state;
    this.#state = state;
    if (state === "available") {
      this.#logger.info({ store: "redis", previous, prefix: this.keyPrefix }, "cluster store available");
    } else if (state === "unavailable") {
      this.#logger.warn(
        { store: "redis", previous, reason },
        "cluster store unavailable; continuing as a single node until it returns",
      );
    } else {
      this.#logger.info({ store: "redis", previous }, "cluster store closed");
    }
    for (const listener of [...this.#stateListeners]) {
      try {
        listener(state);
      } catch {
        // A listener's failure must not stop the others or the store.
      }
    }
    this.#wakeReadyWaiters();
  }

  #wakeReadyWaiters(): void {
    for (const check of [...this.#readyWaiters]) check();
  }

  #onMessage(channel: string, message: string): void {
    if (channel !== this.#channel) return;
    const event = decodeEvent(message);
    if (!event) {
      this.#droppedEvents += 1;
      return;
    }
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        // As above: listeners cannot break event delivery.
      }
    }
  }

  // Ping idle connections so that a dead link (no RST, no data) is noticed within the operation
  // timeout, and tear down a connection stuck in its handshake (a blackholed reconnect).
  #healthCheck(): void {
    if (this.#closed) return;
    const now = performance.now();
    for (const [connection, redis] of [
      ["command", this.#client],
      ["subscriber", this.#subscriber],
    ] as const) {
      if (redis.status === "ready") {
        redis.ping().catch(() => this.#resetConnection(redis));
      } else if (
        (redis.status === "connect" || redis.status === "connecting") &&
        this.#notReadySince[connection] !== 0 &&
        now - this.#notReadySince[connection] > 2 * Math.max(1000, 2 * this.#operationTimeoutMs)
      ) {
        this.#notReadySince[connection] = now;
        redis.stream?.destroy();
      }
    }
  }

  #resetConnection(redis: Redis): void {
    if (this.#closed || redis.status !== "ready") return;
    // Destroying (not ending) the socket: a blackholed peer would never acknowledge a FIN.
    redis.stream?.destroy();
  }

  async #run(script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    return this.#call(async () => {
      try {
        return await this.#client.evalsha(script.sha, keys.length, ...keys, ...args);
      } catch (err) {
        if (err instanceof Error && err.message.startsWith("NOSCRIPT")) {
          // The server restarted or flushed its script cache; EVAL loads the script again.
          return await this.#client.eval(script.source, keys.length, ...keys, ...args);
        }
        throw err;
      }
    });
  }

  async #call<T>(operation: () => Promise<T>): Promise<T> {
    this.#checkOpen();
    try {
      return await operation();
    } catch (err) {
      throw this.#mapError(err);
    }
  }

  #mapError(err: unknown): ClusterError {
    if (err instanceof ClusterError) return err;
    const message = err instanceof Error ? err.message : String(err);
    if (this.#closed)
      return new ClusterError("CLUSTER_CLOSED", "the Redis cluster store is closed", { cause: err });
    if (message === "Command timed out") {
      // The reply may still arrive later; the connection is reset so it cannot be misattributed.
      this.#resetConnection(this.#client);
      return new ClusterError(
        "CLUSTER_STORE_TIMEOUT",
        `Redis did not answer within ${this.#operationTimeoutMs} ms; the operation may or may not have been applied`,
        { cause: err },
      );
    }
    const name = err instanceof Error ? err.name : "";
    if (
      name === "ReplyError" &&
      !/^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN)\b/.test(message)
    ) {
      return new ClusterError("CLUSTER_STORE_PROTOCOL", `Redis refused the operation: ${message}`, {
        cause: err,
      });
    }
    return new ClusterError("CLUSTER_STORE_UNAVAILABLE", `Redis is unavailable: ${message}`, { cause: err });
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (char) => `\\${char}`);
}

function pipelineValues(results: [Error | null, unknown][] | null, expected: number): unknown[] {
  if (!results || results.length !== expected) {
    throw new ClusterError("CLUSTER_STORE_UNAVAILABLE", "Redis pipeline was aborted");
  }
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

async function quit(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === "end") return;
  if (redis.status !== "ready") {
    redis.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    redis.quit().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  redis.disconnect();
}
