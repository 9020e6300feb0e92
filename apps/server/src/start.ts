/**
 * The composition root: `start(config)` binds every listener and wires the packages together.
 *
 * RTMP sessions publish through the packager into one moq-lite Origin as `<broadcast>`; the MoQ
 * relay serves that Origin (and lets MoQ clients publish into it); the LL-HLS and DASH plugins
 * project it from one shared egress hub; the admin API reports on all of it. Nothing here
 * handles media itself.
 */
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { adminPlugin, LatencyTracker, LvqrMetrics } from "@lvqr/admin";
import { type PublishDecision, type PublishSession, RtmpServer } from "@lvqr/ingest-rtmp";
import { MoqAuthorizationError, type MoqServer, OriginProducer, serveMoq } from "@lvqr/moq-lite";
import { BroadcastPublisher, dashPlugin, EgressHub, hlsPlugin, type PlaybackHooks } from "@lvqr/packager";
import Fastify, { type FastifyInstance } from "fastify";
import { type Logger, pino } from "pino";
import {
  adminAuthorizers,
  authorizeMoqSession,
  createAuthProvider,
  LivePlaybackGate,
  StreamKeyStore,
} from "./auth/index.ts";
import type { ServerCluster } from "./cluster/index.ts";
import { DEFAULT_PORTS, type ServeConfig, validateServeConfig } from "./config.ts";
import { createDvrDirectory } from "./dvr-directory.ts";
import { PlaybackAudience } from "./playback-audience.ts";

/** Addresses the listeners actually bound (ports are real even when 0 was asked for). */
export interface BoundAddresses {
  readonly moq: AddressInfo;
  readonly rtmp: AddressInfo;
  readonly admin: AddressInfo;
  readonly hls: AddressInfo | undefined;
  readonly dash: AddressInfo | undefined;
}

/** A running server. */
export interface ServerHandle extends AsyncDisposable {
  readonly addresses: BoundAddresses;
  /** The registry of live broadcasts every ingest writes into and every egress reads. */
  readonly origin: OriginProducer;
  /** The latency SLO tracker behind `/api/v1/slo`. */
  readonly slo: LatencyTracker;
  /** The Prometheus metrics behind `/metrics`. */
  readonly metrics: LvqrMetrics;
  readonly logger: Logger;
  /** `rtmp://host:port/<app>/<stream>`. */
  rtmpUrl(app: string, stream: string): string;
  /** `http://host:port/hls/<broadcast>/<file>` (file defaults to `master.m3u8`). */
  hlsUrl(broadcast: string, file?: string): string;
  /** `http://host:port/dash/<broadcast>/<file>` (file defaults to `manifest.mpd`). */
  dashUrl(broadcast: string, file?: string): string;
  /** The MoQ session URL for a root path (default the whole origin): `http(s)://host:port/<path>`. */
  moqUrl(path?: string): string;
  /** `http://host:port<path>` on the admin port. */
  adminUrl(path?: string): string;
  /**
   * Drains and stops: publishers are told and their broadcasts end (playlists get ENDLIST), viewers
   * get a moment to read that, then every session and listener closes. Resolves when every socket
   * is closed. Idempotent.
   */
  shutdown(): Promise<void>;
}

const VERSION: string = (() => {
  try {
    return (
      JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
    ).version;
  } catch {
    return "0.0.0";
  }
})();

/** How long ended broadcasts stay readable for HLS/DASH viewers during shutdown. */
const SHUTDOWN_DRAIN_MS = 1000;

/**
 * Starts the server. Every listener is bound before this resolves, so the handle's addresses are
 * real; a failure to bind anything stops whatever was already started and rejects.
 */
export async function start(config: ServeConfig = {}): Promise<ServerHandle> {
  validateServeConfig(config);
  const startedAt = Date.now();
  const logger = pino({ level: config.logLevel ?? "info", base: { service: "lvqr" } });
  const host = config.host ?? "0.0.0.0";
  const cleanups: Array<() => Promise<void> | void> = [];
  const cleanup = async () => {
    for (const step of cleanups.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        logger.warn({ err: error }, "error while stopping a component");
      }
    }
  };

  try {
    const auth = config.auth ?? {};
    const metrics = new LvqrMetrics();
    const slo = new LatencyTracker();
    const origin = new OriginProducer();
    const audience = new PlaybackAudience();
    const broadcastStats = new Map<string, { startedAtMs: number; bytesReceived: number }>();
    const moqBytesSent = new Map<string, number>();
    // Loaded only when clustering is on: a single node never pays for the Redis client.
    const cluster: ServerCluster | undefined = config.cluster
      ? new (await import("./cluster/index.ts")).ServerCluster({
          config: config.cluster,
          origin,
          auth,
          logger,
          version: VERSION,
        })
      : undefined;
    if (cluster) cleanups.push(() => cluster.close());

    const dataDir = config.dataDir ?? "lvqr-data";
    const streamKeys =
      auth.streamKeys === false
        ? undefined
        : await StreamKeyStore.open({
            dataDir,
            logger: logger.child({ component: "stream-keys" }),
            onExpired: (ids) => {
              for (let i = 0; i < ids.length; i++) metrics.streamKeyChanged("expire");
            },
          });
    if (streamKeys) cleanups.push(() => streamKeys.close());
    const provider = createAuthProvider(
      {
        adminToken: auth.adminToken,
        publishKey: auth.publishKey,
        subscribeToken: auth.subscribeToken,
        jwtSecret: auth.jwt?.secret,
        jwtIssuer: auth.jwt?.issuer,
        jwtAudience: auth.jwt?.audience,
      },
      streamKeys,
    );

    // --- MoQ relay -------------------------------------------------------------------------
    const moqLogger = logger.child({ component: "moq" });
    const moq: MoqServer = await serveMoq({
      port: config.moqPort ?? DEFAULT_PORTS.moq,
      host,
      origin,
      logger: moqLogger,
      ...(config.tls ? { tls: { cert: pemBuffer(config.tls.cert), key: pemBuffer(config.tls.key) } } : {}),
      authorize: async ({ path, token }) => {
        const decision = await authorizeMoqSession(provider, { path, token });
        if (!decision.allow) {
          metrics.authFailure("moq");
          throw new MoqAuthorizationError(decision.status, decision.reason);
        }
        // The relay closes the session when its credential expires (JWT exp, stream-key expiry).
        return {
          read: decision.read,
          publish: decision.publish,
          ...(decision.expiresAtMs === undefined ? {} : { expiresAtMs: decision.expiresAtMs }),
        };
      },
      onFrameSent: (event) => {
        metrics.bytesSent(event.broadcast, "moq", event.bytes);
        moqBytesSent.set(event.broadcast, (moqBytesSent.get(event.broadcast) ?? 0) + event.bytes);
        const ingest = event.meta?.ingestTimeMs;
        if (ingest !== undefined) slo.record(event.broadcast, "moq", Math.max(0, event.sentAtMs - ingest));
      },
    });
    cleanups.push(() => moq.close());

    // --- RTMP ingest -> packager -> origin --------------------------------------------------
    const rtmpLogger = logger.child({ component: "rtmp" });
    const rtmp = new RtmpServer({
      logger: rtmpLogger,
      authorize: async (request): Promise<PublishDecision> => {
        const key = request.query.get("key") || request.query.get("token") || undefined;
        const decision = await provider.checkPublish({
          app: request.app,
          stream: request.stream,
          ...(key === undefined ? {} : { key }),
          remoteAddress: request.remoteAddress,
        });
        if (!decision.allow) {
          metrics.authFailure("rtmp");
          return { allow: false, status: "NetStream.Publish.Unauthorized", description: decision.reason };
        }
        if (cluster) return cluster.admitRtmpPublish(decision.broadcast);
        return { allow: true, name: decision.broadcast };
      },
    });
    rtmp.on("publish", (session) => wirePublish(session));
    cluster?.attachRtmp(rtmp);
    cleanups.push(() => rtmp.close());

    const wirePublish = (session: PublishSession) => {
      const name = session.name;
      const publisher = new BroadcastPublisher(origin, name);
      const stats = { startedAtMs: Date.now(), bytesReceived: 0 };
      broadcastStats.set(name, stats);
      metrics.streamStarted();
      rtmpLogger.info({ broadcast: name, remote: session.remoteAddress }, "publish started");
      session.on("config", (mediaConfig) => {
        try {
          if (mediaConfig.kind === "video") publisher.setVideoConfig(mediaConfig);
          else publisher.setAudioConfig(mediaConfig);
        } catch (error) {
          rtmpLogger.warn(
            { broadcast: name, err: error },
            "unusable codec configuration; ending the publish",
          );
          session.close();
        }
      });
      session.on("sample", (sample) => {
        stats.bytesReceived += sample.data.byteLength;
        metrics.bytesReceived(name, sample.data.byteLength);
        if (sample.kind === "video") publisher.pushVideo(sample);
        else publisher.pushAudio(sample);
      });
      session.on("end", (reason) => {
        publisher.close();
        metrics.streamEnded();
        if (broadcastStats.get(name) === stats) broadcastStats.delete(name);
        rtmpLogger.info({ broadcast: name, reason }, "publish ended");
      });
    };

    // --- LL-HLS and DASH ---------------------------------------------------------------------
    const hls = config.hls ?? {};
    // Only the live edge stays in memory; the rest of the DVR window is in files.
    const dvrMemoryS = hls.dvrMemoryS ?? 12;
    const spillsDvr = hls.dvrWindowS === 0 || dvrMemoryS < (hls.dvrWindowS ?? 120);
    const egress = new EgressHub({
      origin: (cluster?.egressOrigin ?? origin).consume(),
      ...(hls.targetDurationS === undefined ? {} : { targetDurationS: hls.targetDurationS }),
      ...(hls.partTargetMs === undefined ? {} : { partTargetS: hls.partTargetMs / 1000 }),
      ...(hls.dvrWindowS === undefined ? {} : { dvrWindowS: hls.dvrWindowS }),
      ...(spillsDvr
        ? {
            dvrSpill: {
              directory: await createDvrDirectory(dataDir, logger),
              memoryS: dvrMemoryS,
              onError: (error: Error) => logger.warn({ err: error }, "DVR file write or delete failed"),
            },
          }
        : {}),
    });
    cleanups.push(async () => {
      egress.close();
      await egress.closed;
    });
    const spill = egress.spill;
    if (spill) metrics.trackDvrFiles(() => spill.stats);
    const gate = new LivePlaybackGate({
      auth: provider,
      signingSecret: auth.hmacPlaybackSecret,
      enabled: auth.livePlaybackAuth !== false,
      metrics,
    });
    const playbackHooks: PlaybackHooks = {
      authorize: async (request, reply, target) => {
        const verdict = await gate.check(
          { url: request.url, headers: request.headers },
          target.transport,
          target.broadcast,
        );
        if (verdict.status !== 200)
          await reply.code(verdict.status).type("text/plain; charset=utf-8").send(verdict.reason);
      },
      onLatencySample: (broadcast, transport, latencyMs) => slo.record(broadcast, transport, latencyMs),
      ...(cluster ? { resolveOwner: cluster.resolveOwner } : {}),
    };
    const playbackApp = (protocol: "hls" | "dash"): FastifyInstance => {
      const app = Fastify({ logger: false, forceCloseConnections: "idle", return503OnClosing: false });
      app.addHook("onResponse", async (request, reply) => {
        const match = /^\/(?:hls|dash)\/(.+)\/[^/]+$/.exec(request.url.split("?")[0] ?? "");
        if (!match || reply.statusCode >= 400) return;
        let broadcast: string;
        try {
          broadcast = decodeURIComponent(match[1]!);
        } catch {
          return;
        }
        const length = Number(reply.getHeader("content-length") ?? 0);
        const bytes = Number.isFinite(length) ? length : 0;
        audience.record(protocol, broadcast, `${request.ip} ${request.headers["user-agent"] ?? ""}`, bytes);
        if (bytes > 0) metrics.bytesSent(broadcast, protocol, bytes);
      });
      return app;
    };

    let hlsApp: FastifyInstance | undefined;
    let hlsAddress: AddressInfo | undefined;
    if (config.hlsPort !== false) {
      hlsApp = playbackApp("hls");
      await hlsApp.register(hlsPlugin, { egress, hooks: playbackHooks });
      await hlsApp.listen({ port: config.hlsPort ?? DEFAULT_PORTS.hls, host });
      hlsAddress = hlsApp.server.address() as AddressInfo;
      const app = hlsApp;
      cleanups.push(() => closeHttp(app));
    }
    let dashApp: FastifyInstance | undefined;
    let dashAddress: AddressInfo | undefined;
    if (config.dashPort !== false) {
      dashApp = playbackApp("dash");
      await dashApp.register(dashPlugin, { egress, hooks: playbackHooks });
      await dashApp.listen({ port: config.dashPort ?? DEFAULT_PORTS.dash, host });
      dashAddress = dashApp.server.address() as AddressInfo;
      const app = dashApp;
      cleanups.push(() => closeHttp(app));
    }

    const rtmpAddress = await rtmp.listen(config.rtmpPort ?? DEFAULT_PORTS.rtmp, host);
    const moqAddress = moq.address!;
    await cluster?.start({
      moq: moqAddress,
      hls: hlsAddress,
      dash: dashAddress,
      moqTls: config.tls !== undefined,
      moqServer: moq,
      metrics,
      audience,
    });

    // --- Admin API ---------------------------------------------------------------------------
    const adminApp = Fastify({ logger: false, forceCloseConnections: true });
    // Broadcasts published on this node; on a cluster node, other nodes' broadcasts are announced
    // here too (for relay-pull) but are not this node's publishers.
    const liveBroadcasts = () =>
      origin
        .consume()
        .list()
        .filter((path) => cluster?.isLocal(path) ?? true);
    const subscribersOf = (broadcast: string) => ({
      moq: moq.stats().subscribers.get(broadcast) ?? 0,
      hls: audience.viewers("hls", broadcast),
      dash: audience.viewers("dash", broadcast),
    });
    const addressText = (address: AddressInfo | undefined) =>
      address === undefined
        ? null
        : `${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
    await adminApp.register(adminPlugin, {
      ...adminAuthorizers(provider),
      tracker: slo,
      metrics,
      ...(cluster ? { cluster: cluster.admin } : {}),
      ...(streamKeys ? { streamKeys } : {}),
      stats: () => {
        const totals = metrics.totals();
        const byProtocol = {
          moq: [...moq.stats().subscribers.values()].reduce((a, b) => a + b, 0),
          hls: audience.totalViewers("hls"),
          dash: audience.totalViewers("dash"),
        };
        let tracks = 0;
        for (const path of liveBroadcasts())
          tracks += origin.consume().consume(path)?.trackNames().length ?? 0;
        return {
          publishers: liveBroadcasts().length,
          subscribers: byProtocol.moq + byProtocol.hls + byProtocol.dash,
          tracks,
          bytes_received: totals.bytes_received,
          bytes_sent: totals.bytes_sent,
          uptime_secs: Math.floor((Date.now() - startedAt) / 1000),
          subscribers_by_protocol: byProtocol,
        };
      },
      streams: () =>
        liveBroadcasts().map((name) => {
          const subscribers = subscribersOf(name);
          const stats = broadcastStats.get(name);
          return {
            name,
            subscribers: subscribers.moq + subscribers.hls + subscribers.dash,
            subscribers_by_protocol: subscribers,
            bytes_received: stats?.bytesReceived ?? 0,
            bytes_sent:
              audience.bytesSent("hls", name) +
              audience.bytesSent("dash", name) +
              (moqBytesSent.get(name) ?? 0),
            ...(stats ? { started_at_ms: stats.startedAtMs } : {}),
          };
        }),
      serverInfo: () => ({
        version: VERSION,
        uptime_secs: Math.floor((Date.now() - startedAt) / 1000),
        bound: {
          admin: addressText(adminApp.server.address() as AddressInfo),
          rtmp: addressText(rtmpAddress),
          hls: addressText(hlsAddress),
          dash: addressText(dashAddress),
          moq: addressText(moqAddress),
        },
        auth_mode: provider.mode,
        hmac_playback_secret_configured: Boolean(auth.hmacPlaybackSecret),
      }),
    });
    await adminApp.listen({ port: config.adminPort ?? DEFAULT_PORTS.admin, host });
    const adminAddress = adminApp.server.address() as AddressInfo;
    cleanups.push(() => closeHttp(adminApp));

    const addresses: BoundAddresses = {
      moq: moqAddress,
      rtmp: rtmpAddress,
      admin: adminAddress,
      hls: hlsAddress,
      dash: dashAddress,
    };
    logger.info(
      {
        moq: moqAddress.port,
        rtmp: rtmpAddress.port,
        admin: adminAddress.port,
        hls: hlsAddress?.port ?? null,
        dash: dashAddress?.port ?? null,
        auth: provider.mode,
      },
      "lvqr ready",
    );

    const local = (address: AddressInfo) => {
      const ip = address.address === "0.0.0.0" || address.address === "::" ? "127.0.0.1" : address.address;
      return `${ip.includes(":") ? `[${ip}]` : ip}:${address.port}`;
    };
    const trimSlashes = (value: string) => value.replace(/^\/+|\/+$/g, "");
    let stopping: Promise<void> | undefined;
    const shutdown = (): Promise<void> => {
      stopping ??= (async () => {
        logger.info("shutting down: ending publishes");
        // End every publish first so playlists get ENDLIST while viewers can still read them.
        await rtmp.close().catch((error: unknown) => logger.warn({ err: error }, "RTMP close failed"));
        await delay(Math.min(SHUTDOWN_DRAIN_MS, config.shutdownGraceMs ?? 5000));
        await cleanup();
        logger.info("shutdown complete");
      })();
      return stopping;
    };

    return {
      addresses,
      origin,
      slo,
      metrics,
      logger,
      rtmpUrl: (app, stream) => `rtmp://${local(rtmpAddress)}/${trimSlashes(app)}/${stream}`,
      hlsUrl: (broadcast, file = "master.m3u8") => {
        if (!hlsAddress) throw new Error("HLS is disabled (hlsPort: false)");
        return `http://${local(hlsAddress)}/hls/${trimSlashes(broadcast)}/${file}`;
      },
      dashUrl: (broadcast, file = "manifest.mpd") => {
        if (!dashAddress) throw new Error("DASH is disabled (dashPort: false)");
        return `http://${local(dashAddress)}/dash/${trimSlashes(broadcast)}/${file}`;
      },
      moqUrl: (path = "") => `${config.tls ? "https" : "http"}://${local(moqAddress)}/${trimSlashes(path)}`,
      adminUrl: (path = "/") => `http://${local(adminAddress)}${path.startsWith("/") ? path : `/${path}`}`,
      shutdown,
      [Symbol.asyncDispose]: shutdown,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

function pemBuffer(value: string | Uint8Array): Buffer {
  return typeof value === "string"
    ? Buffer.from(value)
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Closes a fastify app: stop accepting, let in-flight requests finish briefly, then cut the rest. */
async function closeHttp(app: FastifyInstance): Promise<void> {
  const closing = app.close();
  const timer = setTimeout(() => app.server.closeAllConnections(), 2000);
  try {
    await closing;
  } finally {
    clearTimeout(timer);
  }
}
