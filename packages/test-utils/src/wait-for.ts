/**
 * `waitFor`: poll a condition until it holds, instead of sleeping a fixed time. On timeout it
 * throws a `TEST_UTILS_TIMEOUT` error that says what was awaited, for how long, what the
 * condition last returned and the last error it threw, which is usually the whole diagnosis.
 */
import { inspect } from "node:util";
import { TestUtilsError } from "./errors.ts";

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this long (default 5000 ms). */
  readonly timeoutMs?: number;
  /** Time between polls (default 25 ms). */
  readonly intervalMs?: number;
  /** What is being awaited, for the failure message ("3 HLS segments of live/cam0"). */
  readonly message?: string;
  /** Aborting stops the wait with the signal's reason. */
  readonly signal?: AbortSignal;
  /**
   * Errors the predicate throws are "not yet" by default; when this returns true for one, the
   * wait fails at once with that error (a track that was refused will not start delivering).
   */
  readonly failFast?: (error: unknown) => boolean;
}

/**
 * Calls `predicate` until it returns a truthy value (or a promise of one) and resolves with that
 * value. A predicate that throws is treated as "not yet" (unless `failFast` says otherwise), and its
 * last error is reported if time runs out. Polls never overlap: the next starts `intervalMs` after
 * the previous one settled.
 *
 * ```ts
 * const segments = await waitFor(() => hls.segments.length >= 3 && hls.segments, {
 *   timeoutMs: 10_000,
 *   message: "3 HLS segments",
 * });
 * ```
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<Exclude<T, false | 0 | "" | null | undefined>> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const intervalMs = options.intervalMs ?? 25;
  if (!(timeoutMs >= 0) || !(intervalMs >= 0)) {
    throw new TestUtilsError("TEST_UTILS_INVALID_OPTION", "waitFor timeoutMs and intervalMs must be ≥ 0");
  }
  const started = performance.now();
  let polls = 0;
  let lastValue: unknown;
  let lastError: unknown;
  let hasError = false;
  for (;;) {
    if (options.signal?.aborted) throw options.signal.reason;
    polls++;
    try {
      const value = await predicate();
      if (value) return value as Exclude<T, false | 0 | "" | null | undefined>;
      lastValue = value;
      hasError = false;
    } catch (error) {
      if (options.failFast?.(error)) throw error;
      lastError = error;
      hasError = true;
    }
    const elapsed = performance.now() - started;
    if (elapsed >= timeoutMs) {
      const what = options.message ?? "condition";
      const last = hasError
        ? `its last poll threw ${describeError(lastError)}`
        : `it last returned ${inspect(lastValue, { depth: 2, breakLength: Infinity })}`;
      throw new TestUtilsError(
        "TEST_UTILS_TIMEOUT",
        `timed out after ${Math.round(elapsed)} ms waiting for ${what} (${polls} polls); ${last}`,
        hasError ? { cause: lastError } : undefined,
      );
    }
    await pause(Math.min(intervalMs, timeoutMs - elapsed), options.signal);
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return inspect(error, { depth: 2, breakLength: Infinity });
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
