/**
 * A moq-lite client over WebSocket (QMux `qmux-00` by default, the legacy `webtransport`
 * framing on request). It publishes broadcasts from a local origin and imports the server's
 * announced broadcasts into a remote origin, subscribing upstream only while something reads.
 *
 * ```ts
 * const client = await connectMoq("http://localhost:4443/anon");
 * const broadcast = client.createBroadcast("cam0");          // announced to the server
 * const video = broadcast.createTrack("video");
 * const seen = await client.waitForBroadcast("other", { timeoutMs: 5000 });
 * const track = seen.subscribeTrack("video");
 * client.close();
 * ```
 */
import type { ClientRequest, IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import WebSocket from "ws";
import { MoqError, toMoqError } from "./error.ts";
import type { BroadcastConsumer, BroadcastOptions, BroadcastProducer } from "./model/broadcast.ts";
import { type AnnouncedConsumer, type OriginConsumer, OriginProducer } from "./model/origin.ts";
import type { Framing } from "./qmux/frame.ts";
import { type QmuxLimits, QmuxSession } from "./qmux/session.ts";
import { DEFAULT_FRAMINGS, offeredSubprotocols, parseSubprotocol } from "./qmux/subprotocol.ts";
import type { SessionLimits } from "./session/context.ts";
import type { MoqLogger } from "./session/logger.ts";
import { MoqSession, type SessionStats } from "./session/session.ts";
import type { TransportCloseInfo } from "./transport.ts";
import type { Version } from "./wire/version.ts";

/** Options of {@link connectMoq}. */
export interface ConnectMoqOptions {
  /** Framings to offer, best first. Default qmux-00 then webtransport; pass `["webtransport"]` for legacy. */
  readonly framings?: readonly Framing[];
  /** Application protocols to offer as `<framing>.<app>` (e.g. "moq-lite-04"); default none (SETUP picks lite-02). */
  readonly appProtocols?: readonly string[];
  /** Where this client's broadcasts live; a new origin when omitted. */
  readonly origin?: OriginProducer;
  /** Prefixes of the server's broadcasts to import; default `[""]` (everything), `[]` for none. */
  readonly announceInterest?: readonly string[];
  readonly logger?: MoqLogger;
  readonly sessionLimits?: Partial<SessionLimits>;
  readonly transportLimits?: Partial<QmuxLimits>;
  /** Extra HTTP headers for the upgrade request. */
  readonly headers?: Readonly<Record<string, string>>;
  /** TLS options for `https:`/`wss:` URLs (e.g. a CA for a self-signed development certificate). */
  readonly tls?: { readonly ca?: string | Buffer; readonly rejectUnauthorized?: boolean };
  /** Connect and SETUP timeout. Default 10 s. */
  readonly timeoutMs?: number;
  /** WebSocket ping interval for liveness; 0 disables (the server pings). Default 0. */
  readonly pingIntervalMs?: number;
  /** Called when a lite-04 server asks this client to move (GOAWAY) to another URI. */
  readonly onGoaway?: (uri: string) => void;
}

/** A connected client: publish locally, consume what the server announces. */
export class MoqClient {
  /** The session (version, stats, close). */
  readonly session: MoqSession;
  /** Broadcasts this client offers to the server. */
  readonly local: OriginProducer;
  /** Broadcasts the server announced (relative to the URL path), subscribed on demand. */
  readonly remote: OriginConsumer;
  /** The WebSocket framing in use. */
  readonly framing: Framing;

  /** @internal Use {@link connectMoq}. */
  constructor(session: MoqSession, local: OriginProducer, remote: OriginConsumer, framing: Framing) {
    this.session = session;
    this.local = local;
    this.remote = remote;
    this.framing = framing;
  }

  /** The negotiated moq-lite version. */
  get version(): Version {
    return this.session.version;
  }

  /** Resolves when the connection has closed. */
  get closed(): Promise<TransportCloseInfo> {
    return this.session.closed;
  }

  /** Publishes `broadcast` at `path` (relative to the URL path) until it ends. */
  publish(path: string, broadcast: BroadcastConsumer): void {
    this.local.publish(path, broadcast);
  }

  /** Creates and publishes a broadcast at `path`; close it to unpublish. */
  createBroadcast(path: string, options?: BroadcastOptions): BroadcastProducer {
    return this.local.createBroadcast(path, options);
  }

  /** Follows the server's broadcasts under `prefix`. */
  announced(prefix = ""): AnnouncedConsumer {
    return this.remote.announced(prefix);
  }

  /** The server's broadcast at `path`, if announced. */
  consume(path: string): BroadcastConsumer | undefined {
    return this.remote.consume(path);
  }

  /** Waits until the server announces `path`. */
  waitForBroadcast(
    path: string,
    options?: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<BroadcastConsumer> {
    return this.remote.waitForBroadcast(path, options);
  }

  /** Counters. */
  stats(): SessionStats {
    return this.session.stats();
  }

  /** Closes the connection. Idempotent. */
  close(): void {
    this.session.close();
  }
}

function webSocketUrl(url: string | URL): string {
  const parsed = new URL(url);
  if (parsed.protocol === "http:") parsed.protocol = "ws:";
  else if (parsed.protocol === "https:") parsed.protocol = "wss:";
  else if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new RangeError(`unsupported URL scheme ${parsed.protocol} (use http, https, ws or wss)`);
  }
  return parsed.toString();
}

/**
 * Opens a WebSocket offering the QMux subprotocols and wraps it in a transport session. The
 * session is created inside the `open` event: the server's first frame may arrive in the same
 * packet as the upgrade response, and `ws` delivers it before any promise continuation runs.
 */
async function openTransport(
  url: string,
  offered: string[],
  options: ConnectMoqOptions,
): Promise<QmuxSession> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const ws = new WebSocket(url, offered, {
    perMessageDeflate: false,
    maxPayload: 64 * 1024,
    handshakeTimeout: timeoutMs,
    headers: options.headers ? { ...options.headers } : undefined,
    ca: options.tls?.ca,
    rejectUnauthorized: options.tls?.rejectUnauthorized,
  });
  let rawSocket: Socket | undefined;
  ws.once("upgrade", (res: IncomingMessage) => {
    rawSocket = res.socket;
  });
  try {
    return await new Promise<QmuxSession>((resolve, reject) => {
      ws.once("open", () => {
        const selection = parseSubprotocol(ws.protocol);
        if (!selection) {
          reject(
            new MoqError(
              "MOQ_TRANSPORT",
              `server selected an unsupported subprotocol ${JSON.stringify(ws.protocol)}`,
            ),
          );
          return;
        }
        resolve(
          new QmuxSession(ws, {
            framing: selection.framing,
            role: "client",
            protocol: selection.protocol,
            limits: options.transportLimits,
            pingIntervalMs: options.pingIntervalMs ?? 0,
            rawSocket,
          }),
        );
      });
      ws.once("error", (err) =>
        reject(new MoqError("MOQ_TRANSPORT", `WebSocket connection failed: ${err.message}`)),
      );
      ws.once("unexpected-response", (req: ClientRequest, res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        reject(
          new MoqError(
            status === 401 || status === 403 ? "MOQ_UNAUTHORIZED" : "MOQ_TRANSPORT",
            `server answered HTTP ${status}`,
          ),
        );
        req.destroy();
        res.resume();
      });
    });
  } catch (err) {
    ws.on("error", () => {});
    ws.terminate();
    throw err;
  }
}

/**
 * Connects to a moq-lite server at `url` (`http:`/`https:` map to `ws:`/`wss:`; the path is the
 * session root; `?token=` carries credentials) and completes SETUP.
 */
export async function connectMoq(url: string | URL, options: ConnectMoqOptions = {}): Promise<MoqClient> {
  const framings = options.framings ?? DEFAULT_FRAMINGS;
  const transport = await openTransport(
    webSocketUrl(url),
    offeredSubprotocols(framings, options.appProtocols),
    options,
  );
  const local = options.origin ?? new OriginProducer();
  const remote = new OriginProducer();
  try {
    const session = await MoqSession.connect(transport, {
      serve: local.consume(),
      receive: remote,
      announceInterest: options.announceInterest ?? [""],
      limits: {
        ...options.sessionLimits,
        ...(options.timeoutMs ? { setupTimeoutMs: options.timeoutMs } : {}),
      },
      logger: options.logger,
      logFields: { url: String(url) },
      onGoaway: options.onGoaway,
    });
    return new MoqClient(session, local, remote.consume(), transport.framing);
  } catch (err) {
    throw toMoqError(err);
  }
}
