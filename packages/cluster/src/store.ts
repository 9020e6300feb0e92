/**
 * The `ClusterStore` contract: the one place where broadcast ownership, fencing numbers and the node
 * registry live. `MemoryStore` (single node) and `RedisStore` (several nodes) implement exactly the
 * same semantics, checked by one contract test suite:
 *
 * - A claim is atomic and returns a fencing `epoch` that always increases for a broadcast:
 *   `max(previous + 1, store clock in ms)`, so it keeps increasing even after the store lost its data.
 * - A lease lasts `leaseMs` unless renewed; renew and release compare the claim id first, so a node
 *   whose lease was taken over can neither extend nor delete the new owner's lease.
 * - A takeover replaces the holder only if the mode allows it: `if-stale` when the holder reported no
 *   media for longer than `staleMs` (on the store's clock, so two nodes' clocks are never compared),
 *   `force` always.
 * - Ownership changes and node arrivals/departures are published as {@link ClusterEvent}s. Events are
 *   hints that can be lost; consumers also poll.
 */

/** How an acquisition treats a broadcast that another claim holds. */
export type AcquireMode =
  /** Only if nobody holds the broadcast. */
  | "claim"
  /** If nobody holds it, or the holder reported no media for longer than `staleMs`. */
  | "if-stale"
  /** Always; the holder is told through a `stolen` event and its next renew fails. */
  | "force";

/** What a node needs to renew or release its claim. */
export interface Lease {
  readonly broadcast: string;
  readonly nodeId: string;
  /** Unique per acquisition; renew and release compare it, so a superseded lease can do nothing. */
  readonly claimId: string;
  /** The fencing number of this acquisition. Sinks reject writes carrying a lower one. */
  readonly epoch: number;
}

/** The current holder of a broadcast, as the store sees it. Times are on the store's clock. */
export interface OwnershipRecord extends Lease {
  /** Store time (Unix ms) of the last media the owner reported, or of the acquisition. */
  readonly lastMediaMs: number;
  /** Store time (Unix ms) when the lease runs out unless renewed. */
  readonly expiresAtMs: number;
  /** Store time (Unix ms) when this record was read. */
  readonly storeNowMs: number;
}

/** Parameters of {@link ClusterStore.acquire}. */
export interface AcquireRequest {
  readonly broadcast: string;
  readonly nodeId: string;
  /**
   * Chosen by the caller so that a retry after a timeout is idempotent: if an earlier attempt with
   * the same id did apply, the retry returns that lease instead of failing.
   */
  readonly claimId: string;
  readonly leaseMs: number;
  readonly mode: AcquireMode;
  /** For `if-stale`: the holder is stale when the store clock is more than this past its `lastMediaMs`. */
  readonly staleMs?: number;
  /** A claim id of this node that may be replaced whatever the mode (a local publisher handover). */
  readonly supersedes?: string;
}

/** Result of {@link ClusterStore.acquire}. */
export type AcquireResult =
  | {
      readonly acquired: true;
      readonly lease: Lease;
      readonly record: OwnershipRecord;
      /** The holder that was replaced, or null when the broadcast was free. */
      readonly previous: Lease | null;
    }
  | { readonly acquired: false; readonly owner: OwnershipRecord };

/** Parameters of {@link ClusterStore.renew}. */
export interface RenewRequest {
  readonly leaseMs: number;
  /**
   * How long ago (ms, on the caller's monotonic clock) the last media went through this node, or
   * undefined when none went through since the claim. The store turns it into its own clock.
   */
  readonly mediaAgeMs?: number;
}

/** Result of {@link ClusterStore.renew}. */
export type RenewResult =
  | { readonly renewed: true; readonly record: OwnershipRecord }
  /** The lease is gone: `owner` is whoever holds the broadcast now (null when nobody does). */
  | { readonly renewed: false; readonly owner: OwnershipRecord | null };

/** Base URLs where a node serves each egress; null when it does not advertise one. */
export interface NodeEndpoints {
  readonly moq: string | null;
  readonly hls: string | null;
  readonly dash: string | null;
}

/** A node's measured load, published with every heartbeat. */
export interface NodeCapacity {
  /** CPU time used by the process over the last interval, as a percentage of one core. */
  readonly cpuPct: number;
  readonly rssBytes: number;
  readonly bytesOutPerSec: number;
  readonly subscribers: number;
}

/** What a node writes about itself on every heartbeat. */
export interface NodeInfo {
  readonly nodeId: string;
  readonly endpoints: NodeEndpoints;
  /** Null until the first measurement interval has passed. */
  readonly capacity: NodeCapacity | null;
  readonly version: string;
  /** Wall-clock Unix ms when the node started. */
  readonly startedAtMs: number;
}

/** A registered node as read back from the store. Times are on the store's clock. */
export interface NodeRecord extends NodeInfo {
  readonly lastSeenMs: number;
  readonly expiresAtMs: number;
}

/** The holder an ownership event refers to. */
export interface EventHolder {
  readonly nodeId: string;
  readonly claimId: string;
  readonly epoch: number;
}

/** An ownership or membership change, published by the store. A hint: it may be lost or late. */
export type ClusterEvent =
  | ({ readonly type: "claimed"; readonly broadcast: string } & EventHolder)
  | ({ readonly type: "stolen"; readonly broadcast: string; readonly previous: EventHolder } & EventHolder)
  | ({ readonly type: "released"; readonly broadcast: string } & EventHolder)
  | { readonly type: "node-up"; readonly nodeId: string }
  | { readonly type: "node-down"; readonly nodeId: string };

/** Receives {@link ClusterEvent}s. Must not throw (a throw is caught and ignored). */
export type ClusterEventListener = (event: ClusterEvent) => void;

/** Connection state of a store. `MemoryStore` is always `available` until closed. */
export type StoreState = "connecting" | "available" | "unavailable" | "closed";

/** Shared ownership state and node registry of a cluster. */
export interface ClusterStore {
  /** `"memory"` or `"redis"`, for logs and `/api/v1/server-info`. */
  readonly kind: string;
  readonly state: StoreState;
  /** True when operations can currently reach the store. */
  readonly available: boolean;

  /** Atomically acquires `broadcast` for `nodeId` according to `mode`. */
  acquire(request: AcquireRequest): Promise<AcquireResult>;
  /** Extends `lease` if it is still the current one (compare-and-renew). */
  renew(lease: Lease, request: RenewRequest): Promise<RenewResult>;
  /** Deletes the claim if `lease` is still the current one; true when it did. */
  release(lease: Lease): Promise<boolean>;
  /** The current holder of `broadcast`, or null. */
  owner(broadcast: string): Promise<OwnershipRecord | null>;
  /** Every held broadcast, sorted by name. */
  listBroadcasts(): Promise<OwnershipRecord[]>;

  /** Writes (or refreshes) this node's registry entry; it disappears after `ttlMs` without a refresh. */
  putNode(info: NodeInfo, ttlMs: number): Promise<NodeRecord>;
  /** Removes a node's registry entry at once (graceful shutdown); true when it existed. */
  removeNode(nodeId: string): Promise<boolean>;
  /** Every registered node whose entry has not expired, sorted by id. */
  listNodes(): Promise<NodeRecord[]>;

  /** Calls `listener` for each event until the returned function is called. */
  subscribe(listener: ClusterEventListener): () => void;
  /** Calls `listener` on every change of {@link ClusterStore.state} until the returned function is called. */
  onStateChange(listener: (state: StoreState) => void): () => void;

  /** Closes connections. Idempotent. Operations afterwards fail with `CLUSTER_CLOSED`. */
  close(): Promise<void>;
}
