/**
 * FETCH (lite-03+, stream type 0x03): asks for one past group of a track; the response is the
 * group's frames (no GROUP header) followed by FIN, or a reset.
 */
import { ByteReader, ByteWriter, bytesFieldSize, utf8 } from "./bytes.ts";
import { checkPriority, lite03Plus, requireVersion } from "./message.ts";
import { varintSize } from "./varint.ts";
import type { Version } from "./version.ts";

/** FETCH: one group of one track. */
export interface Fetch {
  readonly broadcast: string;
  readonly track: string;
  readonly priority: number;
  readonly group: number;
}

/** FETCH, size-prefixed. */
export function encodeFetch(msg: Fetch, version: Version): Uint8Array {
  requireVersion("FETCH", version, lite03Plus, false);
  const broadcast = utf8(msg.broadcast);
  const track = utf8(msg.track);
  const size = bytesFieldSize(broadcast) + bytesFieldSize(track) + 1 + varintSize(msg.group);
  return ByteWriter.message(size)
    .lengthPrefixed(broadcast)
    .lengthPrefixed(track)
    .u8(checkPriority(msg.priority))
    .varint(msg.group)
    .finish();
}

/** Decodes a FETCH body. */
export function decodeFetch(body: Uint8Array, version: Version): Fetch {
  requireVersion("FETCH", version, lite03Plus, true);
  const reader = new ByteReader(body, "FETCH");
  const broadcast = reader.path("broadcast");
  const track = reader.string("track");
  const priority = reader.u8("priority");
  const group = reader.varint("group");
  reader.finish();
  return { broadcast, track, priority, group };
}
