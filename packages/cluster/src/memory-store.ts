/**
 * `MemoryStore`: the single-node `ClusterStore`. It needs nothing external and follows the same
 * semantics as `RedisStore` (atomic claims, fencing epochs, compare-and-renew, stale takeover, node
 * registry with TTL, events), so a server behaves the same with one node as with many. Several
 * in-process nodes may share one instance, which is how examples and unit tests run a "cluster".
 *
 * Time comes from an injectable wall clock (`clock`), so tests can step through lease expiry without
 * sleeping. Expired entries are removed lazily on access and by a periodic sweep on writes.
 */

import { ClusterError } from "./error.ts";
import { validateBroadcastName, validateNodeId } from "./names.ts";
import { checkAcquireRequest, checkLease, checkMediaAge, checkNodeInfo } from "./request-checks.ts";
import type {
  AcquireRequest,
  AcquireResult,
  ClusterEvent,
  ClusterEventListener,
  ClusterStore,
  Lease,
  NodeInfo,
  NodeRecord,
  OwnershipRecord,
  RenewRequest,
  RenewResult,
  StoreState,
} from "./store.ts";

/** How long a broadcast's last epoch is remembered after its claim ends (as in `RedisStore`). */
export const FENCE_TTL_MS = 86_400_000;

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Wall clock in Unix ms; the store's notion of "now". Defaults to `Date.now`. */
  readonly clock?: () => number;
}

interface OwnerEntry {
  nodeId: string;
  claimId: string;
  epoch: number;
  lastMediaMs: number;
  expiresAtMs: number;
}

interface NodeEntry {
  info: NodeInfo;
  lastSeenMs: number;
  expiresAtMs: number;
}

const SWEEP_EVERY_WRITES = 256;

/** A `ClusterStore` held in this process's memory. */
export class MemoryStore implements ClusterStore {
  readonly kind: string = "memory";
  readonly #clock: () => number;
  readonly #owners = new Map<string, OwnerEntry>();
  readonly #fences = new Map<string, { epoch: number; expiresAtMs: number }>();
  readonly #nodes = new Map<string, NodeEntry>();
  readonly #listeners = new Set<ClusterEventListener>();
  readonly #stateListeners = new Set<(state: StoreState) => void>();
  #writes = 0;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#clock = options.clock ?? Date.now;
  }

  get state(): StoreState {
    return this.#closed ? "closed" : "available";
  }

  get available(): boolean {
    return !this.#closed;
  }

  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    this.#checkOpen();
    checkAcquireRequest(request);
    const now = this.#clock();
    this.#noteWrite(now);
    const current = this.#liveOwner(request.broadcast, now);
    if (current) {
      if (current.claimId === request.claimId) {
        const record = toRecord(request.broadcast, current, now);
        return { acquired: true, lease: toLease(record), record, previous: null };
      }
      const allowed =
        request.mode === "force" ||
        (request.mode === "if-stale" &&
          now - current.lastMediaMs > (request.staleMs ?? Number.POSITIVE_INFINITY)) ||
        (request.supersedes !== undefined && current.claimId === request.supersedes);
      if (!allowed) return { acquired: false, owner: toRecord(request.broadcast, current, now) };
    }
    const fence = this.#fences.get(request.broadcast);
    const previousEpoch = fence && fence.expiresAtMs > now ? fence.epoch : 0;
    const epoch = Math.max(previousEpoch + 1, Math.floor(now));
    this.#fences.set(request.broadcast, { epoch, expiresAtMs: now + FENCE_TTL_MS });
    const entry: OwnerEntry = {
      nodeId: request.nodeId,
      claimId: request.claimId,
      epoch,
      lastMediaMs: Math.floor(now),
      expiresAtMs: now + request.leaseMs,
    };
    this.#owners.set(request.broadcast, entry);
    const record = toRecord(request.broadcast, entry, now);
    const previous = current
      ? {
          broadcast: request.broadcast,
          nodeId: current.nodeId,
          claimId: current.claimId,
          epoch: current.epoch,
        }
      : null;
    if (previous) {
      this.#emit({
        type: "stolen",
        broadcast: request.broadcast,
        nodeId: entry.nodeId,
        claimId: entry.claimId,
        epoch,
        previous: { nodeId: previous.nodeId, claimId: previous.claimId, epoch: previous.epoch },
      });
    } else {
      this.#emit({
        type: "claimed",
        broadcast: request.broadcast,
        nodeId: entry.nodeId,
        claimId: entry.claimId,
        epoch,
      });
    }
    return { acquired: true, lease: toLease(record), record, previous };
  }

  async renew(lease: Lease, request: RenewRequest): Promise<RenewResult> {
    this.#checkOpen();
    checkLease(lease);
    checkMediaAge(request.mediaAgeMs);
    const now = this.#clock();
    const current = this.#liveOwner(lease.broadcast, now);
    if (!current) return { renewed: false, owner: null };
    if (current.claimId !== lease.claimId) {
      return { renewed: false, owner: toRecord(lease.broadcast, current, now) };
    }
    if (request.mediaAgeMs !== undefined) {
      current.lastMediaMs = Math.max(current.lastMediaMs, Math.floor(now - request.mediaAgeMs));
    }
    current.expiresAtMs = now + request.leaseMs;
    return { renewed: true, record: toRecord(lease.broadcast, current, now) };
  }

  async release(lease: Lease): Promise<boolean> {
    this.#checkOpen();
    checkLease(lease);
    const now = this.#clock();
    const current = this.#liveOwner(lease.broadcast, now);
    if (!current || current.claimId !== lease.claimId) return false;
    this.#owners.delete(lease.broadcast);
    this.#emit({
      type: "released",
      broadcast: lease.broadcast,
      nodeId: current.nodeId,
      claimId: current.claimId,
      epoch: current.epoch,
    });
    return true;
  }

  async owner(broadcast: string): Promise<OwnershipRecord | null> {
    this.#checkOpen();
    validateBroadcastName(broadcast);
    const now = this.#clock();
    const current = this.#liveOwner(broadcast, now);
    return current ? toRecord(broadcast, current, now) : null;
  }

  async listBroadcasts(): Promise<OwnershipRecord[]> {
    this.#checkOpen();
    const now = this.#clock();
    const records: OwnershipRecord[] = [];
    for (const name of [...this.#owners.keys()]) {
      const current = this.#liveOwner(name, now);
      if (current) records.push(toRecord(name, current, now));
    }
    return records.sort((a, b) => compareStrings(a.broadcast, b.broadcast));
  }

  async putNode(info: NodeInfo, ttlMs: number): Promise<NodeRecord> {
    this.#checkOpen();
    checkNodeInfo(info, ttlMs);
    const now = this.#clock();
    this.#noteWrite(now);
    const existed = this.#liveNode(info.nodeId, now) !== undefined;
    const entry: NodeEntry = {
      info: copyNodeInfo(info),
      lastSeenMs: Math.floor(now),
      expiresAtMs: now + ttlMs,
    };
    this.#nodes.set(info.nodeId, entry);
    if (!existed) this.#emit({ type: "node-up", nodeId: info.nodeId });
    return toNodeRecord(entry);
  }

  async removeNode(nodeId: string): Promise<boolean> {
    this.#checkOpen();
    validateNodeId(nodeId);
    const existed = this.#liveNode(nodeId, this.#clock()) !== undefined;
    this.#nodes.delete(nodeId);
    if (existed) this.#emit({ type: "node-down", nodeId });
    return existed;
  }

  async listNodes(): Promise<NodeRecord[]> {
    this.#checkOpen();
    const now = this.#clock();
    const records: NodeRecord[] = [];
    for (const id of [...this.#nodes.keys()]) {
      const entry = this.#liveNode(id, now);
      if (entry) records.push(toNodeRecord(entry));
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
   * Forgets every claim, fence and node entry, as a store without persistence does when it
   * restarts. Epochs still increase afterwards because they are at least the clock's value.
   */
  flush(): void {
    this.#owners.clear();
    this.#fences.clear();
    this.#nodes.clear();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    for (const listener of [...this.#stateListeners]) safeCall(() => listener("closed"));
    this.#stateListeners.clear();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClusterError("CLUSTER_CLOSED", "the memory cluster store is closed");
  }

  // Node-down events for expired entries come from the lookup that notices them, as with Redis,
  // where the registry listing prunes entries whose hash has expired.
  #liveNode(nodeId: string, now: number): NodeEntry | undefined {
    const entry = this.#nodes.get(nodeId);
    if (!entry) return undefined;
    if (entry.expiresAtMs > now) return entry;
    this.#nodes.delete(nodeId);
    this.#emit({ type: "node-down", nodeId });
    return undefined;
  }

  #liveOwner(broadcast: string, now: number): OwnerEntry | undefined {
    const entry = this.#owners.get(broadcast);
    if (!entry) return undefined;
    if (entry.expiresAtMs > now) return entry;
    this.#owners.delete(broadcast);
    return undefined;
  }

  #noteWrite(now: number): void {
    this.#writes += 1;
    if (this.#writes % SWEEP_EVERY_WRITES !== 0) return;
    for (const [name, entry] of this.#owners) if (entry.expiresAtMs <= now) this.#owners.delete(name);
    for (const [name, fence] of this.#fences) if (fence.expiresAtMs <= now) this.#fences.delete(name);
    for (const id of [...this.#nodes.keys()]) this.#liveNode(id, now);
  }

  // Delivered asynchronously, like pub/sub: a listener never runs inside the operation that caused it.
  #emit(event: ClusterEvent): void {
    if (this.#listeners.size === 0) return;
    const listeners = [...this.#listeners];
    queueMicrotask(() => {
      for (const listener of listeners) safeCall(() => listener(event));
    });
  }
}

function safeCall(fn: () => void): void {
  try {
    fn();
  } catch {
    // Listener errors are the listener's business; the store must keep working.
  }
}

function toRecord(broadcast: string, entry: OwnerEntry, now: number): OwnershipRecord {
  return {
    broadcast,
    nodeId: entry.nodeId,
    claimId: entry.claimId,
    epoch: entry.epoch,
    lastMediaMs: entry.lastMediaMs,
    expiresAtMs: Math.floor(entry.expiresAtMs),
    storeNowMs: Math.floor(now),
  };
}

function toLease(record: OwnershipRecord): Lease {
  return { broadcast: record.broadcast, nodeId: record.nodeId, claimId: record.claimId, epoch: record.epoch };
}

function copyNodeInfo(info: NodeInfo): NodeInfo {
  return {
    nodeId: info.nodeId,
    endpoints: { moq: info.endpoints.moq, hls: info.endpoints.hls, dash: info.endpoints.dash },
    capacity: info.capacity ? { ...info.capacity } : null,
    version: info.version,
    startedAtMs: info.startedAtMs,
  };
}

function toNodeRecord(entry: NodeEntry): NodeRecord {
  return {
    ...copyNodeInfo(entry.info),
    lastSeenMs: entry.lastSeenMs,
    expiresAtMs: Math.floor(entry.expiresAtMs),
  };
}

/** Code-unit order, the same order Redis and `Array.prototype.sort` use for ASCII names. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
