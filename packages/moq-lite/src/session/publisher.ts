/**
 * The publishing half of a session: it serves an origin to the peer. It answers ANNOUNCE_PLEASE
 * with the broadcasts under the prefix (then live changes), and SUBSCRIBE with SUBSCRIBE_OK and
 * one uni stream per group, starting at the latest group from its first frame. Groups are sent
 * concurrently (newer groups first within a track); a subscription whose queued bytes exceed
 * its budget, or that lags the track cache, has its stale group streams reset and continues at
 * the newest group, so a slow subscriber never grows memory or delays anyone else.
 */
import { isMoqError, LaggedError, MoqError, NotFoundError, toMoqError, WireErrorCode } from "../error.ts";
import type { BroadcastConsumer } from "../model/broadcast.ts";
import type { FrameConsumer, FrameMeta } from "../model/frame.ts";
import type { GroupConsumer } from "../model/group.ts";
import type { OriginConsumer } from "../model/origin.ts";
import type { TrackConsumer } from "../model/track.ts";
import { stripPathPrefix } from "../path.ts";
import type { BidiStream, SendStream } from "../transport.ts";
import { decodeAnnouncePlease, encodeAnnounce, encodeAnnounceInit } from "../wire/announce.ts";
import { decodeFetch } from "../wire/fetch.ts";
import { encodeGroupStreamHeader } from "../wire/group.ts";
import { decodeProbe } from "../wire/probe.ts";
import type { StreamReader } from "../wire/stream-reader.ts";
import {
  decodeSubscribe,
  decodeSubscribeUpdate,
  encodeSubscribeOk,
  type Subscribe,
} from "../wire/subscribe.ts";
import { varintSize, writeVarint } from "../wire/varint.ts";
import { isSetupEra } from "../wire/version.ts";
import { CONTROL_PRIORITY, isViolation, type SessionContext } from "./context.ts";

/** A subscription the peer holds on this session. */
export interface ServedSubscription {
  /** Broadcast path relative to the session root. */
  readonly broadcast: string;
  readonly track: string;
  readonly priority: number;
  /** Bytes queued across the subscription's group streams. */
  readonly bufferedBytes: number;
}

interface GroupSend {
  readonly sequence: number;
  readonly stream: SendStream;
}

class Subscription implements ServedSubscription {
  readonly id: number;
  readonly broadcast: string;
  readonly track: string;
  priority: number;
  ordered: boolean;
  readonly consumer: TrackConsumer;
  /** Group streams in flight (an array: a handful at most, iterated on every frame without iterator objects). */
  groups: GroupSend[] = [];
  ended = false;

  constructor(msg: Subscribe, consumer: TrackConsumer) {
    this.id = msg.id;
    this.broadcast = msg.broadcast;
    this.track = msg.track;
    this.priority = msg.priority;
    this.ordered = msg.ordered ?? false;
    this.consumer = consumer;
  }

  get bufferedBytes(): number {
    let total = 0;
    const groups = this.groups;
    for (let i = 0; i < groups.length; i++) total += groups[i]!.stream.bufferedBytes;
    return total;
  }

  order(sequence: number): number {
    return this.ordered ? -sequence : sequence;
  }

  removeGroup(group: GroupSend): void {
    const index = this.groups.indexOf(group);
    if (index >= 0) this.groups.splice(index, 1);
  }

  /** Resets every group stream older than the newest one (the subscriber skips ahead). */
  dropStaleGroups(code: number): number {
    let newest = -1;
    for (const group of this.groups) if (group.sequence > newest) newest = group.sequence;
    let dropped = 0;
    for (const group of [...this.groups]) {
      if (group.sequence === newest) continue;
      group.stream.reset(code);
      this.removeGroup(group);
      dropped++;
    }
    return dropped;
  }
}

/**
 * Sends one group on its uni stream: the header, then every frame (size prefix and payload, the
 * payload shared with every other subscriber). It is a small state machine driven by callbacks
 * rather than an async loop: frames already in the group go out synchronously, and when caught
 * up it registers one reused callback with the group (or the frame being received), so a relay
 * with many subscribers allocates nothing per subscriber while waiting for the next frame.
 */
class GroupSender {
  readonly #ctx: SessionContext;
  readonly #sub: Subscription;
  readonly #group: GroupConsumer;
  readonly #send: GroupSend;
  /** The frame whose chunks are being sent (received in pieces), if any. */
  #frame: FrameConsumer | undefined;
  #frameWritten = 0;
  #notify: (() => void) | undefined;
  #waiting = false;
  #done = false;
  /** The one callback every wait re-registers. */
  readonly #wake = (): void => {
    this.#waiting = false;
    this.#step();
  };

  constructor(ctx: SessionContext, sub: Subscription, group: GroupConsumer, send: GroupSend) {
    this.#ctx = ctx;
    this.#sub = sub;
    this.#group = group;
    this.#send = send;
  }

  start(): void {
    const stream = this.#send.stream;
    void stream.stopped.then(this.#wake);
    try {
      stream.write(encodeGroupStreamHeader({ subscribeId: this.#sub.id, sequence: this.#group.sequence }));
    } catch (err) {
      this.#fail(err);
      return;
    }
    this.#step();
  }

  #step(): void {
    if (this.#done || this.#waiting) return;
    const stream = this.#send.stream;
    try {
      for (;;) {
        if (stream.closed) {
          this.#finish(false);
          return;
        }
        const frame = this.#frame;
        if (frame) {
          const chunk = frame.tryReadChunk();
          if (chunk === undefined) {
            this.#waiting = true;
            frame.onNextChange(this.#wake);
            return;
          }
          if (chunk === null) {
            this.#frame = undefined;
            continue;
          }
          this.#frameWritten += chunk.byteLength;
          const last = this.#frameWritten === frame.size;
          const ok = stream.write(chunk, last ? this.#notify : undefined);
          this.#enforceBudget();
          if (!ok) {
            this.#waitDrained();
            return;
          }
          continue;
        }
        const next = this.#group.tryNextFrame();
        if (next === null) {
          this.#finish(true);
          return;
        }
        if (next === undefined) {
          this.#waiting = true;
          this.#group.onNextChange(this.#wake);
          return;
        }
        const size = next.size;
        this.#notify = this.#ctx.onFrameSent ? this.#frameSentCallback(size, next.meta) : undefined;
        const payload = next.readyPayload();
        let ok = stream.write(frameSizePrefix(size), size === 0 ? this.#notify : undefined);
        if (payload !== undefined) {
          if (size > 0) ok = stream.write(payload, this.#notify);
        } else {
          this.#frame = next;
          this.#frameWritten = 0;
        }
        this.#enforceBudget();
        if (!ok) {
          this.#waitDrained();
          return;
        }
      }
    } catch (err) {
      this.#fail(err);
    }
  }

  /**
   * The onSent callback reporting one frame. A separate method so the send loop captures no
   * variables (a captured loop variable would allocate a context on every iteration).
   */
  #frameSentCallback(size: number, meta: FrameMeta | undefined): () => void {
    const onFrameSent = this.#ctx.onFrameSent!;
    const sub = this.#sub;
    return () => onFrameSent({ broadcast: sub.broadcast, track: sub.track, bytes: size, meta });
  }

  #waitDrained(): void {
    this.#waiting = true;
    void this.#send.stream.drained().then(this.#wake);
  }

  #enforceBudget(): void {
    const ctx = this.#ctx;
    const sub = this.#sub;
    if (
      sub.bufferedBytes > ctx.limits.subscriberBudgetBytes &&
      sub.dropStaleGroups(WireErrorCode.Dropped) > 0
    ) {
      ctx.logger.debug(
        { ...ctx.logFields, broadcast: sub.broadcast, track: sub.track },
        "subscriber over its send budget: skipped to the newest group",
      );
    }
  }

  #finish(complete: boolean): void {
    if (this.#done) return;
    this.#done = true;
    const stream = this.#send.stream;
    if (complete && !stream.closed) stream.finish();
    this.#sub.removeGroup(this.#send);
  }

  #fail(err: unknown): void {
    if (this.#done) return;
    this.#done = true;
    const ctx = this.#ctx;
    const error = toMoqError(err);
    if (!isMoqError(err) || error.code !== "MOQ_CLOSED") {
      ctx.logger.debug(
        {
          ...ctx.logFields,
          broadcast: this.#sub.broadcast,
          track: this.#sub.track,
          group: this.#group.sequence,
          err: error.message,
        },
        "group send aborted",
      );
    }
    this.#send.stream.reset(error instanceof LaggedError ? WireErrorCode.Dropped : error.wireCode);
    this.#sub.removeGroup(this.#send);
  }
}

/**
 * A frame's size prefix, cut from Node's shared buffer pool: a subscriber sends one per frame,
 * and a pool slice costs one small object instead of a new ArrayBuffer each.
 */
function frameSizePrefix(size: number): Uint8Array {
  const prefix = Buffer.allocUnsafe(varintSize(size));
  writeVarint(prefix, 0, size);
  return prefix;
}

/** Serves an origin to the peer of one session. */
export class SessionPublisher {
  readonly #ctx: SessionContext;
  readonly #origin: OriginConsumer | undefined;
  /** Broadcasts this session imported from the peer, by path: never announced back to it. */
  readonly #ownBroadcasts: (path: string) => BroadcastConsumer | undefined;
  readonly #subscriptions: Map<number, Subscription> = new Map();

  constructor(
    ctx: SessionContext,
    origin: OriginConsumer | undefined,
    ownBroadcasts: (path: string) => BroadcastConsumer | undefined,
  ) {
    this.#ctx = ctx;
    this.#origin = origin;
    this.#ownBroadcasts = ownBroadcasts;
  }

  /** The peer's live subscriptions. */
  subscriptions(): Iterable<ServedSubscription> {
    return this.#subscriptions.values();
  }

  /** Number of live subscriptions. */
  get subscriptionCount(): number {
    return this.#subscriptions.size;
  }

  /** Ends every subscription (the session is closing). */
  close(): void {
    for (const sub of this.#subscriptions.values()) this.#end(sub);
  }

  #isOwn(path: string, broadcast: BroadcastConsumer | undefined): boolean {
    const own = this.#ownBroadcasts(path);
    return own !== undefined && broadcast !== undefined && own.sameAs(broadcast);
  }

  // ---- announce ----

  /** Serves an announce stream whose type byte was read. */
  async serveAnnounce(stream: BidiStream, reader: StreamReader): Promise<void> {
    const ctx = this.#ctx;
    const please = decodeAnnouncePlease(
      await reader.message("ANNOUNCE_PLEASE", ctx.limits.maxMessageBytes),
      ctx.version,
    );
    const send = stream.send;
    send.setPriority(CONTROL_PRIORITY);
    const prefix = please.prefix;
    const origin = this.#origin;
    const watcher = origin?.announced(prefix);
    // The peer ends its interest by closing its side; anything else it sends is a violation.
    void reader
      .done()
      .then((end) => {
        if (!end) ctx.fail(new MoqError("MOQ_PROTOCOL_VIOLATION", "unexpected data after ANNOUNCE_PLEASE"));
      })
      .catch(() => {})
      .finally(() => {
        watcher?.close();
        if (!watcher) send.finish();
      });
    void send.stopped.then(() => watcher?.close());

    const active = new Set<string>();
    const initial: string[] = [];
    for (const path of origin?.list(prefix) ?? []) {
      if (this.#isOwn(path, origin?.consume(path))) continue;
      const suffix = stripPathPrefix(path, prefix);
      if (suffix === undefined) continue;
      initial.push(suffix);
      active.add(suffix);
    }
    if (isSetupEra(ctx.version)) {
      send.write(encodeAnnounceInit({ suffixes: initial }, ctx.version));
    } else {
      for (const suffix of initial)
        send.write(encodeAnnounce({ active: true, suffix, hops: [] }, ctx.version));
    }
    if (!watcher) return;
    try {
      for (;;) {
        const next = await watcher.next();
        if (!next) break;
        const suffix = stripPathPrefix(next.path, prefix);
        if (suffix === undefined) continue;
        if (next.active) {
          if (active.has(suffix) || this.#isOwn(next.path, next.broadcast)) continue;
          active.add(suffix);
        } else {
          if (!active.delete(suffix)) continue;
        }
        if (!send.write(encodeAnnounce({ active: next.active, suffix, hops: [] }, ctx.version))) {
          await send.drained();
        }
      }
    } finally {
      watcher.close();
      send.finish();
    }
  }

  // ---- subscribe ----

  /** Serves a subscribe stream whose type byte was read. */
  async serveSubscribe(stream: BidiStream, reader: StreamReader): Promise<void> {
    const ctx = this.#ctx;
    const msg = decodeSubscribe(await reader.message("SUBSCRIBE", ctx.limits.maxMessageBytes), ctx.version);
    stream.send.setPriority(CONTROL_PRIORITY);
    if (this.#subscriptions.has(msg.id)) {
      throw new MoqError("MOQ_DUPLICATE", `SUBSCRIBE: subscribe_id ${msg.id} is already in use`);
    }
    if (this.#subscriptions.size >= ctx.limits.maxSubscriptions) {
      throw new MoqError(
        "MOQ_BOUNDS_EXCEEDED",
        `more than ${ctx.limits.maxSubscriptions} concurrent subscriptions`,
      );
    }
    const origin = this.#origin;
    if (!origin?.canRead(msg.broadcast)) {
      ctx.logger.debug(
        { ...ctx.logFields, broadcast: msg.broadcast, track: msg.track },
        "subscribe refused: not readable",
      );
      this.#refuse(stream, WireErrorCode.Unauthorized);
      return;
    }
    const broadcast = origin.consume(msg.broadcast);
    if (!broadcast) {
      this.#refuse(stream, WireErrorCode.NotFound);
      return;
    }
    const consumer = broadcast.subscribeTrack(msg.track, { priority: msg.priority });
    const failure = await settledError(consumer.closed);
    if (failure) {
      consumer.close();
      this.#refuse(stream, failure.wireCode);
      return;
    }
    const sub = new Subscription(msg, consumer);
    this.#subscriptions.set(sub.id, sub);
    stream.send.write(
      encodeSubscribeOk({ priority: msg.priority, ordered: sub.ordered, maxLatencyMs: 0 }, ctx.version),
    );
    ctx.logger.debug(
      { ...ctx.logFields, id: sub.id, broadcast: sub.broadcast, track: sub.track },
      "subscription started",
    );

    // SUBSCRIBE_UPDATEs until the subscriber closes its side (cancel) or resets.
    const updates = (async () => {
      for (;;) {
        const body = await reader.messageOrEnd("SUBSCRIBE_UPDATE", ctx.limits.maxMessageBytes);
        if (!body || sub.ended) return;
        const update = decodeSubscribeUpdate(body, ctx.version);
        sub.priority = update.priority;
        if (update.ordered !== undefined) sub.ordered = update.ordered;
        for (const group of sub.groups) group.stream.setPriority(sub.priority, sub.order(group.sequence));
      }
    })();
    void updates
      .catch((err) => {
        if (isViolation(err)) ctx.fail(err);
      })
      .finally(() => {
        // The subscriber cancelled (closed its side): stop everything still in flight.
        if (!sub.ended) {
          this.#cancel(sub);
          stream.send.finish();
        }
      });
    void stream.send.stopped.then(() => this.#cancel(sub));

    let error: MoqError | undefined;
    try {
      await this.#runTrack(sub, stream.send);
    } catch (err) {
      error = toMoqError(err);
    }
    const wasEnded = sub.ended;
    this.#end(sub);
    if (wasEnded) return;
    if (error) {
      stream.send.reset(error.wireCode);
      reader.stop(WireErrorCode.Cancel);
    } else {
      stream.send.finish();
    }
  }

  #refuse(stream: BidiStream, code: number): void {
    stream.send.reset(code);
    stream.recv.stop(WireErrorCode.Cancel);
  }

  #cancel(sub: Subscription): void {
    if (sub.ended) return;
    for (const group of sub.groups) group.stream.reset(WireErrorCode.Cancel);
    sub.groups = [];
    this.#end(sub);
  }

  #end(sub: Subscription): void {
    if (sub.ended) return;
    sub.ended = true;
    sub.consumer.close();
    this.#subscriptions.delete(sub.id);
  }

  async #runTrack(sub: Subscription, control: SendStream): Promise<void> {
    const ctx = this.#ctx;
    for (;;) {
      let group: GroupConsumer | undefined;
      try {
        group = await sub.consumer.recvGroup();
      } catch (err) {
        if (!(err instanceof LaggedError)) throw err;
        // Fell behind the track cache: resume at the newest group, dropping stale sends.
        sub.consumer.skipToLatest();
        const dropped = sub.dropStaleGroups(WireErrorCode.Dropped);
        ctx.logger.debug(
          { ...ctx.logFields, broadcast: sub.broadcast, track: sub.track, dropped },
          "subscriber lagged",
        );
        continue;
      }
      if (!group || sub.ended || control.closed) return;
      const stream = await ctx.transport.openUni();
      if (sub.ended) {
        stream.reset(WireErrorCode.Cancel);
        return;
      }
      const send: GroupSend = { sequence: group.sequence, stream };
      sub.groups.push(send);
      void this.#sendGroup(sub, group, send);
    }
  }

  #sendGroup(sub: Subscription, group: GroupConsumer, send: GroupSend): void {
    send.stream.setPriority(sub.priority, sub.order(group.sequence));
    new GroupSender(this.#ctx, sub, group, send).start();
  }

  // ---- probe / fetch ----

  /** Serves a PROBE stream (lite-03+): we have no bandwidth estimate, so we FIN our side at once. */
  async serveProbe(stream: BidiStream, reader: StreamReader): Promise<void> {
    const ctx = this.#ctx;
    stream.send.setPriority(CONTROL_PRIORITY);
    // The official client treats a reset PROBE stream as fatal; a clean FIN is fine.
    stream.send.finish();
    for (;;) {
      const body = await reader.messageOrEnd("PROBE", ctx.limits.maxMessageBytes);
      if (!body) return;
      decodeProbe(body, ctx.version);
    }
  }

  /** Serves a FETCH stream (lite-03+): validated, then refused (past groups are not served). */
  async serveFetch(stream: BidiStream, reader: StreamReader): Promise<void> {
    const ctx = this.#ctx;
    const fetch = decodeFetch(await reader.message("FETCH", ctx.limits.maxMessageBytes), ctx.version);
    ctx.logger.debug(
      { ...ctx.logFields, broadcast: fetch.broadcast, track: fetch.track, group: fetch.group },
      "fetch refused",
    );
    this.#refuse(stream, WireErrorCode.Unsupported);
  }
}

/** The error a track consumer already failed with (e.g. NotFound), without waiting when it has not. */
async function settledError(closed: Promise<MoqError | undefined>): Promise<MoqError | undefined> {
  const pending = Symbol("pending");
  const result = await Promise.race([closed, Promise.resolve(pending)]);
  if (result === pending || result === undefined) return undefined;
  return result instanceof MoqError ? result : new NotFoundError("track not found");
}
