/**
 * Errors raised by the admin package. Each carries a stable string `code` (never reused for another
 * meaning) and the HTTP status the admin API answers with when the error reaches a route.
 */

const BRAND: unique symbol = Symbol.for("@lvqr/admin.AdminError") as never;

/** Stable string codes of {@link AdminError}. */
export type AdminErrorCode =
  /** The request is malformed or fails validation (HTTP 400). */
  | "ADMIN_BAD_REQUEST"
  /** Missing or rejected credentials (HTTP 401). */
  | "ADMIN_UNAUTHORIZED"
  /** The addressed thing does not exist, or the feature is switched off (HTTP 404). */
  | "ADMIN_NOT_FOUND"
  /** The request body is not JSON (HTTP 415). */
  | "ADMIN_UNSUPPORTED_MEDIA_TYPE"
  /** A feature the route needs is not configured on this server (HTTP 503). */
  | "ADMIN_UNAVAILABLE"
  /** The plugin or a component was constructed with unusable options (a programming error). */
  | "ADMIN_INVALID_OPTIONS";

const STATUS: Record<AdminErrorCode, number> = {
  ADMIN_BAD_REQUEST: 400,
  ADMIN_UNAUTHORIZED: 401,
  ADMIN_NOT_FOUND: 404,
  ADMIN_UNSUPPORTED_MEDIA_TYPE: 415,
  ADMIN_UNAVAILABLE: 503,
  ADMIN_INVALID_OPTIONS: 500,
};

/** Base class of every error this package raises. `instanceof` works across copies of the package. */
export class AdminError extends Error {
  readonly code: AdminErrorCode;
  /** The HTTP status a route answers with for this error. */
  readonly statusCode: number;

  constructor(code: AdminErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AdminError";
    this.code = code;
    this.statusCode = STATUS[code];
  }

  // The brand makes `instanceof AdminError` true for errors from another copy of this package.
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass being tested against.
    if (this !== AdminError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

Object.defineProperty(AdminError.prototype, BRAND, { value: true });

/** True when `err` is an {@link AdminError}, optionally with the given code. */
export function isAdminError(err: unknown, code?: AdminErrorCode): err is AdminError {
  return err instanceof AdminError && (code === undefined || err.code === code);
}
