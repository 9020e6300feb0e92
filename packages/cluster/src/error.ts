/**
 * Errors raised by the cluster package. Every error carries a stable string `code` that is never
 * reused for another meaning, so callers (the server, admin routes) can map them to behaviour:
 * `CLUSTER_BUSY` becomes an RTMP "busy" reply, `CLUSTER_STORE_UNAVAILABLE` a 503 with Retry-After.
 */

const BRAND: unique symbol = Symbol.for("@lvqr/cluster.ClusterError") as never;

/** Stable string codes of {@link ClusterError}. */
export type ClusterErrorCode =
  /** Another node owns the broadcast and the conflict policy does not allow taking it over. */
  | "CLUSTER_BUSY"
  /** The store cannot be reached (not connected, connection lost, or Redis refused the command). */
  | "CLUSTER_STORE_UNAVAILABLE"
  /** The store did not answer within the operation timeout; the operation may or may not have applied. */
  | "CLUSTER_STORE_TIMEOUT"
  /** The store answered with something this package does not understand (foreign data under our keys). */
  | "CLUSTER_STORE_PROTOCOL"
  /** A broadcast name, node id or key prefix that cannot be stored safely. */
  | "CLUSTER_INVALID_NAME"
  /** Inconsistent or out-of-range options (for example a renew interval longer than the lease). */
  | "CLUSTER_INVALID_CONFIG"
  /** The object was closed; nothing more can be done with it. */
  | "CLUSTER_CLOSED";

/** Base class of every error this package raises. `instanceof` works across copies of the package. */
export class ClusterError extends Error {
  readonly code: ClusterErrorCode;

  constructor(code: ClusterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ClusterError";
    this.code = code;
  }

  // The brand makes `instanceof ClusterError` true for errors from another copy of this package;
  // subclasses keep ordinary prototype checks (compare `code` across copies).
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass being tested against.
    if (this !== ClusterError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

Object.defineProperty(ClusterError.prototype, BRAND, { value: true });

/**
 * A claim was refused because another node holds the broadcast and the conflict policy does not
 * let this node take it over. `owner` is the holder the store reported at that moment.
 */
export class BroadcastBusyError extends ClusterError {
  readonly broadcast: string;
  readonly owner: { readonly nodeId: string; readonly epoch: number; readonly lastMediaMs: number };

  constructor(
    broadcast: string,
    owner: { readonly nodeId: string; readonly epoch: number; readonly lastMediaMs: number },
    policy: string,
  ) {
    super(
      "CLUSTER_BUSY",
      `broadcast "${broadcast}" is owned by node "${owner.nodeId}" (epoch ${owner.epoch}) and policy "${policy}" does not allow taking it over`,
    );
    this.name = "BroadcastBusyError";
    this.broadcast = broadcast;
    this.owner = owner;
  }
}

/** True when `err` is a {@link ClusterError}, optionally with the given code. */
export function isClusterError(err: unknown, code?: ClusterErrorCode): err is ClusterError {
  return err instanceof ClusterError && (code === undefined || err.code === code);
}
