/**
 * `RelayedBroadcast`: a broadcast that another node owns, as this node's origin shows it. It is an
 * on-demand `BroadcastProducer` with no tracks of its own: announcing it costs nothing, and only
 * when a local reader (a MoQ subscriber, or the HLS/DASH egress) asks for a track is that track
 * forwarded from the owner through the shared {@link UpstreamSession}. When the reader goes, the
 * forward stops and the upstream subscription with it. When the upstream track breaks but the
 * session lives on (it reconnected in place), the forward resumes into the same local track.
 */

import {
  type BroadcastConsumer,
  BroadcastProducer,
  type MoqError,
  type TrackLimits,
  type TrackProducer,
  toMoqError,
} from "@lvqr/moq-lite";
import { type ForwardEnd, forwardTrack } from "./forward-track.ts";
import type { UpstreamSession, UpstreamTrack } from "./upstream-session.ts";

/** Re-subscriptions in a row that forwarded nothing before a local track is given up. */
const MAX_STALLED_RESUMES = 5;
/** Pause before re-subscribing, so a broken upstream is not hammered. */
const RESUME_DELAY_MS = 50;

/** A remote broadcast exposed in a local origin, pulled on demand. */
export class RelayedBroadcast {
  /** Broadcast path in the local origin. */
  readonly path: string;
  /** What is published into the local origin. */
  readonly consumer: BroadcastConsumer;
  readonly #producer: BroadcastProducer;
  readonly #upstream: UpstreamSession;
  #forwarding = 0;

  constructor(path: string, upstream: UpstreamSession, trackLimits?: TrackLimits) {
    this.path = path;
    this.#upstream = upstream;
    this.#producer = new BroadcastProducer({ onDemand: true, ...(trackLimits ? { trackLimits } : {}) });
    this.consumer = this.#producer.consume();
    void this.#serveRequests();
  }

  /** Tracks being forwarded right now. */
  get forwardingTracks(): number {
    return this.#forwarding;
  }

  /** True once the broadcast has ended. */
  get done(): boolean {
    return this.#producer.done;
  }

  /** Ends the broadcast for every local reader. Idempotent. */
  close(): void {
    this.#producer.close();
  }

  async #serveRequests(): Promise<void> {
    for (;;) {
      const request = await this.#producer.requestedTrack();
      if (request === undefined) return;
      void this.#forward(request.name, request.priority, request.track);
    }
  }

  async #forward(name: string, priority: number, target: TrackProducer): Promise<void> {
    for (let stalled = 0; ; ) {
      let upstream: UpstreamTrack;
      try {
        upstream = await this.#upstream.subscribe(name, priority);
      } catch (err) {
        if (!target.done) target.abort(toMoqError(err));
        return;
      }
      const before = target.latestSequence;
      this.#forwarding += 1;
      let end: ForwardEnd | undefined;
      let failure: MoqError | undefined;
      try {
        end = await forwardTrack(upstream.consumer, target, { finishTarget: false });
      } catch (err) {
        failure = toMoqError(err);
      } finally {
        this.#forwarding -= 1;
        this.#upstream.release();
      }
      if (end === "unused" || target.done) return;
      stalled = target.latestSequence > before ? 0 : stalled + 1;
      // Resume only when the track broke because its connection dropped (the session reconnects
      // in place); a track the owner ended or does not have, or a session that failed, ends here.
      const resumable =
        failure?.code !== "MOQ_NOT_FOUND" &&
        !this.#producer.done &&
        this.#upstream.failure === undefined &&
        stalled <= MAX_STALLED_RESUMES &&
        (await this.#upstream.dropped(upstream.connection));
      if (!resumable || target.done) {
        if (failure) target.abort(failure);
        else target.close();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, RESUME_DELAY_MS));
    }
  }
}
