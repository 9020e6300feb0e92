/**
 * The publishing half of a moq-transport session: it serves an origin to the peer, with the same
 * behaviour as the moq-lite publisher.
 *
 * - SUBSCRIBE: SUBSCRIBE_OK (Track Alias = Request ID), then one subgroup stream (sub-group 0)
 *   per group, starting at the latest group from its first object; groups are sent
 *   concurrently, newer first unless the subscriber asked for ascending order. A subscription
 *   whose queued bytes exceed its budget, or that lags the track cache, has its stale group
 *   streams reset and continues at the newest group. A finished group stream counts against the
 *   budget until its queued bytes are sent, so a peer that withholds flow-control credit holds
 *   no more than the budget either. When the track ends, PUBLISH_DONE follows
 *   the last group stream. Absolute filters bound the groups sent.
 * - SUBSCRIBE_NAMESPACE: the broadcasts under the prefix, then changes; as NAMESPACE and
 *   NAMESPACE_DONE on the request's stream (drafts 16, 17), or as PUBLISH_NAMESPACE requests and
 *   PUBLISH_NAMESPACE_DONE (drafts 14, 15), one per broadcast however many prefixes cover it.
 * - FETCH: a joining fetch with offset 0 is answered with an empty range (the subscription
 *   already starts at the first object of its group); fetches of past groups are refused.
 * - TRACK_STATUS: answered from the origin.
 */
import { isMoqError, LaggedError, type MoqError, NotFoundError, toMoqError } from "../error.ts";
import type { BroadcastConsumer } from "../model/broadcast.ts";
import type { FrameConsumer } from "../model/frame.ts";
import type { GroupConsumer } from "../model/group.ts";
import type { AnnouncedConsumer, OriginConsumer } from "../model/origin.ts";
import type { TrackConsumer } from "../model/track.ts";
import { stripPathPrefix } from "../path.ts";
import type { ServedSubscription } from "../session/publisher.ts";
import type { SendStream } from "../transport.ts";
import type { IetfContext } from "./context.ts";
import type { IetfControl, RequestHandler, RequestLink } from "./control.ts";
import {
  IetfProtocolError,
  IetfSessionCode,
  PublishDoneStatus,
  type RequestRefusal,
  requestErrorCode,
  StreamResetCode,
  tooFarBehindResetCode,
} from "./errors.ts";
import type {
  FetchMessage,
  IetfMessage,
  RequestKind,
  SubscribeMessage,
  SubscribeNamespaceMessage,
} from "./messages.ts";
import { litePriority, namespacePath, pathFields } from "./namespace.ts";
import { encodeFetchHeader, encodeObjectHeader, encodeSubgroupHeader } from "./objects.ts";
import { IetfGroupOrder, SubscriptionFilterType } from "./parameters.ts";
import { IetfVersion, isDraft14, usesNamespaceKeys } from "./version.ts";

/** Publisher priority written in subgroup headers: the drafts' default. */
const PUBLISHER_PRIORITY = 128;

interface GroupSend {
  readonly sequence: number;
  readonly stream: SendStream;
  readonly done: Promise<void>;
  /** All written and FIN queued; kept while bytes wait for the transport. */
  finished: boolean;
}

class Subscription implements ServedSubscription {
  readonly link: RequestLink;
  readonly broadcast: string;
  readonly track: string;
  priority: number;
  ordered: boolean;
  forward: boolean;
  startGroup: number | undefined;
  endGroup: number | undefined;
  consumer: TrackConsumer | undefined;
  /** Sequence of the first group sent (the start of the range a joining fetch would cover). */
  firstGroup: number | undefined;
  readonly groups: Set<GroupSend> = new Set();
  streamsOpened = 0;
  ended = false;

  constructor(msg: SubscribeMessage, path: string, link: RequestLink) {
    this.link = link;
    this.broadcast = path;
    this.track = msg.track;
    this.priority = litePriority(msg.priority);
    this.ordered = msg.groupOrder === IetfGroupOrder.Ascending;
    this.forward = msg.forward;
    this.applyFilter(msg.filter);
  }

  applyFilter(filter: SubscribeMessage["filter"]): void {
    if (
      filter?.type === SubscriptionFilterType.AbsoluteStart ||
      filter?.type === SubscriptionFilterType.AbsoluteRange
    ) {
      this.startGroup = filter.start?.group;
      this.endGroup = filter.type === SubscriptionFilterType.AbsoluteRange ? filter.endGroup : undefined;
    }
  }

  get bufferedBytes(): number {
    let total = 0;
    for (const group of this.groups) {
      const bytes = group.stream.bufferedBytes;
      if (group.finished && bytes === 0) this.groups.delete(group);
      else total += bytes;
    }
    return total;
  }

  order(sequence: number): number {
    return this.ordered ? -sequence : sequence;
  }

  /** Resets every group stream older than the newest one (the subscriber skips ahead). */
  dropStaleGroups(code: number): number {
    let newest = -1;
    for (const group of this.groups) if (group.sequence > newest) newest = group.sequence;
    let dropped = 0;
    for (const group of [...this.groups]) {
      if (group.sequence === newest) continue;
      if (group.finished && group.stream.bufferedBytes === 0) {
        this.groups.delete(group);
        continue;
      }
      group.stream.reset(code);
      this.groups.delete(group);
      dropped++;
    }
    return dropped;
  }
}

/** Serves an origin to the peer of one moq-transport session. */
export class IetfPublisher {
  readonly #ctx: IetfContext;
  readonly #origin: OriginConsumer | undefined;
  /** Broadcasts imported from the peer, by path: never announced back to it. */
  readonly #ownBroadcasts: (path: string) => BroadcastConsumer | undefined;
  readonly #subscriptions: Map<number, Subscription> = new Map();
  readonly #announcer: NamespaceAnnouncer;
  readonly #watchers: Set<AnnouncedConsumer> = new Set();

  constructor(
    ctx: IetfContext,
    control: IetfControl,
    origin: OriginConsumer | undefined,
    ownBroadcasts: (path: string) => BroadcastConsumer | undefined,
  ) {
    this.#ctx = ctx;
    this.#origin = origin;
    this.#ownBroadcasts = ownBroadcasts;
    this.#announcer = new NamespaceAnnouncer(ctx, control);
  }

  /** The peer's live subscriptions. */
  subscriptions(): Iterable<ServedSubscription> {
    return this.#subscriptions.values();
  }

  /** Number of live subscriptions. */
  get subscriptionCount(): number {
    return this.#subscriptions.size;
  }

  /** Ends every subscription and watcher (the session is closing). */
  close(): void {
    for (const sub of [...this.#subscriptions.values()]) this.#end(sub);
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers.clear();
    this.#announcer.close();
  }

  #isOwn(path: string, broadcast: BroadcastConsumer | undefined): boolean {
    const own = this.#ownBroadcasts(path);
    return own !== undefined && broadcast !== undefined && own.sameAs(broadcast);
  }

  /** Answers a request with an error and ends it. */
  #refuse(link: RequestLink, answers: RequestKind, reason: RequestRefusal, text: string): RequestHandler {
    const version = this.#ctx.version;
    link.send({
      kind: "request_error",
      answers,
      ...(version !== IetfVersion.Draft17 ? { requestId: link.requestId } : {}),
      code: requestErrorCode(reason, answers, version),
      retryInterval: 0,
      reason: text,
    });
    link.end();
    this.#ctx.logger.debug(
      { ...this.#ctx.logFields, id: link.requestId, answers, reason: text },
      "request refused",
    );
    return IGNORED;
  }

  #responseId(link: RequestLink): { requestId?: number } {
    return this.#ctx.version === IetfVersion.Draft17 ? {} : { requestId: link.requestId };
  }

  // ---- SUBSCRIBE ----

  /** Answers a SUBSCRIBE and serves the track until it ends or the peer cancels. */
  serveSubscribe(msg: SubscribeMessage, link: RequestLink): RequestHandler {
    const ctx = this.#ctx;
    const path = namespacePath(msg.namespace);
    if (path === undefined)
      return this.#refuse(link, "subscribe", "does_not_exist", "namespace field contains '/'");
    if (this.#subscriptions.size >= ctx.limits.maxSubscriptions) {
      return this.#refuse(
        link,
        "subscribe",
        "excessive_load",
        `more than ${ctx.limits.maxSubscriptions} subscriptions`,
      );
    }
    const origin = this.#origin;
    if (!origin?.canRead(path))
      return this.#refuse(link, "subscribe", "unauthorized", "not allowed to read this broadcast");
    const broadcast = origin.consume(path);
    if (!broadcast) return this.#refuse(link, "subscribe", "does_not_exist", "broadcast not found");
    const sub = new Subscription(msg, path, link);
    this.#subscriptions.set(link.requestId, sub);
    const consumer = broadcast.subscribeTrack(msg.track, { priority: sub.priority });
    sub.consumer = consumer;
    void this.#startSubscription(sub, consumer);
    return {
      message: (update) => this.#onSubscriptionMessage(sub, update),
      closed: () => this.#cancel(sub),
    };
  }

  async #startSubscription(sub: Subscription, consumer: TrackConsumer): Promise<void> {
    const ctx = this.#ctx;
    const failure = await settledError(consumer.closed);
    if (sub.ended) return;
    if (failure) {
      this.#drop(sub);
      this.#refuse(sub.link, "subscribe", "does_not_exist", failure.message);
      return;
    }
    sub.link.send({
      kind: "subscribe_ok",
      ...this.#responseId(sub.link),
      trackAlias: sub.link.requestId,
      expires: 0,
      groupOrder: sub.ordered ? IetfGroupOrder.Ascending : IetfGroupOrder.Descending,
    });
    ctx.logger.debug(
      { ...ctx.logFields, id: sub.link.requestId, broadcast: sub.broadcast, track: sub.track },
      "subscription started",
    );
    let status: number = PublishDoneStatus.TrackEnded;
    let reason = "";
    try {
      status = await this.#runTrack(sub, consumer);
    } catch (err) {
      const error = toMoqError(err);
      status =
        error instanceof NotFoundError || error.code === "MOQ_CLOSED"
          ? PublishDoneStatus.TrackEnded
          : PublishDoneStatus.InternalError;
      reason = error.message;
      for (const group of sub.groups) group.stream.reset(StreamResetCode.Cancelled);
    }
    if (sub.ended) return;
    // PUBLISH_DONE must follow the last data stream of the subscription.
    await Promise.all([...sub.groups].map((group) => group.done));
    if (sub.ended) return;
    sub.link.send({
      kind: "publish_done",
      ...this.#responseId(sub.link),
      status,
      streamCount: BigInt(sub.streamsOpened),
      reason,
    });
    this.#end(sub);
  }

  #onSubscriptionMessage(sub: Subscription, msg: IetfMessage): void {
    switch (msg.kind) {
      case "unsubscribe":
        this.#cancel(sub);
        return;
      case "request_update":
        if (msg.priority !== undefined) sub.priority = litePriority(msg.priority);
        if (msg.forward !== undefined) sub.forward = msg.forward;
        if (msg.filter) sub.applyFilter(msg.filter);
        if (msg.endGroupPlusOne) sub.endGroup = msg.endGroupPlusOne - 1;
        for (const group of sub.groups) group.stream.setPriority(sub.priority, sub.order(group.sequence));
        if (!isDraft14(this.#ctx.version)) {
          sub.link.send({
            kind: "request_ok",
            answers: "request_update",
            ...(this.#ctx.version !== IetfVersion.Draft17 ? { requestId: msg.requestId } : {}),
            parameters: {},
          });
        }
        return;
      default:
        unexpected(msg, "subscription");
    }
  }

  #cancel(sub: Subscription): void {
    if (sub.ended) return;
    for (const group of sub.groups) group.stream.reset(StreamResetCode.Cancelled);
    sub.groups.clear();
    this.#end(sub);
  }

  #end(sub: Subscription): void {
    this.#drop(sub);
    sub.link.end();
  }

  /** Forgets a subscription without ending its request (the caller answers it). */
  #drop(sub: Subscription): void {
    if (sub.ended) return;
    sub.ended = true;
    sub.consumer?.close();
    this.#subscriptions.delete(sub.link.requestId);
  }

  /** Sends groups until the track ends; returns the PUBLISH_DONE status. */
  async #runTrack(sub: Subscription, consumer: TrackConsumer): Promise<number> {
    const ctx = this.#ctx;
    for (;;) {
      let group: GroupConsumer | undefined;
      try {
        group = await consumer.recvGroup();
      } catch (err) {
        if (!(err instanceof LaggedError)) throw err;
        // Fell behind the track cache: resume at the newest group, dropping stale sends.
        consumer.skipToLatest();
        const dropped = sub.dropStaleGroups(tooFarBehindResetCode(ctx.version));
        ctx.logger.debug(
          { ...ctx.logFields, broadcast: sub.broadcast, track: sub.track, dropped },
          "subscriber lagged",
        );
        continue;
      }
      if (!group || sub.ended) return PublishDoneStatus.TrackEnded;
      const sequence = group.sequence;
      if (sub.endGroup !== undefined && sequence > sub.endGroup) return PublishDoneStatus.SubscriptionEnded;
      if (!sub.forward || (sub.startGroup !== undefined && sequence < sub.startGroup)) continue;
      const stream = await ctx.transport.openUni();
      if (sub.ended) {
        stream.reset(StreamResetCode.Cancelled);
        return PublishDoneStatus.TrackEnded;
      }
      sub.firstGroup ??= sequence;
      sub.streamsOpened++;
      const { promise, resolve } = Promise.withResolvers<void>();
      const send: GroupSend = { sequence, stream, done: promise, finished: false };
      sub.groups.add(send);
      void this.#sendGroup(sub, group, send).finally(resolve);
    }
  }

  async #sendGroup(sub: Subscription, group: GroupConsumer, send: GroupSend): Promise<void> {
    const ctx = this.#ctx;
    const stream = send.stream;
    stream.setPriority(sub.priority, sub.order(group.sequence));
    const stop = stream.stopped.then(() => undefined);
    try {
      stream.write(
        encodeSubgroupHeader(
          { trackAlias: sub.link.requestId, group: group.sequence, priority: PUBLISHER_PRIORITY },
          ctx.version,
        ),
      );
      for (;;) {
        const frame = await Promise.race([group.nextFrame(), stop]);
        if (!frame || stream.closed) break;
        await this.#sendFrame(sub, frame, stream);
        if (stream.closed) break;
      }
      if (!stream.closed) {
        stream.finish();
        send.finished = true;
      }
    } catch (err) {
      const error = toMoqError(err);
      if (!isMoqError(err) || error.code !== "MOQ_CLOSED") {
        ctx.logger.debug(
          {
            ...ctx.logFields,
            broadcast: sub.broadcast,
            track: sub.track,
            group: group.sequence,
            err: error.message,
          },
          "group send aborted",
        );
      }
      stream.reset(
        error instanceof LaggedError ? tooFarBehindResetCode(ctx.version) : StreamResetCode.InternalError,
      );
    } finally {
      // A finished stream whose bytes are still queued stays for the budget (see bufferedBytes).
      if (!send.finished || send.stream.bufferedBytes === 0) sub.groups.delete(send);
    }
  }

  async #sendFrame(sub: Subscription, frame: FrameConsumer, stream: SendStream): Promise<void> {
    const ctx = this.#ctx;
    const size = frame.size;
    const onFrameSent = ctx.onFrameSent;
    const notify = onFrameSent
      ? () => onFrameSent({ broadcast: sub.broadcast, track: sub.track, bytes: size, meta: frame.meta })
      : undefined;
    let ok = stream.write(encodeObjectHeader(size, ctx.version), size === 0 ? notify : undefined);
    // Checked after every write, before waiting for the transport: a stalled peer never drains.
    this.#enforceBudget(sub);
    let written = 0;
    while (written < size) {
      if (!ok) {
        await stream.drained();
        if (stream.closed) return;
      }
      const chunk = await frame.readChunk();
      if (chunk === undefined || stream.closed) return;
      written += chunk.byteLength;
      ok = stream.write(chunk, written === size ? notify : undefined);
      this.#enforceBudget(sub);
    }
  }

  /** Over its send budget, a subscription skips to its newest group (older streams reset). */
  #enforceBudget(sub: Subscription): void {
    const ctx = this.#ctx;
    if (
      sub.bufferedBytes > ctx.limits.subscriberBudgetBytes &&
      sub.dropStaleGroups(tooFarBehindResetCode(ctx.version)) > 0
    ) {
      ctx.logger.debug(
        { ...ctx.logFields, broadcast: sub.broadcast, track: sub.track },
        "subscriber over its send budget: skipped to the newest group",
      );
    }
  }

  // ---- TRACK_STATUS ----

  /** Answers a TRACK_STATUS from the origin. */
  serveTrackStatus(msg: SubscribeMessage, link: RequestLink): RequestHandler {
    const path = namespacePath(msg.namespace);
    if (path === undefined)
      return this.#refuse(link, "track_status", "does_not_exist", "namespace field contains '/'");
    const origin = this.#origin;
    if (!origin?.canRead(path))
      return this.#refuse(link, "track_status", "unauthorized", "not allowed to read this broadcast");
    const broadcast = origin.consume(path);
    if (!broadcast) return this.#refuse(link, "track_status", "does_not_exist", "broadcast not found");
    const consumer = broadcast.subscribeTrack(msg.track, { priority: litePriority(msg.priority) });
    void settledError(consumer.closed).then((failure) => {
      consumer.close();
      if (link.ended) return;
      if (failure) {
        this.#refuse(link, "track_status", "does_not_exist", failure.message);
        return;
      }
      if (isDraft14(this.#ctx.version)) {
        link.send({
          kind: "track_status_ok",
          requestId: link.requestId,
          trackAlias: 0,
          expires: 0,
          groupOrder: IetfGroupOrder.Descending,
        });
      } else {
        link.send({ kind: "request_ok", answers: "track_status", ...this.#responseId(link), parameters: {} });
      }
      link.end();
    });
    return IGNORED;
  }

  // ---- FETCH ----

  /** Answers a FETCH: joining fetches with offset 0 get an empty range; others are refused. */
  serveFetch(msg: FetchMessage, link: RequestLink): RequestHandler {
    const fetch = msg.fetch;
    if (fetch.type === 1) {
      return this.#refuse(
        link,
        "fetch",
        "not_supported",
        "standalone FETCH is not supported (past groups are not served)",
      );
    }
    const sub = this.#subscriptions.get(fetch.joiningRequestId);
    if (!sub)
      return this.#refuse(link, "fetch", "invalid_joining_request", "no such subscription in this session");
    const startsBefore =
      fetch.type === 2
        ? fetch.joiningStart > 0
        : sub.firstGroup === undefined || fetch.joiningStart < sub.firstGroup;
    if (startsBefore) {
      return this.#refuse(
        link,
        "fetch",
        "not_supported",
        "FETCH of groups before the subscription is not supported",
      );
    }
    void this.#answerJoiningFetch(link, sub.firstGroup ?? 0);
    return {
      message: (m) => {
        if (m.kind !== "fetch_cancel") unexpected(m, "fetch");
      },
      closed: () => link.end(),
    };
  }

  async #answerJoiningFetch(link: RequestLink, group: number): Promise<void> {
    const ctx = this.#ctx;
    link.send({
      kind: "fetch_ok",
      ...this.#responseId(link),
      groupOrder: IetfGroupOrder.Descending,
      endOfTrack: false,
      end: { group, object: 0 },
    });
    try {
      const stream = await ctx.transport.openUni();
      stream.write(encodeFetchHeader(link.requestId, ctx.version));
      stream.finish();
    } finally {
      link.end();
    }
  }

  // ---- SUBSCRIBE_NAMESPACE ----

  /**
   * Announces every broadcast this side serves with PUBLISH_NAMESPACE, unasked (a client on
   * drafts 14 and 15, where a relay does not ask: publishers announce themselves).
   */
  announceAll(): void {
    const origin = this.#origin;
    if (!origin) return;
    const watcher = origin.announced("");
    this.#watchers.add(watcher);
    void (async () => {
      const active = new Set<string>();
      try {
        for (;;) {
          const next = await watcher.next();
          if (!next) break;
          if (next.active) {
            if (active.has(next.path) || this.#isOwn(next.path, next.broadcast)) continue;
            active.add(next.path);
            this.#announcer.add(next.path);
          } else if (active.delete(next.path)) {
            this.#announcer.remove(next.path);
          }
        }
      } finally {
        watcher.close();
        this.#watchers.delete(watcher);
      }
    })().catch((err) => this.#onError(err, "announcements"));
  }

  /** Answers a SUBSCRIBE_NAMESPACE and reports the broadcasts under the prefix until cancelled. */
  serveNamespaces(msg: SubscribeNamespaceMessage, link: RequestLink): RequestHandler {
    const ctx = this.#ctx;
    const prefix = namespacePath(msg.prefix);
    if (prefix === undefined)
      return this.#refuse(link, "subscribe_namespace", "does_not_exist", "prefix field contains '/'");
    const origin = this.#origin;
    if (!origin)
      return this.#refuse(link, "subscribe_namespace", "not_supported", "this session serves no broadcasts");
    link.send({
      kind: "request_ok",
      answers: "subscribe_namespace",
      ...this.#responseId(link),
      parameters: {},
    });
    const legacy = usesNamespaceKeys(ctx.version);
    // Subscribe option 0 asks for PUBLISH only, which this package never sends.
    const entries = legacy || msg.options !== 0;
    const watcher = entries ? origin.announced(prefix) : undefined;
    if (watcher) {
      this.#watchers.add(watcher);
      void this.#watchNamespaces(prefix, watcher, link, legacy).catch((err) =>
        this.#onError(err, "namespace subscription"),
      );
    }
    const stop = () => {
      if (watcher) {
        watcher.close();
        this.#watchers.delete(watcher);
      }
      link.end();
    };
    return {
      message: (m) => {
        if (m.kind === "unsubscribe_namespace") stop();
        else if (m.kind === "request_update") {
          link.send({
            kind: "request_ok",
            answers: "request_update",
            ...this.#updateId(m.requestId),
            parameters: {},
          });
        } else unexpected(m, "namespace subscription");
      },
      closed: stop,
    };
  }

  #updateId(requestId: number): { requestId?: number } {
    return this.#ctx.version === IetfVersion.Draft17 ? {} : { requestId };
  }

  async #watchNamespaces(
    prefix: string,
    watcher: AnnouncedConsumer,
    link: RequestLink,
    legacy: boolean,
  ): Promise<void> {
    const active = new Set<string>();
    const announce = async (path: string, isActive: boolean): Promise<void> => {
      if (link.ended) return;
      if (legacy) {
        if (isActive) this.#announcer.add(path);
        else this.#announcer.remove(path);
        return;
      }
      const suffix = stripPathPrefix(path, prefix);
      if (suffix === undefined) return;
      if (!link.send({ kind: isActive ? "namespace" : "namespace_done", suffix: pathFields(suffix) })) {
        await link.drained();
      }
    };
    try {
      for (;;) {
        const next = await watcher.next();
        if (!next || link.ended) break;
        if (next.active) {
          if (active.has(next.path) || this.#isOwn(next.path, next.broadcast)) continue;
          active.add(next.path);
        } else if (!active.delete(next.path)) {
          continue;
        }
        await announce(next.path, next.active);
      }
    } finally {
      watcher.close();
      this.#watchers.delete(watcher);
      if (legacy) for (const path of active) this.#announcer.remove(path);
    }
  }

  #onError(err: unknown, what: string): void {
    const ctx = this.#ctx;
    const error = toMoqError(err);
    if (!ctx.closing) ctx.logger.debug({ ...ctx.logFields, err: error.message }, `${what} ended`);
  }
}

/**
 * Drafts 14 and 15 answer SUBSCRIBE_NAMESPACE with PUBLISH_NAMESPACE requests of this side's
 * own. One request per broadcast for the session, however many prefixes cover it: the peer keys
 * PUBLISH_NAMESPACE_DONE by namespace and would refuse a duplicate.
 */
class NamespaceAnnouncer {
  readonly #ctx: IetfContext;
  readonly #control: IetfControl;
  readonly #entries: Map<string, { covers: number; link: RequestLink | undefined; withdrawn: boolean }> =
    new Map();
  #closed = false;

  constructor(ctx: IetfContext, control: IetfControl) {
    this.#ctx = ctx;
    this.#control = control;
  }

  add(path: string): void {
    // A namespace has at least one field in drafts 14 and 15.
    if (path === "" || this.#closed) return;
    const existing = this.#entries.get(path);
    if (existing) {
      existing.covers++;
      return;
    }
    const entry = { covers: 1, link: undefined as RequestLink | undefined, withdrawn: false };
    this.#entries.set(path, entry);
    const namespace = pathFields(path);
    const handler: RequestHandler = {
      message: (msg) => {
        if (msg.kind === "request_error") {
          this.#ctx.logger.debug(
            { ...this.#ctx.logFields, broadcast: path, reason: msg.reason },
            "peer refused PUBLISH_NAMESPACE",
          );
          entry.link?.end();
        } else if (msg.kind === "publish_namespace_cancel") {
          entry.link?.end();
        } else if (msg.kind !== "request_ok") {
          unexpected(msg, "PUBLISH_NAMESPACE");
        }
      },
      closed: () => entry.link?.end(),
    };
    void this.#control
      .open((requestId) => ({ kind: "publish_namespace", requestId, namespace }), handler, path)
      .then(
        (link) => {
          entry.link = link;
          if (entry.withdrawn) this.#withdraw(path, link);
        },
        () => this.#entries.delete(path),
      );
  }

  remove(path: string): void {
    const entry = this.#entries.get(path);
    if (!entry || --entry.covers > 0) return;
    this.#entries.delete(path);
    entry.withdrawn = true;
    if (entry.link) this.#withdraw(path, entry.link);
  }

  #withdraw(path: string, link: RequestLink): void {
    if (link.ended) return;
    link.send({ kind: "publish_namespace_done", namespace: pathFields(path) });
    link.end();
  }

  close(): void {
    this.#closed = true;
    this.#entries.clear();
  }
}

const IGNORED: RequestHandler = { message() {}, closed() {} };

function unexpected(msg: IetfMessage, what: string): never {
  throw new IetfProtocolError(
    IetfSessionCode.ProtocolViolation,
    `${msg.kind.toUpperCase()} is not expected on a ${what}`,
  );
}

/** The error a track consumer already failed with (e.g. NotFound), without waiting when it has not. */
async function settledError(closed: Promise<MoqError | undefined>): Promise<MoqError | undefined> {
  const pending = Symbol("pending");
  const result = await Promise.race([closed, Promise.resolve(pending)]);
  if (result === pending || result === undefined) return undefined;
  return isMoqError(result) ? result : new NotFoundError("track not found");
}
