/**
 * MoQ session admission: the session URL's path is its root, `?token=` (or `?jwt=`) its
 * credential. The answer lists the prefixes, relative to the root, the session may read and
 * publish, ready for `OriginProducer.restrict()`. Unlike the reference, publishing over MoQ needs
 * publish rights; a subscribe token only reads.
 */

import { isValidBroadcastName } from "@lvqr/admin";
import type { AuthProvider } from "./provider.ts";

/** The decision on a MoQ session. */
export type MoqSessionDecision =
  | {
      readonly allow: true;
      /** The session root (the URL path without surrounding `/`). */
      readonly root: string;
      /** Prefixes under the root the session may read (`[""]` all, `[]` none). */
      readonly read: string[];
      /** Prefixes under the root the session may publish. */
      readonly publish: string[];
      readonly subject?: string;
      /** Unix ms when the credential expires: close the session then. */
      readonly expiresAtMs?: number;
    }
  | { readonly allow: false; readonly status: 400 | 401 | 403; readonly reason: string };

/** The root and credential of a MoQ session URL (`/live/demo?token=...`). */
export function moqSessionCredentials(url: string | URL): { path: string; token: string | undefined } {
  const parsed = typeof url === "string" ? new URL(url, "http://session.invalid") : url;
  const params = parsed.searchParams;
  const token = params.getAll("token").find((v) => v !== "") ?? params.getAll("jwt").find((v) => v !== "");
  return { path: parsed.pathname.replace(/^\/+|\/+$/g, ""), token };
}

/** True when `path` may be a session root: empty (the whole origin) or a valid broadcast-style path. */
export function isValidSessionPath(path: string): boolean {
  return path === "" || isValidBroadcastName(path);
}

/**
 * Decides a MoQ session: 400 for an invalid path, 401/403 when the credential grants nothing, else
 * the read and publish prefixes. The caller counts denials as `lvqr_auth_failures_total{entry="moq"}`.
 */
export async function authorizeMoqSession(
  auth: Pick<AuthProvider, "sessionGrants">,
  request: { readonly path: string; readonly token?: string | undefined },
): Promise<MoqSessionDecision> {
  const root = request.path;
  if (!isValidSessionPath(root)) {
    return { allow: false, status: 400, reason: `invalid session path ${JSON.stringify(root)}` };
  }
  const grants = await auth.sessionGrants({
    root,
    ...(request.token === undefined || request.token === "" ? {} : { token: request.token }),
  });
  if (!grants.allow) return grants;
  if (grants.read.length === 0 && grants.publish.length === 0) {
    return { allow: false, status: 403, reason: "the credential grants nothing under this path" };
  }
  return {
    allow: true,
    root,
    read: grants.read,
    publish: grants.publish,
    ...(grants.subject === undefined ? {} : { subject: grants.subject }),
    ...(grants.expiresAtMs === undefined ? {} : { expiresAtMs: grants.expiresAtMs }),
  };
}
