/**
 * `ClusterDirectory`: this node's cached view of the cluster: who owns which broadcast (with the
 * fencing epoch) and where every node can be reached. Relay-pull and redirects read it on every
 * request, so reads are synchronous map lookups; the cache is kept current by the store's events
 * (a claim reaches every node within a pub/sub round trip) and by polling the full lists every
 * `pollIntervalMs`, because events can be lost.
 *
 * Ordering rules keep a late answer from undoing a newer one:
 *
 * - An owner with a lower epoch than the one known never replaces it (epochs only grow).
 * - A released epoch is remembered for a while, so a poll that read the claim just before the
 *   release cannot bring it back.
 * - A poll only forgets broadcasts that no event touched since the poll started.
 *
 * While the store is unreachable the last view is kept (existing relays keep running) and
 * {@link ClusterDirectory.fresh} is false.
 */

import { type ClusterLogger, silentLogger } from "./logger.ts";
import { checkIntegerOption } from "./request-checks.ts";
import type { ClusterEvent, ClusterStore, NodeRecord, OwnershipRecord } from "./store.ts";

/** A broadcast's owner, as the directory knows it. */
export interface KnownOwner {
  readonly broadcast: string;
  readonly nodeId: string;
  readonly epoch: number;
}

/** Options of {@link ClusterDirectory}. */
export interface ClusterDirectoryOptions {
  readonly store: ClusterStore;
  /** Period of the full re-read of broadcasts and nodes, ms. Default 2000. */
  readonly pollIntervalMs?: number;
  /** Minimum time between two store reads for one broadcast in {@link ClusterDirectory.lookup}, ms. Default 1000. */
  readonly lookupIntervalMs?: number;
  readonly logger?: ClusterLogger;
}

interface OwnerEntry {
  readonly owner: KnownOwner;
  /** Value of the mutation counter when this entry was last confirmed. */
  stamp: number;
}

/** How long a released epoch blocks stale reads of the same claim. */
const RELEASED_MEMORY_MS = 60_000;
/** Bound on remembered releases and recent lookups (memory never grows with the name space). */
const MAX_REMEMBERED = 65_536;

/** A cached, event-driven view of ownership and nodes. */
export class ClusterDirectory {
  readonly pollIntervalMs: number;
  readonly lookupIntervalMs: number;
  readonly #store: ClusterStore;
  readonly #logger: ClusterLogger;
  readonly #owners = new Map<string, OwnerEntry>();
  readonly #released = new Map<string, { epoch: number; atMs: number }>();
  readonly #nodes = new Map<string, NodeRecord>();
  readonly #lookups = new Map<string, { atMs: number; result: Promise<KnownOwner | undefined> }>();
  readonly #listeners = new Set<() => void>();
  #stamp = 0;
  #notifyQueued = false;
  #pollTimer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #nodesRefresh: Promise<void> | undefined;
  #fresh = false;
  #failing = false;
  #unsubscribe: (() => void) | undefined;
  #unwatch: (() => void) | undefined;
  #closed = false;

  constructor(options: ClusterDirectoryOptions) {
    this.pollIntervalMs = options.pollIntervalMs ?? 2000;
    checkIntegerOption("pollIntervalMs", this.pollIntervalMs, 10, 3_600_000);
    this.lookupIntervalMs = options.lookupIntervalMs ?? 1000;
    checkIntegerOption("lookupIntervalMs", this.lookupIntervalMs, 0, 3_600_000);
    this.#store = options.store;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Subscribes to events and reads the full lists once (without throwing). */
  async start(): Promise<void> {
    if (this.#unsubscribe || this.#closed) return;
    this.#unsubscribe = this.#store.subscribe((event) => this.#onEvent(event));
    this.#unwatch = this.#store.onStateChange((state) => {
      if (state === "available") void this.refresh();
      else if (state === "unavailable") this.#fresh = false;
    });
    await this.refresh();
    this.#schedule();
  }

  /** True when the last full read succeeded and the store is reachable. */
  get fresh(): boolean {
    return this.#fresh && this.#store.available;
  }

  /** The known owner of `broadcast`. */
  owner(broadcast: string): KnownOwner | undefined {
    return this.#owners.get(broadcast)?.owner;
  }

  /** Every known owned broadcast, sorted by name. */
  owners(): KnownOwner[] {
    return [...this.#owners.values()]
      .map((entry) => entry.owner)
      .sort((a, b) => (a.broadcast < b.broadcast ? -1 : a.broadcast > b.broadcast ? 1 : 0));
  }

  /** The registry entry of `nodeId`, if it is known and live. */
  node(nodeId: string): NodeRecord | undefined {
    return this.#nodes.get(nodeId);
  }

  /** Every known node, sorted by id. */
  nodes(): NodeRecord[] {
    return [...this.#nodes.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  /** Calls `listener` (coalesced, in a microtask) whenever an owner or node changes. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Re-reads broadcasts and nodes now (one read at a time; concurrent calls share it). Never rejects. */
  refresh(): Promise<void> {
    if (!this.#polling) {
      this.#polling = this.#poll().finally(() => {
        this.#polling = undefined;
      });
    }
    return this.#polling;
  }

  /**
   * The owner of `broadcast`, read from the store when the cache does not know it (at most once per
   * `lookupIntervalMs` per name). For a request that may have arrived before the claim's event.
   * Never rejects: an unreachable store answers with the cached value.
   */
  lookup(broadcast: string): Promise<KnownOwner | undefined> {
    const cached = this.owner(broadcast);
    if (cached || this.#closed) return Promise.resolve(cached);
    const now = performance.now();
    const recent = this.#lookups.get(broadcast);
    if (recent && now - recent.atMs < this.lookupIntervalMs) return recent.result;
    if (this.#lookups.size >= MAX_REMEMBERED) {
      for (const [name, entry] of this.#lookups) {
        if (now - entry.atMs >= this.lookupIntervalMs) this.#lookups.delete(name);
      }
      if (this.#lookups.size >= MAX_REMEMBERED) this.#lookups.clear();
    }
    const stamp = this.#stamp;
    const result = this.#store.owner(broadcast).then(
      (record) => {
        if (record) this.#apply(ownerOf(record));
        else this.#forgetIfUntouched(broadcast, stamp);
        if (record && !this.#nodes.has(record.nodeId)) void this.#refreshNodes();
        return this.owner(broadcast);
      },
      () => this.owner(broadcast),
    );
    this.#lookups.set(broadcast, { atMs: now, result });
    return result;
  }

  /** Stops polling and listening. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#pollTimer);
    this.#unsubscribe?.();
    this.#unwatch?.();
    this.#listeners.clear();
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#pollTimer = setTimeout(() => {
      void this.refresh().finally(() => this.#schedule());
    }, this.pollIntervalMs);
    this.#pollTimer.unref?.();
  }

  async #poll(): Promise<void> {
    if (this.#closed) return;
    const startStamp = this.#stamp;
    let records: OwnershipRecord[];
    let nodes: NodeRecord[];
    try {
      [records, nodes] = await Promise.all([this.#store.listBroadcasts(), this.#store.listNodes()]);
    } catch (err) {
      this.#fresh = false;
      // The first connection is not a failure: the store's "available" state triggers a refresh.
      if (!this.#failing && this.#store.state !== "connecting") {
        this.#failing = true;
        this.#logger.warn(
          { err: (err as Error)?.message },
          "cluster directory cannot read the store; keeping the last known owners",
        );
      }
      return;
    }
    if (this.#closed) return;
    if (this.#failing) this.#logger.info({}, "cluster directory reads the store again");
    this.#failing = false;
    this.#fresh = true;
    const listed = new Set<string>();
    for (const record of records) {
      if (record.expiresAtMs <= record.storeNowMs) continue;
      listed.add(record.broadcast);
      this.#apply(ownerOf(record));
    }
    for (const name of [...this.#owners.keys()]) {
      if (!listed.has(name)) this.#forgetIfUntouched(name, startStamp);
    }
    this.#replaceNodes(nodes);
    this.#pruneReleased();
  }

  #refreshNodes(): Promise<void> {
    if (!this.#nodesRefresh) {
      this.#nodesRefresh = this.#store
        .listNodes()
        .then(
          (nodes) => {
            if (!this.#closed) this.#replaceNodes(nodes);
          },
          () => {},
        )
        .finally(() => {
          this.#nodesRefresh = undefined;
        });
    }
    return this.#nodesRefresh;
  }

  #replaceNodes(nodes: readonly NodeRecord[]): void {
    let changed = nodes.length !== this.#nodes.size;
    for (const node of nodes) {
      const known = this.#nodes.get(node.nodeId);
      if (!known || !sameEndpoints(known, node)) changed = true;
    }
    this.#nodes.clear();
    for (const node of nodes) this.#nodes.set(node.nodeId, node);
    if (changed) this.#changed();
  }

  #onEvent(event: ClusterEvent): void {
    if (this.#closed) return;
    switch (event.type) {
      case "claimed":
      case "stolen":
        this.#apply({ broadcast: event.broadcast, nodeId: event.nodeId, epoch: event.epoch });
        if (!this.#nodes.has(event.nodeId)) void this.#refreshNodes();
        return;
      case "released":
        this.#release(event.broadcast, event.epoch);
        return;
      case "node-up":
        void this.#refreshNodes();
        return;
      case "node-down":
        if (this.#nodes.delete(event.nodeId)) this.#changed();
        return;
    }
  }

  #apply(owner: KnownOwner): void {
    const released = this.#released.get(owner.broadcast);
    if (released && owner.epoch <= released.epoch) return;
    const entry = this.#owners.get(owner.broadcast);
    this.#stamp += 1;
    if (entry) {
      if (owner.epoch < entry.owner.epoch) return;
      if (owner.epoch === entry.owner.epoch && owner.nodeId === entry.owner.nodeId) {
        entry.stamp = this.#stamp;
        return;
      }
    }
    this.#owners.set(owner.broadcast, { owner, stamp: this.#stamp });
    this.#changed();
  }

  #release(broadcast: string, epoch: number): void {
    this.#remember(broadcast, epoch);
    const entry = this.#owners.get(broadcast);
    this.#stamp += 1;
    if (!entry || entry.owner.epoch > epoch) return;
    this.#owners.delete(broadcast);
    this.#changed();
  }

  #forgetIfUntouched(broadcast: string, sinceStamp: number): void {
    const entry = this.#owners.get(broadcast);
    if (!entry || entry.stamp > sinceStamp) return;
    this.#remember(broadcast, entry.owner.epoch);
    this.#owners.delete(broadcast);
    this.#changed();
  }

  #remember(broadcast: string, epoch: number): void {
    const known = this.#released.get(broadcast);
    if (known && known.epoch >= epoch) return;
    this.#released.delete(broadcast);
    this.#released.set(broadcast, { epoch, atMs: performance.now() });
    if (this.#released.size > MAX_REMEMBERED) {
      const oldest = this.#released.keys().next().value;
      if (oldest !== undefined) this.#released.delete(oldest);
    }
  }

  #pruneReleased(): void {
    const cutoff = performance.now() - RELEASED_MEMORY_MS;
    for (const [name, entry] of this.#released) {
      if (entry.atMs >= cutoff) break; // insertion order is age order
      this.#released.delete(name);
    }
  }

  #changed(): void {
    if (this.#notifyQueued || this.#closed) return;
    this.#notifyQueued = true;
    queueMicrotask(() => {
      this.#notifyQueued = false;
      for (const listener of [...this.#listeners]) {
        try {
          listener();
        } catch (err) {
          this.#logger.error({ err: (err as Error)?.message }, "a cluster directory listener threw");
        }
      }
    });
  }
}

function ownerOf(record: OwnershipRecord): KnownOwner {
  return { broadcast: record.broadcast, nodeId: record.nodeId, epoch: record.epoch };
}

function sameEndpoints(a: NodeRecord, b: NodeRecord): boolean {
  return (
    a.endpoints.moq === b.endpoints.moq &&
    a.endpoints.hls === b.endpoints.hls &&
    a.endpoints.dash === b.endpoints.dash
  );
}
