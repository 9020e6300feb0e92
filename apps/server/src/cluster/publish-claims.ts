/**
 * Auto-claim at the ingest: every broadcast a publisher starts on this node is claimed in the
 * cluster before it is admitted, renewed while media flows, and released when it ends.
 *
 * RTMP: the claim runs inside publish admission, after auth. A claim the conflict policy refuses
 * becomes the publisher's `onStatus` error `NetStream.Publish.BadName` ("live/x is being published
 * on node b"), so the encoder sees why; a claim lost later (taken over by another node, or refused
 * when Redis came back) disconnects the local publisher. A second publisher of a name this node
 * already claimed is left to the RTMP server's own duplicate policy; if it takes over, the claim is
 * handed to the new session without a store round trip.
 *
 * MoQ clients that publish into the origin cannot be refused (announcements have no admission
 * hook), so their broadcasts are claimed when they appear: other nodes then relay them from here.
 * If another node owns the name, the broadcast is served on this node only and a warning is logged.
 *
 * While Redis is unreachable, claims are `pending`: publishing works as on a single node, and the
 * claim is confirmed (or lost) when Redis returns.
 */

import { type BroadcastClaim, type BroadcastClaims, isClusterError } from "@lvqr/cluster";
import type { PublishDecision, PublishSession, RtmpServer } from "@lvqr/ingest-rtmp";
import type { BroadcastConsumer, OriginProducer } from "@lvqr/moq-lite";
import type { Logger } from "pino";

/** A claim won in admission, waiting for its session to start. */
interface Parked {
  readonly claim: BroadcastClaim;
  readonly timer: NodeJS.Timeout;
}

/** A running RTMP publish and its claim (undefined while a handover claim is being made). */
interface LivePublish {
  readonly session: PublishSession;
  claim: BroadcastClaim | undefined;
}

/** How long a claim won in admission waits for its session before it is released. */
const ADMITTED_CLAIM_TIMEOUT_MS = 15_000;
/** How long a claim whose session was taken over waits for the new session. */
const HANDOVER_TIMEOUT_MS = 5_000;

/** Claims broadcasts published on this node (RTMP and MoQ). */
export class PublishClaims {
  readonly #ready: Promise<BroadcastClaims>;
  readonly #logger: Logger;
  readonly #admitted = new Map<string, Parked>();
  readonly #handovers = new Map<string, Parked>();
  readonly #live = new Map<string, LivePublish>();
  readonly #turns = new Map<string, Promise<unknown>>();
  readonly #moqClaims = new Map<BroadcastConsumer, Promise<BroadcastClaim | undefined>>();
  #announced: { close(): void } | undefined;
  #closed = false;

  /** `ready` resolves with the lease manager once the cluster node runs. */
  constructor(ready: Promise<BroadcastClaims>, logger: Logger) {
    this.#ready = ready;
    this.#logger = logger;
  }

  /** True when an RTMP publisher on this node holds (or is being given) the claim of `name`. */
  hasRtmpPublisher(name: string): boolean {
    return this.#live.has(name) || this.#admitted.has(name) || this.#handovers.has(name);
  }

  /**
   * Publish admission for an RTMP publish that auth allowed under `name`: claims it, or refuses with
   * `NetStream.Publish.BadName` naming the node that owns it.
   */
  admitRtmp(name: string): Promise<PublishDecision> {
    return this.#serialize(name, async (): Promise<PublishDecision> => {
      const allow: PublishDecision = { allow: true, name };
      // This node already holds the claim for a local publisher: the RTMP server's duplicate policy
      // decides, and a takeover hands the claim over (see #onPublish).
      if (this.hasRtmpPublisher(name)) return allow;
      if (this.#closed) return refuse(`${name} cannot be published: the server is shutting down`);
      let claim: BroadcastClaim;
      const claims = await this.#ready.catch(() => undefined);
      if (!claims) return refuse(`${name} cannot be published: the cluster node is not running`);
      const startedAt = performance.now();
      try {
        claim = await claims.claim(name);
      } catch (err) {
        if (isClusterError(err, "CLUSTER_BUSY")) {
          const owner = (err as { owner?: { nodeId?: string } }).owner?.nodeId ?? "another node";
          this.#logger.info({ broadcast: name, owner }, "publish refused: another node owns the broadcast");
          return refuse(`${name} is being published on node ${owner}`);
        }
        this.#logger.warn({ broadcast: name, err: (err as Error)?.message }, "publish refused: claim failed");
        return refuse(`${name} cannot be claimed: ${(err as Error)?.message ?? String(err)}`);
      }
      if (this.#closed) {
        void claim.release();
        return refuse(`${name} cannot be published: the server is shutting down`);
      }
      this.#logger.info(
        {
          broadcast: name,
          epoch: claim.epoch,
          state: claim.state,
          claimMs: Math.round((performance.now() - startedAt) * 1000) / 1000,
        },
        "publish admitted with a cluster claim",
      );
      this.#park(this.#admitted, name, claim, ADMITTED_CLAIM_TIMEOUT_MS, "the publish never started");
      return allow;
    });
  }

  /** Binds claims to the RTMP server's sessions. Call once, after the server's own `publish` listener. */
  attachRtmp(rtmp: RtmpServer): void {
    rtmp.on("publish", (session) => this.#onPublish(session));
    rtmp.on("reject", (rejection) => {
      // Admission passed here but the RTMP server refused afterwards (name rules, duplicates).
      const name = rejection.name;
      if (name !== undefined && !this.#live.has(name)) this.#unpark(this.#admitted, name, "publish refused");
    });
  }

  /**
   * Claims broadcasts that MoQ clients publish into `origin` (anything that is neither an RTMP
   * publish of this node nor a relayed broadcast, as `isRelayed` tells).
   */
  watchMoqPublishes(origin: OriginProducer, isRelayed: (broadcast: BroadcastConsumer) => boolean): void {
    const announced = origin.consume().announced("");
    this.#announced = announced;
    void (async () => {
      for (;;) {
        const next = await announced.next();
        if (next === undefined || this.#closed) return;
        const broadcast = next.broadcast;
        if (!next.active || !broadcast || isRelayed(broadcast) || this.#moqClaims.has(broadcast)) continue;
        if (this.hasRtmpPublisher(next.path)) continue;
        this.#claimMoqPublish(next.path, broadcast);
      }
    })();
  }

  /** Stops claiming; existing claims are released by the cluster node's close. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#announced?.close();
    for (const parked of [...this.#admitted.values(), ...this.#handovers.values()])
      clearTimeout(parked.timer);
  }

  #onPublish(session: PublishSession): void {
    const name = session.name;
    const entry: LivePublish = {
      session,
      claim: this.#take(this.#admitted, name) ?? this.#take(this.#handovers, name),
    };
    this.#live.set(name, entry);
    if (entry.claim) this.#bind(entry, entry.claim);
    else this.#claimForTakeover(entry);
    session.on("sample", () => entry.claim?.markMedia());
    session.on("end", (reason) => {
      if (this.#live.get(name) === entry) this.#live.delete(name);
      const claim = entry.claim;
      entry.claim = undefined;
      if (!claim || claim.ended) return;
      // The RTMP server replaced this session with a new publisher of the same name; it starts
      // right after this event and inherits the claim.
      if (reason === "takeover" && !this.#closed) {
        this.#park(this.#handovers, name, claim, HANDOVER_TIMEOUT_MS, "no publisher took over");
        return;
      }
      void claim.release();
    });
  }

  /** A session admitted without a claim of its own (a local takeover whose claim was not handed over). */
  #claimForTakeover(entry: LivePublish): void {
    const name = entry.session.name;
    void this.#serialize(name, async () => {
      if (entry.session.ended || this.#closed) return;
      try {
        const claim = await (await this.#ready).claim(name);
        if (entry.session.ended || this.#live.get(name) !== entry) {
          void claim.release();
          return;
        }
        entry.claim = claim;
        this.#bind(entry, claim);
      } catch (err) {
        this.#logger.warn(
          { broadcast: name, err: (err as Error)?.message },
          "publisher disconnected: the broadcast could not be claimed",
        );
        entry.session.close("kicked");
      }
    });
  }

  #bind(entry: LivePublish, claim: BroadcastClaim): void {
    claim.markMedia();
    claim.on("lost", (info) => {
      if (entry.claim !== claim) return;
      this.#logger.warn(
        {
          broadcast: claim.broadcast,
          reason: info.reason,
          owner: info.owner?.nodeId ?? null,
          epoch: claim.epoch,
        },
        "publisher disconnected: the cluster claim was lost",
      );
      entry.claim = undefined;
      entry.session.close("kicked");
    });
  }

  #claimMoqPublish(path: string, broadcast: BroadcastConsumer): void {
    const claiming = this.#serialize(path, async (): Promise<BroadcastClaim | undefined> => {
      if (broadcast.done || this.#closed) return undefined;
      try {
        // No per-frame hook here: every renew while the broadcast lives counts as activity.
        const claim = await (await this.#ready).claim(path, { trackMedia: false });
        if (broadcast.done) {
          void claim.release();
          return undefined;
        }
        claim.on("lost", (info) => {
          this.#logger.warn(
            { broadcast: path, reason: info.reason, owner: info.owner?.nodeId ?? null },
            "the cluster claim of a MoQ-published broadcast was lost; it is served on this node only",
          );
        });
        return claim;
      } catch (err) {
        this.#logger.warn(
          { broadcast: path, err: (err as Error)?.message },
          "a MoQ client publishes a broadcast this node cannot claim; it is served on this node only",
        );
        return undefined;
      }
    });
    this.#moqClaims.set(broadcast, claiming);
    void broadcast.closed.then(async () => {
      const claim = await claiming;
      this.#moqClaims.delete(broadcast);
      await claim?.release();
    });
  }

  #park(map: Map<string, Parked>, name: string, claim: BroadcastClaim, timeoutMs: number, why: string): void {
    this.#unpark(map, name, "replaced");
    const timer = setTimeout(() => this.#unpark(map, name, why), timeoutMs);
    timer.unref?.();
    map.set(name, { claim, timer });
  }

  #take(map: Map<string, Parked>, name: string): BroadcastClaim | undefined {
    const parked = map.get(name);
    if (!parked) return undefined;
    map.delete(name);
    clearTimeout(parked.timer);
    return parked.claim.ended ? undefined : parked.claim;
  }

  #unpark(map: Map<string, Parked>, name: string, why: string): void {
    const claim = this.#take(map, name);
    if (!claim) return;
    this.#logger.debug({ broadcast: name, why }, "releasing an unused cluster claim");
    void claim.release();
  }

  // Claims of one name run one after another, so each sees what the previous one left.
  #serialize<T>(name: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#turns.get(name);
    const turn = (async () => {
      await previous?.catch(() => {});
      return task();
    })();
    this.#turns.set(name, turn);
    void turn
      .catch(() => {})
      .finally(() => {
        if (this.#turns.get(name) === turn) this.#turns.delete(name);
      });
    return turn;
  }
}

function refuse(description: string): PublishDecision {
  return { allow: false, status: "NetStream.Publish.BadName", description };
}
