/**
 * `NodeRegistry`: keeps this node's entry in the store's registry (id, endpoints, measured capacity,
 * version, start time) alive with a heartbeat, and lists the cluster's nodes. An entry lives for
 * three heartbeats, so a crashed node disappears within `3 x heartbeatMs`; a closed node removes its
 * entry at once. Heartbeat failures (store unreachable) are retried and never thrown.
 */

import { CapacityMeter } from "./capacity.ts";
import { type ClusterLogger, silentLogger } from "./logger.ts";
import { validateNodeId } from "./names.ts";
import { checkIntegerOption } from "./request-checks.ts";
import type { ClusterStore, NodeEndpoints, NodeRecord } from "./store.ts";

/** Options of {@link NodeRegistry}. */
export interface NodeRegistryOptions {
  readonly store: ClusterStore;
  readonly nodeId: string;
  /** Base URLs this node serves; omitted ones are advertised as null. */
  readonly endpoints?: Partial<NodeEndpoints>;
  /** Heartbeat period, ms. Default 2000. */
  readonly heartbeatMs?: number;
  /** Entry lifetime without a heartbeat, ms. Default 3 x heartbeatMs. */
  readonly ttlMs?: number;
  /** Version string advertised with the entry. */
  readonly version?: string;
  /** The meter to sample; default a new {@link CapacityMeter} with the providers below. */
  readonly meter?: CapacityMeter;
  /** Current subscriber count (used when no meter is given). */
  readonly subscribers?: () => number;
  /** Total bytes sent so far (used when no meter is given; otherwise use `addBytesOut`). */
  readonly bytesOut?: () => number;
  readonly logger?: ClusterLogger;
}

/** This node's registry entry and a view of the others. */
export class NodeRegistry {
  readonly nodeId: string;
  readonly endpoints: NodeEndpoints;
  readonly heartbeatMs: number;
  readonly ttlMs: number;
  readonly version: string;
  /** Wall-clock Unix ms when this registry was created (the node's start, for the `generation`). */
  readonly startedAtMs: number;
  readonly meter: CapacityMeter;
  readonly #store: ClusterStore;
  readonly #logger: ClusterLogger;
  #timer: NodeJS.Timeout | undefined;
  #unwatch: (() => void) | undefined;
  #started = false;
  #closing: Promise<void> | undefined;
  #beating: Promise<NodeRecord | null> | undefined;
  #failing = false;

  constructor(options: NodeRegistryOptions) {
    validateNodeId(options.nodeId);
    this.heartbeatMs = options.heartbeatMs ?? 2000;
    checkIntegerOption("heartbeatMs", this.heartbeatMs, 10, 3_600_000);
    this.ttlMs = options.ttlMs ?? 3 * this.heartbeatMs;
    checkIntegerOption("ttlMs", this.ttlMs, this.heartbeatMs + 1, 86_400_000);
    this.nodeId = options.nodeId;
    this.endpoints = {
      moq: options.endpoints?.moq ?? null,
      hls: options.endpoints?.hls ?? null,
      dash: options.endpoints?.dash ?? null,
    };
    this.version = options.version ?? "";
    this.startedAtMs = Date.now();
    this.meter =
      options.meter ??
      new CapacityMeter({
        ...(options.subscribers ? { subscribers: options.subscribers } : {}),
        ...(options.bytesOut ? { bytesOut: options.bytesOut } : {}),
      });
    this.#store = options.store;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Adds to the egress byte counter (shortcut for `meter.addBytesOut`). */
  addBytesOut(bytes: number): void {
    this.meter.addBytesOut(bytes);
  }

  /** Writes the first heartbeat (without throwing) and keeps writing one every `heartbeatMs`. */
  async start(): Promise<void> {
    if (this.#started || this.#closing) return;
    this.#started = true;
    this.#unwatch = this.#store.onStateChange((state) => {
      if (state === "available") void this.heartbeat();
    });
    await this.heartbeat();
    this.#schedule();
  }

  /** Writes one heartbeat now; resolves with the stored record, or null when the store was unreachable. */
  heartbeat(): Promise<NodeRecord | null> {
    if (!this.#beating) {
      this.#beating = this.#beat().finally(() => {
        this.#beating = undefined;
      });
    }
    return this.#beating;
  }

  async #beat(): Promise<NodeRecord | null> {
    if (this.#closing) return null;
    const info = {
      nodeId: this.nodeId,
      endpoints: this.endpoints,
      capacity: this.meter.sample(),
      version: this.version,
      startedAtMs: this.startedAtMs,
    };
    try {
      const record = await this.#store.putNode(info, this.ttlMs);
      if (this.#failing) this.#logger.info({ nodeId: this.nodeId }, "cluster node heartbeat restored");
      this.#failing = false;
      return record;
    } catch (err) {
      // The first connection is not a failure: the heartbeat runs again as soon as the store is up.
      if (!this.#failing && this.#store.state !== "connecting") {
        this.#logger.warn(
          { nodeId: this.nodeId, err: (err as Error).message },
          "cluster node heartbeat failed; retrying",
        );
        this.#failing = true;
      }
      return null;
    }
  }

  /** Every live node in the registry, this one included, sorted by id. */
  nodes(): Promise<NodeRecord[]> {
    return this.#store.listNodes();
  }

  #schedule(): void {
    if (this.#closing) return;
    this.#timer = setTimeout(() => {
      void this.heartbeat().finally(() => this.#schedule());
    }, this.heartbeatMs);
  }

  /** Stops the heartbeat and removes this node's entry (best effort). Idempotent. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = (async () => {
        clearTimeout(this.#timer);
        this.#unwatch?.();
        await this.#beating;
        if (!this.#started) return;
        try {
          await this.#store.removeNode(this.nodeId);
        } catch (err) {
          this.#logger.warn(
            { nodeId: this.nodeId, err: (err as Error).message },
            "could not remove the cluster node entry; it will expire",
          );
        }
      })();
    }
    return this.#closing;
  }
}
