/**
 * Helpers shared by the multi-process cluster tests: start several nodes on one Redis, read their
 * admin cluster routes, wait for conditions, and sign JWTs for clusters running with auth.
 */

import { SignJWT } from "jose";
import { ServerProcess, type ServerProcessOptions } from "./server-process.ts";

/** One row of `/api/v1/cluster/broadcasts`. */
export interface BroadcastRow {
  readonly name: string;
  readonly owner: string;
  readonly epoch: number;
  readonly expires_at_ms: number;
  readonly last_media_ms: number;
}

/** One row of `/api/v1/cluster/nodes`. */
export interface NodeRow {
  readonly id: string;
  readonly endpoints: {
    readonly moq: string | null;
    readonly hls: string | null;
    readonly dash: string | null;
  };
  readonly capacity: {
    readonly cpu_pct: number;
    readonly rss_bytes: number;
    readonly bytes_out_per_sec: number;
    readonly subscribers: number;
  } | null;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `everyMs` until it returns a value other than undefined/false. */
export async function waitUntil<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  what: string,
  everyMs = 50,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ""}`,
      );
    }
    await sleep(everyMs);
  }
}

/** Starts nodes `ids` on `redisUrl` in parallel. */
export async function startNodes(
  redisUrl: string,
  ids: readonly string[],
  options: Omit<ServerProcessOptions, "nodeId" | "redisUrl"> = {},
): Promise<ServerProcess[]> {
  return Promise.all(ids.map((nodeId) => ServerProcess.start({ nodeId, redisUrl, ...options })));
}

/** Stops nodes gracefully (SIGTERM) and returns their exits. */
export async function stopNodes(
  nodes: readonly ServerProcess[],
): Promise<Array<{ code: number | null; signal: NodeJS.Signals | null }>> {
  return Promise.all(nodes.map((node) => node.stop()));
}

/** `/api/v1/cluster/broadcasts` of `node`, with an admin bearer token when given. */
export async function broadcastsOf(node: ServerProcess): Promise<BroadcastRow[]> {
  return node.admin<BroadcastRow[]>("/api/v1/cluster/broadcasts");
}

/** The row of `name` on `node`, if any. */
export async function ownerOn(node: ServerProcess, name: string): Promise<BroadcastRow | undefined> {
  return (await broadcastsOf(node)).find((row) => row.name === name);
}

/** Signs an HS256 JWT the server accepts (`scope`, optional `broadcast`), valid for an hour. */
export function signJwt(
  secret: string,
  scope: "subscribe" | "publish" | "admin",
  broadcast?: string,
): Promise<string> {
  return new SignJWT({ scope, ...(broadcast === undefined ? {} : { broadcast }) })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("cluster-test")
    .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
    .sign(new TextEncoder().encode(secret));
}

/** Percentile (nearest rank) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
