/**
 * The announce stream (type 0x01). The opener (who wants to learn broadcasts) sends
 * ANNOUNCE_PLEASE with a path prefix; the responder answers with the broadcasts under it, as
 * suffixes: ANNOUNCE_INIT then ANNOUNCE updates on lite-01/02, only ANNOUNCE messages on lite-03+.
 */
import { ProtocolViolationError } from "../error.ts";
import { ByteReader, ByteWriter, bytesFieldSize, utf8 } from "./bytes.ts";
import { requireVersion, setupEraOnly } from "./message.ts";
import { varintSize } from "./varint.ts";
import { type Version, Version as Versions } from "./version.ts";

/** Most relay hops an ANNOUNCE may carry (the official decoders' limit). */
export const MAX_HOPS = 256;

/** Most suffixes accepted in one ANNOUNCE_INIT. */
export const MAX_ANNOUNCE_INIT_PATHS = 65536;

/** ANNOUNCE_PLEASE: "tell me about broadcasts under `prefix`". */
export interface AnnouncePlease {
  readonly prefix: string;
  /** lite-04: skip broadcasts that already passed through this hop id (0 = none). */
  readonly excludeHop?: number;
}

/** ANNOUNCE_INIT (lite-01/02): every broadcast active under the prefix when the stream opened. */
export interface AnnounceInit {
  readonly suffixes: readonly string[];
}

/** ANNOUNCE: a broadcast under the prefix became active or ended. */
export interface Announce {
  readonly active: boolean;
  readonly suffix: string;
  /** Relay hops the announcement passed through (lite-03 carries only their count, as zeros). */
  readonly hops?: readonly number[];
}

/** ANNOUNCE_PLEASE, size-prefixed. */
export function encodeAnnouncePlease(msg: AnnouncePlease, version: Version): Uint8Array {
  const prefix = utf8(msg.prefix);
  let size = bytesFieldSize(prefix);
  switch (version) {
    case Versions.Lite01:
    case Versions.Lite02:
    case Versions.Lite03:
      break;
    case Versions.Lite04:
      size += varintSize(msg.excludeHop ?? 0);
      break;
  }
  const writer = ByteWriter.message(size).lengthPrefixed(prefix);
  if (version === Versions.Lite04) writer.varint(msg.excludeHop ?? 0);
  return writer.finish();
}

/** Decodes an ANNOUNCE_PLEASE body. */
export function decodeAnnouncePlease(body: Uint8Array, version: Version): AnnouncePlease {
  const reader = new ByteReader(body, "ANNOUNCE_PLEASE");
  const prefix = reader.path("prefix");
  let excludeHop = 0;
  switch (version) {
    case Versions.Lite01:
    case Versions.Lite02:
    case Versions.Lite03:
      break;
    case Versions.Lite04:
      excludeHop = reader.varint("exclude_hop");
      break;
  }
  reader.finish();
  return { prefix, excludeHop };
}

/** ANNOUNCE_INIT, size-prefixed (lite-01/02 only). */
export function encodeAnnounceInit(msg: AnnounceInit, version: Version): Uint8Array {
  requireVersion("ANNOUNCE_INIT", version, setupEraOnly, false);
  const encoded = msg.suffixes.map(utf8);
  let size = varintSize(encoded.length);
  for (const suffix of encoded) size += bytesFieldSize(suffix);
  const writer = ByteWriter.message(size).varint(encoded.length);
  for (const suffix of encoded) writer.lengthPrefixed(suffix);
  return writer.finish();
}

/** Decodes an ANNOUNCE_INIT body. */
export function decodeAnnounceInit(body: Uint8Array, version: Version): AnnounceInit {
  requireVersion("ANNOUNCE_INIT", version, setupEraOnly, true);
  const reader = new ByteReader(body, "ANNOUNCE_INIT");
  // Every suffix takes at least one byte, so the body length also bounds the count.
  const count = reader.varint("count", Math.min(MAX_ANNOUNCE_INIT_PATHS, reader.remaining));
  const suffixes: string[] = [];
  for (let i = 0; i < count; i++) suffixes.push(reader.path("suffix"));
  reader.finish();
  return { suffixes };
}

/** ANNOUNCE, size-prefixed. */
export function encodeAnnounce(msg: Announce, version: Version): Uint8Array {
  const suffix = utf8(msg.suffix);
  const hops = msg.hops ?? [];
  if (hops.length > MAX_HOPS) throw new RangeError(`ANNOUNCE with ${hops.length} hops exceeds ${MAX_HOPS}`);
  let size = 1 + bytesFieldSize(suffix);
  switch (version) {
    case Versions.Lite01:
    case Versions.Lite02:
      break;
    case Versions.Lite03:
      size += varintSize(hops.length);
      break;
    case Versions.Lite04:
      size += varintSize(hops.length);
      for (const hop of hops) size += varintSize(hop);
      break;
  }
  const writer = ByteWriter.message(size).bool(msg.active).lengthPrefixed(suffix);
  switch (version) {
    case Versions.Lite01:
    case Versions.Lite02:
      break;
    case Versions.Lite03:
      writer.varint(hops.length);
      break;
    case Versions.Lite04:
      writer.varint(hops.length);
      for (const hop of hops) writer.varint(hop);
      break;
  }
  return writer.finish();
}

/** Decodes an ANNOUNCE body. */
export function decodeAnnounce(body: Uint8Array, version: Version): Announce {
  const reader = new ByteReader(body, "ANNOUNCE");
  const status = reader.u8("status");
  if (status > 1) throw new ProtocolViolationError(`ANNOUNCE: status must be 0 or 1, got ${status}`);
  const suffix = reader.path("suffix");
  let hops: number[] = [];
  switch (version) {
    case Versions.Lite01:
    case Versions.Lite02:
      break;
    case Versions.Lite03:
      hops = new Array<number>(reader.varint("hop count", MAX_HOPS)).fill(0);
      break;
    case Versions.Lite04: {
      const count = reader.varint("hop count", MAX_HOPS);
      for (let i = 0; i < count; i++) hops.push(reader.varint("hop id"));
      break;
    }
  }
  reader.finish();
  return { active: status === 1, suffix, hops };
}
