/**
 * The live-playback gate the HLS and DASH routes call before serving anything: a signed URL first,
 * then the viewer's token (`Authorization: Bearer`, else the first non-empty `?token=`, else `?jwt=`, as on MoQ) through the
 * subscribe check. Missing or rejected tokens answer 401; an expired, malformed or wrong signature
 * answers 403.
 */

import { bearerToken } from "@lvqr/admin";
import type { AuthProvider } from "./provider.ts";
import { type LiveScheme, verifyLiveSignature } from "./signed-url.ts";

/** The gate's answer; the route sends `status` with `reason` as plain text when it is not 200. */
export type PlaybackDecision =
  | { readonly status: 200; readonly via: "open" | "signed-url" | "token"; readonly expiresAtMs?: number }
  | { readonly status: 401 | 403; readonly reason: string };

/** What the gate reads from a request. */
export interface PlaybackRequest {
  /** The request target: path plus query (`/hls/live/demo/playlist.m3u8?token=...`). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Options of {@link LivePlaybackGate}. */
export interface LivePlaybackGateOptions {
  /** The provider asked for subscribe decisions. */
  readonly auth: Pick<AuthProvider, "checkSubscribe">;
  /** The `--hmac-playback-secret`; a function lets the server swap it without a restart. */
  readonly signingSecret?: string | (() => string | undefined);
  /** False for `--no-auth-live-playback`: every request is let through. Default true. */
  readonly enabled?: boolean;
  /** Counts denials as `{scheme}_live` and `{scheme}_signed_url`. `LvqrMetrics` fits. */
  readonly metrics?: { authFailure(entry: string): void };
  /** Wall clock in Unix ms (tests inject one). */
  readonly now?: () => number;
}

/** Decides whether a live HLS or DASH request may be served. */
export class LivePlaybackGate {
  readonly #auth: Pick<AuthProvider, "checkSubscribe">;
  readonly #secret: () => string | undefined;
  readonly #enabled: boolean;
  readonly #metrics: { authFailure(entry: string): void } | undefined;
  readonly #now: () => number;

  constructor(options: LivePlaybackGateOptions) {
    const secret = options.signingSecret;
    this.#auth = options.auth;
    this.#secret = typeof secret === "function" ? secret : () => secret;
    this.#enabled = options.enabled ?? true;
    this.#metrics = options.metrics;
    this.#now = options.now ?? Date.now;
  }

  /** Decides `request` for `broadcast` (taken from the path by the route) over `scheme`. */
  async check(request: PlaybackRequest, scheme: LiveScheme, broadcast: string): Promise<PlaybackDecision> {
    if (!this.#enabled) return { status: 200, via: "open" };
    const q = request.url.indexOf("?");
    const query = new URLSearchParams(q < 0 ? "" : request.url.slice(q + 1));
    const signed = verifyLiveSignature(this.#secret(), scheme, broadcast, query, this.#now() / 1000);
    if (signed.status === "valid")
      return { status: 200, via: "signed-url", expiresAtMs: Number(signed.expUnix) * 1000 };
    if (signed.status === "invalid") {
      this.#metrics?.authFailure(`${scheme}_signed_url`);
      return { status: 403, reason: signed.reason };
    }
    const token =
      bearerToken(request.headers.authorization) ??
      query.getAll("token").find((value) => value !== "") ??
      query.getAll("jwt").find((value) => value !== "");
    const decision = await this.#auth.checkSubscribe({
      broadcast,
      ...(token === undefined ? {} : { token }),
    });
    if (!decision.allow) {
      this.#metrics?.authFailure(`${scheme}_live`);
      return { status: 401, reason: decision.reason };
    }
    return {
      status: 200,
      via: token === undefined ? "open" : "token",
      ...(decision.expiresAtMs === undefined ? {} : { expiresAtMs: decision.expiresAtMs }),
    };
  }
}
