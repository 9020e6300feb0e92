/**
 * Signed URLs, byte-compatible with the reference server.
 *
 * - HMAC-SHA256 keyed with the UTF-8 bytes of the secret; the signature is base64url without padding.
 * - Input: `hls:<broadcast>?exp=<exp>` or `dash:<broadcast>?exp=<exp>` for live playback (a
 *   signature covers the whole broadcast under one scheme), `<path>?exp=<exp>` for playback paths.
 * - The signing functions return the query suffix `exp=<exp>&sig=<sig>`.
 * - Verification: no secret, or `sig`/`exp` missing, empty or `exp` not a number → "absent" (the
 *   token gate decides); `exp <= now` → expired; a `sig` that is not canonical base64url → malformed;
 *   otherwise a constant-time comparison. Expired, malformed and wrong are all answered 403.
 *   Other query parameters are not covered by the signature.
 */

import { createHmac, timingSafeEqual } from "node:crypto";
import { AuthError } from "./errors.ts";

/** Live playback schemes a signature is bound to. */
export type LiveScheme = "hls" | "dash";

/** The live schemes by name, as the reference's `LiveScheme` enum. */
export const LiveScheme: { readonly Hls: "hls"; readonly Dash: "dash" } = { Hls: "hls", Dash: "dash" };

const U64_MAX = (1n << 64n) - 1n;

/** The outcome of verifying a signed URL. */
export type SignedUrlCheck =
  /** No signature to check: let the token gate decide. */
  | { readonly status: "absent" }
  | { readonly status: "valid"; readonly expUnix: bigint }
  | {
      readonly status: "invalid";
      readonly reason: "signed URL expired" | "signed URL malformed" | "signed URL signature invalid";
    };

/** `exp=<expUnix>&sig=<sig>` for live playback of `broadcast` over `scheme`, valid until `expUnix` (Unix seconds). */
export function signLiveUrl(
  secret: string,
  scheme: LiveScheme,
  broadcast: string,
  expUnix: number | bigint,
): string {
  if (scheme !== "hls" && scheme !== "dash") {
    throw new AuthError(
      "AUTH_INVALID_ARGUMENT",
      `live scheme must be "hls" or "dash", got ${JSON.stringify(scheme)}`,
    );
  }
  const exp = expiryOf(expUnix);
  return `exp=${exp}&sig=${hmac(signingSecret(secret), `${scheme}:${broadcast}?exp=${exp}`)}`;
}

/** `exp=<expUnix>&sig=<sig>` for the request path `path` (e.g. `/playback/live/demo`), valid until `expUnix`. */
export function signPlaybackUrl(secret: string, path: string, expUnix: number | bigint): string {
  const exp = expiryOf(expUnix);
  return `exp=${exp}&sig=${hmac(signingSecret(secret), `${path}?exp=${exp}`)}`;
}

/**
 * Verifies the `exp`/`sig` of a live playback request for `broadcast` over `scheme`.
 * `query` is the request's query (`URLSearchParams` or the raw string after `?`).
 */
export function verifyLiveSignature(
  secret: string | undefined,
  scheme: LiveScheme,
  broadcast: string,
  query: URLSearchParams | string,
  nowUnixSeconds: number,
): SignedUrlCheck {
  return verify(secret, (exp) => `${scheme}:${broadcast}?exp=${exp}`, query, nowUnixSeconds);
}

/** Verifies the `exp`/`sig` of a request for the playback path `path`. */
export function verifyPlaybackSignature(
  secret: string | undefined,
  path: string,
  query: URLSearchParams | string,
  nowUnixSeconds: number,
): SignedUrlCheck {
  return verify(secret, (exp) => `${path}?exp=${exp}`, query, nowUnixSeconds);
}

function verify(
  secret: string | undefined,
  input: (exp: bigint) => string,
  query: URLSearchParams | string,
  nowUnixSeconds: number,
): SignedUrlCheck {
  if (secret === undefined || secret === "") return { status: "absent" };
  const params = typeof query === "string" ? new URLSearchParams(query) : query;
  const sig = params.get("sig");
  const exp = parseExp(params.get("exp"));
  if (sig === null || sig === "" || exp === undefined) return { status: "absent" };
  // Expiry first, so an expired link says so even if it was also tampered with.
  if (exp <= BigInt(Math.floor(nowUnixSeconds))) return { status: "invalid", reason: "signed URL expired" };
  const given = decodeBase64UrlStrict(sig);
  if (given === undefined) return { status: "invalid", reason: "signed URL malformed" };
  const expected = createHmac("sha256", Buffer.from(secret, "utf8")).update(input(exp), "utf8").digest();
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { status: "invalid", reason: "signed URL signature invalid" };
  }
  return { status: "valid", expUnix: exp };
}

function hmac(secret: string, input: string): string {
  return createHmac("sha256", Buffer.from(secret, "utf8")).update(input, "utf8").digest("base64url");
}

function signingSecret(secret: string): string {
  if (typeof secret !== "string" || secret === "") {
    throw new AuthError("AUTH_INVALID_ARGUMENT", "the signing secret is empty");
  }
  return secret;
}

function expiryOf(expUnix: number | bigint): bigint {
  const exp = typeof expUnix === "bigint" ? expUnix : Number.isSafeInteger(expUnix) ? BigInt(expUnix) : -1n;
  if (exp < 0n || exp > U64_MAX) {
    throw new AuthError(
      "AUTH_INVALID_ARGUMENT",
      `expiry must be a whole number of Unix seconds, got ${expUnix}`,
    );
  }
  return exp;
}

// A u64 in decimal, as the reference parses it; anything else counts as "no exp".
function parseExp(value: string | null): bigint | undefined {
  if (value === null || !/^[0-9]{1,20}$/.test(value)) return undefined;
  const exp = BigInt(value);
  return exp > U64_MAX ? undefined : exp;
}

// Node's base64url decoder skips characters it does not know; a signature must be canonical.
function decodeBase64UrlStrict(value: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(value) || value.length % 4 === 1) return undefined;
  const bytes = Buffer.from(value, "base64url");
  return bytes.toString("base64url") === value ? bytes : undefined;
}
