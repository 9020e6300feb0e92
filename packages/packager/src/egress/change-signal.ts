/**
 * Wake-ups for requests that wait on a broadcast (blocking playlist reload, preload-hinted parts,
 * the first segment). Each waiter re-checks its own condition on every change, so one signal
 * serves any number of different conditions; a waiter costs one closure and one timer, and
 * leaves nothing behind when it gives up.
 */

/** Outcome of {@link ChangeSignal.waitUntil}. */
export type WaitOutcome = "ready" | "timeout" | "aborted";

/** A broadcast-wide "something changed" signal with condition waits. */
export class ChangeSignal {
  readonly #waiters: Set<() => void> = new Set();

  /** Number of pending waits (for bounding held requests). */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Wakes every current waiter so it re-checks its condition. */
  notify(): void {
    if (this.#waiters.size === 0) return;
    for (const wake of [...this.#waiters]) wake();
  }

  /**
   * Waits until `condition()` is true, re-checking after every change. Resolves "timeout" after
   * `timeoutMs` and "aborted" when `signal` aborts; never rejects.
   */
  waitUntil(condition: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (condition()) return Promise.resolve("ready");
    if (signal?.aborted) return Promise.resolve("aborted");
    if (timeoutMs <= 0) return Promise.resolve("timeout");
    return new Promise((resolve) => {
      if (!signal) {
        this.watch(condition, timeoutMs, resolve);
        return;
      }
      const onAbort = () => cancel();
      const cancel = this.watch(condition, timeoutMs, (outcome) => {
        signal.removeEventListener("abort", onAbort);
        resolve(outcome);
      });
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * The callback form of {@link ChangeSignal.waitUntil}, for hot paths (held HTTP requests): calls
   * `done` exactly once, synchronously when `condition()` already holds. The returned function
   * gives up the wait ("aborted"); it does nothing once `done` was called.
   */
  watch(condition: () => boolean, timeoutMs: number, done: (outcome: WaitOutcome) => void): () => void {
    if (condition()) {
      done("ready");
      return NOTHING;
    }
    if (timeoutMs <= 0) {
      done("timeout");
      return NOTHING;
    }
    let finished = false;
    const finish = (outcome: WaitOutcome) => {
      if (finished) return;
      finished = true;
      this.#waiters.delete(wake);
      clearTimeout(timer);
      done(outcome);
    };
    const wake = () => {
      let ready: boolean;
      try {
        ready = condition();
      } catch {
        ready = true;
      }
      if (ready) finish("ready");
    };
    const timer = setTimeout(finish, timeoutMs, "timeout");
    this.#waiters.add(wake);
    return () => finish("aborted");
  }
}

const NOTHING = (): void => {};
