/**
 * The subscribe stream (type 0x02). The subscriber sends SUBSCRIBE and may follow it with
 * SUBSCRIBE_UPDATE; the publisher answers SUBSCRIBE_OK first (lite-03+ may later send
 * SUBSCRIBE_DROP), then delivers each group on its own uni stream. lite-03+ responses carry a
 * varint type before the size; lite-01/02 responses are a bare size-prefixed SUBSCRIBE_OK.
 */
import { ProtocolViolationError } from "../error.ts";
import { ByteReader, ByteWriter, bytesFieldSize, utf8 } from "./bytes.ts";
import {
  checkPriority,
  lite03Plus,
  optionalGroupValue,
  optionalGroupWire,
  requireVersion,
} from "./message.ts";
import { varintSize } from "./varint.ts";
import { type Version, Version as Versions } from "./version.ts";

/** Delivery preferences shared by SUBSCRIBE, SUBSCRIBE_UPDATE and SUBSCRIBE_OK (lite-03+ fields optional). */
export interface SubscriptionParams {
  /** 0-255, higher is more important (a raw byte on the wire). */
  readonly priority: number;
  /** lite-03+: deliver oldest groups first instead of newest first. */
  readonly ordered?: boolean;
  /** lite-03+: groups older than this many ms behind the newest may be dropped; 0 = unset. */
  readonly maxLatencyMs?: number;
  /** lite-03+: first group wanted (undefined = the latest). */
  readonly startGroup?: number;
  /** lite-03+: last group wanted (undefined = unbounded). */
  readonly endGroup?: number;
}

/** SUBSCRIBE: opens a subscription to one track of one broadcast. */
export interface Subscribe extends SubscriptionParams {
  /** Chosen by the subscriber, unique per session; group streams carry it back. */
  readonly id: number;
  /** Broadcast path relative to the session root. */
  readonly broadcast: string;
  /** Track name (opaque, not a path). */
  readonly track: string;
}

/** SUBSCRIBE_UPDATE: changes a live subscription's preferences. */
export type SubscribeUpdate = SubscriptionParams;

/** SUBSCRIBE_OK: the publisher accepted the subscription. */
export type SubscribeOk = SubscriptionParams;

/** SUBSCRIBE_DROP (lite-03+): groups `start..end` (inclusive) will not be delivered. */
export interface SubscribeDrop {
  readonly start: number;
  readonly end: number;
  readonly errorCode: number;
}

/** lite-03+ response types, written before the size prefix. */
export const SubscribeResponseType: { readonly Ok: 0x00; readonly Drop: 0x01 } = { Ok: 0x00, Drop: 0x01 };

function extendedSize(params: SubscriptionParams): number {
  return (
    1 +
    varintSize(params.maxLatencyMs ?? 0) +
    varintSize(optionalGroupWire(params.startGroup)) +
    varintSize(optionalGroupWire(params.endGroup))
  );
}

function writeExtended(writer: ByteWriter, params: SubscriptionParams, ordered: boolean): void {
  writer
    .bool(ordered)
    .varint(params.maxLatencyMs ?? 0)
    .varint(optionalGroupWire(params.startGroup))
    .varint(optionalGroupWire(params.endGroup));
}

function readExtended(reader: ByteReader, priority: number): SubscriptionParams {
  const ordered = reader.bool("ordered");
  const maxLatencyMs = reader.varint("max_latency");
  const startGroup = optionalGroupValue(reader.varint("start_group"));
  const endGroup = optionalGroupValue(reader.varint("end_group"));
  return { priority, ordered, maxLatencyMs, startGroup, endGroup };
}

/** SUBSCRIBE, size-prefixed. */
export function encodeSubscribe(msg: Subscribe, version: Version): Uint8Array {
  const broadcast = utf8(msg.broadcast);
  const track = utf8(msg.track);
  let size = varintSize(msg.id) + bytesFieldSize(broadcast) + bytesFieldSize(track) + 1;
  switch (version) {
    case Versions.Lite01:
    case Versions.Lite02:
      break;
    default:
      size += extendedSize(msg);
      break;
  }
  const writer = ByteWriter.message(size)
    .varint(msg.id)
    .lengthPrefixed(broadcast)
    .lengthPrefixed(track)
    .u8(checkPriority(msg.priority));
  switch (version) {
    case Versions.Lite01:
    case Versions.Lite02:
      break;
    default:
      // The official client's SUBSCRIBE default is newest-first.
      writeExtended(writer, msg, msg.ordered ?? false);
      break;
  }
  return writer.finish();
}

/** Decodes a SUBSCRIBE body. */
export function decodeSubscribe(body: Uint8Array, version: Version): Subscribe {
  const reader = new ByteReader(body, "SUBSCRIBE");
  const id = reader.varint("subscribe_id");
  const broadcast = reader.path("broadcast");
  const track = reader.string("track");
  const priority = reader.u8("priority");
  let msg: Subscribe;
  switch (version) {
    case Versions.Lite01:
    case Versions.Lite02:
      msg = { id, broadcast, track, priority };
      break;
    default:
      msg = { id, broadcast, track, ...readExtended(reader, priority) };
      break;
  }
  reader.finish();
  return msg;
}

/** SUBSCRIBE_UPDATE, size-prefixed. */
export function encodeSubscribeUpdate(msg: SubscribeUpdate, version: Version): Uint8Array {
  let size = 1;
  switch (version) {
    case Versions.Lite01:
    case Versions.Lite02:
      break;
    default:
      size += extendedSize(msg);
      break;
  }
  const writer = ByteWriter.message(size).u8(checkPriority(msg.priority));
  switch (version) {
    case Versions.Lite01:
    case Versions.Lite02:
      break;
    default:
      writeExtended(writer, msg, msg.ordered ?? true);
      break;
  }
  return writer.finish();
}

/** Decodes a SUBSCRIBE_UPDATE body. */
export function decodeSubscribeUpdate(body: Uint8Array, version: Version): SubscribeUpdate {
  const reader = new ByteReader(body, "SUBSCRIBE_UPDATE");
  const priority = reader.u8("priority");
  let msg: SubscribeUpdate;
  switch (version) {
    case Versions.Lite01:
    case Versions.Lite02:
      msg = { priority };
      break;
    default:
      msg = readExtended(reader, priority);
      break;
  }
  reader.finish();
  return msg;
}

/** SUBSCRIBE_OK as written on the wire: lite-01 `size prio`, lite-02 `00`, lite-03+ `type size fields`. */
export function encodeSubscribeOk(msg: SubscribeOk, version: Version): Uint8Array {
  switch (version) {
    case Versions.Lite01:
      return ByteWriter.message(1).u8(checkPriority(msg.priority)).finish();
    case Versions.Lite02:
      return ByteWriter.message(0).finish();
    default: {
      const writer = ByteWriter.message(1 + extendedSize(msg), SubscribeResponseType.Ok).u8(
        checkPriority(msg.priority),
      );
      writeExtended(writer, msg, msg.ordered ?? true);
      return writer.finish();
    }
  }
}

/** Decodes a SUBSCRIBE_OK body (after the lite-03+ type, if any). */
export function decodeSubscribeOk(body: Uint8Array, version: Version): SubscribeOk {
  const reader = new ByteReader(body, "SUBSCRIBE_OK");
  let msg: SubscribeOk;
  switch (version) {
    case Versions.Lite01:
      msg = { priority: reader.u8("priority") };
      break;
    case Versions.Lite02:
      msg = { priority: 0 };
      break;
    default:
      msg = readExtended(reader, reader.u8("priority"));
      break;
  }
  reader.finish();
  return msg;
}

/** SUBSCRIBE_DROP with its type (lite-03+ only). */
export function encodeSubscribeDrop(msg: SubscribeDrop, version: Version): Uint8Array {
  requireVersion("SUBSCRIBE_DROP", version, lite03Plus, false);
  const size = varintSize(msg.start) + varintSize(msg.end) + varintSize(msg.errorCode);
  return ByteWriter.message(size, SubscribeResponseType.Drop)
    .varint(msg.start)
    .varint(msg.end)
    .varint(msg.errorCode)
    .finish();
}

/** Decodes a SUBSCRIBE_DROP body (after its type). */
export function decodeSubscribeDrop(body: Uint8Array, version: Version): SubscribeDrop {
  requireVersion("SUBSCRIBE_DROP", version, lite03Plus, true);
  const reader = new ByteReader(body, "SUBSCRIBE_DROP");
  const start = reader.varint("start");
  const end = reader.varint("end");
  const errorCode = reader.varint("error_code");
  reader.finish();
  if (end < start) throw new ProtocolViolationError(`SUBSCRIBE_DROP: end ${end} is before start ${start}`);
  return { start, end, errorCode };
}
