/**
 * `BroadcastClaims`: the lease manager a node uses to own its broadcasts. The server calls
 * `claim(name)` when a broadcast starts and `release()` on the returned handle when it ends; in
 * between, the handle renews the lease and tells the server when ownership is gone.
 *
 * Safety rules, all on this process's monotonic clock:
 *
 * - A handle acts as owner (`isOwner()`) only until `sendTime(last successful renew) + leaseMs -
 *   stepdownMarginMs`. The store's lease runs from the moment the renew *executed*, which is later,
 *   so the node always stops before anyone else can acquire the broadcast through expiry.
 * - The default `staleMs` (`leaseMs - stepdownMarginMs + renewIntervalMs / 4`) keeps that property for
 *   stale takeovers too: a holder that cannot renew has stopped acting as owner before it counts as
 *   stale. Only `takeover` (forced) can overlap an old owner; fencing epochs cover that case.
 * - A takeover is noticed through a `stolen` event at once, or through the next renew (within one
 *   renew interval) when the event is lost.
 * - If the store is unreachable, nothing is cut off: the handle steps down (stops acting as owner),
 *   keeps retrying, and on recovery renews or re-claims with a new, higher epoch, or reports `lost`
 *   when someone else owns the broadcast by then.
 */

import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { BroadcastBusyError, ClusterError, isClusterError } from "./error.ts";
import { type ClusterLogger, silentLogger } from "./logger.ts";
import { validateBroadcastName, validateNodeId } from "./names.ts";
import { checkIntegerOption, MAX_LEASE_MS } from "./request-checks.ts";
import type {
  AcquireMode,
  ClusterEvent,
  ClusterStore,
  EventHolder,
  Lease,
  OwnershipRecord,
  StoreState,
} from "./store.ts";

/**
 * What happens when a publisher starts a broadcast that another node owns.
 * - `takeover-if-stale` (default): take it over only if the owner reported no media for `staleMs`
 *   (a reconnecting encoder wins; two live encoders do not fight: the second gets "busy").
 * - `takeover`: always take it over (the newest publisher wins).
 * - `reject`: never take it over while the lease lives.
 */
export type ConflictPolicy = "takeover-if-stale" | "takeover" | "reject";

/** Options of {@link BroadcastClaims}. */
export interface BroadcastClaimsOptions {
  readonly store: ClusterStore;
  readonly nodeId: string;
  /** Lease length, ms. Default 6000. */
  readonly leaseMs?: number;
  /** Renew period, ms. Default 2000. */
  readonly renewIntervalMs?: number;
  /** How long before the lease would run out the node stops acting as owner, ms. Default max(1000, 25% of the lease). */
  readonly stepdownMarginMs?: number;
  /** A holder with no media for this long may be taken over under `takeover-if-stale`, ms. Default: see the module doc. */
  readonly staleMs?: number;
  /** Default conflict policy. Default `takeover-if-stale`. */
  readonly policy?: ConflictPolicy;
  /** Monotonic clock in ms. Default `performance.now`. */
  readonly clock?: () => number;
  /** Where ownership changes are logged (pino-compatible). */
  readonly logger?: ClusterLogger;
}

/** Per-claim options of {@link BroadcastClaims.claim}. */
export interface ClaimOptions {
  /** Overrides the manager's conflict policy for this claim. */
  readonly policy?: ConflictPolicy;
  /**
   * When true (default) the claim counts as active only while {@link BroadcastClaim.markMedia} is
   * called, which is what `takeover-if-stale` judges. When false, every renew counts as activity.
   */
  readonly trackMedia?: boolean;
}

/** Where a claim stands. `lost` and `released` are final. */
export type ClaimState =
  /** Not confirmed yet: the store was unreachable when the broadcast started. Retrying. */
  | "pending"
  /** Confirmed by the store and within the local deadline. */
  | "owner"
  /** Was owner, but no renew succeeded before the local deadline. Not acting as owner; retrying. */
  | "stepped-down"
  /** Another node owns the broadcast. The local publisher should be disconnected. */
  | "lost"
  /** Released by this node. */
  | "released";

/** Why a claim was lost. */
export type LostReason =
  /**
   * Another node took it over before the lease ran out: known from the `stolen` event, or from a
   * renew that found a new owner while this node was still within its local deadline.
   */
  | "stolen"
  /**
   * A renew found another owner after this node's local deadline had passed (outage, partition,
   * pause): the lease expired or was taken over as stale; this node cannot tell which.
   */
  | "expired"
  /** The claim was never confirmed, and when the store came back the policy refused it. */
  | "refused"
  /** A newer local claim of the same broadcast replaced this one. */
  | "superseded";

/** Payload of the `acquired` event. */
export interface AcquiredInfo {
  readonly epoch: number;
  /** The epoch held before (null for a first acquisition). Equal to `epoch` when a stepped-down lease was confirmed again. */
  readonly previousEpoch: number | null;
}

/** Payload of the `lost` event. */
export interface LostInfo {
  readonly reason: LostReason;
  /** Who owns the broadcast now, when known. */
  readonly owner: EventHolder | null;
}

/** Events of a {@link BroadcastClaim}. No `error` event is ever emitted. */
export interface BroadcastClaimEvents {
  /** Became owner with `epoch` (first claim, re-claim after an outage, or confirmation after a stepdown). */
  acquired: [AcquiredInfo];
  /** After every successful renew or acquisition; `deadline` is on the manager's monotonic clock. */
  renewed: [{ readonly epoch: number; readonly deadline: number }];
  /** Stopped acting as owner because no renew succeeded in time; still retrying. */
  stepdown: [{ readonly reason: string }];
  /** Another node took the broadcast over (see {@link LostReason} `stolen`). Always followed by `lost`. */
  stolen: [{ readonly by: EventHolder }];
  /** Final: another node owns the broadcast (see `reason`). */
  lost: [LostInfo];
  /** Final: released by this node. */
  released: [];
}

interface ClaimsContext {
  readonly store: ClusterStore;
  readonly nodeId: string;
  readonly leaseMs: number;
  readonly renewIntervalMs: number;
  readonly stepdownMarginMs: number;
  readonly staleMs: number;
  readonly clock: () => number;
  readonly logger: ClusterLogger;
  forget(claim: BroadcastClaim): void;
}

function newClaimId(): string {
  return randomBytes(12).toString("base64url");
}

function modeOf(policy: ConflictPolicy): AcquireMode {
  return policy === "reject" ? "claim" : policy === "takeover" ? "force" : "if-stale";
}

function holderOf(record: OwnershipRecord | EventHolder): EventHolder {
  return { nodeId: record.nodeId, claimId: record.claimId, epoch: record.epoch };
}

const TOKEN: unique symbol = Symbol("BroadcastClaim.internal") as never;

/**
 * One broadcast's claim, as seen by the node that made it. Create it with
 * {@link BroadcastClaims.claim}; end it with {@link BroadcastClaim.release}.
 */
export class BroadcastClaim extends EventEmitter<BroadcastClaimEvents> {
  readonly broadcast: string;
  readonly policy: ConflictPolicy;
  readonly #context: ClaimsContext;
  readonly #trackMedia: boolean;
  #state: ClaimState = "pending";
  #lease: Lease | null = null;
  /** Claim id of an acquisition whose outcome is unknown (timeout); reused so the retry is idempotent. */
  #attemptClaimId: string = newClaimId();
  #attemptMode: AcquireMode;
  #supersedes: string | undefined;
  #deadline = Number.NEGATIVE_INFINITY;
  #lastMediaAt: number | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #stepdownTimer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #again = false;
  #releasing: Promise<void> | undefined;

  /** @internal Created by {@link BroadcastClaims}. */
  constructor(
    token: typeof TOKEN,
    context: ClaimsContext,
    broadcast: string,
    policy: ConflictPolicy,
    trackMedia: boolean,
    supersedes: string | undefined,
  ) {
    super();
    if (token !== TOKEN)
      throw new ClusterError("CLUSTER_INVALID_CONFIG", "create claims with BroadcastClaims.claim()");
    this.#context = context;
    this.broadcast = broadcast;
    this.policy = policy;
    this.#trackMedia = trackMedia;
    this.#attemptMode = modeOf(policy);
    this.#supersedes = supersedes;
  }

  /** Current state; see {@link ClaimState}. */
  get state(): ClaimState {
    if (this.#state === "owner" && this.#context.clock() >= this.#deadline) return "stepped-down";
    return this.#state;
  }

  /** The fencing epoch of the lease this node holds or last held, or null before the first acquisition. */
  get epoch(): number | null {
    return this.#lease?.epoch ?? null;
  }

  /** The lease this node holds or last held, or null. */
  get lease(): Lease | null {
    return this.#lease;
  }

  /** Claim id of an acquisition not yet confirmed, if any (used to release an unknown outcome). */
  get pendingClaimId(): string | null {
    return this.#lease ? null : this.#attemptClaimId;
  }

  /** Monotonic time (the manager's clock) until which this node may act as owner. */
  get deadline(): number {
    return this.#state === "owner" ? this.#deadline : Number.NEGATIVE_INFINITY;
  }

  /**
   * True while this node may act as owner: the lease is confirmed and the local deadline has not
   * passed. Check it right before each owner-only action and send {@link epoch} with the action.
   */
  isOwner(): boolean {
    return this.#state === "owner" && this.#context.clock() < this.#deadline;
  }

  /** True once the claim is `lost` or `released`. */
  get ended(): boolean {
    return this.#state === "lost" || this.#state === "released";
  }

  /** Records that media went through this node just now (call per frame or per group; it is cheap). */
  markMedia(): void {
    this.#lastMediaAt = this.#context.clock();
  }

  /**
   * Releases the claim: stops acting as owner at once, stops renewing, and deletes the lease if it
   * is still this node's. Never rejects; if the store is unreachable the lease simply expires.
   */
  release(): Promise<void> {
    if (!this.#releasing) this.#releasing = this.#release();
    return this.#releasing;
  }

  async #release(): Promise<void> {
    if (this.ended) return;
    this.#state = "released";
    this.#clearTimers();
    this.#context.forget(this);
    await this.#inFlight;
    const lease: Lease | null = this.#lease ?? {
      // An acquisition whose outcome is unknown may have applied; its claim id is enough to undo it.
      broadcast: this.broadcast,
      nodeId: this.#context.nodeId,
      claimId: this.#attemptClaimId,
      epoch: 0,
    };
    try {
      await this.#context.store.release(lease);
    } catch (err) {
      this.#context.logger.warn(
        { broadcast: this.broadcast, err: (err as Error).message },
        "could not release the cluster claim; it will expire with its lease",
      );
    }
    this.#context.logger.info({ broadcast: this.broadcast, epoch: this.epoch }, "cluster claim released");
    this.#notify(() => this.emit("released"));
  }

  /** @internal First acquisition; resolves to the refusing owner when the policy refused it (the manager throws). */
  async begin(token: typeof TOKEN): Promise<OwnershipRecord | null> {
    if (token !== TOKEN) return null;
    let refusedBy: OwnershipRecord | null = null;
    await this.#serialize(async () => {
      refusedBy = await this.#acquire(true);
    });
    if (this.#state === "pending") {
      this.#context.logger.info(
        { broadcast: this.broadcast, store: this.#context.store.state },
        "cluster claim pending: the store is unreachable, serving as a single node until it returns",
      );
    }
    if (!this.ended) this.#scheduleRenew();
    return refusedBy;
  }

  /** @internal Reacts to a store event about this broadcast. */
  onEvent(event: ClusterEvent, token: typeof TOKEN): void {
    if (token !== TOKEN || this.ended || !("broadcast" in event)) return;
    const mine = this.#lease?.claimId;
    if (event.type === "stolen" && mine !== undefined && event.previous.claimId === mine) {
      this.#lose("stolen", holderOf(event));
      return;
    }
    if (event.claimId === mine || event.claimId === this.#attemptClaimId) return;
    // Someone else claimed, stole or released it: verify now instead of at the next renew.
    this.checkNow(TOKEN);
  }

  /** @internal Runs a renew (or acquisition retry) now, e.g. when the store came back. */
  checkNow(token: typeof TOKEN): void {
    if (token !== TOKEN || this.ended) return;
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    this.#tick();
  }

  /** @internal Ends the claim because a newer local claim replaced it. */
  supersede(token: typeof TOKEN, by: EventHolder | null): void {
    if (token !== TOKEN) return;
    this.#lose("superseded", by);
  }

  #scheduleRenew(): void {
    clearTimeout(this.#renewTimer);
    if (this.ended) return;
    this.#renewTimer = setTimeout(() => this.#tick(), this.#context.renewIntervalMs);
  }

  #tick(): void {
    if (this.ended) return;
    // The next tick is timed from this one's start, so renews keep their period however long each takes.
    this.#scheduleRenew();
    this.#serialize(async () => {
      if (this.#lease && this.#state !== "pending") await this.#renew(this.#lease);
      else await this.#acquire(false);
    }).catch((err: unknown) => {
      this.#context.logger.error(
        { broadcast: this.broadcast, err: (err as Error)?.message },
        "cluster claim tick failed",
      );
    });
  }

  // One store operation at a time per claim; a request that arrives meanwhile runs right after.
  async #serialize(operation: () => Promise<void>): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
    const run = operation().finally(() => {
      this.#inFlight = undefined;
      if (this.#again && !this.ended) {
        this.#again = false;
        this.#tick();
      }
    });
    this.#inFlight = run;
    await run;
  }

  /** Tries to (re)acquire; returns the refusing owner when a first acquisition was refused. */
  async #acquire(first: boolean): Promise<OwnershipRecord | null> {
    if (this.ended) return null;
    const context = this.#context;
    const sentAt = context.clock();
    try {
      const result = await context.store.acquire({
        broadcast: this.broadcast,
        nodeId: context.nodeId,
        claimId: this.#attemptClaimId,
        leaseMs: context.leaseMs,
        mode: this.#attemptMode,
        staleMs: context.staleMs,
        ...(this.#supersedes === undefined ? {} : { supersedes: this.#supersedes }),
      });
      if (this.ended) {
        // Released while the acquisition was in flight; #release undoes it with the same claim id.
        if (result.acquired) this.#lease = result.lease;
        return null;
      }
      if (!result.acquired) {
        this.#attemptClaimId = newClaimId();
        if (first) {
          this.#state = "lost";
          this.#clearTimers();
          return result.owner;
        }
        this.#lose(this.#lease ? "expired" : "refused", holderOf(result.owner));
        return null;
      }
      const previousEpoch = this.#lease?.epoch ?? null;
      this.#lease = result.lease;
      this.#attemptClaimId = newClaimId();
      this.#supersedes = undefined;
      this.#confirm(sentAt, previousEpoch, true);
      return null;
    } catch (err) {
      this.#noteFailure(err, first ? "claim" : "re-claim");
      return null;
    }
  }

  async #renew(lease: Lease): Promise<void> {
    const context = this.#context;
    const sentAt = context.clock();
    const mediaAgeMs = this.#trackMedia
      ? this.#lastMediaAt === undefined
        ? undefined
        : Math.max(0, sentAt - this.#lastMediaAt)
      : 0;
    try {
      const result = await context.store.renew(
        lease,
        mediaAgeMs === undefined ? { leaseMs: context.leaseMs } : { leaseMs: context.leaseMs, mediaAgeMs },
      );
      if (this.ended || this.#lease !== lease) return;
      if (result.renewed) {
        this.#confirm(sentAt, lease.epoch, false);
        return;
      }
      if (result.owner === null) {
        // The lease vanished (it expired, or the store lost its data) and nobody holds the
        // broadcast: acquire it again, which yields a new, higher epoch. Stop acting as owner first.
        this.#stepDown("the lease is gone from the store; re-claiming");
        this.#attemptMode = "claim";
        await this.#acquire(false);
        return;
      }
      this.#lose(this.isOwner() ? "stolen" : "expired", holderOf(result.owner));
    } catch (err) {
      this.#noteFailure(err, "renew");
    }
  }

  #confirm(sentAt: number, previousEpoch: number | null, acquired: boolean): void {
    const context = this.#context;
    const deadline = sentAt + context.leaseMs - context.stepdownMarginMs;
    const lease = this.#lease!;
    // A deadline that passed before its timer fired is a stepdown all the same; report it in order.
    if (this.#state === "owner" && !this.isOwner())
      this.#stepDown("no renew succeeded before the local deadline");
    const wasOwner = this.isOwner();
    this.#deadline = deadline;
    if (context.clock() >= deadline) return; // Confirmed too late to act on; the next renew decides.
    this.#state = "owner";
    clearTimeout(this.#stepdownTimer);
    this.#stepdownTimer = setTimeout(
      () => this.#onDeadline(deadline),
      Math.max(0, deadline - context.clock()) + 1,
    );
    if (!wasOwner) {
      if (acquired) {
        context.logger.info(
          { broadcast: this.broadcast, epoch: lease.epoch, previousEpoch },
          previousEpoch === null ? "cluster claim acquired" : "cluster claim re-acquired with a new epoch",
        );
      } else {
        context.logger.info(
          { broadcast: this.broadcast, epoch: lease.epoch },
          "cluster claim confirmed again",
        );
      }
      this.#notify(() => this.emit("acquired", { epoch: lease.epoch, previousEpoch }));
    }
    this.#notify(() => this.emit("renewed", { epoch: lease.epoch, deadline }));
  }

  #onDeadline(deadline: number): void {
    if (this.#state !== "owner" || this.#deadline !== deadline) return;
    if (this.#context.clock() < deadline) {
      this.#stepdownTimer = setTimeout(
        () => this.#onDeadline(deadline),
        Math.max(1, deadline - this.#context.clock()),
      );
      return;
    }
    this.#stepDown(`no renew succeeded within ${this.#context.leaseMs - this.#context.stepdownMarginMs} ms`);
  }

  #stepDown(reason: string): void {
    if (this.#state !== "owner") return;
    this.#state = "stepped-down";
    this.#deadline = Number.NEGATIVE_INFINITY;
    clearTimeout(this.#stepdownTimer);
    this.#context.logger.warn(
      { broadcast: this.broadcast, epoch: this.epoch, reason },
      "cluster claim stepped down",
    );
    this.#notify(() => this.emit("stepdown", { reason }));
  }

  #noteFailure(err: unknown, operation: string): void {
    const code = isClusterError(err) ? err.code : "UNKNOWN";
    // Per-attempt failures are debug-level: the store logs its own state change once, and a
    // stepdown is logged when it happens.
    this.#context.logger.debug(
      { broadcast: this.broadcast, operation, code, err: (err as Error)?.message },
      "cluster claim operation failed",
    );
  }

  #lose(reason: LostReason, owner: EventHolder | null): void {
    if (this.ended) return;
    this.#state = "lost";
    this.#deadline = Number.NEGATIVE_INFINITY;
    this.#clearTimers();
    this.#context.forget(this);
    this.#context.logger.warn(
      {
        broadcast: this.broadcast,
        epoch: this.epoch,
        reason,
        owner: owner?.nodeId ?? null,
        ownerEpoch: owner?.epoch ?? null,
      },
      "cluster claim lost",
    );
    if (reason === "stolen" && owner) this.#notify(() => this.emit("stolen", { by: owner }));
    this.#notify(() => this.emit("lost", { reason, owner }));
  }

  // A listener that throws must not break the renew loop or surface as an unhandled rejection.
  #notify(emit: () => void): void {
    try {
      emit();
    } catch (err) {
      this.#context.logger.error(
        { broadcast: this.broadcast, err: (err as Error)?.message },
        "a cluster claim event listener threw",
      );
    }
  }

  #clearTimers(): void {
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#stepdownTimer);
    this.#renewTimer = undefined;
    this.#stepdownTimer = undefined;
  }
}

/** Counts of claims per state, for metrics. */
export interface ClaimsStats {
  readonly pending: number;
  readonly owner: number;
  readonly steppedDown: number;
  readonly storeState: StoreState;
}

/** The lease manager of one node. */
export class BroadcastClaims {
  readonly nodeId: string;
  readonly store: ClusterStore;
  readonly leaseMs: number;
  readonly renewIntervalMs: number;
  readonly stepdownMarginMs: number;
  readonly staleMs: number;
  readonly policy: ConflictPolicy;
  readonly #context: ClaimsContext;
  readonly #claims = new Map<string, BroadcastClaim>();
  readonly #claiming = new Map<string, Promise<unknown>>();
  readonly #unsubscribe: () => void;
  readonly #unwatch: () => void;
  #closing: Promise<void> | undefined;

  constructor(options: BroadcastClaimsOptions) {
    validateNodeId(options.nodeId);
    const leaseMs = options.leaseMs ?? 6000;
    checkIntegerOption("leaseMs", leaseMs, 100, MAX_LEASE_MS);
    const renewIntervalMs = options.renewIntervalMs ?? Math.round(leaseMs / 3);
    checkIntegerOption("renewIntervalMs", renewIntervalMs, 10, leaseMs - 1);
    const stepdownMarginMs = options.stepdownMarginMs ?? Math.max(1000, Math.round(leaseMs / 4));
    checkIntegerOption("stepdownMarginMs", stepdownMarginMs, 0, leaseMs);
    if (leaseMs - stepdownMarginMs <= renewIntervalMs) {
      throw new ClusterError(
        "CLUSTER_INVALID_CONFIG",
        `leaseMs - stepdownMarginMs (${leaseMs - stepdownMarginMs}) must exceed renewIntervalMs (${renewIntervalMs}), or every owner would step down between renews`,
      );
    }
    const staleMs = options.staleMs ?? leaseMs - stepdownMarginMs + Math.floor(renewIntervalMs / 4);
    checkIntegerOption("staleMs", staleMs, renewIntervalMs + 1, MAX_LEASE_MS);
    const policy = options.policy ?? "takeover-if-stale";
    checkPolicy(policy);
    this.nodeId = options.nodeId;
    this.store = options.store;
    this.leaseMs = leaseMs;
    this.renewIntervalMs = renewIntervalMs;
    this.stepdownMarginMs = stepdownMarginMs;
    this.staleMs = staleMs;
    this.policy = policy;
    this.#context = {
      store: options.store,
      nodeId: options.nodeId,
      leaseMs,
      renewIntervalMs,
      stepdownMarginMs,
      staleMs,
      clock: options.clock ?? (() => performance.now()),
      logger: options.logger ?? silentLogger,
      forget: (claim) => {
        if (this.#claims.get(claim.broadcast) === claim) this.#claims.delete(claim.broadcast);
      },
    };
    this.#unsubscribe = options.store.subscribe((event) => {
      if (!("broadcast" in event)) return;
      // A takeover by this node is a local handover, which claim() settles itself (as "superseded").
      if (event.type === "stolen" && event.nodeId === this.nodeId && event.previous.nodeId === this.nodeId)
        return;
      this.#claims.get(event.broadcast)?.onEvent(event, TOKEN);
    });
    this.#unwatch = options.store.onStateChange((state) => {
      // On recovery, renew or re-claim everything at once instead of waiting for the next tick.
      if (state === "available") for (const claim of this.#claims.values()) claim.checkNow(TOKEN);
    });
  }

  /**
   * Claims `broadcast` for this node (call it when a broadcast starts here).
   *
   * Resolves with a handle in state `owner`, or `pending` when the store is unreachable (the node
   * carries on as a single node and the handle keeps trying). Rejects with a
   * {@link BroadcastBusyError} (`CLUSTER_BUSY`) when another node owns the broadcast and the policy
   * does not allow taking it over. Claiming a broadcast this node already claimed replaces the old
   * handle (a local publisher handover): the old one ends with `lost` / `superseded`.
   */
  async claim(broadcast: string, options: ClaimOptions = {}): Promise<BroadcastClaim> {
    validateBroadcastName(broadcast);
    const policy = options.policy ?? this.policy;
    checkPolicy(policy);
    // Claims of one name run one after the other, so the second sees the first as its predecessor.
    const previousTurn = this.#claiming.get(broadcast);
    const turn = (async () => {
      await previousTurn?.catch(() => {});
      return this.#claimNow(broadcast, policy, options.trackMedia ?? true);
    })();
    this.#claiming.set(broadcast, turn);
    try {
      return await turn;
    } finally {
      if (this.#claiming.get(broadcast) === turn) this.#claiming.delete(broadcast);
    }
  }

  async #claimNow(broadcast: string, policy: ConflictPolicy, trackMedia: boolean): Promise<BroadcastClaim> {
    if (this.#closing) throw new ClusterError("CLUSTER_CLOSED", "this node's claims are closed");
    const existing = this.#claims.get(broadcast);
    const supersedes = existing
      ? (existing.lease?.claimId ?? existing.pendingClaimId ?? undefined)
      : undefined;
    const claim = new BroadcastClaim(TOKEN, this.#context, broadcast, policy, trackMedia, supersedes);
    const refusedBy = await claim.begin(TOKEN);
    if (refusedBy) throw new BroadcastBusyError(broadcast, refusedBy, policy);
    if (existing && !existing.ended) {
      existing.supersede(TOKEN, claim.lease ? holderOf(claim.lease) : null);
    }
    if (this.#closing) {
      await claim.release();
      throw new ClusterError("CLUSTER_CLOSED", "this node's claims are closed");
    }
    this.#claims.set(broadcast, claim);
    return claim;
  }

  /** The live claim of `broadcast` on this node, if any. */
  get(broadcast: string): BroadcastClaim | undefined {
    return this.#claims.get(broadcast);
  }

  /** Every live claim of this node. */
  list(): BroadcastClaim[] {
    return [...this.#claims.values()];
  }

  /** Counts per state, plus the store's state. */
  stats(): ClaimsStats {
    let pending = 0;
    let owner = 0;
    let steppedDown = 0;
    for (const claim of this.#claims.values()) {
      const state = claim.state;
      if (state === "pending") pending += 1;
      else if (state === "owner") owner += 1;
      else if (state === "stepped-down") steppedDown += 1;
    }
    return { pending, owner, steppedDown, storeState: this.store.state };
  }

  /** Releases every claim and stops listening to the store. Idempotent; the store stays open. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = (async () => {
        await Promise.all([...this.#claiming.values()].map((turn) => turn.catch(() => {})));
        await Promise.all([...this.#claims.values()].map((claim) => claim.release()));
        this.#unsubscribe();
        this.#unwatch();
      })();
    }
    return this.#closing;
  }
}

function checkPolicy(policy: string): void {
  if (policy !== "takeover-if-stale" && policy !== "takeover" && policy !== "reject") {
    throw new ClusterError(
      "CLUSTER_INVALID_CONFIG",
      `unknown conflict policy ${JSON.stringify(policy)} (expected takeover-if-stale, takeover or reject)`,
    );
  }
}
