/**
 * The MPEG-DASH projection as a fastify plugin: `GET|HEAD /dash/<broadcast>/<file>` for every
 * broadcast in an Origin, plus `/dash/time` (an `http-iso` UTCTiming source).
 *
 * ```ts
 * const egress = new EgressHub({ origin: origin.consume() }); // shared with hlsPlugin
 * await app.register(dashPlugin, { egress });
 * // http://host:8889/dash/live/demo/manifest.mpd
 * ```
 *
 * The MPD is dynamic while the broadcast is live and static once it ends; a republish makes it
 * dynamic again with a new Period. Segments are the same bytes as the HLS segments.
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
import { partCannotExist } from "../hls/media-playlist.ts";
import { buildMpdModel } from "./manifest.ts";
import { renderMpd } from "./mpd.ts";

/** Options of {@link dashPlugin}. */
export interface DashPluginOptions extends PlaybackPluginOptions {}

/** A request for one file under `/dash/<broadcast>/`. */
export type DashFile =
  | { readonly type: "manifest" }
  | { readonly type: "init"; readonly kind: RenditionKind }
  | { readonly type: "segment"; readonly kind: RenditionKind; readonly number: number };

const SEGMENT = /^seg-(video|audio)-(0|[1-9][0-9]{0,14})\.m4s$/;

/** Parses a DASH file name, or undefined when it names nothing this server serves. */
export function parseDashFile(name: string): DashFile | undefined {
  switch (name) {
    case "manifest.mpd":
      return { type: "manifest" };
    case "init-video.m4s":
      return { type: "init", kind: "video" };
    case "init-audio.m4s":
      return { type: "init", kind: "audio" };
  }
  const segment = SEGMENT.exec(name);
  if (segment) return { type: "segment", kind: segment[1] as RenditionKind, number: Number(segment[2]) };
  return undefined;
}

/** Registers the DASH routes. Use with `app.register(dashPlugin, options)`. */
export async function dashPlugin(app: FastifyInstance, options: DashPluginOptions): Promise<void> {
  const hub = options.egress ?? createPluginHub("dashPlugin", options);
  if (!options.egress) app.addHook("onClose", async () => hub.close());
  const hooks = options.hooks ?? {};
  const readyTimeoutMs = options.readyTimeoutMs ?? 3 * hub.settings.targetDurationS * 1000;
  // An unknown broadcast may be on its way (a relay pull); wait for it, but not as long as for media.
  const unknownWaitMs = Math.min(readyTimeoutMs, 2000);
  const propagate = options.propagateQuery ?? DEFAULT_PROPAGATED_QUERY;
  const holder = new RequestHolder(options.maxHeldRequests ?? 10_000);
  // Media URIs always name the same bytes: cacheable for as long as they may be listed.
  const mediaMaxAgeS = Math.round(hub.settings.dvrWindowS) || MEDIA_MAX_AGE_WITHOUT_WINDOW_S;

  if (hooks.onLatencySample) {
    const sample = hooks.onLatencySample;
    const remove = hub.addListener({
      segment: (broadcast, rendition, segment) => {
        if (rendition.kind === "audio" && broadcast.serves("video")) return;
        if (segment.firstIngestMs !== undefined)
          sample(broadcast.path, "dash", Date.now() - segment.firstIngestMs);
      },
    });
    app.addHook("onClose", async () => remove());
  }

  app.get("/dash/time", async (_request, reply) => {
    reply.headers(CORS_HEADERS);
    return replyText(reply, "text/plain; charset=utf-8", new Date().toISOString(), "no-store");
  });

  app.options("/dash/*", async (request, reply) => answerPreflight(request, reply));

  app.get("/dash/*", async (request: FastifyRequest, reply: FastifyReply) => {
    reply.headers(CORS_HEADERS);
    const wildcard = (request.params as Record<string, string | undefined>)["*"] ?? "";
    const target = splitPlaybackPath(wildcard);
    if (!target) return replyError(reply, 404, "malformed dash path");
    const file = parseDashFile(target.file);
    if (!file) return replyError(reply, 404, `unknown dash file ${target.file}`);
    const { broadcast } = target;
    if (hooks.authorize) {
      await hooks.authorize(request, reply, { transport: "dash", broadcast, file: target.file });
      if (reply.sent) return reply;
    }
    if (hooks.resolveOwner) {
      const owner = await hooks.resolveOwner(broadcast, "dash");
      if (owner !== undefined)
        return reply.code(302).header("location", redirectLocation(owner, request)).send();
    }
    const egress = hub.get(broadcast) ?? (await hub.waitFor(broadcast, unknownWaitMs, clientGone(reply)));
    if (!egress) return replyError(reply, 404, `unknown broadcast ${broadcast}`);

    switch (file.type) {
      case "manifest": {
        await holder.hold(egress, () => egress.hasFirstSegments(), readyTimeoutMs, reply);
        const model = buildMpdModel(egress, {
          query: propagatedQuery(request.query, propagate),
          timeUrl: timeUrl(request),
          nowMs: Date.now(),
        });
        if (!model) return notReady(reply, egress, broadcast);
        return replyText(reply, "application/dash+xml", renderMpd(model), "public, max-age=1");
      }
      case "init": {
        const version = initVersionOf(request.query);
        let init = egress.rendition(file.kind).findInit(version);
        if (!init) {
          const ready = () => egress.ended || egress.rendition(file.kind).init !== undefined;
          await holder.hold(egress, ready, readyTimeoutMs, reply);
          init = egress.rendition(file.kind).findInit(version);
          if (!init) return replyError(reply, 404, `no ${file.kind} init segment for broadcast ${broadcast}`);
        }
        return replyBytes(
          reply,
          file.kind === "video" ? "video/mp4" : "audio/mp4",
          init,
          "public, max-age=2",
        );
      }
      case "segment": {
        const rendition = egress.rendition(file.kind);
        const number = file.number;
        const closed = () => rendition.findSegment(number)?.closed === true;
        if (!closed()) {
          if (number > rendition.nextMsn || partCannotExist(egress, rendition, number, 0)) {
            return replyError(reply, 404, `unknown ${file.kind} segment ${number}`);
          }
          // Asked a little early (clock skew): hold until the segment completes.
          const outcome = await holder.hold(
            egress,
            () => closed() || partCannotExist(egress, rendition, number, 0),
            readyTimeoutMs,
            reply,
          );
          if (outcome === "aborted") return reply;
          if (!closed()) {
            return outcome === "ready"
              ? replyError(reply, 404, `unknown ${file.kind} segment ${number}`)
              : replyUnavailable(reply, "segment not complete yet");
          }
        }
        const segment = rendition.findSegment(number)!;
        return replyMediaBytes(
          reply,
          file.kind === "video" ? "video/mp4" : "audio/mp4",
          DvrSpill.segmentBytes(segment),
          `public, max-age=${mediaMaxAgeS}`,
          `${file.kind} segment ${number}`,
        );
      }
    }
  });
}

function timeUrl(request: FastifyRequest): string | undefined {
  const host = request.headers.host;
  if (!host || !/^[A-Za-z0-9.\-:[\]]+$/.test(host)) return undefined;
  return `${request.protocol}://${host}/dash/time`;
}

function notReady(reply: FastifyReply, egress: BroadcastEgress, broadcast: string): FastifyReply {
  if (egress.ended) return replyError(reply, 404, `broadcast ${broadcast} ended without media`);
  return replyUnavailable(reply, `broadcast ${broadcast} has no complete segment yet`);
}
