/**
 * Protocol control messages (RTMP specification §5.4) and User Control messages (§6.2): payload
 * builders and parsers, and the chunk stream ids this package sends them on.
 */
import { RtmpError } from "./errors.ts";

/** Chunk stream ids this package uses when sending. */
export const ChunkStreamId = {
  /** Protocol control and user control messages (required by the specification). */
  Control: 2,
  /** NetConnection commands. */
  Command: 3,
  Audio: 4,
  /** NetStream commands and data messages (publish, onStatus, @setDataFrame). */
  Stream: 5,
  Video: 6,
} as const;

/** User Control event types. */
export const UserControlEvent = {
  StreamBegin: 0,
  StreamEof: 1,
  StreamDry: 2,
  SetBufferLength: 3,
  StreamIsRecorded: 4,
  PingRequest: 6,
  PingResponse: 7,
} as const;

/** Set Peer Bandwidth limit types. */
export const PeerBandwidthLimit = { Hard: 0, Soft: 1, Dynamic: 2 } as const;

function u32Payload(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0);
  return out;
}

/** Set Chunk Size (type 1) payload. */
export function setChunkSizePayload(size: number): Uint8Array {
  return u32Payload(size & 0x7fffffff);
}

/** Abort (type 2) payload. */
export function abortPayload(chunkStreamId: number): Uint8Array {
  return u32Payload(chunkStreamId);
}

/** Acknowledgement (type 3) payload: the byte count received so far, modulo 2^32. */
export function acknowledgementPayload(sequenceNumber: number): Uint8Array {
  return u32Payload(sequenceNumber % 0x1_0000_0000);
}

/** Window Acknowledgement Size (type 5) payload. */
export function windowAckSizePayload(size: number): Uint8Array {
  return u32Payload(size);
}

/** Set Peer Bandwidth (type 6) payload. */
export function setPeerBandwidthPayload(size: number, limitType: number): Uint8Array {
  const out = new Uint8Array(5);
  new DataView(out.buffer).setUint32(0, size >>> 0);
  out[4] = limitType;
  return out;
}

/** User Control (type 4) payload: event type, then one 32-bit value (two for SetBufferLength). */
export function userControlPayload(event: number, value: number, second?: number): Uint8Array {
  const out = new Uint8Array(second === undefined ? 6 : 10);
  const view = new DataView(out.buffer);
  view.setUint16(0, event);
  view.setUint32(2, value >>> 0);
  if (second !== undefined) view.setUint32(6, second >>> 0);
  return out;
}

/** Reads the 32-bit value of a Set Chunk Size / Abort / Ack / Window Ack Size message. */
export function readUint32Payload(payload: Uint8Array, what: string): number {
  if (payload.byteLength < 4)
    throw new RtmpError(
      "RTMP_MESSAGE_INVALID",
      `RTMP ${what} message of ${payload.byteLength} bytes (needs 4)`,
    );
  return ((payload[0]! << 24) | (payload[1]! << 16) | (payload[2]! << 8) | payload[3]!) >>> 0;
}

/** A parsed User Control message. */
export interface UserControlMessage {
  readonly event: number;
  /** The first 32-bit value (stream id or ping timestamp). */
  readonly value: number;
  /** SetBufferLength's buffer length in ms. */
  readonly second?: number;
}

/** Parses a User Control payload. */
export function parseUserControl(payload: Uint8Array): UserControlMessage {
  if (payload.byteLength < 6) {
    throw new RtmpError(
      "RTMP_MESSAGE_INVALID",
      `RTMP User Control message of ${payload.byteLength} bytes (needs 6)`,
    );
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const event = view.getUint16(0);
  const value = view.getUint32(2);
  if (event === UserControlEvent.SetBufferLength && payload.byteLength >= 10) {
    return { event, value, second: view.getUint32(6) };
  }
  return { event, value };
}
