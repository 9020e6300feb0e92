/**
 * Errors raised by the auth module. Each carries a stable string `code` (never reused for another
 * meaning) and the HTTP status an API answers with if the error reaches a route.
 */

const BRAND: unique symbol = Symbol.for("@lvqr/server.AuthError") as never;

/** Stable string codes of {@link AuthError}. */
export type AuthErrorCode =
  /** Auth options that cannot work together or are malformed (for example JWT flags without a secret). */
  | "AUTH_INVALID_CONFIG"
  /** A caller passed an unusable value (a negative expiry, a bad stream-key spec). */
  | "AUTH_INVALID_ARGUMENT"
  /** The stream-key file exists but cannot be understood; nothing was loaded. */
  | "AUTH_STORE_CORRUPT"
  /** The stream-key file could not be read or written. */
  | "AUTH_STORE_IO"
  /** The stream-key store is full. */
  | "AUTH_STORE_LIMIT"
  /** The stream-key store was closed. */
  | "AUTH_STORE_CLOSED";

const STATUS: Record<AuthErrorCode, number> = {
  AUTH_INVALID_CONFIG: 500,
  AUTH_INVALID_ARGUMENT: 400,
  AUTH_STORE_CORRUPT: 500,
  AUTH_STORE_IO: 500,
  AUTH_STORE_LIMIT: 409,
  AUTH_STORE_CLOSED: 503,
};

/** Base class of every error the auth module raises. `instanceof` works across copies of the package. */
export class AuthError extends Error {
  readonly code: AuthErrorCode;
  /** The HTTP status an API answers with for this error (the admin plugin honours it). */
  readonly statusCode: number;

  constructor(code: AuthErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AuthError";
    this.code = code;
    this.statusCode = STATUS[code];
  }

  // The brand makes `instanceof AuthError` true for errors from another copy of this package.
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass being tested against.
    if (this !== AuthError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

Object.defineProperty(AuthError.prototype, BRAND, { value: true });

/** True when `err` is an {@link AuthError}, optionally with the given code. */
export function isAuthError(err: unknown, code?: AuthErrorCode): err is AuthError {
  return err instanceof AuthError && (code === undefined || err.code === code);
}
