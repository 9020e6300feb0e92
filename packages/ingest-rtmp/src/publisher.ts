/**
 * A minimal RTMP publish client: the handshake (plain or digest), `connect`, `releaseStream`,
 * `FCPublish`, `createStream`, `publish`, then metadata and raw FLV tag bodies (so callers can
 * send anything, Enhanced RTMP included), honouring socket backpressure, and `FCUnpublish` /
 * `deleteStream` on close. It reports every `onStatus` the server sends.
 */
import { EventEmitter } from "node:events";
import { connect as netConnect, type Socket } from "node:net";
import { type ConnectionOptions, connect as tlsConnect } from "node:tls";
import { AmfEcmaArray, type AmfObject, type AmfValue, encodeAmf0 } from "./amf0.ts";
import {
  ChunkStreamReader,
  ChunkStreamWriter,
  MessageType,
  type OutgoingMessage,
  type RtmpMessage,
} from "./chunk-stream.ts";
import { encodeCommand, isAmfObject, NetStatus, parseCommand } from "./commands.ts";
import { PublishRejectedError, RtmpError, toRtmpError } from "./errors.ts";
import { ClientHandshake, type ClientHandshakeResult } from "./handshake.ts";
import {
  acknowledgementPayload,
  ChunkStreamId,
  parseUserControl,
  readUint32Payload,
  setChunkSizePayload,
  UserControlEvent,
  userControlPayload,
  windowAckSizePayload,
} from "./messages.ts";

/** Options of {@link RtmpPublisher.connect}. */
export interface RtmpPublisherOptions {
  /** `flashVer` in connect (default "FMLE/3.0 (compatible; FMSc/1.0)", as OBS sends). */
  readonly flashVer?: string;
  /** Use the digest handshake like ffmpeg and OBS (default true). */
  readonly digestHandshake?: boolean;
  /** Time allowed for TCP connect through Publish.Start (default 10,000 ms). */
  readonly timeoutMs?: number;
  /** Outgoing chunk size, announced right after the handshake (default 4096). */
  readonly chunkSize?: number;
  /** Override the app parsed from the URL. */
  readonly app?: string;
  /** Override the stream name (with any `?query`) parsed from the URL. */
  readonly stream?: string;
  /** Send `fourCcList` in connect (Enhanced RTMP codec negotiation). */
  readonly fourCcList?: readonly string[];
  /** TLS options for rtmps:// URLs. */
  readonly tls?: ConnectionOptions;
}

/** Events of an {@link RtmpPublisher}. */
export interface RtmpPublisherEvents {
  /** An `onStatus` info object from the server. */
  status: [info: AmfObject];
  /** The connection closed; `error` says why when it was not a local `close()`. */
  close: [error?: RtmpError];
  /** Every message received from the server (for diagnostics and tests). */
  message: [message: RtmpMessage];
}

interface Pending {
  readonly resolve: (values: AmfValue[]) => void;
  readonly reject: (error: RtmpError) => void;
}

/** An rtmp:// URL split into what the handshake and commands need. */
export interface ParsedRtmpUrl {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  readonly app: string;
  /** Stream name with its query. */
  readonly stream: string;
  readonly tcUrl: string;
}

/** Parses `rtmp://host[:port]/app[/more]/stream[?query]` (app = all path segments but the last). */
export function parseRtmpUrl(url: string): ParsedRtmpUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RtmpError("RTMP_URL_INVALID", `"${url}" is not a URL`);
  }
  const secure = u.protocol === "rtmps:";
  if (u.protocol !== "rtmp:" && !secure)
    throw new RtmpError("RTMP_URL_INVALID", `"${url}" is not an rtmp:// or rtmps:// URL`);
  if (u.hostname === "") throw new RtmpError("RTMP_URL_INVALID", `"${url}" has no host`);
  const segments = u.pathname.split("/").filter((s) => s !== "");
  const port = u.port === "" ? (secure ? 443 : 1935) : Number(u.port);
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  const app = segments.length > 1 ? segments.slice(0, -1).join("/") : (segments[0] ?? "");
  const stream = segments.length > 1 ? `${segments[segments.length - 1]}${u.search}` : "";
  return { secure, host, port, app, stream, tcUrl: `${u.protocol}//${u.host}/${app}` };
}

/** Counters of what a publisher sent. */
export interface PublisherCounters {
  bytesSent: number;
  videoTags: number;
  audioTags: number;
  dataMessages: number;
}

/** A connected, publishing RTMP client. Create with {@link RtmpPublisher.connect}. */
export class RtmpPublisher extends EventEmitter<RtmpPublisherEvents> {
  readonly #socket: Socket;
  readonly #reader = new ChunkStreamReader({ budgetBytes: 64 * 1024 * 1024, maxChunkStreams: 1024 });
  readonly #writer = new ChunkStreamWriter();
  #handshake: ClientHandshake | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextTransaction = 1;
  #statusWaiters: ((info: AmfObject) => void)[] = [];
  #bytesIn = 0;
  #lastAck = 0;
  #peerWindow = 0;
  #closed = false;
  #closeError: RtmpError | undefined;
  readonly #whenClosed: Promise<RtmpError | undefined>;
  #resolveClosed!: (error: RtmpError | undefined) => void;
  #publishing = false;
  #streamId = 0;
  #app = "";
  #stream = "";
  #handshakeResult: ClientHandshakeResult | undefined;
  #handshakeDone!: { resolve: () => void; reject: (e: RtmpError) => void };
  /** Every onStatus info object received, in order. */
  readonly statuses: AmfObject[] = [];
  /** What was sent so far. */
  readonly sent: PublisherCounters = { bytesSent: 0, videoTags: 0, audioTags: 0, dataMessages: 0 };

  private constructor(socket: Socket) {
    super();
    this.#socket = socket;
    this.#whenClosed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    socket.setNoDelay(true);
    socket.on("data", (data: Buffer) => this.#onData(data));
    socket.on("error", (err) => this.#shutdown(toRtmpError(err, "RTMP_SOCKET")));
    socket.on("close", () =>
      this.#shutdown(
        this.#closeError ??
          (this.#publishing ? new RtmpError("RTMP_CLOSED", "the server closed the connection") : undefined),
      ),
    );
  }

  /**
   * Connects and publishes. Rejects with {@link PublishRejectedError} when the server answers
   * the publish with an `onStatus` error, or an {@link RtmpError} for anything else.
   */
  static async connect(url: string, options?: RtmpPublisherOptions): Promise<RtmpPublisher> {
    const target = parseRtmpUrl(url);
    const app = options?.app ?? target.app;
    const stream = options?.stream ?? target.stream;
    if (stream === "")
      throw new RtmpError("RTMP_URL_INVALID", `"${url}" names no stream (rtmp://host/app/stream)`);
    const timeoutMs = options?.timeoutMs ?? 10_000;
    const socket = target.secure
      ? tlsConnect({ host: target.host, port: target.port, servername: target.host, ...options?.tls })
      : netConnect({ host: target.host, port: target.port });
    const publisher = new RtmpPublisher(socket);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new RtmpError("RTMP_TIMEOUT", `RTMP publish to ${url} did not start within ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([publisher.#start(target, app, stream, options), timeout]);
      return publisher;
    } catch (err) {
      publisher.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async #start(
    target: ParsedRtmpUrl,
    app: string,
    stream: string,
    options?: RtmpPublisherOptions,
  ): Promise<void> {
    this.#app = app;
    this.#stream = stream;
    await new Promise<void>((resolve, reject) => {
      const event = target.secure ? "secureConnect" : "connect";
      this.#socket.once(event, () => resolve());
      this.#whenClosed.then((e) =>
        reject(e ?? new RtmpError("RTMP_CLOSED", "connection closed before it was established")),
      );
    });
    const handshake = new ClientHandshake(options?.digestHandshake === false ? "plain" : "digest");
    this.#handshake = handshake;
    const handshakeDone = new Promise<void>((resolve, reject) => {
      this.#handshakeDone = { resolve, reject };
    });
    this.#rawWrite(handshake.start());
    await handshakeDone;
    const chunkSize = options?.chunkSize ?? 4096;
    this.#send({
      chunkStreamId: ChunkStreamId.Control,
      typeId: MessageType.SetChunkSize,
      streamId: 0,
      timestamp: 0,
      payload: setChunkSizePayload(chunkSize),
    });
    this.#writer.setChunkSize(chunkSize);

    const connectObject: AmfObject = {
      app,
      type: "nonprivate",
      flashVer: options?.flashVer ?? "FMLE/3.0 (compatible; FMSc/1.0)",
      swfUrl: target.tcUrl,
      tcUrl: target.tcUrl,
    };
    if (options?.fourCcList !== undefined) connectObject["fourCcList"] = [...options.fourCcList];
    const connected = await this.#call("connect", connectObject);
    const info = connected[1];
    if (!isAmfObject(info) || info["code"] !== NetStatus.ConnectSuccess) {
      const code = isAmfObject(info) ? String(info["code"]) : "no status";
      throw new RtmpError("RTMP_CONNECT_FAILED", `RTMP connect was not accepted (${code})`);
    }
    this.#fireAndForget("releaseStream", null, stream);
    this.#fireAndForget("FCPublish", null, stream);
    const created = await this.#call("createStream", null);
    const streamId = created[1];
    if (typeof streamId !== "number" || !Number.isInteger(streamId) || streamId <= 0) {
      throw new RtmpError("RTMP_CONNECT_FAILED", "RTMP createStream did not return a stream id");
    }
    this.#streamId = streamId;
    const status = new Promise<AmfObject>((resolve) => this.#statusWaiters.push(resolve));
    this.#send({
      chunkStreamId: ChunkStreamId.Stream,
      typeId: MessageType.CommandAmf0,
      streamId,
      timestamp: 0,
      payload: encodeCommand("publish", this.#nextTransaction++, null, stream, "live"),
    });
    const closed = this.#whenClosed.then((e) => {
      throw e ?? new RtmpError("RTMP_CLOSED", "the server closed the connection before answering publish");
    });
    closed.catch(() => {}); // Only the race below cares; a close after Publish.Start is not an error here.
    const answer = await Promise.race([status, closed]);
    if (answer["level"] === "error" || answer["code"] !== NetStatus.PublishStart) {
      throw new PublishRejectedError(String(answer["code"]), String(answer["description"] ?? ""));
    }
    this.#publishing = true;
  }

  /** The handshake outcome (whether the server's S1/S2 digests verified). */
  get handshake(): ClientHandshakeResult | undefined {
    return this.#handshakeResult;
  }

  /** App and stream name (with query) this publisher used. */
  get app(): string {
    return this.#app;
  }

  get stream(): string {
    return this.#stream;
  }

  /** The message stream id from createStream. */
  get streamId(): number {
    return this.#streamId;
  }

  /** True once the connection is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves when the connection closes, with the reason if it was not a local close. */
  get whenClosed(): Promise<RtmpError | undefined> {
    return this.#whenClosed;
  }

  /** Sends `@setDataFrame onMetaData` with the values as an ECMA array. */
  sendMetadata(metadata: AmfObject): Promise<void> {
    this.sent.dataMessages++;
    return this.sendMessage({
      chunkStreamId: ChunkStreamId.Stream,
      typeId: MessageType.DataAmf0,
      streamId: this.#streamId,
      timestamp: 0,
      payload: encodeAmf0(["@setDataFrame", "onMetaData", new AmfEcmaArray(metadata)]),
    });
  }

  /** Sends one video message carrying an FLV video tag body. */
  sendVideo(timestampMs: number, body: Uint8Array): Promise<void> {
    this.sent.videoTags++;
    return this.sendMessage({
      chunkStreamId: ChunkStreamId.Video,
      typeId: MessageType.Video,
      streamId: this.#streamId,
      timestamp: timestampMs,
      payload: body,
    });
  }

  /** Sends one audio message carrying an FLV audio tag body. */
  sendAudio(timestampMs: number, body: Uint8Array): Promise<void> {
    this.sent.audioTags++;
    return this.sendMessage({
      chunkStreamId: ChunkStreamId.Audio,
      typeId: MessageType.Audio,
      streamId: this.#streamId,
      timestamp: timestampMs,
      payload: body,
    });
  }

  /** Sends any message; resolves once the socket accepts more (backpressure). */
  sendMessage(message: OutgoingMessage): Promise<void> {
    if (this.#closed) return Promise.reject(new RtmpError("RTMP_CLOSED", "the RTMP connection is closed"));
    return this.#send(message);
  }

  /** Writes raw bytes (for tests that hand-frame chunks). */
  sendRaw(bytes: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new RtmpError("RTMP_CLOSED", "the RTMP connection is closed"));
    return this.#rawWrite(bytes);
  }

  /** Unpublishes (FCUnpublish, deleteStream), ends the connection and waits for it to close. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#publishing) {
      this.#publishing = false;
      this.#fireAndForget("FCUnpublish", null, this.#stream);
      this.#fireAndForget("deleteStream", null, this.#streamId);
    }
    this.#socket.end();
    const timer = setTimeout(() => this.#socket.destroy(), 2000);
    await this.#whenClosed;
    clearTimeout(timer);
  }

  /** Drops the connection at once (no unpublish). */
  destroy(): void {
    this.#publishing = false;
    this.#socket.destroy();
  }

  // ------------------------------------------------------------------------------------------

  #rawWrite(bytes: Uint8Array): Promise<void> {
    this.sent.bytesSent += bytes.byteLength;
    if (this.#socket.write(bytes)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = (): void => {
        this.#socket.off("close", onClose);
        resolve();
      };
      const onClose = (): void => {
        this.#socket.off("drain", onDrain);
        reject(new RtmpError("RTMP_CLOSED", "the RTMP connection closed while sending"));
      };
      this.#socket.once("drain", onDrain);
      this.#socket.once("close", onClose);
    });
  }

  #send(message: OutgoingMessage): Promise<void> {
    return this.#rawWrite(this.#writer.encode(message));
  }

  #fireAndForget(name: string, object: AmfValue, ...args: AmfValue[]): void {
    this.#send({
      chunkStreamId: ChunkStreamId.Command,
      typeId: MessageType.CommandAmf0,
      streamId: 0,
      timestamp: 0,
      payload: encodeCommand(name, this.#nextTransaction++, object, ...args),
    }).catch(() => {});
  }

  #call(name: string, object: AmfValue, ...args: AmfValue[]): Promise<AmfValue[]> {
    const transactionId = this.#nextTransaction++;
    const result = new Promise<AmfValue[]>((resolve, reject) =>
      this.#pending.set(transactionId, { resolve, reject }),
    );
    this.#send({
      chunkStreamId: ChunkStreamId.Command,
      typeId: MessageType.CommandAmf0,
      streamId: 0,
      timestamp: 0,
      payload: encodeCommand(name, transactionId, object, ...args),
    }).catch(() => {});
    return result;
  }

  #onData(data: Buffer): void {
    if (this.#closed) return;
    this.#bytesIn += data.byteLength;
    try {
      let input: Uint8Array | undefined = data;
      const hs = this.#handshake;
      if (hs !== undefined) {
        const step = hs.push(data);
        if (!step.done) return;
        this.#handshake = undefined;
        this.#handshakeResult = hs.result;
        if (step.reply !== undefined) this.#rawWrite(step.reply).catch(() => {});
        this.#handshakeDone.resolve();
        input = step.rest;
      }
      if (input !== undefined) this.#reader.push(input);
      for (;;) {
        const m = this.#reader.next();
        if (m === null) break;
        this.#handle(m);
      }
      if (this.#peerWindow > 0 && this.#bytesIn - this.#lastAck >= this.#peerWindow) {
        this.#lastAck = this.#bytesIn;
        this.#send({
          chunkStreamId: ChunkStreamId.Control,
          typeId: MessageType.Acknowledgement,
          streamId: 0,
          timestamp: 0,
          payload: acknowledgementPayload(this.#bytesIn),
        }).catch(() => {});
      }
    } catch (err) {
      this.#closeError = toRtmpError(err);
      this.#socket.destroy();
    }
  }

  #handle(m: RtmpMessage): void {
    if (this.listenerCount("message") > 0) this.emit("message", m);
    switch (m.typeId) {
      case MessageType.WindowAckSize:
        this.#peerWindow = readUint32Payload(m.payload, "Window Acknowledgement Size");
        return;
      case MessageType.SetPeerBandwidth: {
        // The specification asks the receiver to answer with its Window Acknowledgement Size.
        const size = readUint32Payload(m.payload, "Set Peer Bandwidth");
        this.#send({
          chunkStreamId: ChunkStreamId.Control,
          typeId: MessageType.WindowAckSize,
          streamId: 0,
          timestamp: 0,
          payload: windowAckSizePayload(size),
        }).catch(() => {});
        return;
      }
      case MessageType.UserControl: {
        const uc = parseUserControl(m.payload);
        if (uc.event === UserControlEvent.PingRequest) {
          this.#send({
            chunkStreamId: ChunkStreamId.Control,
            typeId: MessageType.UserControl,
            streamId: 0,
            timestamp: 0,
            payload: userControlPayload(UserControlEvent.PingResponse, uc.value),
          }).catch(() => {});
        }
        return;
      }
      case MessageType.CommandAmf0:
      case MessageType.CommandAmf3: {
        const cmd = parseCommand(m.payload, m.typeId === MessageType.CommandAmf3);
        if (cmd.name === "_result" || cmd.name === "_error") {
          const pending = this.#pending.get(cmd.transactionId);
          if (pending === undefined) return;
          this.#pending.delete(cmd.transactionId);
          if (cmd.name === "_result") pending.resolve([cmd.object, ...cmd.args]);
          else {
            const info = cmd.args[0];
            const code = isAmfObject(info) ? String(info["code"]) : "_error";
            pending.reject(new RtmpError("RTMP_CONNECT_FAILED", `RTMP server answered _error (${code})`));
          }
          return;
        }
        if (cmd.name === "onStatus") {
          const info = cmd.args[0];
          if (!isAmfObject(info)) return;
          this.statuses.push(info);
          const waiters = this.#statusWaiters;
          this.#statusWaiters = [];
          for (const w of waiters) w(info);
          this.emit("status", info);
        }
        return;
      }
      default:
        return;
    }
  }

  #shutdown(error: RtmpError | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#publishing = false;
    const reason = error ?? new RtmpError("RTMP_CLOSED", "the RTMP connection closed");
    for (const p of this.#pending.values()) p.reject(reason);
    this.#pending.clear();
    this.#handshakeDone?.reject(reason);
    this.#resolveClosed(error);
    this.emit("close", error);
  }
}
