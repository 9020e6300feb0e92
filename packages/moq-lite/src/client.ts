/**
 * A moq-lite client over WebSocket (QMux `qmux-00` by default, the legacy `webtransport`
 * framing on request) or WebTransport (HTTP/2 through `@fails-components/webtransport`, or
 * HTTP/3 when its quiche addon is installed). It publishes broadcasts from a local origin and
 * imports the server's announced broadcasts into a remote origin, subscribing upstream only
 * while something reads.
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
import type { IetfOptions } from "./ietf/context.ts";
import type { IetfVersion } from "./ietf/version.ts";
import type { BroadcastConsumer, BroadcastOptions, BroadcastProducer } from "./model/broadcast.ts";
import { type AnnouncedConsumer, type OriginConsumer, OriginProducer } from "./model/origin.ts";
import type { Framing } from "./qmux/frame.ts";
import { type QmuxLimits, QmuxSession } from "./qmux/session.ts";
import { DEFAULT_FRAMINGS, offeredSubprotocols, parseSubprotocol } from "./qmux/subprotocol.ts";
import type { SessionLimits } from "./session/context.ts";
import type { MoqLogger } from "./session/logger.ts";
import { MoqSession, type SessionStats } from "./session/session.ts";
import type { TransportCloseInfo, TransportSession } from "./transport.ts";
import { loadWebTransportLibrary } from "./webtransport/loader.ts";
import { WebTransportSession } from "./webtransport/session.ts";
import type { Version } from "./wire/version.ts";
import { AppProtocol } from "./wire/version.ts";

/** The transport a {@link MoqClient} runs on. */
export type MoqClientTransport = "websocket" | "webtransport-h2" | "webtransport-h3";

/** Options of {@link connectMoq}. */
export interface ConnectMoqOptions {
  /**
   * "websocket" (default) or "webtransport". WebTransport uses HTTP/3 when the quiche addon is
   * installed (falling back to HTTP/2) and HTTP/2 otherwise; `webTransportHttp2Only` forces HTTP/2.
   */
  readonly transport?: "websocket" | "webtransport";
  /** With `transport: "webtransport"`: never try HTTP/3. */
  readonly webTransportHttp2Only?: boolean;
  /**
   * With `transport: "webtransport"`: hex SHA-256 of the server's certificate to trust (as
   * `serverCertificateHashes`; ECDSA, ≤ 14 days). For an `http:` URL it is fetched from
   * `/certificate.sha256` when omitted, as the official clients do in development.
   */
  readonly serverCertificateSha256?: string;
  /** WT-Protocols to offer over WebTransport. Default moq-lite-04, moq-lite-03, moql. */
  readonly webTransportProtocols?: readonly string[];
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
  /** Called when a lite-04 or moq-transport server asks this client to move (GOAWAY) to another URI. */
  readonly onGoaway?: (uri: string) => void;
  /**
   * moq-transport: with `appProtocols: ["moqt-17"]` (or 16, 15) the server's choice decides;
   * `preferDraft14` makes the SETUP path offer draft-14 only. `enabled: false` refuses the drafts.
   */
  readonly ietf?: IetfOptions;
}

/** A connected client: publish locally, consume what the server announces. */
export class MoqClient {
  /** The session (version, stats, close). */
  readonly session: MoqSession;
  /** Broadcasts this client offers to the server. */
  readonly local: OriginProducer;
  /** Broadcasts the server announced (relative to the URL path), subscribed on demand. */
  readonly remote: OriginConsumer;
  /** The WebSocket framing in use (undefined over WebTransport). */
  readonly framing: Framing | undefined;
  /** The transport in use. */
  readonly transport: MoqClientTransport;

  /** @internal Use {@link connectMoq}. */
  constructor(
    session: MoqSession,
    local: OriginProducer,
    remote: OriginConsumer,
    framing: Framing | undefined,
    transport: MoqClientTransport = "websocket",
  ) {
    this.session = session;
    this.local = local;
    this.remote = remote;
    this.framing = framing;
    this.transport = transport;
  }

  /** The negotiated version (a moq-lite version or a moq-transport draft). */
  get version(): Version | IetfVersion {
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

/** GET `/certificate.sha256` over plain HTTP (the development flow of the official clients). */
async function fetchCertificateSha256(url: URL, timeoutMs: number): Promise<string> {
  const target = new URL("/certificate.sha256", url);
  target.protocol = "http:";
  let response: Response;
  try {
    response = await fetch(target, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new MoqError("MOQ_TRANSPORT", `cannot fetch ${target}: ${(err as Error).message}`);
  }
  const body = (await response.text()).trim().replace(/^0x/i, "");
  if (!response.ok || !/^([0-9a-fA-F]{2}){32}$/.test(body)) {
    throw new MoqError(
      "MOQ_TRANSPORT",
      `${target} answered HTTP ${response.status} without a SHA-256 fingerprint`,
    );
  }
  return body.toLowerCase();
}

/** Opens a WebTransport session (fails-components) and wraps it in a transport session. */
async function openWebTransport(
  url: string | URL,
  options: ConnectMoqOptions,
): Promise<{ transport: WebTransportSession; kind: MoqClientTransport }> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const parsed = new URL(url);
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new RangeError(`unsupported URL scheme ${parsed.protocol} for WebTransport (use http or https)`);
  }
  let hash = options.serverCertificateSha256?.replace(/[\s:]/g, "").toLowerCase();
  if (hash === undefined && parsed.protocol === "http:")
    hash = await fetchCertificateSha256(parsed, timeoutMs);
  const target = new URL(parsed);
  target.protocol = "https:";
  const library = await loadWebTransportLibrary();
  const http2Only = options.webTransportHttp2Only === true || !library.http3;
  const wt = new library.module.WebTransport(target.toString(), {
    forceReliable: http2Only,
    protocols: [
      ...(options.webTransportProtocols ?? [AppProtocol.Lite04, AppProtocol.Lite03, AppProtocol.Moql]),
    ],
    ...(hash ? { serverCertificateHashes: [{ algorithm: "sha-256", value: Buffer.from(hash, "hex") }] } : {}),
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      wt.ready,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new MoqError("MOQ_TIMEOUT", `WebTransport session not ready within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    try {
      wt.close();
    } catch {
      // Never opened.
    }
    wt.closed.catch(() => {});
    if (err instanceof MoqError) throw err;
    const info = await Promise.race([
      wt.closed.then(
        (value) => value,
        (closeErr: unknown) => closeErr,
      ),
      new Promise((resolve) => setTimeout(resolve, 0)),
    ]);
    const status =
      (info as { closeCode?: number } | undefined)?.closeCode ?? (err as { code?: number } | undefined)?.code;
    throw new MoqError(
      status === 401 || status === 403 ? "MOQ_UNAUTHORIZED" : "MOQ_TRANSPORT",
      `WebTransport connection to ${target.host} failed: ${(err as Error)?.message ?? String(err)}${status ? ` (HTTP ${status})` : ""}`,
    );
  } finally {
    clearTimeout(timer);
  }
  const protocol = (wt.protocol ?? "").replace(/^"(.*)"$/, "$1");
  // fails-components reports no HTTP version; HTTP/3 is only ever attempted when not forced to HTTP/2.
  const kind: MoqClientTransport = http2Only ? "webtransport-h2" : "webtransport-h3";
  return { transport: new WebTransportSession(wt, { role: "client", protocol, kind }), kind };
}

/**
 * Connects to a moq-lite server at `url` (the path is the session root; `?token=` carries
 * credentials) and completes SETUP when the protocol needs it. Over WebSocket, `http:`/`https:`
 * map to `ws:`/`wss:`; over WebTransport, `http:` means the development flow (fetch
 * `/certificate.sha256`, then connect over TLS trusting that certificate).
 */
export async function connectMoq(url: string | URL, options: ConnectMoqOptions = {}): Promise<MoqClient> {
  let transport: TransportSession;
  let framing: Framing | undefined;
  let kind: MoqClientTransport = "websocket";
  if (options.transport === "webtransport") {
    const opened = await openWebTransport(url, options);
    transport = opened.transport;
    kind = opened.kind;
  } else {
    const framings = options.framings ?? DEFAULT_FRAMINGS;
    const qmux = await openTransport(
      webSocketUrl(url),
      offeredSubprotocols(framings, options.appProtocols),
      options,
    );
    transport = qmux;
    framing = qmux.framing;
  }
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
      ietf: options.ietf,
    });
    return new MoqClient(session, local, remote.consume(), framing, kind);
  } catch (err) {
    throw toMoqError(err);
  }
}
