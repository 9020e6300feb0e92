/**
 * Where moq-transport requests travel. Drafts 14 to 16 multiplex every request and response on
 * one bidirectional control stream and correlate them by Request ID (draft-14 and 15 key
 * PUBLISH_NAMESPACE_DONE/CANCEL by namespace instead); draft-16 moves SUBSCRIBE_NAMESPACE to a
 * stream of its own; draft-17 gives every request its own bidirectional stream, whose end is the
 * request's end, and keeps only GOAWAY on the pair of unidirectional control streams.
 *
 * {@link IetfControl} hides the difference: each request is a {@link RequestLink} to send on
 * and a {@link RequestHandler} that receives the peer's messages about it, in either direction.
 * It validates Request IDs, grants the peer credit as its requests finish (MAX_REQUEST_ID), and
 * waits for the peer's credit before issuing its own.
 */
import { MoqError, ProtocolViolationError, toMoqError, WireErrorCode } from "../error.ts";
import { joinPath } from "../path.ts";
import { CONTROL_PRIORITY } from "../session/context.ts";
import type { BidiStream, SendStream } from "../transport.ts";
import { StreamReader } from "../wire/stream-reader.ts";
import type { IetfContext } from "./context.ts";
import { IetfProtocolError, IetfSessionCode } from "./errors.ts";
import {
  decodeIetfMessage,
  encodeIetfMessage,
  type FetchMessage,
  type IetfMessage,
  messageTypeName,
  type PublishMessage,
  type PublishNamespaceMessage,
  type SubscribeMessage,
  type SubscribeNamespaceMessage,
} from "./messages.ts";
import { readStreamVarint } from "./objects.ts";
import type { RequestIdFlow } from "./request-ids.ts";
import { IetfVersion, usesControlStream, usesNamespaceKeys } from "./version.ts";

/** Messages that open a request. */
export type IetfRequestMessage =
  | SubscribeMessage
  | FetchMessage
  | PublishNamespaceMessage
  | SubscribeNamespaceMessage
  | PublishMessage;

/** One request's exchange, from either side. */
export interface RequestLink {
  readonly requestId: number;
  /** True when the peer opened the request. */
  readonly incoming: boolean;
  /** Queues `msg` for the peer; false once the carrying stream is over its high-water mark. */
  send(msg: IetfMessage): boolean;
  /** Resolves when the carrying stream can take more. */
  drained(): Promise<void>;
  /**
   * Ends this side of the request: FIN on a request stream, and on the control stream forgets
   * it (later messages about it are ignored). Finishing a peer request returns its credit.
   * Idempotent.
   */
  end(): void;
  /** Abandons the request: reset and STOP_SENDING on a request stream; otherwise as {@link end}. */
  abort(code: number): void;
  /** True after {@link end} or {@link abort}. */
  readonly ended: boolean;
}

/** Receives the peer's messages about one request. */
export interface RequestHandler {
  /** A response, update or withdrawal. Throwing a violation closes the session. */
  message(msg: IetfMessage): void;
  /** The peer ended the request's stream (undefined for FIN), or the session closed. */
  closed(error: MoqError | undefined): void;
}

/** Builds the handler for a request the peer opened (and answers it through `link`). */
export type RequestAcceptor = (msg: IetfRequestMessage, link: RequestLink) => RequestHandler;

interface Route {
  readonly link: RequestLink;
  readonly handler: RequestHandler;
}

/** Reads one control message (type, u16 length, payload) from a stream; undefined at a clean end. */
export async function readControlMessage(
  reader: StreamReader,
  version: IetfVersion,
): Promise<IetfMessage | undefined> {
  if (await reader.done()) return undefined;
  const type = await readStreamVarint(reader, version, "message type");
  const length = await reader.u16(`${messageTypeName(type)} length`);
  const body = await reader.bytes(length, messageTypeName(type));
  return decodeIetfMessage(type, body, version);
}

function isRequest(msg: IetfMessage): msg is IetfRequestMessage {
  switch (msg.kind) {
    case "subscribe":
    case "track_status":
    case "fetch":
    case "publish_namespace":
    case "subscribe_namespace":
    case "publish":
      return true;
    default:
      return false;
  }
}

/** A request multiplexed on the control stream (drafts 14 to 16). */
class ControlLink implements RequestLink {
  readonly requestId: number;
  readonly incoming: boolean;
  readonly #control: IetfControl;
  #ended = false;

  constructor(control: IetfControl, requestId: number, incoming: boolean) {
    this.#control = control;
    this.requestId = requestId;
    this.incoming = incoming;
  }

  get ended(): boolean {
    return this.#ended;
  }

  send(msg: IetfMessage): boolean {
    return this.#control.writeControl(msg);
  }

  drained(): Promise<void> {
    return this.#control.controlDrained();
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#control.forget(this);
  }

  abort(_code: number): void {
    this.end();
  }
}

/** A request on a bidirectional stream of its own (draft-16 SUBSCRIBE_NAMESPACE, every draft-17 request). */
class StreamLink implements RequestLink {
  readonly requestId: number;
  readonly incoming: boolean;
  readonly stream: BidiStream;
  readonly #control: IetfControl;
  readonly #version: IetfVersion;
  #ended = false;

  constructor(
    control: IetfControl,
    stream: BidiStream,
    requestId: number,
    incoming: boolean,
    version: IetfVersion,
  ) {
    this.#control = control;
    this.stream = stream;
    this.requestId = requestId;
    this.incoming = incoming;
    this.#version = version;
  }

  get ended(): boolean {
    return this.#ended;
  }

  send(msg: IetfMessage): boolean {
    if (this.stream.send.closed) return true;
    return this.stream.send.write(encodeIetfMessage(msg, this.#version));
  }

  drained(): Promise<void> {
    return this.stream.send.drained();
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.stream.send.finish();
    this.#control.forget(this);
  }

  abort(code: number): void {
    if (this.#ended) return;
    this.#ended = true;
    this.stream.send.reset(code);
    this.stream.recv.stop(code);
    this.#control.forget(this);
  }
}

/** Everything the handshake left for the session: where control messages travel. */
export interface IetfControlStreams {
  /** Drafts 14 to 16: the control stream (the SETUP stream), positioned after SETUP. */
  readonly control?: { readonly stream: BidiStream; readonly reader: StreamReader };
  /** Draft-17: this side's control stream (after its SETUP) and the peer's (after its SETUP). */
  readonly setupSend?: SendStream;
  readonly setupRecv?: StreamReader;
}

/** Routes a session's requests over the control stream or request streams. */
export class IetfControl {
  readonly flow: RequestIdFlow;
  readonly #ctx: IetfContext;
  readonly #streams: IetfControlStreams;
  readonly #acceptor: RequestAcceptor;
  readonly #onSessionMessage: (msg: IetfMessage) => void;
  readonly #routes: Map<number, Route> = new Map();
  /** Drafts 14 and 15: the peer's open PUBLISH_NAMESPACE requests by path. */
  readonly #peerNamespaces: Map<string, Route> = new Map();
  /** Drafts 14 and 15: this side's open PUBLISH_NAMESPACE requests by path. */
  readonly #ownNamespaces: Map<string, Route> = new Map();
  readonly #namespaceOf: Map<RequestLink, { path: string; own: boolean }> = new Map();
  #closed = false;

  constructor(
    ctx: IetfContext,
    streams: IetfControlStreams,
    flow: RequestIdFlow,
    acceptor: RequestAcceptor,
    onSessionMessage: (msg: IetfMessage) => void,
  ) {
    this.#ctx = ctx;
    this.#streams = streams;
    this.flow = flow;
    this.#acceptor = acceptor;
    this.#onSessionMessage = onSessionMessage;
    flow.onBlocked = (max) => {
      if (usesControlStream(ctx.version)) this.writeControl({ kind: "requests_blocked", maxRequestId: max });
    };
  }

  /** Starts reading the control stream(s) and accepting request streams. */
  start(): void {
    const { control, setupRecv } = this.#streams;
    if (control) void this.#run(this.#readControl(control.reader), "control stream");
    if (setupRecv) void this.#run(this.#readSetupStream(setupRecv), "control stream");
    void this.#run(this.#acceptStreams(), "request streams");
  }

  /** Number of requests in flight (both directions). */
  get openRequests(): number {
    return this.#routes.size;
  }

  /**
   * Opens a request: waits for a Request ID the peer allows, builds the message with it, and
   * sends it on the control stream or a new request stream. `namespace` keys a drafts 14/15
   * PUBLISH_NAMESPACE so the peer's PUBLISH_NAMESPACE_CANCEL finds it.
   */
  async open(
    build: (requestId: number) => IetfRequestMessage,
    handler: RequestHandler,
    namespace?: string,
  ): Promise<RequestLink> {
    const version = this.#ctx.version;
    const requestId = await this.flow.next();
    const msg = build(requestId);
    const ownStream =
      version === IetfVersion.Draft17 ||
      (version === IetfVersion.Draft16 && msg.kind === "subscribe_namespace");
    let link: RequestLink;
    if (ownStream) {
      const stream = await this.#ctx.transport.openBidi();
      stream.send.setPriority(CONTROL_PRIORITY);
      link = new StreamLink(this, stream, requestId, false, version);
      this.#routes.set(requestId, { link, handler });
      link.send(msg);
      void this.#readRequestStream(handler, new StreamReader(stream.recv, "request stream"));
    } else {
      link = new ControlLink(this, requestId, false);
      const route = { link, handler };
      this.#routes.set(requestId, route);
      if (namespace !== undefined && usesNamespaceKeys(version)) {
        this.#ownNamespaces.set(namespace, route);
        this.#namespaceOf.set(link, { path: namespace, own: true });
      }
      link.send(msg);
    }
    return link;
  }

  /**
   * Keys a peer's PUBLISH_NAMESPACE by its path (drafts 14 and 15), so PUBLISH_NAMESPACE_DONE
   * reaches it. False when the path is already published in this session.
   */
  bindPeerNamespace(link: RequestLink, path: string): boolean {
    if (!usesNamespaceKeys(this.#ctx.version)) return true;
    if (this.#peerNamespaces.has(path)) return false;
    const route = this.#routes.get(link.requestId);
    if (!route) return false;
    this.#peerNamespaces.set(path, route);
    this.#namespaceOf.set(link, { path, own: false });
    return true;
  }

  /** Sends a message that belongs to no request (GOAWAY). */
  sendSessionMessage(msg: IetfMessage): void {
    const { control, setupSend } = this.#streams;
    const bytes = encodeIetfMessage(msg, this.#ctx.version);
    if (control && !control.stream.send.closed) control.stream.send.write(bytes);
    else if (setupSend && !setupSend.closed) setupSend.write(bytes);
  }

  /** @internal Writes a message on the control stream (drafts 14 to 16). */
  writeControl(msg: IetfMessage): boolean {
    const control = this.#streams.control;
    if (!control || control.stream.send.closed) return true;
    return control.stream.send.write(encodeIetfMessage(msg, this.#ctx.version));
  }

  /** @internal Resolves when the control stream can take more. */
  controlDrained(): Promise<void> {
    return this.#streams.control?.stream.send.drained() ?? Promise.resolve();
  }

  /** @internal A link ended: forget its route and return the peer's credit. */
  forget(link: RequestLink): void {
    const route = this.#routes.get(link.requestId);
    if (route?.link === link) this.#routes.delete(link.requestId);
    const namespace = this.#namespaceOf.get(link);
    if (namespace) {
      this.#namespaceOf.delete(link);
      const map = namespace.own ? this.#ownNamespaces : this.#peerNamespaces;
      if (map.get(namespace.path)?.link === link) map.delete(namespace.path);
    }
    if (link.incoming && !this.#closed) {
      const grant = this.flow.release();
      if (grant !== undefined) this.writeControl({ kind: "max_request_id", maxRequestId: grant });
    }
  }

  /** Tells every open request the session is closing. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.flow.close();
    const routes = [...this.#routes.values()];
    this.#routes.clear();
    this.#peerNamespaces.clear();
    this.#ownNamespaces.clear();
    for (const route of routes) {
      try {
        route.handler.closed(undefined);
      } catch {
        // The session is going away; nothing to report to.
      }
    }
  }

  async #run(task: Promise<void>, what: string): Promise<void> {
    try {
      await task;
    } catch (err) {
      this.#failOrLog(err, what);
    }
  }

  #failOrLog(err: unknown, what: string): void {
    const ctx = this.#ctx;
    const error = toMoqError(err);
    if (isViolationLike(error)) {
      ctx.fail(error);
    } else if (!ctx.closing) {
      ctx.logger.debug({ ...ctx.logFields, err: error.message }, `${what} ended`);
    }
  }

  // ---- drafts 14 to 16: the control stream ----

  async #readControl(reader: StreamReader): Promise<void> {
    const ctx = this.#ctx;
    for (;;) {
      const msg = await readControlMessage(reader, ctx.version);
      if (!msg) {
        // The peer closed the control stream: the session is over.
        if (!ctx.closing) ctx.fail(new MoqError("MOQ_CLOSED", "the peer closed the control stream"));
        return;
      }
      this.#routeControl(msg);
    }
  }

  #routeControl(msg: IetfMessage): void {
    const version = this.#ctx.version;
    switch (msg.kind) {
      case "subscribe":
      case "track_status":
      case "fetch":
      case "publish_namespace":
      case "publish":
        this.#acceptOnControl(msg);
        return;
      case "subscribe_namespace":
        if (version === IetfVersion.Draft16) {
          throw new IetfProtocolError(
            IetfSessionCode.ProtocolViolation,
            "SUBSCRIBE_NAMESPACE must open a stream of its own in draft-16",
          );
        }
        this.#acceptOnControl(msg);
        return;
      case "request_update":
        this.#update(msg.requestId, msg.existingRequestId ?? -1, msg);
        return;
      case "subscribe_ok":
      case "track_status_ok":
      case "request_ok":
      case "request_error":
      case "fetch_ok":
      case "publish_done":
        this.#toOwn(msg.requestId ?? -1, msg);
        return;
      case "unsubscribe":
      case "fetch_cancel":
      case "unsubscribe_namespace":
        this.#toPeer(msg.requestId, msg);
        return;
      case "publish_namespace_done":
        if (msg.namespace) this.#toNamespace(this.#peerNamespaces, msg.namespace, msg);
        else this.#toPeer(msg.requestId ?? -1, msg);
        return;
      case "publish_namespace_cancel":
        if (msg.namespace) this.#toNamespace(this.#ownNamespaces, msg.namespace, msg);
        else this.#toOwn(msg.requestId ?? -1, msg);
        return;
      case "max_request_id":
        this.flow.raise(msg.maxRequestId);
        return;
      case "requests_blocked": {
        const grant = this.flow.blocked();
        if (grant !== undefined) this.writeControl({ kind: "max_request_id", maxRequestId: grant });
        return;
      }
      case "goaway":
        this.#onSessionMessage(msg);
        return;
      default:
        throw new IetfProtocolError(
          IetfSessionCode.ProtocolViolation,
          `${msg.kind.toUpperCase()} is not allowed on the control stream`,
        );
    }
  }

  #acceptOnControl(msg: IetfRequestMessage): void {
    this.flow.accept(msg.requestId);
    const link = new ControlLink(this, msg.requestId, true);
    // Registered before the acceptor runs, so it can bind a namespace or end the link at once.
    const route: { link: RequestLink; handler: RequestHandler } = { link, handler: NO_HANDLER };
    this.#routes.set(msg.requestId, route);
    route.handler = this.#acceptor(msg, link);
  }

  #update(requestId: number, existing: number, msg: IetfMessage): void {
    this.flow.accept(requestId);
    const route = this.#routes.get(existing);
    if (route?.link.incoming) {
      route.handler.message(msg);
    } else if (this.flow.isPeerId(existing)) {
      // The request already finished: the update has nothing to change.
      this.writeControl({
        kind: "request_error",
        answers: "request_update",
        requestId,
        code: version15Plus(this.#ctx.version) ? 0x10 : 0x0,
        retryInterval: 0,
        reason: "the request being updated has ended",
      });
    } else {
      throw new IetfProtocolError(
        IetfSessionCode.ProtocolViolation,
        `update of request ${existing}, which the peer never sent`,
      );
    }
    const grant = this.flow.release();
    if (grant !== undefined) this.writeControl({ kind: "max_request_id", maxRequestId: grant });
  }

  #toOwn(requestId: number, msg: IetfMessage): void {
    if (!this.flow.isOwnId(requestId)) {
      throw new IetfProtocolError(
        IetfSessionCode.ProtocolViolation,
        `${msg.kind.toUpperCase()} for request ${requestId}, which was never sent`,
      );
    }
    this.#routes.get(requestId)?.handler.message(msg);
  }

  #toPeer(requestId: number, msg: IetfMessage): void {
    if (!this.flow.isPeerId(requestId)) {
      throw new IetfProtocolError(
        IetfSessionCode.ProtocolViolation,
        `${msg.kind.toUpperCase()} for request ${requestId}, which the peer never sent`,
      );
    }
    const route = this.#routes.get(requestId);
    if (route?.link.incoming) route.handler.message(msg);
  }

  #toNamespace(map: Map<string, Route>, namespace: readonly string[], msg: IetfMessage): void {
    // Unknown namespaces are ignored: the request may have ended (or been refused) already.
    map.get(joinPath("", namespace.join("/")))?.handler.message(msg);
  }

  // ---- request streams (draft-16 SUBSCRIBE_NAMESPACE, every draft-17 request) ----

  async #acceptStreams(): Promise<void> {
    const ctx = this.#ctx;
    for (;;) {
      const stream = await ctx.transport.acceptBidi();
      if (!stream) return;
      void this.#acceptStream(stream).catch((err) => {
        stream.send.reset(toMoqError(err).wireCode);
        stream.recv.stop(WireErrorCode.Cancel);
        this.#failOrLog(err, "request stream");
      });
    }
  }

  async #acceptStream(stream: BidiStream): Promise<void> {
    const ctx = this.#ctx;
    const version = ctx.version;
    if (version !== IetfVersion.Draft16 && version !== IetfVersion.Draft17) {
      // Drafts 14 and 15 use one bidirectional stream; refuse others without ending the session.
      ctx.logger.debug({ ...ctx.logFields, id: stream.recv.id }, "unexpected bidirectional stream; reset");
      stream.send.reset(WireErrorCode.UnexpectedStream);
      stream.recv.stop(WireErrorCode.UnexpectedStream);
      return;
    }
    const reader = new StreamReader(stream.recv, "request stream");
    const msg = await readControlMessage(reader, version);
    if (!msg) {
      stream.send.finish();
      return;
    }
    if (!isRequest(msg) || (version === IetfVersion.Draft16 && msg.kind !== "subscribe_namespace")) {
      throw new IetfProtocolError(
        IetfSessionCode.ProtocolViolation,
        `a request stream began with ${msg.kind.toUpperCase()}`,
      );
    }
    this.flow.accept(msg.requestId);
    stream.send.setPriority(CONTROL_PRIORITY);
    const link = new StreamLink(this, stream, msg.requestId, true, version);
    const route: { link: RequestLink; handler: RequestHandler } = { link, handler: NO_HANDLER };
    this.#routes.set(msg.requestId, route);
    route.handler = this.#acceptor(msg, link);
    await this.#readRequestStream(route.handler, reader);
  }

  async #readRequestStream(handler: RequestHandler, reader: StreamReader): Promise<void> {
    const version = this.#ctx.version;
    let error: MoqError | undefined;
    try {
      for (;;) {
        const msg = await readControlMessage(reader, version);
        if (!msg) break;
        if (msg.kind === "request_update" && version === IetfVersion.Draft17) this.flow.accept(msg.requestId);
        handler.message(msg);
      }
    } catch (err) {
      error = toMoqError(err);
      if (isViolationLike(error)) {
        this.#ctx.fail(error);
        return;
      }
    }
    if (!this.#closed) handler.closed(error);
  }

  // ---- draft-17: the peer's control stream after SETUP carries GOAWAY ----

  async #readSetupStream(reader: StreamReader): Promise<void> {
    const ctx = this.#ctx;
    for (;;) {
      const msg = await readControlMessage(reader, ctx.version);
      if (!msg) {
        if (!ctx.closing) ctx.fail(new MoqError("MOQ_CLOSED", "the peer closed its control stream"));
        return;
      }
      if (msg.kind !== "goaway") {
        throw new IetfProtocolError(
          IetfSessionCode.ProtocolViolation,
          `${msg.kind.toUpperCase()} is not allowed on the control stream`,
        );
      }
      this.#onSessionMessage(msg);
    }
  }
}

const NO_HANDLER: RequestHandler = { message() {}, closed() {} };

function version15Plus(version: IetfVersion): boolean {
  return version !== IetfVersion.Draft14;
}

/** True for errors that mean the peer broke the protocol (the session must close). */
export function isViolationLike(error: MoqError): boolean {
  if (error instanceof ProtocolViolationError || error instanceof IetfProtocolError) return true;
  return (
    error.code === "MOQ_PROTOCOL_VIOLATION" ||
    error.code === "MOQ_DECODE" ||
    error.code === "MOQ_BOUNDS_EXCEEDED" ||
    error.code === "MOQ_DUPLICATE" ||
    error.code === "MOQ_VERSION"
  );
}
