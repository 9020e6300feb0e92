/**
 * Bounded holding of HTTP requests that wait for media (blocking reload, preload-hinted parts,
 * the first segment): a shared cap on how many are held at once, and release when the client
 * goes away.
 */
import type { FastifyReply } from "fastify";
import type { BroadcastEgress } from "./broadcast.ts";
import { clientGone } from "./http.ts";

/** Outcome of {@link RequestHolder.hold}. */
export type HoldOutcome = "ready" | "timeout" | "aborted" | "overloaded";

/** Holds requests until a condition on a broadcast holds, at most `maxHeld` at once. */
export class RequestHolder {
  readonly #maxHeld: number;
  #held = 0;

  /** A holder allowing `maxHeld` concurrent holds. */
  constructor(maxHeld: number) {
    this.#maxHeld = maxHeld;
  }

  /** Requests currently held. */
  get held(): number {
    return this.#held;
  }

  /** Waits until `condition()` (re-checked on every change of `egress`), a timeout, or the client leaving. */
  async hold(
    egress: BroadcastEgress,
    condition: () => boolean,
    timeoutMs: number,
    reply: FastifyReply,
  ): Promise<HoldOutcome> {
    if (condition()) return "ready";
    if (this.#held >= this.#maxHeld) return "overloaded";
    this.#held++;
    try {
      return await egress.signal.waitUntil(condition, timeoutMs, clientGone(reply));
    } finally {
      this.#held--;
    }
  }
}
