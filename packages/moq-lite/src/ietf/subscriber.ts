/**
 * The subscribing half of a moq-transport session: it imports the peer's broadcasts, with the
 * same behaviour as the moq-lite subscriber.
 *
 * A namespace the peer announces, by PUBLISH_NAMESPACE or by NAMESPACE on this side's
 * SUBSCRIBE_NAMESPACE (drafts 16, 17), becomes an on-demand broadcast in the receive origin
 * (counted, since both can name the same path). When someone local subscribes to one of its
 * tracks, that becomes one SUBSCRIBE upstream, shared by every local consumer and cancelled
 * (UNSUBSCRIBE, or closing the request stream) when the last one leaves. Subgroup streams are
 * matched to it by Track Alias and written into the track object by object, payload chunks by
 * reference; streams of any sub-group other than 0 are dropped.
 */
import { MoqError, NotFoundError, ProtocolViolationError, toMoqError, WireErrorCode } from "../error.ts";
import { type BroadcastConsumer, BroadcastProducer, type TrackRequest } from "../model/broadcast.ts";
import type { FrameProducer } from "../model/frame.ts";
import type { GroupProducer } from "../model/group.ts";
import type { OriginProducer } from "../model/origin.ts";
import type { TrackProducer } from "../model/track.ts";
import { joinPath, normalizePath } from "../path.ts";
import type { StreamReader } from "../wire/stream-reader.ts";
import type { IetfContext } from "./context.ts";
import { type IetfControl, isViolationLike, type RequestHandler, type RequestLink } from "./control.ts";
import {
  IetfProtocolError,
  IetfSessionCode,
  type RequestRefusal,
  requestErrorCode,
  StreamResetCode,
} from "./errors.ts";
import type { IetfMessage, PublishNamespaceMessage } from "./messages.ts";
import { namespacePath, pathFields, wirePriority } from "./namespace.ts";
import { IetfObjectStatus, readStreamVarint, readSubgroupHeader } from "./objects.ts";
import { IetfGroupOrder, SubscriptionFilterType } from "./parameters.ts";
import { IetfVersion, isDraft14 } from "./version.ts";

/** How long a subgroup stream may wait for the SUBSCRIBE_OK that names its Track Alias. */
const ALIAS_WAIT_MS = 1000;
/** Subgroup streams allowed to wait for an alias at once. */
const MAX_ALIAS_WAITERS = 64;
/** How long group streams may still arrive after the publisher ended a subscription. */
const DONE_GRACE_MS = 2000;
/** Longest object properties (extensions) block accepted. */
const MAX_PROPERTIES_BYTES = 0xffff;

interface Imported {
  readonly producer: BroadcastProducer;
  readonly consumer: BroadcastConsumer;
  /** Announcements (PUBLISH_NAMESPACE requests, NAMESPACE entries) currently naming the path. */
  refs: number;
}

interface Upstream {
  requestId: number | undefined;
  alias: number | undefined;
  readonly broadcast: string;
  readonly name: string;
  readonly track: TrackProducer;
  readonly groups: Set<StreamReader>;
  link: RequestLink | undefined;
  cancelled: boolean;
  finished: boolean;
  publisherDone: boolean;
}

/** Imports the peer's broadcasts into a receive origin. */
export class IetfSubscriber {
  readonly #ctx: IetfContext;
  readonly #control: IetfControl;
  readonly #receive: OriginProducer | undefined;
  readonly #imported: Map<string, Imported> = new Map();
  readonly #upstream: Set<Upstream> = new Set();
  readonly #byRequest: Map<number, Upstream> = new Map();
  readonly #byAlias: Map<number, Upstream> = new Map();
  #aliasChanged = Promise.withResolvers<void>();
  #aliasWaiters = 0;
  #closed = false;

  constructor(ctx: IetfContext, control: IetfControl, receive: OriginProducer | undefined) {
    this.#ctx = ctx;
    this.#control = control;
    this.#receive = receive;
  }

  /** The broadcast imported from the peer at `path` (relative to the root), if any. */
  imported(path: string): BroadcastConsumer | undefined {
    return this.#imported.get(path)?.consumer;
  }

  /** Number of broadcasts imported from the peer. */
  get importedCount(): number {
    return this.#imported.size;
  }

  /** Number of live upstream subscriptions. */
  get upstreamCount(): number {
    return this.#upstream.size;
  }

  /** Ends every imported broadcast and upstream subscription (the session is closing). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const up of this.#upstream) {
      up.cancelled = true;
      up.track.close();
      for (const group of up.groups) group.stop(WireErrorCode.Cancel);
    }
    this.#upstream.clear();
    this.#byRequest.clear();
    this.#byAlias.clear();
    for (const imported of this.#imported.values()) imported.producer.close();
    this.#imported.clear();
    this.#aliasChanged.resolve();
  }

  // ---- announcements ----

  #refuse(link: RequestLink, reason: RequestRefusal, text: string): RequestHandler {
    const version = this.#ctx.version;
    link.send({
      kind: "request_error",
      answers: "publish_namespace",
      ...(version !== IetfVersion.Draft17 ? { requestId: link.requestId } : {}),
      code: requestErrorCode(reason, "publish_namespace", version),
      retryInterval: 0,
      reason: text,
    });
    link.end();
    return IGNORED;
  }

  /** Accepts a PUBLISH_NAMESPACE: imports the broadcast until the peer withdraws it. */
  acceptPublishNamespace(msg: PublishNamespaceMessage, link: RequestLink): RequestHandler {
    const ctx = this.#ctx;
    const path = namespacePath(msg.namespace);
    const receive = this.#receive;
    if (path === undefined) return this.#refuse(link, "uninterested", "namespace field contains '/'");
    if (!receive) return this.#refuse(link, "uninterested", "this session imports no broadcasts");
    if (!receive.canPublish(path))
      return this.#refuse(link, "unauthorized", "not allowed to publish this broadcast");
    if (!this.#control.bindPeerNamespace(link, path)) {
      return this.#refuse(link, "internal", "namespace already published in this session");
    }
    if (!this.#imported.has(path) && this.#imported.size >= ctx.limits.maxAnnouncedBroadcasts) {
      return this.#refuse(
        link,
        "excessive_load",
        `more than ${ctx.limits.maxAnnouncedBroadcasts} broadcasts`,
      );
    }
    this.#import(path);
    link.send({
      kind: "request_ok",
      answers: "publish_namespace",
      ...(ctx.version !== IetfVersion.Draft17 ? { requestId: link.requestId } : {}),
      parameters: {},
    });
    let withdrawn = false;
    const withdraw = () => {
      if (withdrawn) return;
      withdrawn = true;
      this.#release(path);
      link.end();
    };
    return {
      message: (m) => {
        if (m.kind === "publish_namespace_done") withdraw();
        else if (m.kind === "request_update" && !isDraft14(ctx.version)) {
          link.send({
            kind: "request_ok",
            answers: "request_update",
            ...(ctx.version !== IetfVersion.Draft17 ? { requestId: m.requestId } : {}),
            parameters: {},
          });
        } else unexpected(m, "PUBLISH_NAMESPACE request");
      },
      closed: withdraw,
    };
  }

  /**
   * Asks the peer for its broadcasts under each prefix with SUBSCRIBE_NAMESPACE. In drafts 16 and
   * 17 the answers arrive on the request's stream. Drafts 14 and 15 answer with PUBLISH_NAMESPACE
   * requests instead; there only a client asks, since publishing clients announce unasked and
   * @moq/lite 0.2.2 answers a relay's draft-14/15 SUBSCRIBE_NAMESPACE with messages that only
   * exist from draft-16.
   */
  requestNamespaces(prefixes: readonly string[]): void {
    const ctx = this.#ctx;
    const legacy = ctx.version === IetfVersion.Draft14 || ctx.version === IetfVersion.Draft15;
    if (!this.#receive || (legacy && ctx.role !== "client")) return;
    const normalized = [...new Set(prefixes.map(normalizePath))];
    const covering = normalized.filter(
      (prefix) =>
        !normalized.some((other) => other !== prefix && (other === "" || prefix.startsWith(`${other}/`))),
    );
    for (const prefix of covering) {
      void this.#subscribeNamespace(prefix).catch((err) => this.#onError(err, "namespace subscription"));
    }
  }

  async #subscribeNamespace(prefix: string): Promise<void> {
    const ctx = this.#ctx;
    const active = new Set<string>();
    let answered = false;
    let link: RequestLink | undefined;
    const releaseAll = () => {
      for (const path of active) this.#release(path);
      active.clear();
    };
    const handler: RequestHandler = {
      message: (msg) => {
        if (!answered) {
          if (msg.kind === "request_error") {
            ctx.logger.debug(
              { ...ctx.logFields, prefix, reason: msg.reason },
              "peer refused SUBSCRIBE_NAMESPACE",
            );
            link?.end();
            return;
          }
          if (msg.kind !== "request_ok") {
            throw new IetfProtocolError(
              IetfSessionCode.ProtocolViolation,
              `SUBSCRIBE_NAMESPACE answered with ${msg.kind.toUpperCase()} before REQUEST_OK`,
            );
          }
          answered = true;
          return;
        }
        if (msg.kind === "publish_blocked") return;
        if (msg.kind !== "namespace" && msg.kind !== "namespace_done")
          unexpected(msg, "namespace subscription");
        const suffix = namespacePath(msg.suffix);
        if (suffix === undefined) return;
        const path = joinPath(prefix, suffix);
        if (msg.kind === "namespace") {
          // A repeated NAMESPACE updates what the peer already told us.
          if (active.has(path) || !this.#receive?.canPublish(path)) return;
          if (!this.#imported.has(path) && this.#imported.size >= ctx.limits.maxAnnouncedBroadcasts) {
            throw new ProtocolViolationError(
              `peer announced more than ${ctx.limits.maxAnnouncedBroadcasts} broadcasts`,
              "MOQ_BOUNDS_EXCEEDED",
            );
          }
          active.add(path);
          this.#import(path);
        } else {
          if (!active.delete(path)) {
            throw new IetfProtocolError(
              IetfSessionCode.ProtocolViolation,
              `NAMESPACE_DONE for ${JSON.stringify(path)} before its NAMESPACE`,
            );
          }
          this.#release(path);
        }
      },
      closed: () => {
        releaseAll();
        link?.end();
      },
    };
    link = await this.#control.open(
      (requestId) => ({ kind: "subscribe_namespace", requestId, prefix: pathFields(prefix), options: 1 }),
      handler,
    );
  }

  #import(path: string): void {
    const ctx = this.#ctx;
    const existing = this.#imported.get(path);
    if (existing) {
      existing.refs++;
      return;
    }
    if (!this.#receive || this.#closed) return;
    const producer = new BroadcastProducer({ onDemand: true });
    const imported: Imported = { producer, consumer: producer.consume(), refs: 1 };
    this.#imported.set(path, imported);
    this.#receive.publish(path, imported.consumer);
    ctx.logger.debug({ ...ctx.logFields, broadcast: path }, "peer broadcast announced");
    void this.#serveTrackRequests(path, producer);
  }

  #release(path: string): void {
    const imported = this.#imported.get(path);
    if (!imported || --imported.refs > 0) return;
    this.#imported.delete(path);
    imported.producer.close();
    this.#ctx.logger.debug({ ...this.#ctx.logFields, broadcast: path }, "peer broadcast ended");
  }

  async #serveTrackRequests(path: string, producer: BroadcastProducer): Promise<void> {
    for (;;) {
      const request = await producer.requestedTrack();
      if (!request) return;
      void this.#runUpstream(path, request).catch((err) => {
        request.track.abort(toMoqError(err));
        this.#onError(err, "upstream subscription");
      });
    }
  }

  #onError(err: unknown, what: string): void {
    const ctx = this.#ctx;
    const error = toMoqError(err);
    if (isViolationLike(error)) {
      ctx.fail(error);
      return;
    }
    if (!ctx.closing) ctx.logger.debug({ ...ctx.logFields, err: error.message }, `${what} ended`);
  }

  // ---- upstream subscriptions ----

  async #runUpstream(broadcast: string, request: TrackRequest): Promise<void> {
    const ctx = this.#ctx;
    if (this.#closed) {
      request.track.close();
      return;
    }
    const up: Upstream = {
      requestId: undefined,
      alias: undefined,
      broadcast,
      name: request.name,
      track: request.track,
      groups: new Set(),
      link: undefined,
      cancelled: false,
      finished: false,
      publisherDone: false,
    };
    this.#upstream.add(up);
    const handler: RequestHandler = {
      message: (msg) => this.#onUpstreamMessage(up, msg),
      closed: (error) => {
        if (error)
          this.#finishUpstream(up, new NotFoundError(`${broadcast}/${request.name}: ${error.message}`));
        else this.#publisherDone(up);
      },
    };
    const version = ctx.version;
    let link: RequestLink;
    try {
      link = await this.#control.open((requestId) => {
        up.requestId = requestId;
        this.#byRequest.set(requestId, up);
        return {
          kind: "subscribe",
          requestId,
          namespace: pathFields(broadcast),
          track: request.name,
          priority: wirePriority(request.priority, version),
          groupOrder: IetfGroupOrder.Descending,
          forward: true,
          filter: { type: SubscriptionFilterType.LargestObject },
        };
      }, handler);
    } catch (err) {
      this.#finishUpstream(up, toMoqError(err));
      return;
    }
    up.link = link;
    if (up.finished) {
      link.end();
      return;
    }
    // Cancel upstream once nobody local reads the track.
    void request.track.unused().then(() => this.#cancelUpstream(up));
  }

  #onUpstreamMessage(up: Upstream, msg: IetfMessage): void {
    switch (msg.kind) {
      case "subscribe_ok": {
        if (up.alias !== undefined) {
          throw new IetfProtocolError(
            IetfSessionCode.ProtocolViolation,
            "second SUBSCRIBE_OK for one SUBSCRIBE",
          );
        }
        const other = this.#byAlias.get(msg.trackAlias);
        if (other && other !== up && !other.finished) {
          throw new IetfProtocolError(
            IetfSessionCode.DuplicateTrackAlias,
            `track alias ${msg.trackAlias} is already in use`,
          );
        }
        up.alias = msg.trackAlias;
        this.#byAlias.set(msg.trackAlias, up);
        const changed = this.#aliasChanged;
        this.#aliasChanged = Promise.withResolvers<void>();
        changed.resolve();
        return;
      }
      case "request_error":
        this.#finishUpstream(
          up,
          new NotFoundError(`${up.broadcast}/${up.name}: ${msg.reason || `error ${msg.code}`}`),
        );
        return;
      case "publish_done":
        this.#publisherDone(up);
        return;
      case "request_ok":
        return;
      default:
        unexpected(msg, "subscription");
    }
  }

  /** The publisher ended the subscription: let late group streams land, then end the track. */
  #publisherDone(up: Upstream): void {
    if (up.publisherDone || up.finished) return;
    up.publisherDone = true;
    if (up.groups.size === 0) {
      this.#finishUpstream(up, undefined);
      return;
    }
    const timer = setTimeout(() => this.#finishUpstream(up, undefined), DONE_GRACE_MS);
    timer.unref?.();
  }

  #cancelUpstream(up: Upstream): void {
    if (up.cancelled || up.finished) return;
    up.cancelled = true;
    const link = up.link;
    if (link && !link.ended && this.#ctx.version !== IetfVersion.Draft17 && up.requestId !== undefined) {
      link.send({ kind: "unsubscribe", requestId: up.requestId });
    }
    this.#finishUpstream(up, undefined);
  }

  #finishUpstream(up: Upstream, error: MoqError | undefined): void {
    if (up.finished) return;
    up.finished = true;
    this.#upstream.delete(up);
    if (up.requestId !== undefined && this.#byRequest.get(up.requestId) === up)
      this.#byRequest.delete(up.requestId);
    if (up.alias !== undefined && this.#byAlias.get(up.alias) === up) this.#byAlias.delete(up.alias);
    for (const group of up.groups) group.stop(StreamResetCode.Cancelled);
    up.groups.clear();
    if (error && !up.cancelled) up.track.abort(error);
    else up.track.close();
    up.link?.end();
  }

  // ---- groups ----

  async #resolveAlias(alias: number): Promise<Upstream | undefined> {
    const deadline = Date.now() + ALIAS_WAIT_MS;
    for (;;) {
      const up = this.#byAlias.get(alias);
      if (up) return up;
      // The official publishers use the Request ID as the alias; accept it while SUBSCRIBE_OK is in flight.
      const pending = this.#byRequest.get(alias);
      if (pending && pending.alias === undefined) return pending;
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.#closed || this.#aliasWaiters >= MAX_ALIAS_WAITERS) return undefined;
      this.#aliasWaiters++;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          this.#aliasChanged.promise,
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, remaining);
          }),
        ]);
      } finally {
        clearTimeout(timer);
        this.#aliasWaiters--;
      }
    }
  }

  /** Reads one subgroup stream whose type was already read into the subscribed track. */
  async receiveGroup(reader: StreamReader, type: number): Promise<void> {
    const ctx = this.#ctx;
    const version = ctx.version;
    const header = await readSubgroupHeader(reader, type, version);
    if (header.subgroup !== 0 && header.subgroup !== "first-object") {
      // moq-lite uses sub-group 0 only; objects of other sub-groups are dropped.
      reader.stop(StreamResetCode.Cancelled);
      return;
    }
    const up = await this.#resolveAlias(header.trackAlias);
    if (!up || up.cancelled || up.finished) {
      if (!up)
        ctx.logger.debug(
          { ...ctx.logFields, alias: header.trackAlias },
          "group for an unknown track alias; stopped",
        );
      reader.stop(StreamResetCode.Cancelled);
      return;
    }
    let group: GroupProducer | undefined;
    try {
      group = up.track.createGroup(header.group);
    } catch {
      group = undefined;
    }
    if (!group) {
      reader.stop(StreamResetCode.Cancelled);
      return;
    }
    up.groups.add(reader);
    let frame: FrameProducer | undefined;
    let first = true;
    try {
      for (;;) {
        if (await reader.done()) break;
        const delta = await readStreamVarint(reader, version, "object id delta");
        if (first && header.subgroup === "first-object" && delta !== 0) {
          // The sub-group is the first object's id, so not 0: drop it.
          group.abort(new MoqError("MOQ_CANCELLED", "objects of a sub-group other than 0"));
          reader.stop(StreamResetCode.Cancelled);
          return;
        }
        first = false;
        if (header.properties) {
          const length = await readStreamVarint(
            reader,
            version,
            "object properties length",
            MAX_PROPERTIES_BYTES,
          );
          if (length > 0) await reader.bytes(length, "object properties");
        }
        const size = await readStreamVarint(
          reader,
          version,
          "object payload length",
          ctx.limits.maxFrameBytes,
        );
        if (size === 0) {
          const status = await readStreamVarint(reader, version, "object status");
          if (status === IetfObjectStatus.Normal) {
            group.writeFrame(new Uint8Array(0));
            continue;
          }
          if (status === IetfObjectStatus.DoesNotExist && isDraft14(version)) continue;
          if (status === IetfObjectStatus.EndOfGroup || status === IetfObjectStatus.EndOfTrack) break;
          throw new IetfProtocolError(
            IetfSessionCode.ProtocolViolation,
            `object status ${status} is not defined`,
          );
        }
        frame = group.createFrame(size, { ingestTimeMs: Date.now() });
        let remaining = size;
        while (remaining > 0) {
          const chunk = await reader.chunk(remaining, "object payload");
          frame.write(chunk);
          remaining -= chunk.byteLength;
        }
        frame = undefined;
      }
      group.close();
    } catch (err) {
      const error = toMoqError(err);
      // Readers of a half-received frame must see the failure too, not wait for bytes forever.
      frame?.abort(error);
      group.abort(error);
      if (isViolationLike(error)) throw error;
      if (!up.cancelled) reader.stop(StreamResetCode.Cancelled);
    } finally {
      up.groups.delete(reader);
      if (up.publisherDone && up.groups.size === 0) this.#finishUpstream(up, undefined);
    }
  }
}

const IGNORED: RequestHandler = { message() {}, closed() {} };

function unexpected(msg: IetfMessage, what: string): never {
  throw new IetfProtocolError(
    IetfSessionCode.ProtocolViolation,
    `${msg.kind.toUpperCase()} is not expected on a ${what}`,
  );
}
