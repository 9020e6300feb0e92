/**
 * A moq-transport session mapped onto the moq-lite model, started by `MoqSession` once the
 * handshake chose a draft. It behaves like a moq-lite session: the peer's announced namespaces
 * land in the receive origin (and are subscribed upstream only on demand), and the peer can
 * discover and subscribe to anything the serve origin holds, whichever protocol it came from.
 *
 * Requests go through {@link IetfControl}; the publisher half answers the peer's SUBSCRIBE,
 * SUBSCRIBE_NAMESPACE, FETCH and TRACK_STATUS; the subscriber half accepts PUBLISH_NAMESPACE and
 * NAMESPACE announcements and subscribes upstream. PUBLISH (a publisher pushing a track without
 * being asked) has no place in the moq-lite model and is refused. Unidirectional streams carry
 * subgroups; anything else on them is a violation.
 */
import { toMoqError } from "../error.ts";
import type { OriginConsumer, OriginProducer } from "../model/origin.ts";
import type { ServedSubscription } from "../session/publisher.ts";
import { StreamReader } from "../wire/stream-reader.ts";
import type { IetfContext } from "./context.ts";
import {
  IetfControl,
  type IetfRequestMessage,
  isViolationLike,
  type RequestHandler,
  type RequestLink,
} from "./control.ts";
import { IetfProtocolError, IetfSessionCode, requestErrorCode } from "./errors.ts";
import type { IetfHandshake } from "./handshake.ts";
import type { IetfMessage } from "./messages.ts";
import { IetfStreamType, isSubgroupType, readStreamVarint } from "./objects.ts";
import { IetfPublisher } from "./publisher.ts";
import { IetfSubscriber } from "./subscriber.ts";
import { IetfVersion, usesNamespaceKeys } from "./version.ts";

/** What a moq-transport session needs beyond its context. */
export interface IetfSessionParams {
  readonly handshake: IetfHandshake;
  readonly serve: OriginConsumer | undefined;
  readonly receive: OriginProducer | undefined;
  readonly announceInterest: readonly string[];
  readonly onGoaway: ((uri: string) => void) | undefined;
}

/** @internal The moq-transport engine of one `MoqSession`. */
export class IetfSession {
  readonly #ctx: IetfContext;
  readonly #control: IetfControl;
  readonly #publisher: IetfPublisher;
  readonly #subscriber: IetfSubscriber;
  readonly #onGoaway: ((uri: string) => void) | undefined;
  #goawayReceived = false;
  #goawaySent = false;
  #closed = false;

  constructor(ctx: IetfContext, params: IetfSessionParams) {
    this.#ctx = ctx;
    this.#onGoaway = params.onGoaway;
    const { handshake } = params;
    this.#control = new IetfControl(
      ctx,
      handshake.streams,
      handshake.flow,
      (msg, link) => this.#accept(msg, link),
      (msg) => this.#onSessionMessage(msg),
    );
    this.#subscriber = new IetfSubscriber(ctx, this.#control, params.receive);
    this.#publisher = new IetfPublisher(ctx, this.#control, params.serve, (path) =>
      this.#subscriber.imported(path),
    );
    this.#control.start();
    void this.#acceptUnis();
    this.#subscriber.requestNamespaces(params.announceInterest);
    // Drafts 14 and 15 have no request for a relay to ask a client what it publishes.
    if (ctx.role === "client" && usesNamespaceKeys(ctx.version)) this.#publisher.announceAll();
  }

  /** The peer's live subscriptions. */
  subscriptions(): Iterable<ServedSubscription> {
    return this.#publisher.subscriptions();
  }

  /** Subscriptions the peer holds here. */
  get subscriptionCount(): number {
    return this.#publisher.subscriptionCount;
  }

  /** Subscriptions this side holds on the peer. */
  get upstreamCount(): number {
    return this.#subscriber.upstreamCount;
  }

  /** Broadcasts imported from the peer. */
  get importedCount(): number {
    return this.#subscriber.importedCount;
  }

  /** Sends GOAWAY once: a server names the URI to reconnect to ("" = the same one). */
  goaway(uri: string, timeoutMs = 0): void {
    if (this.#goawaySent || this.#closed) return;
    this.#goawaySent = true;
    this.#control.sendSessionMessage({
      kind: "goaway",
      uri: this.#ctx.role === "server" ? uri : "",
      timeoutMs,
    });
  }

  /** Ends everything (the transport closed). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#control.close();
    this.#publisher.close();
    this.#subscriber.close();
  }

  #accept(msg: IetfRequestMessage, link: RequestLink): RequestHandler {
    switch (msg.kind) {
      case "subscribe":
        return this.#publisher.serveSubscribe(msg, link);
      case "track_status":
        return this.#publisher.serveTrackStatus(msg, link);
      case "fetch":
        return this.#publisher.serveFetch(msg, link);
      case "subscribe_namespace":
        return this.#publisher.serveNamespaces(msg, link);
      case "publish_namespace":
        return this.#subscriber.acceptPublishNamespace(msg, link);
      case "publish": {
        // moq-lite subscribes on demand; a pushed track has nowhere to go.
        const version = this.#ctx.version;
        link.send({
          kind: "request_error",
          answers: "publish",
          ...(version !== IetfVersion.Draft17 ? { requestId: link.requestId } : {}),
          code: requestErrorCode("not_supported", "publish", version),
          retryInterval: 0,
          reason: "PUBLISH is not supported; announce the namespace and it will be subscribed to",
        });
        link.end();
        return { message() {}, closed() {} };
      }
    }
  }

  #onSessionMessage(msg: IetfMessage): void {
    const ctx = this.#ctx;
    if (msg.kind !== "goaway") return;
    if (this.#goawayReceived) throw new IetfProtocolError(IetfSessionCode.ProtocolViolation, "second GOAWAY");
    this.#goawayReceived = true;
    if (ctx.role === "server") {
      if (msg.uri !== "") {
        throw new IetfProtocolError(
          IetfSessionCode.ProtocolViolation,
          "a client's GOAWAY must not carry a URI",
        );
      }
      ctx.logger.debug(ctx.logFields, "client sent GOAWAY");
      return;
    }
    ctx.logger.info({ ...ctx.logFields, uri: msg.uri }, "server sent GOAWAY");
    this.#onGoaway?.(msg.uri);
  }

  async #acceptUnis(): Promise<void> {
    const ctx = this.#ctx;
    for (;;) {
      const stream = await ctx.transport.acceptUni();
      if (!stream) return;
      void this.#handleUni(new StreamReader(stream, "data stream")).catch((err) => {
        stream.stop(0);
        const error = toMoqError(err);
        if (isViolationLike(error)) ctx.fail(error);
        else if (!ctx.closing)
          ctx.logger.debug({ ...ctx.logFields, err: error.message }, "data stream ended");
      });
    }
  }

  async #handleUni(reader: StreamReader): Promise<void> {
    const version = this.#ctx.version;
    const type = await readStreamVarint(reader, version, "stream type");
    if (isSubgroupType(type, version)) return this.#subscriber.receiveGroup(reader, type);
    if (type === IetfStreamType.FetchHeader) {
      // This side never sends FETCH, so no fetch stream is expected; refuse it without ending the session.
      reader.stop(0);
      return;
    }
    if (type === IetfStreamType.Setup && version === IetfVersion.Draft17) {
      throw new IetfProtocolError(IetfSessionCode.ProtocolViolation, "a second SETUP stream");
    }
    throw new IetfProtocolError(
      IetfSessionCode.ProtocolViolation,
      `unknown data stream type 0x${type.toString(16)}`,
    );
  }
}
