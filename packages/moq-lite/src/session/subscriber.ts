/**
 * The subscribing half of a session: it imports the peer's broadcasts. It asks the peer for its
 * announcements (ANNOUNCE_PLEASE per prefix) and publishes each announced broadcast into the
 * receive origin as an on-demand broadcast. When someone local subscribes to one of its tracks,
 * that request becomes one upstream SUBSCRIBE, shared by every local consumer; when the last
 * consumer leaves, the upstream subscription is cancelled (FIN + STOP_SENDING). Group streams
 * from the peer are written into the track as they arrive, frame chunks by reference.
 */
import { MoqError, NotFoundError, ProtocolViolationError, toMoqError, WireErrorCode } from "../error.ts";
import { type BroadcastConsumer, BroadcastProducer, type TrackRequest } from "../model/broadcast.ts";
import type { FrameProducer } from "../model/frame.ts";
import type { OriginProducer } from "../model/origin.ts";
import type { TrackProducer } from "../model/track.ts";
import { joinPath, normalizePath } from "../path.ts";
import type { RecvStream } from "../transport.ts";
import { decodeAnnounce, decodeAnnounceInit, encodeAnnouncePlease } from "../wire/announce.ts";
import { decodeGroupHeader } from "../wire/group.ts";
import { StreamReader } from "../wire/stream-reader.ts";
import {
  decodeSubscribeDrop,
  decodeSubscribeOk,
  encodeSubscribe,
  SubscribeResponseType,
} from "../wire/subscribe.ts";
import { encodeVarint } from "../wire/varint.ts";
import { GROUP_STREAM_TYPE, isSetupEra, StreamType } from "../wire/version.ts";
import { CONTROL_PRIORITY, isViolation, type SessionContext } from "./context.ts";

interface Imported {
  readonly producer: BroadcastProducer;
  readonly consumer: BroadcastConsumer;
}

interface Upstream {
  readonly id: number;
  readonly broadcast: string;
  readonly track: TrackProducer;
  readonly groups: Set<StreamReader>;
  cancelled: boolean;
}

/** Imports the peer's broadcasts into a receive origin. */
export class SessionSubscriber {
  readonly #ctx: SessionContext;
  readonly #receive: OriginProducer | undefined;
  readonly #imported: Map<string, Imported> = new Map();
  readonly #upstream: Map<number, Upstream> = new Map();
  #nextSubscribeId = 0;
  #closed = false;

  constructor(ctx: SessionContext, receive: OriginProducer | undefined) {
    this.#ctx = ctx;
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

  /** Asks the peer for its broadcasts under each prefix (overlapping prefixes are merged). */
  requestAnnouncements(prefixes: readonly string[]): void {
    if (!this.#receive) return;
    const normalized = [...new Set(prefixes.map(normalizePath))];
    const covering = normalized.filter(
      (prefix) =>
        !normalized.some((other) => other !== prefix && (other === "" || prefix.startsWith(`${other}/`))),
    );
    for (const prefix of covering) {
      void this.#runAnnounceInterest(prefix).catch((err) => this.#onError(err, "announce stream"));
    }
  }

  /** Ends every imported broadcast and upstream subscription (the session is closing). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const up of this.#upstream.values()) up.track.close();
    this.#upstream.clear();
    for (const imported of this.#imported.values()) imported.producer.close();
    this.#imported.clear();
  }

  #onError(err: unknown, what: string): void {
    const ctx = this.#ctx;
    if (isViolation(err)) {
      ctx.fail(err);
      return;
    }
    if (!ctx.closing) {
      ctx.logger.debug({ ...ctx.logFields, err: toMoqError(err).message }, `${what} ended`);
    }
  }

  // ---- announcements ----

  async #runAnnounceInterest(prefix: string): Promise<void> {
    const ctx = this.#ctx;
    const stream = await ctx.transport.openBidi();
    stream.send.setPriority(CONTROL_PRIORITY);
    stream.send.write(encodeVarint(StreamType.Announce));
    stream.send.write(encodeAnnouncePlease({ prefix, excludeHop: 0 }, ctx.version));
    const reader = new StreamReader(stream.recv, "announce stream");
    const active = new Map<string, Imported | undefined>();
    try {
      if (isSetupEra(ctx.version)) {
        const init = decodeAnnounceInit(
          await reader.message("ANNOUNCE_INIT", ctx.limits.maxMessageBytes),
          ctx.version,
        );
        for (const suffix of init.suffixes) this.#announced(prefix, suffix, true, active);
      }
      for (;;) {
        const body = await reader.messageOrEnd("ANNOUNCE", ctx.limits.maxMessageBytes);
        if (!body) break;
        const announce = decodeAnnounce(body, ctx.version);
        this.#announced(prefix, announce.suffix, announce.active, active);
      }
      stream.send.finish();
    } finally {
      // When the stream ends, everything it announced has ended.
      for (const [suffix, imported] of active) this.#unimport(joinPath(prefix, suffix), imported);
    }
  }

  #announced(
    prefix: string,
    suffix: string,
    isActive: boolean,
    active: Map<string, Imported | undefined>,
  ): void {
    const ctx = this.#ctx;
    const path = joinPath(prefix, suffix);
    if (isActive) {
      if (active.has(suffix))
        throw new MoqError("MOQ_DUPLICATE", `ANNOUNCE: ${JSON.stringify(path)} is already active`);
      if (active.size >= ctx.limits.maxAnnouncedBroadcasts) {
        throw new ProtocolViolationError(
          `peer announced more than ${ctx.limits.maxAnnouncedBroadcasts} broadcasts`,
          "MOQ_BOUNDS_EXCEEDED",
        );
      }
      active.set(suffix, this.#import(path));
    } else {
      if (!active.has(suffix)) {
        throw new ProtocolViolationError(`ANNOUNCE: ${JSON.stringify(path)} ended but was not active`);
      }
      this.#unimport(path, active.get(suffix));
      active.delete(suffix);
    }
  }

  #import(path: string): Imported | undefined {
    const ctx = this.#ctx;
    const receive = this.#receive;
    if (!receive || this.#closed) return undefined;
    if (!receive.canPublish(path)) {
      ctx.logger.warn(
        { ...ctx.logFields, broadcast: path },
        "peer announced a broadcast it may not publish; ignored",
      );
      return undefined;
    }
    if (this.#imported.has(path)) return undefined;
    const producer = new BroadcastProducer({ onDemand: true });
    const imported: Imported = { producer, consumer: producer.consume() };
    this.#imported.set(path, imported);
    receive.publish(path, imported.consumer);
    ctx.logger.debug({ ...ctx.logFields, broadcast: path }, "peer broadcast announced");
    void this.#serveTrackRequests(path, producer);
    return imported;
  }

  #unimport(path: string, imported: Imported | undefined): void {
    if (!imported) return;
    if (this.#imported.get(path) === imported) this.#imported.delete(path);
    imported.producer.close();
    this.#ctx.logger.debug({ ...this.#ctx.logFields, broadcast: path }, "peer broadcast ended");
  }

  async #serveTrackRequests(path: string, producer: BroadcastProducer): Promise<void> {
    for (;;) {
      const request = await producer.requestedTrack();
      if (!request) return;
      void this.#runUpstream(path, request).catch((err) => {
        request.track.abort(toMoqError(err));
        this.#onError(err, "subscribe stream");
      });
    }
  }

  // ---- upstream subscriptions ----

  async #runUpstream(broadcast: string, request: TrackRequest): Promise<void> {
    const ctx = this.#ctx;
    if (this.#closed) {
      request.track.close();
      return;
    }
    const up: Upstream = {
      id: this.#nextSubscribeId++,
      broadcast,
      track: request.track,
      groups: new Set(),
      cancelled: false,
    };
    this.#upstream.set(up.id, up);
    const stream = await ctx.transport.openBidi();
    stream.send.setPriority(CONTROL_PRIORITY);
    stream.send.write(encodeVarint(StreamType.Subscribe));
    stream.send.write(
      encodeSubscribe(
        { id: up.id, broadcast, track: request.name, priority: Math.min(255, Math.max(0, request.priority)) },
        ctx.version,
      ),
    );
    const reader = new StreamReader(stream.recv, "subscribe stream");
    // Cancel upstream once nobody local reads the track (or it ended): FIN + STOP_SENDING.
    void request.track.unused().then(() => {
      if (up.cancelled) return;
      up.cancelled = true;
      stream.send.finish();
      reader.stop(WireErrorCode.Cancel);
      for (const group of up.groups) group.stop(WireErrorCode.Cancel);
      up.groups.clear();
    });
    try {
      await this.#readResponses(reader, up);
      request.track.close();
    } catch (err) {
      const error = toMoqError(err);
      if (up.cancelled) {
        request.track.close();
      } else if (error.code === "MOQ_CANCELLED") {
        // Reset by the publisher before or after SUBSCRIBE_OK: the track is gone.
        request.track.abort(new NotFoundError(`${broadcast}/${request.name}: ${error.message}`));
        stream.send.reset(WireErrorCode.Cancel);
      } else {
        request.track.abort(error);
        stream.send.reset(error.wireCode);
        throw err;
      }
    } finally {
      this.#upstream.delete(up.id);
      if (!up.cancelled) {
        up.cancelled = true;
        stream.send.finish();
      }
    }
  }

  async #readResponses(reader: StreamReader, up: Upstream): Promise<void> {
    const ctx = this.#ctx;
    const max = ctx.limits.maxMessageBytes;
    if (isSetupEra(ctx.version)) {
      const ok = await reader.messageOrEnd("SUBSCRIBE_OK", max);
      if (ok === undefined) return;
      decodeSubscribeOk(ok, ctx.version);
      if (!(await reader.done()))
        throw new ProtocolViolationError("subscribe stream: data after SUBSCRIBE_OK");
      return;
    }
    let first = true;
    for (;;) {
      if (await reader.done()) return;
      const type = await reader.varint("subscribe response type");
      const body = await reader.message("subscribe response", max);
      if (type === SubscribeResponseType.Ok) {
        if (!first) throw new ProtocolViolationError("subscribe stream: second SUBSCRIBE_OK");
        decodeSubscribeOk(body, ctx.version);
      } else if (type === SubscribeResponseType.Drop) {
        if (first) throw new ProtocolViolationError("subscribe stream: SUBSCRIBE_DROP before SUBSCRIBE_OK");
        const drop = decodeSubscribeDrop(body, ctx.version);
        ctx.logger.debug({ ...ctx.logFields, id: up.id, ...drop }, "publisher dropped groups");
      } else {
        throw new ProtocolViolationError(`subscribe stream: unknown response type ${type}`);
      }
      first = false;
    }
  }

  // ---- groups ----

  /** Reads one group uni stream from the peer into the subscribed track. */
  async receiveGroup(recv: RecvStream): Promise<void> {
    const ctx = this.#ctx;
    const reader = new StreamReader(recv, "group stream");
    const type = await reader.u8("stream type");
    if (type !== GROUP_STREAM_TYPE) {
      ctx.logger.debug({ ...ctx.logFields, type }, "unknown uni stream type; stopped");
      reader.stop(WireErrorCode.UnexpectedStream);
      return;
    }
    const header = decodeGroupHeader(await reader.message("GROUP", 64));
    const up = this.#upstream.get(header.subscribeId);
    if (!up || up.cancelled) {
      if (header.subscribeId >= this.#nextSubscribeId) {
        ctx.logger.warn(
          { ...ctx.logFields, id: header.subscribeId },
          "group for an unknown subscription; stopped",
        );
      }
      reader.stop(WireErrorCode.Cancel);
      return;
    }
    let group: ReturnType<TrackProducer["createGroup"]>;
    try {
      group = up.track.createGroup(header.sequence);
    } catch {
      group = undefined;
    }
    if (!group) {
      reader.stop(WireErrorCode.Cancel);
      return;
    }
    up.groups.add(reader);
    let frame: FrameProducer | undefined;
    try {
      for (;;) {
        if (await reader.done()) break;
        const size = await reader.varint("frame size", ctx.limits.maxFrameBytes);
        frame = group.createFrame(size, { ingestTimeMs: Date.now() });
        let remaining = size;
        while (remaining > 0) {
          const chunk = await reader.chunk(remaining, "frame payload");
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
      if (isViolation(err)) throw err;
      if (!up.cancelled) reader.stop(WireErrorCode.Cancel);
    } finally {
      up.groups.delete(reader);
    }
  }
}
