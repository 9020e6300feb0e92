/**
 * A moq-lite session over any {@link TransportSession}, in either role. The same code runs a
 * relay's side of a connection (`MoqSession.accept`) and a client's (`MoqSession.connect`):
 *
 * - `serve` is what the peer may subscribe to and be told about (a relay passes a view of its
 *   origin scoped to the connection's root and read permissions; a client its own broadcasts);
 * - `receive` is where the peer's broadcasts land (a relay passes the same origin scoped to the
 *   root and publish permissions; a client a separate origin of remote broadcasts);
 * - `announceInterest` lists the prefixes to ask the peer about right after setup.
 *
 * The version is chosen by the transport's application protocol (lite-03/04) or by the SETUP
 * exchange (lite-01/02, keeping the SETUP stream open as the session stream). A message that
 * breaks the protocol closes this session with CONNECTION_CLOSE carrying the error's wire code
 * and a reason, logged once; it never affects other sessions.
 */
import { MoqError, ProtocolViolationError, toMoqError, WireErrorCode } from "../error.ts";
import type { IetfContext, IetfOptions } from "../ietf/context.ts";
import { ietfSessionCode } from "../ietf/errors.ts";
import {
  acceptIetfTransport,
  answerDraft14Setup,
  connectIetfTransport,
  type IetfHandshake,
  selectSetupVersion,
} from "../ietf/handshake.ts";
import { IetfSession } from "../ietf/session.ts";
import { IetfProtocol, IetfVersion, ietfVersionForProtocol, isIetfVersion } from "../ietf/version.ts";
import type { OriginConsumer, OriginProducer } from "../model/origin.ts";
import type { BidiStream, TransportCloseInfo, TransportSession, TransportStats } from "../transport.ts";
import { utf8 } from "../wire/bytes.ts";
import { decodeGoaway, encodeGoaway } from "../wire/goaway.ts";
import {
  decodeClientSetup,
  decodeServerSetup,
  decodeSessionUpdate,
  encodeClientSetup,
  encodeServerSetup,
  SetupParameter,
} from "../wire/setup.ts";
import { StreamReader } from "../wire/stream-reader.ts";
import { encodeVarint } from "../wire/varint.ts";
import {
  isSetupEra,
  SETUP_VERSIONS,
  StreamType,
  usesSetup,
  Version,
  versionForProtocol,
  versionName,
} from "../wire/version.ts";
import {
  CONTROL_PRIORITY,
  DEFAULT_SESSION_LIMITS,
  type FrameSentEvent,
  isViolation,
  type SessionContext,
  type SessionLimits,
} from "./context.ts";
import { type MoqLogger, silentLogger } from "./logger.ts";
import { type ServedSubscription, SessionPublisher } from "./publisher.ts";
import { SessionSubscriber } from "./subscriber.ts";

/** Options of {@link MoqSession.accept} and {@link MoqSession.connect}. */
export interface SessionOptions {
  /** What the peer may subscribe to and be announced. Omitted: nothing is served. */
  readonly serve?: OriginConsumer;
  /** Where the peer's announced broadcasts are published. Omitted: nothing is imported. */
  readonly receive?: OriginProducer;
  /** Prefixes (relative to the peer's root) to ask the peer about after setup. Default `[""]` when `receive` is set. */
  readonly announceInterest?: readonly string[];
  readonly limits?: Partial<SessionLimits>;
  readonly logger?: MoqLogger;
  /** Fields added to every log line of this session (e.g. remote address). */
  readonly logFields?: Readonly<Record<string, unknown>>;
  /** Called when the last byte of a frame is handed to this session's connection. */
  readonly onFrameSent?: (event: FrameSentEvent) => void;
  /** Called when a lite-04 or moq-transport server sends GOAWAY (client role). */
  readonly onGoaway?: (uri: string) => void;
  /** moq-transport (IETF drafts 14 to 17) negotiation and limits; see `src/ietf/`. */
  readonly ietf?: IetfOptions;
}

/** Byte and subscription counters of a session. */
export interface SessionStats extends TransportStats {
  /** Subscriptions the peer holds here. */
  readonly subscriptions: number;
  /** Subscriptions this side holds on the peer. */
  readonly upstreamSubscriptions: number;
  /** Broadcasts imported from the peer. */
  readonly importedBroadcasts: number;
}

const IMPLEMENTATION = "lvqr-moq-lite";

/** What the handshake settled: the version, and the session stream (lite-01/02) or the moq-transport state. */
interface Established {
  readonly version: Version | IetfVersion;
  readonly sessionStream?: { stream: BidiStream; reader: StreamReader };
  readonly ietf?: IetfHandshake;
}

/**
 * One moq-lite session, or one moq-transport session mapped onto the same model. Create it with
 * {@link MoqSession.accept} or {@link MoqSession.connect}.
 */
export class MoqSession {
  readonly transport: TransportSession;
  /** The negotiated version: a moq-lite version, or a moq-transport draft ({@link IetfVersion}). */
  readonly version: Version | IetfVersion;
  readonly #logger: MoqLogger;
  readonly #publisher: SessionPublisher;
  readonly #subscriber: SessionSubscriber;
  readonly #ctx: SessionContext;
  /** The moq-transport engine, when a draft was negotiated (the lite halves then stay idle). */
  readonly #ietf: IetfSession | undefined;
  readonly #closed: Promise<TransportCloseInfo>;
  readonly #onGoaway: ((uri: string) => void) | undefined;
  #closing = false;

  private constructor(transport: TransportSession, established: Established, options: SessionOptions) {
    const { version, sessionStream } = established;
    this.transport = transport;
    this.version = version;
    this.#logger = options.logger ?? silentLogger;
    this.#onGoaway = options.onGoaway;
    const limits = { ...DEFAULT_SESSION_LIMITS, ...options.limits };
    const logFields = { ...options.logFields, version: versionName(version) };
    const session = this;
    this.#ctx = {
      transport,
      version: isIetfVersion(version) ? Version.Lite02 : version,
      limits,
      logger: this.#logger,
      logFields,
      onFrameSent: options.onFrameSent,
      fail: (error) => session.#fail(error),
      get closing() {
        return session.#closing;
      },
    };
    this.#subscriber = new SessionSubscriber(this.#ctx, established.ietf ? undefined : options.receive);
    this.#publisher = new SessionPublisher(this.#ctx, established.ietf ? undefined : options.serve, (path) =>
      this.#subscriber.imported(path),
    );
    if (established.ietf && isIetfVersion(version)) {
      const ietfCtx: IetfContext = {
        transport,
        version,
        role: transport.role,
        limits,
        logger: this.#logger,
        logFields,
        onFrameSent: options.onFrameSent,
        fail: (error) => session.#fail(error),
        get closing() {
          return session.#closing;
        },
      };
      this.#ietf = new IetfSession(ietfCtx, {
        handshake: established.ietf,
        serve: options.serve,
        receive: options.receive,
        announceInterest: options.receive ? (options.announceInterest ?? [""]) : [],
        onGoaway: options.onGoaway,
      });
    }
    this.#closed = transport.closed.then((info) => {
      this.#closing = true;
      this.#ietf?.close();
      this.#publisher.close();
      this.#subscriber.close();
      const violation: boolean = isViolation(info.error);
      if (info.error && violation) {
        this.#logger.warn(
          { ...logFields, code: info.code, err: info.error.message },
          "moq session closed: protocol violation",
        );
      } else if (info.error) {
        this.#logger.info(
          { ...logFields, code: info.code, err: info.error.message },
          "moq session closed on error",
        );
      } else {
        this.#logger.debug(
          { ...logFields, code: info.code, reason: info.reason, remote: info.remote },
          "moq session closed",
        );
      }
      return info;
    });

    if (this.#ietf) return;
    if (sessionStream) void this.#runSessionStream(sessionStream.stream, sessionStream.reader);
    void this.#acceptBidis();
    void this.#acceptUnis();
    if (options.receive) this.#subscriber.requestAnnouncements(options.announceInterest ?? [""]);
  }

  /**
   * Runs the server side of a session on `transport`: SETUP (unless the transport's protocol
   * already fixed the version), then serving and importing. Rejects (and closes the transport)
   * when setup fails.
   */
  static async accept(transport: TransportSession, options: SessionOptions = {}): Promise<MoqSession> {
    const limits = { ...DEFAULT_SESSION_LIMITS, ...options.limits };
    return MoqSession.#establish(transport, options, limits, async () => {
      const fixed = versionForProtocol(transport.protocol);
      if (fixed !== undefined) return { version: fixed, sessionStream: undefined };
      const ietf = options.ietf?.enabled === false ? undefined : ietfVersionForProtocol(transport.protocol);
      if (ietf !== undefined && ietf !== IetfVersion.Draft14) {
        return { version: ietf, ietf: await acceptIetfTransport(transport, ietf, options.ietf) };
      }
      if (!usesSetup(transport.protocol) && ietf !== IetfVersion.Draft14) {
        throw new MoqError(
          "MOQ_VERSION",
          `unsupported application protocol ${JSON.stringify(transport.protocol)}`,
        );
      }
      const stream = await transport.acceptBidi();
      if (!stream) throw new MoqError("MOQ_CLOSED", "connection closed before SETUP");
      const reader = new StreamReader(stream.recv, "SETUP stream");
      const type = await reader.varint("stream type");
      if (type !== StreamType.ClientSetup) {
        throw new ProtocolViolationError(
          `the first stream must carry CLIENT_SETUP (0x20), got type 0x${type.toString(16)}`,
        );
      }
      const length = await reader.u16("CLIENT_SETUP length");
      const setup = decodeClientSetup(await reader.bytes(length, "CLIENT_SETUP"));
      // `moq-00` is draft-14's own protocol: only draft-14 may be selected on it.
      const version =
        ietf === IetfVersion.Draft14
          ? setup.versions.includes(IetfVersion.Draft14)
            ? IetfVersion.Draft14
            : undefined
          : selectSetupVersion(setup.versions, options.ietf);
      if (version !== undefined && isIetfVersion(version)) {
        return { version, ietf: answerDraft14Setup(stream, reader, setup, options.ietf) };
      }
      if (version === undefined) {
        throw new MoqError(
          "MOQ_VERSION",
          `no common moq-lite version (offered ${setup.versions.map((v) => `0x${v.toString(16)}`).join(", ") || "none"})`,
        );
      }
      stream.send.setPriority(CONTROL_PRIORITY);
      stream.send.write(encodeServerSetup({ version, parameters: new Map() }));
      return { version, sessionStream: { stream, reader } };
    });
  }

  /** Runs the client side of a session on `transport` (SETUP when the protocol needs it). */
  static async connect(transport: TransportSession, options: SessionOptions = {}): Promise<MoqSession> {
    const limits = { ...DEFAULT_SESSION_LIMITS, ...options.limits };
    return MoqSession.#establish(transport, options, limits, async () => {
      const fixed = versionForProtocol(transport.protocol);
      if (fixed !== undefined) return { version: fixed, sessionStream: undefined };
      let ietf = options.ietf?.enabled === false ? undefined : ietfVersionForProtocol(transport.protocol);
      // On the SETUP path, preferDraft14 makes this client offer draft-14 only.
      if (ietf === undefined && usesSetup(transport.protocol) && options.ietf?.preferDraft14)
        ietf = IetfVersion.Draft14;
      if (ietf !== undefined) {
        const handshake = await connectIetfTransport(transport, ietf, options.ietf);
        return { version: handshake.version, ietf: handshake };
      }
      if (!usesSetup(transport.protocol)) {
        throw new MoqError(
          "MOQ_VERSION",
          `unsupported application protocol ${JSON.stringify(transport.protocol)}`,
        );
      }
      const stream = await transport.openBidi();
      stream.send.setPriority(CONTROL_PRIORITY);
      stream.send.write(
        encodeClientSetup({
          versions: SETUP_VERSIONS,
          parameters: new Map([[SetupParameter.Implementation, utf8(IMPLEMENTATION)]]),
        }),
      );
      const reader = new StreamReader(stream.recv, "SETUP stream");
      const type = await reader.varint("stream type");
      if (type !== StreamType.ServerSetup) {
        throw new ProtocolViolationError(`expected SERVER_SETUP (0x21), got type 0x${type.toString(16)}`);
      }
      const length = await reader.u16("SERVER_SETUP length");
      const setup = decodeServerSetup(await reader.bytes(length, "SERVER_SETUP"));
      const version = SETUP_VERSIONS.find((candidate) => candidate === setup.version);
      if (version === undefined) {
        throw new MoqError(
          "MOQ_VERSION",
          `server selected ${versionName(setup.version)}, which was not offered`,
        );
      }
      return { version, sessionStream: { stream, reader } };
    });
  }

  static async #establish(
    transport: TransportSession,
    options: SessionOptions,
    limits: SessionLimits,
    setup: () => Promise<Established>,
  ): Promise<MoqSession> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new MoqError("MOQ_TIMEOUT", `SETUP did not complete within ${limits.setupTimeoutMs} ms`)),
        limits.setupTimeoutMs,
      );
    });
    const closed = transport.closed.then((info) => {
      throw new MoqError(
        "MOQ_CLOSED",
        `connection closed during setup (${info.code}${info.reason ? `: ${info.reason}` : ""})`,
      );
    });
    try {
      const established = await Promise.race([setup(), timeout, closed]);
      return new MoqSession(transport, established, options);
    } catch (err) {
      const error = toMoqError(err);
      const logger = options.logger ?? silentLogger;
      logger.warn({ ...options.logFields, code: error.code, err: error.message }, "moq session setup failed");
      transport.close(closeCode(transport, error), error.message, error);
      throw error;
    } finally {
      clearTimeout(timer);
      closed.catch(() => {});
    }
  }

  /** Resolves when the session has closed, with the reason. */
  get closed(): Promise<TransportCloseInfo> {
    return this.#closed;
  }

  /** The negotiated application protocol of the transport. */
  get protocol(): string {
    return this.transport.protocol;
  }

  /** Counters for this session. */
  stats(): SessionStats {
    const engine = this.#ietf ?? {
      subscriptionCount: this.#publisher.subscriptionCount,
      upstreamCount: this.#subscriber.upstreamCount,
      importedCount: this.#subscriber.importedCount,
    };
    return {
      ...this.transport.stats(),
      subscriptions: engine.subscriptionCount,
      upstreamSubscriptions: engine.upstreamCount,
      importedBroadcasts: engine.importedCount,
    };
  }

  /** The peer's live subscriptions on this session. */
  subscriptions(): Iterable<ServedSubscription> {
    return this.#ietf?.subscriptions() ?? this.#publisher.subscriptions();
  }

  /**
   * Asks the client to reconnect to `uri` (GOAWAY): on lite-04 and on moq-transport sessions,
   * a no-op on other versions.
   */
  async goaway(uri: string): Promise<void> {
    if (this.#ietf) {
      if (!this.#closing) this.#ietf.goaway(uri);
      return;
    }
    if (this.version !== Version.Lite04 || this.#closing) return;
    const stream = await this.transport.openBidi();
    stream.send.setPriority(CONTROL_PRIORITY);
    stream.send.write(encodeVarint(StreamType.Goaway));
    stream.send.write(encodeGoaway({ uri }, this.#ctx.version));
    stream.send.finish();
  }

  /** Closes the session: CONNECTION_CLOSE with `error`'s wire code and message, or 0. Idempotent. */
  close(error?: MoqError): void {
    if (this.#closing) return;
    this.#closing = true;
    if (error) this.transport.close(this.#closeCode(error), error.message);
    else this.transport.close(WireErrorCode.Cancel, "");
  }

  #fail(error: MoqError): void {
    if (this.#closing) return;
    this.#closing = true;
    this.transport.close(this.#closeCode(error), error.message, error);
  }

  /** moq-transport sessions close with its termination codes; moq-lite ones with the error's own. */
  #closeCode(error: MoqError): number {
    return this.#ietf ? ietfSessionCode(error) : error.wireCode;
  }

  #onStreamError(err: unknown, what: string): void {
    if (isViolation(err)) {
      this.#fail(err);
      return;
    }
    if (!this.#closing) {
      this.#logger.debug({ ...this.#ctx.logFields, err: toMoqError(err).message }, `${what} ended`);
    }
  }

  async #runSessionStream(stream: BidiStream, reader: StreamReader): Promise<void> {
    try {
      for (;;) {
        const body = await reader.messageOrEnd("SESSION_UPDATE", this.#ctx.limits.maxMessageBytes);
        if (!body) break;
        decodeSessionUpdate(body, this.#ctx.version);
      }
      // The peer closed the session stream: the session is over.
      if (!this.#closing) this.close();
    } catch (err) {
      if (isViolation(err)) this.#fail(err);
      else if (!this.#closing) this.close(new MoqError("MOQ_CANCELLED", "session stream reset by the peer"));
    } finally {
      stream.send.finish();
    }
  }

  async #acceptBidis(): Promise<void> {
    for (;;) {
      const stream = await this.transport.acceptBidi();
      if (!stream) return;
      void this.#handleBidi(stream).catch((err) => {
        stream.send.reset(toMoqError(err).wireCode);
        stream.recv.stop(WireErrorCode.Cancel);
        this.#onStreamError(err, "bidi stream");
      });
    }
  }

  async #acceptUnis(): Promise<void> {
    for (;;) {
      const stream = await this.transport.acceptUni();
      if (!stream) return;
      void this.#subscriber.receiveGroup(stream).catch((err) => {
        stream.stop(WireErrorCode.Cancel);
        this.#onStreamError(err, "group stream");
      });
    }
  }

  async #handleBidi(stream: BidiStream): Promise<void> {
    const reader = new StreamReader(stream.recv, "bidi stream");
    const type = await reader.varint("stream type");
    const lite03 = !isSetupEra(this.#ctx.version);
    switch (type) {
      case StreamType.Announce:
        return this.#publisher.serveAnnounce(stream, reader);
      case StreamType.Subscribe:
        return this.#publisher.serveSubscribe(stream, reader);
      case StreamType.Probe:
        if (lite03) return this.#publisher.serveProbe(stream, reader);
        break;
      case StreamType.Fetch:
        if (lite03) return this.#publisher.serveFetch(stream, reader);
        break;
      case StreamType.Goaway:
        if (this.version === Version.Lite04 && this.transport.role === "client") {
          const goaway = decodeGoaway(
            await reader.message("GOAWAY", this.#ctx.limits.maxMessageBytes),
            this.#ctx.version,
          );
          this.#logger.info({ ...this.#ctx.logFields, uri: goaway.uri }, "server sent GOAWAY");
          this.#onGoaway?.(goaway.uri);
          stream.send.finish();
          return;
        }
        break;
    }
    // Unknown (or wrong-version) stream types are refused without ending the session.
    this.#logger.debug({ ...this.#ctx.logFields, type }, "unexpected bidi stream type; reset");
    stream.send.reset(WireErrorCode.UnexpectedStream);
    reader.stop(WireErrorCode.UnexpectedStream);
  }
}

/** The close code for a setup failure: moq-transport's when the protocol selected a draft. */
function closeCode(transport: TransportSession, error: MoqError): number {
  return ietfVersionForProtocol(transport.protocol) !== undefined &&
    transport.protocol !== IetfProtocol.Draft14
    ? ietfSessionCode(error)
    : error.wireCode;
}
