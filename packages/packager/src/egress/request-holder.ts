/**
 * Bounded holding of HTTP requests that wait for media (blocking reload, preload-hinted parts,
 * the first segment): a shared cap on how many are held at once, and release when the client
 * goes away.
 */
import type { FastifyReply } from "fastify";
import type { BroadcastEgress } from "./broadcast.ts";

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
  hold(
    egress: BroadcastEgress,
    condition: () => boolean,
    timeoutMs: number,
    reply: FastifyReply,
  ): Promise<HoldOutcome> {
    if (condition()) return Promise.resolve("ready");
    const response = reply.raw;
    if (response.destroyed) return Promise.resolve("aborted");
    if (this.#held >= this.#maxHeld) return Promise.resolve("overloaded");
    this.#held++;
    // No AbortController: many requests are held at once and each is short-lived, so the
    // response's own "close" event ends the wait when the client goes away.
    return new Promise((resolve) => {
      let settled = false;
      const onClose = () => {
        if (!response.writableFinished) cancel();
      };
      const cancel = egress.signal.watch(condition, timeoutMs, (outcome) => {
        settled = true;
        this.#held--;
        response.removeListener("close", onClose);
        resolve(outcome);
      });
      if (!settled) response.once("close", onClose);
    });
  }
}
