/**
 * `RelayPull`: serves broadcasts owned by other nodes from this node, by pulling them over moq-lite.
 *
 * Every broadcast the {@link ClusterDirectory} says another node owns is announced in the local
 * origin as a {@link RelayedBroadcast}: an on-demand broadcast with no tracks, so MoQ viewers of
 * this node discover it (`announced(prefix)`) exactly as if it were local, and nothing is pulled
 * until someone subscribes. The first track a local reader asks for opens the one
 * {@link UpstreamSession} of that broadcast to its owner; the last reader leaving lets it go.
 *
 * HLS and DASH package from a second origin, the *egress origin*: local broadcasts are mirrored
 * into it at once, remote ones only while HLS/DASH viewers ask for them ({@link RelayPull.request}),
 * because the egress hub reads every broadcast it sees and would otherwise pull every broadcast of
 * the cluster to every node.
 *
 * Ownership changes and failures replace the relayed broadcast with a new instance from the right
 * owner (viewers see a republish: MoQ re-announces it, HLS gets a discontinuity):
 *
 * - A higher epoch (a takeover, a republish elsewhere) is pulled from the new owner at once; an
 *   owner with a lower epoch than one already pulled is never used again.
 * - A failed upstream (owner crashed, connection lost, broadcast not announced) is retried with
 *   exponential backoff (250 ms doubling, at most 10 s). When the failed pull was in use, the
 *   replacement is connected first and only swapped in once it works.
 * - A broadcast whose owner disappears stays announced for `ownerGapMs` (a republish elsewhere
 *   within that time continues seamlessly), then ends.
 * - A broadcast that is live locally is never relayed: local media wins on this node.
 */

import type { BroadcastConsumer, OriginProducer, TrackLimits } from "@lvqr/moq-lite";
import type { ClusterDirectory, KnownOwner } from "../directory.ts";
import { type ClusterLogger, silentLogger } from "../logger.ts";
import { checkIntegerOption } from "../request-checks.ts";
import type { NodeRecord } from "../store.ts";
import { RelayedBroadcast } from "./relayed-broadcast.ts";
import { type MoqConnector, redactUrl, UpstreamSession } from "./upstream-session.ts";

/** Options of {@link RelayPull}. */
export interface RelayPullOptions {
  /** This node's id: broadcasts it owns are never relayed. */
  readonly nodeId: string;
  /** The origin local MoQ sessions read; remote broadcasts are announced into it. */
  readonly origin: OriginProducer;
  readonly directory: ClusterDirectory;
  /**
   * The origin the HLS/DASH egress follows. Local broadcasts are mirrored into it; remote ones
   * are added while {@link RelayPull.request} is called for them. Omit when nothing packages.
   */
  readonly egressOrigin?: OriginProducer;
  /** This node's own advertised MoQ URL: never pulled from, even if a stale record points at it. */
  readonly localMoqUrl?: string | null;
  /** Credential for the session to an owner for one broadcast (sent as `?token=`). */
  readonly token?: (owner: NodeRecord, broadcast: string) => string | undefined | Promise<string | undefined>;
  readonly connect?: MoqConnector;
  /** First retry delay after a failure, ms. Default 250. */
  readonly retryInitialMs?: number;
  /** Longest retry delay, ms. Default 10000. */
  readonly retryMaxMs?: number;
  /** How long an upstream session stays open with no track read, ms. Default 3000. */
  readonly upstreamIdleMs?: number;
  /** Connect and SETUP timeout of an upstream session, ms. Default 5000. */
  readonly upstreamConnectTimeoutMs?: number;
  /** WebSocket ping interval of an upstream session (a missed pong fails it), ms. Default 5000. */
  readonly upstreamPingIntervalMs?: number;
  /** How long an owner may take to announce the broadcast on a new session, ms. Default 5000. */
  readonly announceTimeoutMs?: number;
  /** How long a relayed broadcast stays announced after its owner disappeared, ms. Default 5000. */
  readonly ownerGapMs?: number;
  /** How long a remote broadcast stays in the egress origin after the last HLS/DASH request, ms. Default 30000. */
  readonly egressIdleMs?: number;
  /** Cache bounds of relayed tracks. */
  readonly trackLimits?: TrackLimits;
  readonly logger?: ClusterLogger;
}

/** What {@link RelayPull.request} found. */
export type RelayRequestResult =
  /** Live on this node from a local publisher: serve it. */
  | "local"
  /** Owned elsewhere and now (or already) relayed into the egress origin: serve it. */
  | "relayed"
  /** No owner known anywhere (or its owner cannot be reached over MoQ). */
  | "unknown";

/** State of one relayed broadcast, for status pages and tests. */
export interface RelayStatus {
  readonly broadcast: string;
  readonly owner: string;
  readonly epoch: number;
  /** `idle` (announced, nothing pulled), `pulling`, `failed` (retrying), `orphaned` (owner gone, lingering). */
  readonly state: "idle" | "pulling" | "failed" | "orphaned";
  /** Tracks currently forwarded to local readers. */
  readonly tracks: number;
  /** True while the broadcast is in the egress origin. */
  readonly egress: boolean;
  /** Upstream sessions opened for the current owner (one per busy period). */
  readonly sessions: number;
}

interface Pull {
  readonly owner: KnownOwner;
  readonly url: string;
  readonly upstream: UpstreamSession;
  readonly moq: RelayedBroadcast;
  egress: RelayedBroadcast | undefined;
  failed: boolean;
  readonly startedAtMs: number;
}

interface RelayEntry {
  readonly path: string;
  pull: Pull | undefined;
  /** A replacement being connected before it is swapped in. */
  probing: Pull | undefined;
  failures: number;
  retryTimer: NodeJS.Timeout | undefined;
  /** The owner the pending retry is for. */
  retryFor: string | undefined;
  gapTimer: NodeJS.Timeout | undefined;
  lastEgressDemandMs: number;
  highestEpoch: number;
}

interface Target {
  readonly owner: KnownOwner;
  readonly node: NodeRecord;
  readonly url: string;
}

/** A pull that lived this long counts as healthy: its failure restarts the backoff. */
const HEALTHY_AFTER_MS = 30_000;

/** Relays remote broadcasts into the local origin (MoQ) and, on demand, the egress origin (HLS/DASH). */
export class RelayPull {
  readonly nodeId: string;
  readonly #options: RelayPullOptions;
  readonly #origin: OriginProducer;
  readonly #egressOrigin: OriginProducer | undefined;
  readonly #directory: ClusterDirectory;
  readonly #logger: ClusterLogger;
  readonly #entries = new Map<string, RelayEntry>();
  /** Consumers this object published (identity), so the mirror and `isLocal` can skip them. */
  readonly #relayed = new WeakSet<BroadcastConsumer>();
  readonly #mirrored = new WeakSet<BroadcastConsumer>();
  readonly #announced: ReturnType<ReturnType<OriginProducer["consume"]>["announced"]>;
  readonly #unwatch: () => void;
  readonly #sweepTimer: NodeJS.Timeout;
  readonly #retryInitialMs: number;
  readonly #retryMaxMs: number;
  readonly #ownerGapMs: number;
  readonly #egressIdleMs: number;
  readonly #warnedNoEndpoint = new Set<string>();
  #closed = false;

  constructor(options: RelayPullOptions) {
    this.nodeId = options.nodeId;
    this.#options = options;
    this.#origin = options.origin;
    this.#egressOrigin = options.egressOrigin;
    this.#directory = options.directory;
    this.#logger = options.logger ?? silentLogger;
    this.#retryInitialMs = options.retryInitialMs ?? 250;
    checkIntegerOption("retryInitialMs", this.#retryInitialMs, 1, 60_000);
    this.#retryMaxMs = options.retryMaxMs ?? 10_000;
    checkIntegerOption("retryMaxMs", this.#retryMaxMs, this.#retryInitialMs, 600_000);
    this.#ownerGapMs = options.ownerGapMs ?? 5000;
    checkIntegerOption("ownerGapMs", this.#ownerGapMs, 0, 600_000);
    this.#egressIdleMs = options.egressIdleMs ?? 30_000;
    checkIntegerOption("egressIdleMs", this.#egressIdleMs, 100, 3_600_000);
    this.#announced = this.#origin.consume().announced("");
    void this.#watchLocal();
    this.#unwatch = this.#directory.onChange(() => this.#reconcileAll());
    this.#sweepTimer = setInterval(
      () => this.#sweepEgress(),
      Math.max(50, Math.floor(this.#egressIdleMs / 4)),
    );
    this.#sweepTimer.unref?.();
    this.#reconcileAll();
  }

  /** True when a broadcast from a local publisher (not a relay) is live at `path`. */
  isLocal(path: string): boolean {
    const live = this.#origin.consume().consume(path);
    return live !== undefined && !this.#relayed.has(live);
  }

  /** True when `broadcast` is a relayed broadcast this object published. */
  isRelayed(broadcast: BroadcastConsumer): boolean {
    return this.#relayed.has(broadcast);
  }

  /**
   * An HLS/DASH viewer asked for `path`: make sure it is in the egress origin. Looks the owner up in
   * the store when the directory does not know it yet (a claim that is milliseconds old). Call it on
   * every request; the broadcast leaves the egress origin `egressIdleMs` after the last call.
   */
  async request(path: string): Promise<RelayRequestResult> {
    if (this.isLocal(path)) return "local";
    if (this.#touchEgress(path)) return "relayed";
    if (this.#directory.owner(path) === undefined) {
      await this.#directory.lookup(path);
      if (this.#closed) return "unknown";
      this.#reconcile(path);
      if (this.isLocal(path)) return "local";
      if (this.#touchEgress(path)) return "relayed";
    }
    return "unknown";
  }

  /** The state of every relayed broadcast, sorted by name. */
  status(): RelayStatus[] {
    const out: RelayStatus[] = [];
    for (const entry of this.#entries.values()) {
      const pull = entry.pull;
      if (!pull) continue;
      const tracks = pull.moq.forwardingTracks + (pull.egress?.forwardingTracks ?? 0);
      out.push({
        broadcast: entry.path,
        owner: pull.owner.nodeId,
        epoch: pull.owner.epoch,
        state: entry.gapTimer ? "orphaned" : pull.failed ? "failed" : tracks > 0 ? "pulling" : "idle",
        tracks,
        egress: pull.egress !== undefined,
        sessions: pull.upstream.connections,
      });
    }
    return out.sort((a, b) => (a.broadcast < b.broadcast ? -1 : a.broadcast > b.broadcast ? 1 : 0));
  }

  /** Ends every relayed broadcast and upstream session. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch();
    this.#announced.close();
    clearInterval(this.#sweepTimer);
    for (const entry of [...this.#entries.values()]) this.#drop(entry, "relay closed");
  }

  // ---- local broadcasts ----

  async #watchLocal(): Promise<void> {
    for (;;) {
      const announcement = await this.#announced.next();
      if (announcement === undefined || this.#closed) return;
      const { path, broadcast } = announcement;
      if (announcement.active && broadcast && !this.#relayed.has(broadcast)) {
        if (this.#egressOrigin && !this.#mirrored.has(broadcast)) {
          this.#mirrored.add(broadcast);
          this.#egressOrigin.publish(path, broadcast);
        }
      }
      // A local broadcast appearing replaces any relay of the path; one ending may let a relay in.
      this.#reconcile(path);
    }
  }

  // ---- reconciliation ----

  #reconcileAll(): void {
    if (this.#closed) return;
    const paths = new Set<string>(this.#entries.keys());
    for (const owner of this.#directory.owners()) paths.add(owner.broadcast);
    for (const path of paths) this.#reconcile(path);
  }

  #target(path: string): Target | undefined {
    const owner = this.#directory.owner(path);
    if (!owner || owner.nodeId === this.nodeId || this.isLocal(path)) return undefined;
    const node = this.#directory.node(owner.nodeId);
    let url = node?.endpoints.moq ?? null;
    // Two nodes advertising one URL (a configuration mistake) must not make a node pull from itself.
    if (url !== null && url === this.#options.localMoqUrl) url = null;
    if (!node || url === null) {
      const key = `${owner.nodeId}\n${path}`;
      if (node && !this.#warnedNoEndpoint.has(key)) {
        if (this.#warnedNoEndpoint.size > 1024) this.#warnedNoEndpoint.clear();
        this.#warnedNoEndpoint.add(key);
        this.#logger.warn(
          { broadcast: path, owner: owner.nodeId },
          "cannot relay: the owner advertises no MoQ endpoint (or this node's own)",
        );
      }
      return undefined;
    }
    return { owner, node, url };
  }

  #reconcile(path: string): void {
    if (this.#closed) return;
    const target = this.#target(path);
    let entry = this.#entries.get(path);
    if (!target) {
      if (!entry) return;
      const owner = this.#directory.owner(path);
      // Local media or our own claim replaces a relay at once; a vanished owner gets a grace period.
      if (this.isLocal(path) || owner?.nodeId === this.nodeId) {
        this.#drop(entry, this.isLocal(path) ? "a local publisher took over" : "this node owns it");
      } else this.#orphan(entry);
      return;
    }
    if (!entry) {
      entry = {
        path,
        pull: undefined,
        probing: undefined,
        failures: 0,
        retryTimer: undefined,
        retryFor: undefined,
        gapTimer: undefined,
        lastEgressDemandMs: Number.NEGATIVE_INFINITY,
        highestEpoch: Number.NEGATIVE_INFINITY,
      };
      this.#entries.set(path, entry);
    }
    if (entry.gapTimer) {
      clearTimeout(entry.gapTimer);
      entry.gapTimer = undefined;
    }
    if (target.owner.epoch < entry.highestEpoch) {
      this.#logger.debug(
        {
          broadcast: path,
          owner: target.owner.nodeId,
          epoch: target.owner.epoch,
          highest: entry.highestEpoch,
        },
        "relay ignores an owner with a stale epoch",
      );
      return;
    }
    const key = targetKey(target);
    const pull = entry.pull;
    if (pull && pullKey(pull) === key && !pull.failed) {
      this.#abandonProbe(entry);
      return;
    }
    if (entry.probing && pullKey(entry.probing) === key) return;
    if (entry.retryTimer) {
      if (entry.retryFor === key) return; // the retry timer calls back
      // A new owner or epoch: try it at once.
      clearTimeout(entry.retryTimer);
      entry.retryTimer = undefined;
      entry.failures = 0;
    }
    this.#abandonProbe(entry);
    this.#startPull(entry, target);
  }

  #startPull(entry: RelayEntry, target: Target): void {
    const old = entry.pull;
    const pull = this.#newPull(entry, target);
    entry.highestEpoch = Math.max(entry.highestEpoch, target.owner.epoch);
    // A pull that nobody used is swapped at once; one that served readers is connected first, so
    // viewers are moved only to an owner that answers.
    if (old && old.upstream.connections > 0) {
      entry.probing = pull;
      void this.#probe(entry, pull);
      return;
    }
    this.#install(entry, pull);
  }

  #newPull(entry: RelayEntry, target: Target): Pull {
    const options = this.#options;
    const token = options.token;
    let pull: Pull | undefined;
    const upstream = new UpstreamSession({
      broadcast: entry.path,
      url: target.url,
      ...(token ? { token: () => token(target.node, entry.path) } : {}),
      ...(options.connect ? { connect: options.connect } : {}),
      ...(options.upstreamIdleMs === undefined ? {} : { idleMs: options.upstreamIdleMs }),
      ...(options.upstreamConnectTimeoutMs === undefined
        ? {}
        : { connectTimeoutMs: options.upstreamConnectTimeoutMs }),
      ...(options.upstreamPingIntervalMs === undefined
        ? {}
        : { pingIntervalMs: options.upstreamPingIntervalMs }),
      ...(options.announceTimeoutMs === undefined ? {} : { announceTimeoutMs: options.announceTimeoutMs }),
      onFailure: (error) => {
        if (pull) this.#onPullFailed(entry, pull, error);
      },
      logger: this.#logger,
      logFields: { owner: target.owner.nodeId, epoch: target.owner.epoch },
    });
    pull = {
      owner: target.owner,
      url: target.url,
      upstream,
      moq: new RelayedBroadcast(entry.path, upstream, options.trackLimits),
      egress: undefined,
      failed: false,
      startedAtMs: performance.now(),
    };
    return pull;
  }

  async #probe(entry: RelayEntry, pull: Pull): Promise<void> {
    try {
      await pull.upstream.ready();
    } catch {
      // #onPullFailed (through the session's onFailure) schedules the next attempt.
      return;
    }
    if (entry.probing !== pull || this.#closed) return;
    entry.probing = undefined;
    this.#install(entry, pull);
  }

  #install(entry: RelayEntry, pull: Pull): void {
    const old = entry.pull;
    entry.pull = pull;
    this.#relayed.add(pull.moq.consumer);
    this.#origin.publish(entry.path, pull.moq.consumer);
    const egressWanted =
      old?.egress !== undefined || performance.now() - entry.lastEgressDemandMs < this.#egressIdleMs;
    if (egressWanted) this.#addEgress(entry, pull);
    this.#logger.info(
      {
        broadcast: entry.path,
        owner: pull.owner.nodeId,
        epoch: pull.owner.epoch,
        upstream: redactUrl(pull.url),
        previousOwner: old?.owner.nodeId ?? null,
        previousEpoch: old?.owner.epoch ?? null,
      },
      "relaying a remote broadcast",
    );
    // Ending the old instance after the new one is published makes it a replacement, not a gap.
    if (old) this.#closePull(old);
  }

  #addEgress(entry: RelayEntry, pull: Pull): void {
    if (!this.#egressOrigin || pull.egress) return;
    pull.egress = new RelayedBroadcast(entry.path, pull.upstream, this.#options.trackLimits);
    this.#relayed.add(pull.egress.consumer);
    this.#egressOrigin.publish(entry.path, pull.egress.consumer);
  }

  #touchEgress(path: string): boolean {
    if (!this.#egressOrigin) return false;
    const entry = this.#entries.get(path);
    const pull = entry?.pull;
    if (!entry || !pull) return false;
    entry.lastEgressDemandMs = performance.now();
    this.#addEgress(entry, pull);
    return true;
  }

  #onPullFailed(entry: RelayEntry, pull: Pull, error: Error): void {
    if (this.#closed || this.#entries.get(entry.path) !== entry) return;
    const current = entry.pull === pull;
    const probing = entry.probing === pull;
    if (!current && !probing) return;
    pull.failed = true;
    if (probing) {
      entry.probing = undefined;
      pull.upstream.close();
      pull.moq.close();
      pull.egress?.close();
    }
    if (current && performance.now() - pull.startedAtMs > HEALTHY_AFTER_MS) entry.failures = 0;
    entry.failures += 1;
    const base = Math.min(this.#retryMaxMs, this.#retryInitialMs * 2 ** Math.min(20, entry.failures - 1));
    const delay = Math.min(this.#retryMaxMs, Math.round(base * (0.8 + Math.random() * 0.4)));
    this.#logger.info(
      {
        broadcast: entry.path,
        owner: pull.owner.nodeId,
        epoch: pull.owner.epoch,
        failures: entry.failures,
        retryInMs: delay,
        err: error.message,
      },
      "relay pull failed; retrying",
    );
    clearTimeout(entry.retryTimer);
    entry.retryFor = pullKey(pull);
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = undefined;
      entry.retryFor = undefined;
      if (this.#closed || this.#entries.get(entry.path) !== entry) return;
      const target = this.#target(entry.path);
      const current = entry.pull;
      if (!target || (current && pullKey(current) === targetKey(target) && !current.failed)) {
        this.#reconcile(entry.path);
        return;
      }
      if (entry.probing) return;
      this.#startPull(entry, target);
    }, delay);
    entry.retryTimer.unref?.();
  }

  #orphan(entry: RelayEntry): void {
    if (entry.gapTimer) return;
    clearTimeout(entry.retryTimer);
    entry.retryTimer = undefined;
    entry.retryFor = undefined;
    this.#abandonProbe(entry);
    if (!entry.pull) {
      this.#entries.delete(entry.path);
      return;
    }
    this.#logger.info(
      { broadcast: entry.path, owner: entry.pull.owner.nodeId, graceMs: this.#ownerGapMs },
      "relayed broadcast has no owner any more; waiting for a new one",
    );
    entry.gapTimer = setTimeout(() => {
      entry.gapTimer = undefined;
      if (this.#target(entry.path)) this.#reconcile(entry.path);
      else this.#drop(entry, "no owner");
    }, this.#ownerGapMs);
    entry.gapTimer.unref?.();
  }

  #abandonProbe(entry: RelayEntry): void {
    const probing = entry.probing;
    if (!probing) return;
    entry.probing = undefined;
    this.#closePull(probing);
  }

  #drop(entry: RelayEntry, reason: string): void {
    clearTimeout(entry.retryTimer);
    clearTimeout(entry.gapTimer);
    entry.retryTimer = undefined;
    entry.retryFor = undefined;
    entry.gapTimer = undefined;
    this.#abandonProbe(entry);
    if (this.#entries.get(entry.path) === entry) this.#entries.delete(entry.path);
    const pull = entry.pull;
    entry.pull = undefined;
    if (!pull) return;
    this.#closePull(pull);
    this.#logger.info(
      { broadcast: entry.path, owner: pull.owner.nodeId, epoch: pull.owner.epoch, reason },
      "stopped relaying a remote broadcast",
    );
  }

  #closePull(pull: Pull): void {
    pull.moq.close();
    pull.egress?.close();
    pull.upstream.close();
  }

  #sweepEgress(): void {
    const cutoff = performance.now() - this.#egressIdleMs;
    for (const entry of this.#entries.values()) {
      const pull = entry.pull;
      if (!pull?.egress || entry.lastEgressDemandMs >= cutoff) continue;
      pull.egress.close();
      pull.egress = undefined;
      this.#logger.debug(
        { broadcast: entry.path },
        "no HLS/DASH viewer asked for the relayed broadcast lately",
      );
    }
  }
}

function targetKey(target: Target): string {
  return `${target.owner.nodeId}\n${target.owner.epoch}\n${target.url}`;
}

function pullKey(pull: Pull): string {
  return `${pull.owner.nodeId}\n${pull.owner.epoch}\n${pull.url}`;
}
