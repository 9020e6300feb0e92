/**
 * One RTMP connection on the server side: handshake, chunk stream, protocol control, the
 * FMLE/OBS command flow, admission, and the publish session it feeds. Internal to the package;
 * {@link RtmpServer} owns connections.
 */
import type { Socket } from "node:net";
import type { PublishDecision, PublishRequest } from "./admission.ts";
import type { AmfObject, AmfValue } from "./amf0.ts";
import { ByteReader } from "./byte-reader.ts";
import { ChunkStreamReader, ChunkStreamWriter, MessageType, type RtmpMessage } from "./chunk-stream.ts";
import {
  encodeCommand,
  isAmfObject,
  NetStatus,
  parseCommand,
  parseDataMessage,
  type RtmpCommand,
  statusInfo,
} from "./commands.ts";
import { RtmpError, toRtmpError } from "./errors.ts";
import { type HandshakeMode, ServerHandshake } from "./handshake.ts";
import type { Logger } from "./logger.ts";
import {
  acknowledgementPayload,
  ChunkStreamId,
  PeerBandwidthLimit,
  parseUserControl,
  readUint32Payload,
  setChunkSizePayload,
  setPeerBandwidthPayload,
  UserControlEvent,
  userControlPayload,
  windowAckSizePayload,
} from "./messages.ts";
import type { ResolvedServerOptions } from "./options.ts";
import { endPublishSession, type PublishEndReason, PublishMedia, PublishSession } from "./session.ts";
import { broadcastNameProblem, splitStreamName } from "./stream-name.ts";

/** What a connection needs from the server that owns it. */
export interface ConnectionHost {
  readonly options: ResolvedServerOptions;
  readonly logger: Logger;
  countBytesIn(n: number): void;
  countBytesOut(n: number): void;
  /** Counts, logs and reports a violation that closes a connection. */
  reportError(error: RtmpError, fields: Record<string, unknown>): void;
  /** Claims `name` for a new session; false when the duplicate policy refuses. */
  claim(name: string): boolean;
  /** Registers a started session (and emits `publish`). */
  started(session: PublishSession): void;
  /** Forgets a session that ended. */
  ended(session: PublishSession): void;
  rejected(info: {
    app: string;
    stream: string;
    name?: string;
    remoteAddress: string;
    status: string;
    description: string;
  }): void;
  closed(connection: RtmpConnection): void;
}

const MAX_STREAMS_PER_CONNECTION = 16;
const FLUSH_GRACE_MS = 1000;

interface Publishing {
  readonly session: PublishSession;
  readonly media: PublishMedia;
  readonly streamId: number;
}

function timeoutReason(code: string): PublishEndReason {
  return code === "RTMP_IDLE_TIMEOUT" ? "timeout" : "error";
}

function fieldString(obj: AmfObject, key: string): string {
  const v = obj[key];
  return typeof v === "string" ? v : "";
}

/** Splits an aggregate message (type 22) into its FLV tags. */
export function splitAggregate(message: RtmpMessage): RtmpMessage[] {
  const r = new ByteReader(message.payload, "FLV_INVALID", "RTMP aggregate message");
  const out: RtmpMessage[] = [];
  let base: number | undefined;
  while (r.remaining >= 11) {
    const typeId = r.u8() & 0x1f;
    const size = r.u24();
    const low = r.u24();
    const ts = r.u8() * 0x1000000 + low;
    r.u24(); // stream id
    const payload = r.bytesView(size);
    if (r.remaining >= 4) r.skip(4); // back pointer
    if (typeId !== MessageType.Audio && typeId !== MessageType.Video && typeId !== MessageType.DataAmf0) {
      throw r.error(
        `RTMP aggregate message contains a tag of type ${typeId} (only audio, video and data are allowed)`,
      );
    }
    base ??= ts;
    const timestamp = (((message.timestamp + ts - base) % 0x1_0000_0000) + 0x1_0000_0000) % 0x1_0000_0000;
    out.push({
      chunkStreamId: message.chunkStreamId,
      typeId,
      streamId: message.streamId,
      timestamp,
      payload,
    });
  }
  return out;
}

/** The server side of one RTMP connection. */
export class RtmpConnection {
  readonly socket: Socket;
  readonly remoteAddress: string;
  readonly #host: ConnectionHost;
  readonly #options: ResolvedServerOptions;
  readonly #logger: Logger;
  #handshake: ServerHandshake | undefined;
  #handshakeMode: HandshakeMode = "plain";
  readonly #reader: ChunkStreamReader;
  readonly #writer = new ChunkStreamWriter();
  readonly #amfLimits: { maxDepth: number; maxValues: number };
  #closed = false;
  readonly #pauses = new Set<string>();
  #handshakeTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #publishTimer: NodeJS.Timeout | undefined;
  #connected = false;
  #app = "";
  #appQuery = new URLSearchParams();
  #tcUrl = "";
  #flashVer = "";
  #nextStreamId = 1;
  #publishing: Publishing | undefined;
  #admitting = false;
  #bytesIn = 0;
  #lastAck = 0;
  #peerWindow = 0;
  readonly #whenClosed: Promise<void>;
  #resolveClosed!: () => void;

  constructor(socket: Socket, host: ConnectionHost) {
    this.socket = socket;
    this.#host = host;
    this.#options = host.options;
    this.#logger = host.logger;
    this.remoteAddress = `${socket.remoteAddress ?? "unknown"}:${socket.remotePort ?? 0}`;
    this.#handshake = new ServerHandshake();
    this.#amfLimits = { maxDepth: this.#options.amfMaxDepth, maxValues: this.#options.amfMaxValues };
    this.#reader = new ChunkStreamReader({
      maxChunkSize: this.#options.maxChunkSize,
      maxMessageSize: this.#options.maxMessageSize,
      maxChunkStreams: this.#options.maxChunkStreams,
      budgetBytes: this.#options.connectionBudgetBytes,
    });
    this.#whenClosed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    socket.setNoDelay(true);
    socket.on("data", (data: Buffer) => this.#onData(data));
    socket.on("error", (err) => this.#onSocketError(err));
    socket.on("close", () => this.#onSocketClose());
    this.#handshakeTimer = setTimeout(() => {
      this.#fail(
        new RtmpError(
          "RTMP_HANDSHAKE_TIMEOUT",
          `RTMP handshake not completed within ${this.#options.handshakeTimeoutMs} ms`,
        ),
      );
    }, this.#options.handshakeTimeoutMs);
    this.#idleTimer = setTimeout(() => {
      this.#fail(
        new RtmpError(
          "RTMP_IDLE_TIMEOUT",
          `no bytes from the RTMP peer for ${this.#options.idleTimeoutMs} ms`,
        ),
      );
    }, this.#options.idleTimeoutMs);
  }

  /** Resolves once the socket has closed. */
  get whenClosed(): Promise<void> {
    return this.#whenClosed;
  }

  /** Bytes the chunk stream reader holds (unparsed input plus reassembly buffers). */
  get bufferedBytes(): number {
    return this.#reader.bufferedBytes;
  }

  /** The active publish session, if any. */
  get session(): PublishSession | undefined {
    return this.#publishing?.session;
  }

  /** Ends everything for server shutdown. */
  shutdown(): void {
    if (this.#publishing !== undefined) this.#kick("shutdown");
    else this.#close();
  }

  // ------------------------------------------------------------------------------------------
  // Input

  #onData(data: Buffer): void {
    if (this.#closed) return;
    this.#bytesIn += data.byteLength;
    this.#host.countBytesIn(data.byteLength);
    this.#idleTimer?.refresh();
    try {
      const hs = this.#handshake;
      if (hs !== undefined) {
        const step = hs.push(data);
        if (step.reply !== undefined) this.#write(step.reply);
        if (!step.done) return;
        this.#handshake = undefined;
        this.#handshakeMode = hs.mode ?? "plain";
        clearTimeout(this.#handshakeTimer);
        this.#handshakeTimer = undefined;
        this.#logger.debug(
          { remoteAddress: this.remoteAddress, mode: this.#handshakeMode, clientVersion: hs.clientVersion },
          "RTMP handshake complete",
        );
        this.#publishTimer = setTimeout(() => {
          this.#fail(
            new RtmpError(
              "RTMP_PUBLISH_TIMEOUT",
              `RTMP connection did not start publishing within ${this.#options.publishTimeoutMs} ms of its handshake`,
            ),
          );
        }, this.#options.publishTimeoutMs);
        if (step.rest !== undefined) this.#reader.push(step.rest);
      } else {
        this.#reader.push(data);
      }
      this.#pump();
    } catch (err) {
      this.#fail(err);
    }
  }

  #pump(): void {
    while (this.#pauses.size === 0 && !this.#closed) {
      const message = this.#reader.next();
      if (message === null) break;
      this.#handle(message);
    }
    if (this.#peerWindow > 0 && this.#bytesIn - this.#lastAck >= this.#peerWindow && !this.#closed) {
      this.#lastAck = this.#bytesIn;
      this.#sendControl(MessageType.Acknowledgement, acknowledgementPayload(this.#bytesIn));
    }
  }

  #handle(m: RtmpMessage): void {
    switch (m.typeId) {
      case MessageType.SetChunkSize:
        this.#logger.debug(
          { remoteAddress: this.remoteAddress, chunkSize: this.#reader.chunkSize },
          "peer set its chunk size",
        );
        return;
      case MessageType.Abort:
      case MessageType.Acknowledgement:
      case MessageType.SetPeerBandwidth:
        return;
      case MessageType.UserControl: {
        const uc = parseUserControl(m.payload);
        if (uc.event === UserControlEvent.PingRequest) {
          this.#sendControl(
            MessageType.UserControl,
            userControlPayload(UserControlEvent.PingResponse, uc.value),
          );
        }
        return;
      }
      case MessageType.WindowAckSize:
        this.#peerWindow = readUint32Payload(m.payload, "Window Acknowledgement Size");
        return;
      case MessageType.Audio:
      case MessageType.Video: {
        const p = this.#publishing;
        // Media before Publish.Start (or after unpublish) has no session to go to.
        if (p === undefined) return;
        if (m.typeId === MessageType.Video) p.media.video(m.timestamp, m.payload);
        else p.media.audio(m.timestamp, m.payload);
        return;
      }
      case MessageType.DataAmf0:
      case MessageType.DataAmf3:
        this.#handleData(parseDataMessage(m.payload, m.typeId === MessageType.DataAmf3, this.#amfLimits));
        return;
      case MessageType.CommandAmf0:
      case MessageType.CommandAmf3:
        this.#handleCommand(
          parseCommand(m.payload, m.typeId === MessageType.CommandAmf3, this.#amfLimits),
          m,
        );
        return;
      case MessageType.Aggregate:
        for (const sub of splitAggregate(m)) this.#handle(sub);
        return;
      default:
        // Shared objects and unknown types carry nothing a publish needs.
        this.#logger.debug(
          { remoteAddress: this.remoteAddress, typeId: m.typeId },
          "ignoring RTMP message type",
        );
    }
  }

  #handleData(values: AmfValue[]): void {
    let v = values;
    if (v[0] === "@setDataFrame") v = v.slice(1);
    if (v[0] !== "onMetaData") return;
    const meta = v[1];
    if (!isAmfObject(meta)) return;
    this.#publishing?.media.metadata(meta as Record<string, unknown>);
  }

  #handleCommand(cmd: RtmpCommand, m: RtmpMessage): void {
    switch (cmd.name) {
      case "connect":
        this.#onConnect(cmd);
        return;
      case "releaseStream":
      case "FCPublish":
      case "getStreamLength":
        if (cmd.transactionId > 0)
          this.#sendCommand(ChunkStreamId.Command, 0, "_result", cmd.transactionId, null, undefined);
        return;
      case "createStream": {
        if (this.#nextStreamId > MAX_STREAMS_PER_CONNECTION) {
          throw new RtmpError(
            "RTMP_COMMAND_INVALID",
            `RTMP client created more than ${MAX_STREAMS_PER_CONNECTION} streams on one connection`,
          );
        }
        this.#sendCommand(ChunkStreamId.Command, 0, "_result", cmd.transactionId, null, this.#nextStreamId++);
        return;
      }
      case "publish":
        this.#onPublish(cmd, m);
        return;
      case "FCUnpublish":
        if (cmd.transactionId > 0)
          this.#sendCommand(ChunkStreamId.Command, 0, "_result", cmd.transactionId, null, undefined);
        this.#endPublishing("unpublish");
        return;
      case "deleteStream":
      case "closeStream":
        this.#endPublishing("unpublish");
        return;
      case "play":
      case "play2":
        this.#sendStatus(m.streamId, "error", NetStatus.PlayFailed, "this server accepts publishing only");
        this.#closeAfterFlush();
        return;
      default:
        this.#logger.debug({ remoteAddress: this.remoteAddress, command: cmd.name }, "ignoring RTMP command");
    }
  }

  #onConnect(cmd: RtmpCommand): void {
    if (this.#connected)
      throw new RtmpError("RTMP_COMMAND_INVALID", "RTMP connect received twice on one connection");
    const obj = cmd.object;
    if (!isAmfObject(obj)) throw new RtmpError("RTMP_COMMAND_INVALID", "RTMP connect has no command object");
    const app = splitStreamName(fieldString(obj as AmfObject, "app").replace(/^\/+|\/+$/g, ""));
    this.#app = app.stream;
    this.#appQuery = app.query;
    this.#tcUrl = fieldString(obj as AmfObject, "tcUrl");
    this.#flashVer = fieldString(obj as AmfObject, "flashVer");
    this.#connected = true;
    const encoding = (obj as AmfObject)["objectEncoding"];
    const o = this.#options;
    this.#sendControl(MessageType.WindowAckSize, windowAckSizePayload(o.ackWindow));
    this.#sendControl(
      MessageType.SetPeerBandwidth,
      setPeerBandwidthPayload(o.peerBandwidth, PeerBandwidthLimit.Dynamic),
    );
    this.#sendControl(MessageType.SetChunkSize, setChunkSizePayload(o.outChunkSize));
    this.#writer.setChunkSize(o.outChunkSize);
    const properties: AmfObject = { fmsVer: "FMS/3,0,1,123", capabilities: 31, mode: 1 };
    // Enhanced RTMP clients list the codecs they can send; answer with those this server carries.
    if (Array.isArray((obj as AmfObject)["fourCcList"]))
      properties["fourCcList"] = ["avc1", "hvc1", "av01", "mp4a"];
    this.#sendCommand(
      ChunkStreamId.Command,
      0,
      "_result",
      cmd.transactionId,
      properties,
      statusInfo("status", NetStatus.ConnectSuccess, "Connection succeeded.", {
        objectEncoding: typeof encoding === "number" ? encoding : 0,
      }),
    );
    this.#logger.debug(
      { remoteAddress: this.remoteAddress, app: this.#app, flashVer: this.#flashVer },
      "RTMP connect",
    );
  }

  #onPublish(cmd: RtmpCommand, m: RtmpMessage): void {
    if (!this.#connected) throw new RtmpError("RTMP_COMMAND_INVALID", "RTMP publish before connect");
    if (this.#publishing !== undefined || this.#admitting) {
      throw new RtmpError("RTMP_COMMAND_INVALID", "RTMP publish while this connection is already publishing");
    }
    const raw = cmd.args[0];
    const { stream, query } = splitStreamName(typeof raw === "string" ? raw : "");
    for (const [key, value] of this.#appQuery) if (!query.has(key)) query.append(key, value);
    this.#admitting = true;
    this.#pause("authorize");
    this.#admit(
      {
        app: this.#app,
        stream,
        query,
        remoteAddress: this.remoteAddress,
        flashVer: this.#flashVer,
        tcUrl: this.#tcUrl,
      },
      m.streamId,
    ).catch((err) => this.#fail(err));
  }

  async #admit(request: PublishRequest, streamId: number): Promise<void> {
    const o = this.#options;
    let decision: PublishDecision;
    if (request.stream === "") {
      decision = {
        allow: false,
        status: "NetStream.Publish.BadName",
        description: "the stream name is empty",
      };
    } else if (o.authorize === undefined) {
      decision = { allow: true };
    } else {
      decision = await this.#authorize(request);
    }
    if (this.#closed) return;
    if (!decision.allow) {
      this.#reject(request, streamId, decision.status, decision.description);
      return;
    }
    const name = decision.name ?? `${request.app}/${request.stream}`;
    const problem = broadcastNameProblem(name);
    if (problem !== undefined) {
      const shown = name.length > 64 ? `${name.slice(0, 64)}...` : name;
      this.#reject(
        request,
        streamId,
        NetStatus.PublishBadName,
        `invalid stream name "${shown}": ${problem}`,
        name,
      );
      return;
    }
    if (!this.#host.claim(name)) {
      this.#reject(
        request,
        streamId,
        NetStatus.PublishBadName,
        `stream ${name} is already being published`,
        name,
      );
      return;
    }
    const session = new PublishSession({
      app: request.app,
      stream: request.stream,
      name,
      remoteAddress: this.remoteAddress,
      handshake: this.#handshakeMode,
      owner: {
        kick: (reason) => this.#kick(reason),
        alive: () => !this.#closed && !this.socket.destroyed,
        bytesReceived: () => this.#bytesIn,
      },
    });
    const media = new PublishMedia(session, o.maxTimestampJumpMs, this.#logger);
    this.#publishing = { session, media, streamId };
    clearTimeout(this.#publishTimer);
    this.#publishTimer = undefined;
    this.#sendControl(MessageType.UserControl, userControlPayload(UserControlEvent.StreamBegin, streamId));
    this.#sendStatus(streamId, "status", NetStatus.PublishStart, `${name} is now published.`, {
      details: name,
    });
    this.#admitting = false;
    this.#logger.info(
      { remoteAddress: this.remoteAddress, name, handshake: this.#handshakeMode },
      "RTMP publish started",
    );
    this.#host.started(session);
    this.#resume("authorize");
  }

  async #authorize(request: PublishRequest): Promise<PublishDecision> {
    const o = this.#options;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<PublishDecision>((resolve) => {
        timer = setTimeout(
          () =>
            resolve({
              allow: false,
              status: "NetStream.Publish.Unauthorized",
              description: "authorization timed out",
            }),
          o.authorizeTimeoutMs,
        );
      });
      const decision = await Promise.race([Promise.resolve().then(() => o.authorize!(request)), timeout]);
      if (typeof decision !== "object" || decision === null || typeof decision.allow !== "boolean") {
        throw new TypeError("authorize must return { allow: boolean, ... }");
      }
      return decision;
    } catch (err) {
      this.#logger.error(
        { remoteAddress: this.remoteAddress, app: request.app, error: (err as Error)?.message },
        "RTMP authorize failed; denying the publish",
      );
      return { allow: false, status: "NetStream.Publish.Unauthorized", description: "authorization failed" };
    } finally {
      clearTimeout(timer);
    }
  }

  #reject(
    request: PublishRequest,
    streamId: number,
    status: string,
    description: string,
    name?: string,
  ): void {
    this.#admitting = false;
    this.#host.rejected({
      app: request.app,
      stream: request.stream,
      ...(name === undefined ? {} : { name }),
      remoteAddress: this.remoteAddress,
      status,
      description,
    });
    this.#logger.info(
      { remoteAddress: this.remoteAddress, app: request.app, status, description },
      "RTMP publish rejected",
    );
    this.#sendStatus(streamId, "error", status, description);
    this.#closeAfterFlush();
  }

  #endPublishing(reason: PublishEndReason, error?: RtmpError): void {
    const p = this.#publishing;
    if (p === undefined) return;
    this.#publishing = undefined;
    if (endPublishSession(p.session, reason, error)) {
      this.#logger.info(
        { remoteAddress: this.remoteAddress, name: p.session.name, reason },
        "RTMP publish ended",
      );
    }
    this.#host.ended(p.session);
  }

  #kick(reason: PublishEndReason): void {
    const p = this.#publishing;
    if (p !== undefined && !this.#closed) {
      const why =
        reason === "takeover"
          ? "taken over by a new publisher"
          : reason === "shutdown"
            ? "server shutting down"
            : "stopped by the server";
      this.#sendStatus(
        p.streamId,
        "status",
        NetStatus.UnpublishSuccess,
        `${p.session.name} is unpublished (${why}).`,
      );
    }
    this.#endPublishing(reason);
    this.#closeAfterFlush();
  }

  // ------------------------------------------------------------------------------------------
  // Output

  #write(bytes: Uint8Array): void {
    if (this.#closed || this.socket.destroyed || !this.socket.writable) return;
    this.#host.countBytesOut(bytes.byteLength);
    if (!this.socket.write(bytes) && !this.#pauses.has("drain")) {
      // The peer is not reading what we send; stop reading what it sends until it does.
      this.#pause("drain");
      this.socket.once("drain", () => this.#resume("drain"));
    }
  }

  #sendControl(typeId: number, payload: Uint8Array): void {
    this.#write(
      this.#writer.encode({
        chunkStreamId: ChunkStreamId.Control,
        typeId,
        streamId: 0,
        timestamp: 0,
        payload,
      }),
    );
  }

  #sendCommand(
    chunkStreamId: number,
    streamId: number,
    name: string,
    transactionId: number,
    object: AmfValue,
    ...args: AmfValue[]
  ): void {
    const payload = encodeCommand(name, transactionId, object, ...args);
    this.#write(
      this.#writer.encode({
        chunkStreamId,
        typeId: MessageType.CommandAmf0,
        streamId,
        timestamp: 0,
        payload,
      }),
    );
  }

  #sendStatus(
    streamId: number,
    level: "status" | "error",
    code: string,
    description: string,
    extra?: AmfObject,
  ): void {
    this.#sendCommand(
      ChunkStreamId.Stream,
      streamId,
      "onStatus",
      0,
      null,
      statusInfo(level, code, description, extra),
    );
  }

  #pause(reason: string): void {
    this.#pauses.add(reason);
    this.socket.pause();
  }

  #resume(reason: string): void {
    this.#pauses.delete(reason);
    if (this.#pauses.size > 0 || this.#closed) return;
    this.socket.resume();
    try {
      this.#pump();
    } catch (err) {
      this.#fail(err);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Closing

  #fail(err: unknown): void {
    if (this.#closed) return;
    const error = err instanceof RtmpError ? err : toRtmpError(err, "RTMP_INTERNAL");
    const p = this.#publishing;
    this.#host.reportError(error, {
      remoteAddress: this.remoteAddress,
      ...(p === undefined ? { app: this.#app } : { name: p.session.name }),
    });
    if (error.code === "RTMP_UNSUPPORTED_CODEC" && p !== undefined) {
      this.#sendStatus(p.streamId, "error", NetStatus.PublishRejected, error.message);
      this.#endPublishing("error", error);
      this.#closeAfterFlush();
      return;
    }
    this.#endPublishing(timeoutReason(error.code), error);
    this.#close();
  }

  #onSocketError(err: Error): void {
    if (this.#closed) return;
    this.#logger.debug({ remoteAddress: this.remoteAddress, error: err.message }, "RTMP socket error");
    this.#endPublishing("disconnect", toRtmpError(err, "RTMP_SOCKET"));
    this.#close();
  }

  #onSocketClose(): void {
    this.#endPublishing("disconnect");
    this.#close();
    this.#host.closed(this);
    this.#resolveClosed();
  }

  #clearTimers(): void {
    clearTimeout(this.#handshakeTimer);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#publishTimer);
    this.#handshakeTimer = this.#idleTimer = this.#publishTimer = undefined;
  }

  #close(): void {
    if (!this.#closed) {
      this.#closed = true;
      this.#clearTimers();
    }
    this.#endPublishing("disconnect");
    if (!this.socket.destroyed) this.socket.destroy();
  }

  // Lets a final onStatus reach the peer before the socket goes; destroys it if the peer stalls.
  #closeAfterFlush(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimers();
    this.#endPublishing("disconnect");
    if (this.socket.destroyed) return;
    this.socket.end();
    // Keep reading (and discarding) so the peer's FIN is seen and the socket can close.
    this.#pauses.clear();
    this.socket.resume();
    const timer = setTimeout(() => this.socket.destroy(), FLUSH_GRACE_MS);
    timer.unref();
    this.socket.once("close", () => clearTimeout(timer));
  }
}
