/**
 * The LL-HLS projection as a fastify plugin: `GET|HEAD /hls/<broadcast>/<file>` for every
 * broadcast in an Origin.
 *
 * ```ts
 * const app = Fastify();
 * await app.register(hlsPlugin, { origin: origin.consume() });
 * await app.listen({ port: 8888 });
 * // http://host:8888/hls/live/demo/master.m3u8
 * ```
 *
 * Blocking playlist reload (`_HLS_msn`/`_HLS_part`) and preload-hinted part requests are held
 * until what they ask for exists; delta updates (`_HLS_skip=YES|v2`) replace old segments with
 * EXT-X-SKIP. Bad input never yields a 500: unknown broadcasts and files are 404, malformed
 * directives 400, and media that is not ready after a short wait 503 with `Retry-After`.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { BroadcastEgress } from "../egress/broadcast.ts";
import { DvrSpill } from "../egress/dvr-spill.ts";
import {
  answerPreflight,
  CORS_HEADERS,
  clientGone,
  DEFAULT_PROPAGATED_QUERY,
  MEDIA_MAX_AGE_WITHOUT_WINDOW_S,
  propagatedQuery,
  redirectLocation,
  replyBytes,
  replyError,
  replyMediaBytes,
  replyText,
  replyUnavailable,
  splitPlaybackPath,
} from "../egress/http.ts";
import { createPluginHub, initVersionOf, type PlaybackPluginOptions } from "../egress/hub.ts";
import type { RenditionKind } from "../egress/rendition.ts";
import { RequestHolder } from "../egress/request-holder.ts";
import {
  beyondAdvancePartLimit,
  buildMediaPlaylistModel,
  buildMultivariantModel,
  findClosedPart,
  newestPart,
  partCannotExist,
  satisfiesDirective,
  targetDurationOf,
} from "./media-playlist.ts";
import { renderMediaPlaylist, renderMultivariantPlaylist, type SkipRequest } from "./playlist.ts";

/** Options of {@link hlsPlugin}. */
export interface HlsPluginOptions extends PlaybackPluginOptions {
  /** Longest hold of a blocking reload or hinted part, ms. Default 3 × target duration. */
  readonly blockingTimeoutMs?: number;
}

/** A request for one file under `/hls/<broadcast>/`. */
export type HlsFile =
  | { readonly type: "master" }
  | { readonly type: "playlist"; readonly kind: RenditionKind }
  | { readonly type: "init"; readonly kind: RenditionKind }
  | { readonly type: "segment"; readonly kind: RenditionKind; readonly msn: number }
  | { readonly type: "part"; readonly kind: RenditionKind; readonly msn: number; readonly index: number };

const NUMBER = "(0|[1-9][0-9]{0,14})";
const SEGMENT = new RegExp(`^(audio-)?seg-${NUMBER}\\.m4s$`);
const PART = new RegExp(`^(audio-)?part-${NUMBER}-${NUMBER}\\.m4s$`);

/** Parses an HLS file name, or undefined when it names nothing this server serves. */
export function parseHlsFile(name: string): HlsFile | undefined {
  switch (name) {
    case "master.m3u8":
      return { type: "master" };
    case "playlist.m3u8":
      return { type: "playlist", kind: "video" };
    case "audio.m3u8":
      return { type: "playlist", kind: "audio" };
    case "init.mp4":
      return { type: "init", kind: "video" };
    case "audio-init.mp4":
      return { type: "init", kind: "audio" };
  }
  const segment = SEGMENT.exec(name);
  if (segment) return { type: "segment", kind: segment[1] ? "audio" : "video", msn: Number(segment[2]) };
  const part = PART.exec(name);
  if (part) {
    return { type: "part", kind: part[1] ? "audio" : "video", msn: Number(part[2]), index: Number(part[3]) };
  }
  return undefined;
}

/** Delivery directives of a media playlist request. */
export interface DeliveryDirectives {
  readonly msn?: number;
  readonly part?: number;
  readonly skip?: SkipRequest;
}

/** Parses `_HLS_msn`, `_HLS_part` and `_HLS_skip`; a string is a 400 message. */
export function parseDeliveryDirectives(query: unknown): DeliveryDirectives | string {
  const record = (typeof query === "object" && query !== null ? query : {}) as Record<string, unknown>;
  const number = (name: string): number | undefined | string => {
    const value = record[name];
    if (value === undefined) return undefined;
    if (typeof value !== "string" || !/^(0|[1-9][0-9]{0,14})$/.test(value)) {
      return `${name} must be a non-negative integer`;
    }
    return Number(value);
  };
  const msn = number("_HLS_msn");
  if (typeof msn === "string") return msn;
  const part = number("_HLS_part");
  if (typeof part === "string") return part;
  if (part !== undefined && msn === undefined) return "_HLS_part requires _HLS_msn";
  const skipValue = record["_HLS_skip"];
  let skip: SkipRequest | undefined;
  if (skipValue !== undefined) {
    if (typeof skipValue !== "string") return "_HLS_skip must be YES or v2";
    const lower = skipValue.toLowerCase();
    if (lower === "yes") skip = "YES";
    else if (lower === "v2") skip = "v2";
    else return "_HLS_skip must be YES or v2";
  }
  return {
    ...(msn === undefined ? {} : { msn }),
    ...(part === undefined ? {} : { part }),
    ...(skip === undefined ? {} : { skip }),
  };
}

const PLAYLIST_TYPE = "application/vnd.apple.mpegurl";
const MEDIA_TYPE = "video/iso.segment";

/** Registers the LL-HLS routes. Use with `app.register(hlsPlugin, options)`. */
export async function hlsPlugin(app: FastifyInstance, options: HlsPluginOptions): Promise<void> {
  const hub = options.egress ?? createPluginHub("hlsPlugin", options);
  if (!options.egress) app.addHook("onClose", async () => hub.close());
  const hooks = options.hooks ?? {};
  const targetMs = hub.settings.targetDurationS * 1000;
  const blockingTimeoutMs = options.blockingTimeoutMs ?? 3 * targetMs;
  const readyTimeoutMs = options.readyTimeoutMs ?? 3 * targetMs;
  // An unknown broadcast may be on its way (a relay pull); wait for it, but not as long as for media.
  const unknownWaitMs = Math.min(readyTimeoutMs, 2000);
  const propagate = options.propagateQuery ?? DEFAULT_PROPAGATED_QUERY;
  // Media URIs always name the same bytes: cacheable for as long as they may be listed.
  const mediaMaxAgeS = Math.round(hub.settings.dvrWindowS) || MEDIA_MAX_AGE_WITHOUT_WINDOW_S;

  if (hooks.onLatencySample) {
    const sample = hooks.onLatencySample;
    const remove = hub.addListener({
      part: (broadcast, rendition, part) => {
        // One sample stream per broadcast: video parts, or audio parts of audio-only broadcasts.
        if (rendition.kind === "audio" && broadcast.serves("video")) return;
        if (part.firstIngestMs !== undefined) sample(broadcast.path, "hls", Date.now() - part.firstIngestMs);
      },
    });
    app.addHook("onClose", async () => remove());
  }

  const holder = new RequestHolder(options.maxHeldRequests ?? 10_000);
  const hold = holder.hold.bind(holder);

  // Every held client is answered at the same change with the same playlist: render and encode
  // it once.
  const rendered = new WeakMap<BroadcastEgress, Map<string, { version: number; bytes: Buffer }>>();
  const renderCached = (
    egress: BroadcastEgress,
    kind: RenditionKind,
    query: string,
    skip?: SkipRequest,
  ): Buffer => {
    let cache = rendered.get(egress);
    if (!cache) {
      cache = new Map();
      rendered.set(egress, cache);
    }
    const key = `${kind}\n${skip ?? ""}\n${query}`;
    const hit = cache.get(key);
    if (hit && hit.version === egress.version) return hit.bytes;
    const bytes = Buffer.from(renderMediaPlaylist(buildMediaPlaylistModel(egress, kind, { query }), skip));
    // Per-viewer credentials make per-viewer keys: keep the cache small.
    if (cache.size >= 32) cache.clear();
    cache.set(key, { version: egress.version, bytes });
    return bytes;
  };

  app.options("/hls/*", async (request, reply) => answerPreflight(request, reply));

  app.get("/hls/*", async (request: FastifyRequest, reply: FastifyReply) => {
    reply.headers(CORS_HEADERS);
    const wildcard = (request.params as Record<string, string | undefined>)["*"] ?? "";
    const target = splitPlaybackPath(wildcard);
    if (!target) return replyError(reply, 404, "malformed hls path");
    const file = parseHlsFile(target.file);
    if (!file) return replyError(reply, 404, `unknown hls file ${target.file}`);
    const { broadcast } = target;
    if (hooks.authorize) {
      await hooks.authorize(request, reply, { transport: "hls", broadcast, file: target.file });
      if (reply.sent) return reply;
    }
    if (hooks.resolveOwner) {
      const owner = await hooks.resolveOwner(broadcast, "hls");
      if (owner !== undefined)
        return reply.code(302).header("location", redirectLocation(owner, request)).send();
    }
    const egress = hub.get(broadcast) ?? (await hub.waitFor(broadcast, unknownWaitMs, clientGone(reply)));
    if (!egress) return replyError(reply, 404, `unknown broadcast ${broadcast}`);
    const query = propagatedQuery(request.query, propagate);

    switch (file.type) {
      case "master": {
        const kind: RenditionKind = egress.serves("video") || !egress.serves("audio") ? "video" : "audio";
        // BANDWIDTH is measured, and a player given a rendition without a segment may stall, so
        // wait (briefly) for a first complete segment of every rendition.
        await hold(egress, () => egress.hasFirstSegments(), readyTimeoutMs, reply);
        const model = buildMultivariantModel(egress, query);
        if (!model || (!egress.rendition(kind).segments.length && !egress.rendition(kind).open)) {
          return notReady(reply, egress, broadcast);
        }
        return replyText(reply, PLAYLIST_TYPE, renderMultivariantPlaylist(model), "public, max-age=1");
      }
      case "playlist": {
        const directives = parseDeliveryDirectives(request.query);
        if (typeof directives === "string") return replyError(reply, 400, directives);
        const rendition = egress.rendition(file.kind);
        // A first playlist waits (briefly) for a complete segment: ffmpeg crashes on a live
        // playlist that has only parts. After the wait, parts alone are served.
        const hasSegment = () => egress.ended || (egress.serves(file.kind) && rendition.segments.length > 0);
        const waited = await hold(egress, hasSegment, readyTimeoutMs, reply);
        if (waited === "overloaded") return replyUnavailable(reply, "too many requests are waiting");
        if (waited === "aborted") return reply;
        const hasMedia = egress.ended || (egress.serves(file.kind) && newestPart(rendition) !== undefined);
        if (!hasMedia) return notReady(reply, egress, broadcast, file.kind);
        if (!egress.serves(file.kind))
          return replyError(reply, 404, `broadcast ${broadcast} has no ${file.kind} rendition`);
        let cache = "public, max-age=1";
        if (directives.msn !== undefined) {
          const newest = newestPart(rendition);
          const lastMsn = newest?.msn ?? rendition.nextMsn - 1;
          if (directives.msn > lastMsn + 2) {
            return replyError(
              reply,
              400,
              `_HLS_msn ${directives.msn} is more than two segments past the last (${lastMsn})`,
            );
          }
          const msn = directives.msn;
          const part = directives.part;
          if (
            part !== undefined &&
            beyondAdvancePartLimit(rendition, msn, part, egress.settings.partTargetS)
          ) {
            return replyError(
              reply,
              400,
              `_HLS_part ${part} of segment ${msn} is too far past the last part`,
            );
          }
          const outcome = await hold(
            egress,
            () => egress.ended || satisfiesDirective(rendition, msn, part),
            blockingTimeoutMs,
            reply,
          );
          if (outcome === "aborted") return reply;
          if (outcome === "overloaded") return replyUnavailable(reply, "too many requests are waiting");
          if (outcome !== "ready")
            return replyUnavailable(reply, "the requested segment or part is not available yet");
          // A response to a blocking request stays valid: it contains at least what was asked for.
          cache = `public, max-age=${targetDurationOf(egress, rendition)}`;
        }
        return replyBytes(
          reply,
          PLAYLIST_TYPE,
          renderCached(egress, file.kind, query, directives.skip),
          cache,
        );
      }
      case "init": {
        const init = egress.rendition(file.kind).findInit(initVersionOf(request.query));
        if (!init) {
          const ready = () => egress.ended || egress.rendition(file.kind).init !== undefined;
          await hold(egress, ready, readyTimeoutMs, reply);
          const late = egress.rendition(file.kind).findInit(initVersionOf(request.query));
          if (!late) return replyError(reply, 404, `no ${file.kind} init segment for broadcast ${broadcast}`);
          return replyBytes(reply, initType(file.kind), late, "public, max-age=2");
        }
        return replyBytes(reply, initType(file.kind), init, "public, max-age=2");
      }
      case "segment": {
        const rendition = egress.rendition(file.kind);
        const { msn } = file;
        const closed = () => {
          const segment = rendition.findSegment(msn);
          return segment?.closed === true;
        };
        if (!closed()) {
          // Only the open segment or the next one is worth waiting for.
          if (msn > rendition.nextMsn || partCannotExist(egress, rendition, msn, 0)) {
            return replyError(reply, 404, `unknown segment ${target.file}`);
          }
          const impossible = () => !closed() && partCannotExist(egress, rendition, msn, 0);
          const outcome = await hold(egress, () => closed() || impossible(), blockingTimeoutMs, reply);
          if (outcome === "aborted") return reply;
          if (!closed()) {
            return outcome === "ready"
              ? replyError(reply, 404, `unknown segment ${target.file}`)
              : replyUnavailable(reply, "segment not complete yet");
          }
        }
        const segment = rendition.findSegment(msn)!;
        return replyMediaBytes(
          reply,
          MEDIA_TYPE,
          DvrSpill.segmentBytes(segment),
          `public, max-age=${mediaMaxAgeS}`,
          target.file,
        );
      }
      case "part": {
        const rendition = egress.rendition(file.kind);
        const { msn, index } = file;
        let part = findClosedPart(rendition, msn, index);
        if (!part) {
          if (
            msn > rendition.nextMsn ||
            partCannotExist(egress, rendition, msn, index) ||
            beyondAdvancePartLimit(rendition, msn, index, egress.settings.partTargetS)
          ) {
            return replyError(reply, 404, `unknown part ${target.file}`);
          }
          // A preload-hinted part: hold until it exists or cannot.
          const outcome = await hold(
            egress,
            () =>
              findClosedPart(rendition, msn, index) !== undefined ||
              partCannotExist(egress, rendition, msn, index),
            blockingTimeoutMs,
            reply,
          );
          if (outcome === "aborted") return reply;
          part = findClosedPart(rendition, msn, index);
          if (!part) {
            return outcome === "ready"
              ? replyError(reply, 404, `unknown part ${target.file}`)
              : replyUnavailable(reply, "part not complete yet");
          }
        }
        return replyMediaBytes(
          reply,
          MEDIA_TYPE,
          DvrSpill.partBytes(rendition.findSegment(msn)!, part.index),
          `public, max-age=${mediaMaxAgeS}`,
          target.file,
        );
      }
    }
  });
}

function initType(kind: RenditionKind): string {
  return kind === "video" ? "video/mp4" : "audio/mp4";
}

function notReady(
  reply: FastifyReply,
  egress: BroadcastEgress,
  broadcast: string,
  kind?: RenditionKind,
): FastifyReply {
  if (reply.raw.destroyed) return reply;
  if (egress.ended && !egress.serves("video") && !egress.serves("audio")) {
    return replyError(reply, 404, `broadcast ${broadcast} ended without media`);
  }
  if (
    kind !== undefined &&
    egress.started &&
    !egress.serves(kind) &&
    egress.serves(kind === "video" ? "audio" : "video")
  ) {
    return replyError(reply, 404, `broadcast ${broadcast} has no ${kind} rendition`);
  }
  return replyUnavailable(reply, `broadcast ${broadcast} has no media yet`);
}
