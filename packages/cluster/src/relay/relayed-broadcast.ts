/**
 * `RelayedBroadcast`: a broadcast that another node owns, as this node's origin shows it. It is an
 * on-demand `BroadcastProducer` with no tracks of its own: announcing it costs nothing, and only
 * when a local reader (a MoQ subscriber, or the HLS/DASH egress) asks for a track is that track
 * forwarded from the owner through the shared {@link UpstreamSession}. When the reader goes, the
 * forward stops and the upstream subscription with it.
 */

import {
  type BroadcastConsumer,
  BroadcastProducer,
  type TrackConsumer,
  type TrackLimits,
  type TrackProducer,
  toMoqError,
} from "@lvqr/moq-lite";
import { forwardTrack } from "./forward-track.ts";
import type { UpstreamSession } from "./upstream-session.ts";

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
    let source: TrackConsumer;
    try {
      source = await this.#upstream.subscribe(name, priority);
    } catch (err) {
      target.abort(toMoqError(err));
      return;
    }
    this.#forwarding += 1;
    try {
      await forwardTrack(source, target);
    } catch {
      // The target carries the error; the upstream session reports session-level failures itself.
    } finally {
      this.#forwarding -= 1;
      this.#upstream.release();
    }
  }
}
