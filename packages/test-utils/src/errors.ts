/**
 * Errors raised by the test kit: one base class with a stable string `code` per failure kind, so a
 * test (or a helper wrapping this kit) can tell a timeout from a bad playlist without parsing text.
 */

const BRAND: unique symbol = Symbol.for("@lvqr/test-utils.TestUtilsError") as never;

/** Stable string codes of {@link TestUtilsError}. A code is never reused for another meaning. */
export type TestUtilsErrorCode =
  /** `waitFor` (or a client's wait) ran out of time; the message says what was awaited and what was seen. */
  | "TEST_UTILS_TIMEOUT"
  /** An HTTP request failed or answered with an unexpected status. */
  | "TEST_UTILS_HTTP"
  /** A media playlist or multivariant playlist that cannot be read. */
  | "TEST_UTILS_PLAYLIST_INVALID"
  /** A DASH MPD that cannot be read. */
  | "TEST_UTILS_MPD_INVALID"
  /** Fetched media bytes that are not what the URL promised (a segment that does not start with moof). */
  | "TEST_UTILS_MEDIA_INVALID"
  /** An FLV file or tag source that cannot be published (no tags, no timestamps, bad header). */
  | "TEST_UTILS_SOURCE_INVALID"
  /** An option value that cannot work (negative duration, unknown source). */
  | "TEST_UTILS_INVALID_OPTION"
  /** A listener the caller asked about is disabled in this TestServer (e.g. `dashUrl` without DASH). */
  | "TEST_UTILS_DISABLED"
  /** The object was used after `close()` / `stop()`. */
  | "TEST_UTILS_CLOSED";

/** Base class of every error this package raises. `instanceof` works across copies of the package. */
export class TestUtilsError extends Error {
  /** Stable machine-readable code. */
  readonly code: TestUtilsErrorCode;

  constructor(code: TestUtilsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TestUtilsError";
    this.code = code;
  }

  // The brand makes `instanceof TestUtilsError` true for errors from another copy of this package.
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass being tested against.
    if (this !== TestUtilsError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

Object.defineProperty(TestUtilsError.prototype, BRAND, { value: true });

/** True when `err` is a {@link TestUtilsError}, optionally with the given code. */
export function isTestUtilsError(err: unknown, code?: TestUtilsErrorCode): err is TestUtilsError {
  return err instanceof TestUtilsError && (code === undefined || err.code === code);
}
