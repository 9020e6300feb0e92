/**
 * Group uni streams: the type byte 0x00, a size-prefixed GROUP header naming the receiver's
 * subscription and the group sequence, then frames (`varint length` + payload) until FIN. The
 * layout is the same in every version.
 */
import { ByteReader, ByteWriter } from "./bytes.ts";
import { encodeVarint, varintSize } from "./varint.ts";
import { GROUP_STREAM_TYPE } from "./version.ts";

/** Default bound on one frame's size. */
export const DEFAULT_MAX_FRAME_BYTES: number = 16 * 1024 * 1024;

/** The GROUP header of a group stream. */
export interface GroupHeader {
  /** The subscribe_id the receiver chose in its SUBSCRIBE. */
  readonly subscribeId: number;
  /** Group sequence within the track. */
  readonly sequence: number;
}

/** The start of a group stream: type byte 0x00 and the size-prefixed GROUP header. */
export function encodeGroupStreamHeader(header: GroupHeader): Uint8Array {
  const size = varintSize(header.subscribeId) + varintSize(header.sequence);
  const writer = new ByteWriter(1 + varintSize(size) + size);
  return writer
    .u8(GROUP_STREAM_TYPE)
    .varint(size)
    .varint(header.subscribeId)
    .varint(header.sequence)
    .finish();
}

/** Decodes a GROUP header body. */
export function decodeGroupHeader(body: Uint8Array): GroupHeader {
  const reader = new ByteReader(body, "GROUP");
  const subscribeId = reader.varint("subscribe_id");
  const sequence = reader.varint("sequence");
  reader.finish();
  return { subscribeId, sequence };
}

/** The length prefix written before a frame's payload. */
export function encodeFrameHeader(size: number): Uint8Array {
  return encodeVarint(size);
}
