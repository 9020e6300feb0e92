/**
 * HTTP plumbing shared by the HLS and DASH plugins: the broadcast/file split of request paths,
 * the hooks a server plugs in (auth, cluster owner redirect, latency samples), CORS, and the
 * credential query parameters copied onto the URIs inside playlists and manifests.
 */
import type { FastifyReply, FastifyRequest } from "fastify";

/** Which projection a request or sample belongs to. */
export type PlaybackTransport = "hls" | "dash";

/** A parsed playback request: everything before the last `/` is the broadcast. */
export interface PlaybackTarget {
  readonly transport: PlaybackTransport;
  /** Broadcast path, e.g. `live/demo`. */
  readonly broadcast: string;
  /** File name after the last `/`, e.g. `playlist.m3u8`. */
  readonly file: string;
}

/** Hooks a server supplies to both plugins. */
export interface PlaybackHooks {
  /**
   * Runs first for every playlist, manifest, init and media request, with the parsed broadcast.
   * Send a reply (401, 403) to stop the request; return normally to let it through. CORS
   * preflights never reach it.
   */
  readonly authorize?: (
    request: FastifyRequest,
    reply: FastifyReply,
    target: PlaybackTarget,
  ) => void | Promise<void>;
  /**
   * Cluster routing: the base URL (`http://node-b:8888`) of the node that owns `broadcast`, or
   * undefined to serve it here. A URL answers 302 to that base plus the original path and query.
   */
  readonly resolveOwner?: (
    broadcast: string,
    transport: PlaybackTransport,
  ) => string | undefined | Promise<string | undefined>;
  /**
   * A latency sample: a part (HLS) or segment (DASH) became available `latencyMs` after its first
   * frame was ingested. Fired only for frames that carry an in-process ingest time.
   */
  readonly onLatencySample?: (broadcast: string, transport: PlaybackTransport, latencyMs: number) => void;
}

/** Longest broadcast path accepted in a URL. */
export const MAX_BROADCAST_LENGTH = 1024;

/**
 * Splits the (already URL-decoded) wildcard part of `/hls/<broadcast>/<file>` (or `/dash/...`).
 * Returns undefined for a path that cannot name a broadcast: empty pieces, `.`/`..` segments,
 * control characters or backslashes, or over-long names.
 */
export function splitPlaybackPath(path: string): { broadcast: string; file: string } | undefined {
  const slash = path.lastIndexOf("/");
  if (slash <= 0) return undefined;
  const broadcast = path.slice(0, slash);
  const file = path.slice(slash + 1);
  if (file === "" || broadcast.length > MAX_BROADCAST_LENGTH) return undefined;
  if (/[\u0000-\u001f\u007f\\]/.test(path)) return undefined;
  const segments = broadcast.split("/");
  if (segments.some((segment) => segment === "" || segment === "." || segment === "..")) return undefined;
  return { broadcast, file };
}

/** Headers every playback response carries (CORS for any origin; players read these headers). */
export const CORS_HEADERS: Readonly<Record<string, string>> = {
  "access-control-allow-origin": "*",
  "access-control-expose-headers": "Content-Length, Content-Type, Date, ETag, Location, Retry-After, Age",
};

/** Answers a CORS preflight. */
export function answerPreflight(request: FastifyRequest, reply: FastifyReply): void {
  const requested = request.headers["access-control-request-headers"];
  reply
    .code(204)
    .headers(CORS_HEADERS)
    .header("access-control-allow-methods", "GET, HEAD, OPTIONS")
    .header("access-control-allow-headers", typeof requested === "string" ? requested : "*")
    .header("access-control-max-age", "86400")
    .send();
}

/** `max-age` of media segments and parts when the DVR window has no time limit, seconds. */
export const MEDIA_MAX_AGE_WITHOUT_WINDOW_S = 600;

/** Query parameters that carry credentials and are copied onto URIs inside playlists by default. */
export const DEFAULT_PROPAGATED_QUERY: readonly string[] = ["token", "jwt", "exp", "sig"];

/**
 * The `name=value` pairs of `query` named in `names`, encoded, joined with `&` (empty when none).
 * Players resolve playlist URIs relative to the playlist URL without its query, so credentials
 * given on the playlist URL would otherwise be lost on every segment request.
 */
export function propagatedQuery(query: unknown, names: readonly string[]): string {
  if (names.length === 0 || typeof query !== "object" || query === null) return "";
  const record = query as Record<string, unknown>;
  const pairs: string[] = [];
  for (const name of names) {
    const value = record[name];
    const first = Array.isArray(value) ? value[0] : value;
    if (typeof first === "string" && first !== "") {
      pairs.push(`${encodeURIComponent(name)}=${encodeURIComponent(first)}`);
    }
  }
  return pairs.join("&");
}

/** `uri` with the extra query `suffix` appended. */
export function withQuery(uri: string, suffix: string): string {
  if (suffix === "") return uri;
  return `${uri}${uri.includes("?") ? "&" : "?"}${suffix}`;
}

/** The base URL for a redirect to `owner`, joined with the request's path and query. */
export function redirectLocation(owner: string, request: FastifyRequest): string {
  return `${owner.replace(/\/+$/, "")}${request.raw.url ?? request.url}`;
}

/** An AbortSignal that fires when the client goes away before the reply is finished. */
export function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  // The response's "close" fires on a dropped connection (and after a normal finish, when it is moot).
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

/** A plain-text error reply that no cache keeps. */
export function replyError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply
    .code(status)
    .header("cache-control", "no-cache")
    .type("text/plain; charset=utf-8")
    .send(message);
}

/** 503 with `Retry-After: 1`: the thing exists (or will) but is not ready. */
export function replyUnavailable(reply: FastifyReply, message: string): FastifyReply {
  return reply
    .header("retry-after", "1")
    .code(503)
    .header("cache-control", "no-cache")
    .type("text/plain; charset=utf-8")
    .send(message);
}

/** A 200 text reply. */
export function replyText(reply: FastifyReply, type: string, text: string, cache: string): FastifyReply {
  return reply.code(200).header("cache-control", cache).type(type).send(text);
}

/** A 200 binary reply (zero-copy). */
export function replyBytes(
  reply: FastifyReply,
  type: string,
  bytes: Uint8Array,
  cache: string,
): FastifyReply {
  return reply
    .code(200)
    .header("cache-control", cache)
    .type(type)
    .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/**
 * Replies with media bytes that may still have to be read from disk (a DVR segment spilled by
 * {@link DvrSpill}): 404 when its file is gone (evicted meanwhile).
 */
export function replyMediaBytes(
  reply: FastifyReply,
  type: string,
  bytes: Uint8Array | Promise<Uint8Array>,
  cache: string,
  what: string,
): FastifyReply | Promise<FastifyReply> {
  // In memory (every live-edge request): answered at once, no promise.
  if (bytes instanceof Uint8Array) return replyBytes(reply, type, bytes, cache);
  return bytes.then(
    (read) => replyBytes(reply, type, read, cache),
    () => replyError(reply, 404, `${what} is no longer available`),
  );
}
