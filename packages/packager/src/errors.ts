/**
 * Errors raised by the packager: one base class with a stable string `code` per failure kind.
 * A code is never reused for another meaning, so metrics, tests and HTTP status mapping can key
 * on it. Parsers raise nothing but {@link PackagerError}, whatever bytes they are given.
 */

const BRAND: unique symbol = Symbol.for("@lvqr/packager.PackagerError") as never;

/** Stable string codes of {@link PackagerError}. */
export type PackagerErrorCode =
  /** An ISO BMFF box whose size field is impossible (below its header, past its parent's end). */
  | "PACKAGER_MALFORMED_BOX"
  /** A box the structure requires (moov, trak, moof, traf, tfhd, mdat, stsd, ...) is absent. */
  | "PACKAGER_MISSING_BOX"
  /** A length or count field above the packager's hard limit (sample count, box size, nesting). */
  | "PACKAGER_LIMIT_EXCEEDED"
  /** A codec, sample entry or box version this packager does not handle. */
  | "PACKAGER_UNSUPPORTED"
  /** A codec configuration record (avcC, hvcC, av1C, AudioSpecificConfig, esds) that cannot be parsed. */
  | "PACKAGER_INVALID_CONFIG"
  /** A sample or fragment description a writer cannot encode (negative duration, non-finite time). */
  | "PACKAGER_INVALID_SAMPLE"
  /** A catalog (hang `catalog.json`) that is not valid JSON or does not describe playable renditions. */
  | "PACKAGER_INVALID_CATALOG"
  /** An operation on a publisher or projection that was already closed. */
  | "PACKAGER_CLOSED"
  /** A configuration value out of range (segment or part target, DVR window, byte budget), or a missing one. */
  | "PACKAGER_INVALID_OPTION";

/** Base class of every error this package raises. `instanceof` works across copies of the package. */
export class PackagerError extends Error {
  /** Stable machine-readable code. */
  readonly code: PackagerErrorCode;

  constructor(code: PackagerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PackagerError";
    this.code = code;
  }

  // The brand makes `instanceof PackagerError` true for errors from another copy of this package;
  // subclasses keep ordinary prototype checks.
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass being tested against.
    if (this !== PackagerError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

Object.defineProperty(PackagerError.prototype, BRAND, { value: true });

/** True when `err` is a {@link PackagerError}, optionally with the given code. */
export function isPackagerError(err: unknown, code?: PackagerErrorCode): err is PackagerError {
  return err instanceof PackagerError && (code === undefined || err.code === code);
}
