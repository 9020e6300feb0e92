/**
 * How a publish attempt becomes a broadcast name, without ever putting a credential in it.
 *
 * The rule, for `rtmp://host/<app>/<stream>`:
 *
 * 1. `<stream>?key=<credential>` (or `?token=`): the credential travels apart from the name, and
 *    the broadcast is `<app>/<stream>`. A JWT `broadcast` claim or a stream key's scope must equal
 *    that name. This is the recommended form (OBS: put `name?key=...` in the stream-key field).
 * 2. `<stream>` alone: the stream name is the credential (what OBS users usually do), so it must
 *    not become the name. The broadcast is then
 *    - a stream key's scoped broadcast, else `<app>/<label>` (when the label is a safe path
 *      segment), else `<app>/<key id>`;
 *    - a JWT's `broadcast` claim, else `<app>/<sub>` (when `sub` is a safe path segment), else the
 *      publish is refused;
 *    - the static `--publish-key`: `<app>`;
 *    - with no publish gate at all (nothing to protect): `<app>/<stream>`.
 *
 * Other protocols name the broadcast explicitly and pass the credential separately (rule 1).
 */

import { isValidBroadcastName } from "@lvqr/admin";
import { hasPathPrefix, stripPathPrefix } from "@lvqr/moq-lite";
import type { PublishDecision, PublishRequest } from "./provider.ts";

/** A path segment safe to derive a broadcast name from (labels and JWT subjects). */
const SAFE_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;

/** An RTMP stream name split into the name and the credential carried in its query. */
export interface RtmpStreamName {
  /** The stream name without the query. */
  readonly stream: string;
  /** The first non-empty `key` (or else `token`) query value; undefined when there is none. */
  readonly key: string | undefined;
}

/**
 * Splits `name?key=...` (as RTMP clients send it in `publish`) into the name and the credential.
 * The query is never part of the broadcast name.
 */
export function splitRtmpStreamName(raw: string): RtmpStreamName {
  const q = raw.indexOf("?");
  if (q < 0) return { stream: raw, key: undefined };
  const params = new URLSearchParams(raw.slice(q + 1));
  const first = (name: string) => params.getAll(name).find((v) => v !== "");
  return { stream: raw.slice(0, q), key: first("key") ?? first("token") };
}

/** A publish request reduced to what the providers decide on. */
export interface PublishTarget {
  /** The credential to check; undefined when none was given at all. */
  readonly credential: string | undefined;
  /** The broadcast asked for; undefined when the name must come from the credential (rule 2). */
  readonly requested: string | undefined;
  /** `<app>/<stream>`, usable only when no gate protects publishing (rule 2, open gate). */
  readonly fallback: string | undefined;
  /** The RTMP application, for names derived from a credential. */
  readonly app: string | undefined;
}

/** Applies the module's rule to a request. */
export function publishTargetOf(request: PublishRequest): PublishTarget {
  if (request.broadcast !== undefined) {
    return { credential: request.key, requested: request.broadcast, fallback: undefined, app: request.app };
  }
  const joined = joinAppStream(request.app, request.stream);
  if (request.key !== undefined) {
    return { credential: request.key, requested: joined, fallback: undefined, app: request.app };
  }
  return { credential: request.stream, requested: undefined, fallback: joined, app: request.app };
}

function joinAppStream(app: string | undefined, stream: string | undefined): string | undefined {
  if (stream === undefined) return undefined;
  return app === undefined || app === "" ? stream : `${app}/${stream}`;
}

/**
 * `<app>/<segment>` when `segment` is a safe path segment (and there is an app), else undefined.
 * Used for stream-key labels and JWT subjects.
 */
export function appScopedName(
  app: string | undefined,
  segment: string | undefined | null,
): string | undefined {
  if (segment === undefined || segment === null || !SAFE_SEGMENT.test(segment)) return undefined;
  return app === undefined || app === "" ? segment : `${app}/${segment}`;
}

/** Allows publishing under `broadcast` once it is checked to be a valid name. */
export function allowPublish(
  broadcast: string | undefined,
  extra: { subject?: string; expiresAtMs?: number } = {},
): PublishDecision {
  if (broadcast === undefined)
    return { allow: false, reason: "no broadcast name could be derived for this publish" };
  if (!isValidBroadcastName(broadcast)) {
    return { allow: false, reason: `${JSON.stringify(broadcast)} is not a valid broadcast name` };
  }
  return { allow: true, broadcast, ...extra };
}

/**
 * A broadcast-bound credential's permission relative to a session root: the path under the root,
 * `""` when the root lies inside the broadcast, or undefined when they do not overlap.
 */
export function scopeUnderRoot(root: string, broadcast: string): string | undefined {
  if (hasPathPrefix(broadcast, root)) return stripPathPrefix(broadcast, root);
  if (hasPathPrefix(root, broadcast)) return "";
  return undefined;
}
