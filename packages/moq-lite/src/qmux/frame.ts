/**
 * QMux frames over WebSocket, one frame per binary message, in the two framings the official
 * clients speak:
 *
 * - `qmux-00`: QUIC v1 frame layouts with varint types, a TRANSPORT_PARAMETERS frame first, and
 *   QUIC flow control (MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS).
 * - `webtransport` (legacy): a one-byte type, STREAM payload running to the end of the message,
 *   no flow control, and only STREAM, RESET_STREAM, STOP_SENDING and CONNECTION_CLOSE.
 *
 * Decoding is strict (exact consumption, bounded values) except for CONNECTION_CLOSE, whose
 * layout differs between client versions and is parsed leniently.
 */
import { ProtocolViolationError } from "../error.ts";
import { ByteReader, ByteWriter, bytesFieldSize, utf8 } from "../wire/bytes.ts";
import { MAX_SAFE_VARINT, varintSize, writeVarint } from "../wire/varint.ts";

/** The two WebSocket framings. */
export type Framing = "qmux-00" | "webtransport";

/** Largest STREAM payload the official clients accept (16384 minus framing headroom). */
export const MAX_STREAM_PAYLOAD = 16360;

/** The 8-byte varint frame type of QX_TRANSPORT_PARAMETERS. */
export const TRANSPORT_PARAMETERS_TYPE: bigint = 0x3f5153300d0a0d0an;

/** QUIC transport parameters exchanged by qmux-00 peers (absent = 0). */
export interface TransportParameters {
  readonly maxData: number;
  /** Limit on bidi streams opened by the sender of these parameters. */
  readonly maxStreamDataBidiLocal: number;
  /** Limit on bidi streams opened by the receiver of these parameters. */
  readonly maxStreamDataBidiRemote: number;
  readonly maxStreamDataUni: number;
  readonly maxStreamsBidi: number;
  readonly maxStreamsUni: number;
}

const ParameterId = {
  maxData: 0x04,
  maxStreamDataBidiLocal: 0x05,
  maxStreamDataBidiRemote: 0x06,
  maxStreamDataUni: 0x07,
  maxStreamsBidi: 0x08,
  maxStreamsUni: 0x09,
} as const;

/** Every frame the session handles; unknown or ignorable frames decode to `ignored`. */
export type QmuxFrame =
  | {
      readonly type: "stream";
      readonly id: number;
      readonly offset?: number;
      readonly data: Uint8Array;
      readonly fin: boolean;
    }
  | { readonly type: "reset_stream"; readonly id: number; readonly code: number; readonly finalSize?: number }
  | { readonly type: "stop_sending"; readonly id: number; readonly code: number }
  | { readonly type: "connection_close"; readonly code: number; readonly reason: string }
  | { readonly type: "max_data"; readonly max: number }
  | { readonly type: "max_stream_data"; readonly id: number; readonly max: number }
  | { readonly type: "max_streams"; readonly bidi: boolean; readonly max: number }
  | { readonly type: "transport_parameters"; readonly params: TransportParameters }
  | { readonly type: "ignored"; readonly frameType: string };

const reasonDecoder = new TextDecoder("utf-8", { fatal: false });

/** Reads a credit value; anything above 2^53-1 means "effectively unlimited" and is clamped. */
function credit(reader: ByteReader, field: string): number {
  const value = reader.varintBig(field);
  return value > BigInt(MAX_SAFE_VARINT) ? MAX_SAFE_VARINT : Number(value);
}

/** Decodes one WebSocket message into a frame. Throws {@link ProtocolViolationError}. */
export function decodeFrame(message: Uint8Array, framing: Framing): QmuxFrame {
  if (message.byteLength === 0)
    throw new ProtocolViolationError("QMux: empty WebSocket message", "MOQ_DECODE");
  return framing === "qmux-00" ? decodeQmux00(message) : decodeLegacy(message);
}

function decodeQmux00(message: Uint8Array): QmuxFrame {
  const first = message[0]!;
  if (first >>> 6 === 3) {
    // Only TRANSPORT_PARAMETERS uses an 8-byte type; anything else this long is unknown.
    const reader = new ByteReader(message, "QMux frame");
    const type = reader.varintBig("frame type");
    if (type !== TRANSPORT_PARAMETERS_TYPE) return { type: "ignored", frameType: `0x${type.toString(16)}` };
    const body = reader.lengthPrefixed("TRANSPORT_PARAMETERS", message.byteLength);
    reader.finish();
    return { type: "transport_parameters", params: decodeTransportParameters(body) };
  }
  const reader = new ByteReader(message, "QMux frame");
  const type = reader.varint("frame type");
  let frame: QmuxFrame;
  if (type >= 0x08 && type <= 0x0f) {
    const what = new ByteReader(message.subarray(reader.position), "QMux STREAM");
    const id = what.varint("stream id");
    const offset = type & 0x04 ? what.varint("offset") : undefined;
    const data = type & 0x02 ? what.lengthPrefixed("data", MAX_SAFE_VARINT) : what.rest();
    what.finish();
    return offset === undefined
      ? { type: "stream", id, data, fin: (type & 0x01) !== 0 }
      : { type: "stream", id, offset, data, fin: (type & 0x01) !== 0 };
  }
  switch (type) {
    case 0x04:
      frame = {
        type: "reset_stream",
        id: reader.varint("stream id"),
        code: credit(reader, "error code"),
        finalSize: reader.varint("final size"),
      };
      break;
    case 0x05:
      frame = { type: "stop_sending", id: reader.varint("stream id"), code: credit(reader, "error code") };
      break;
    case 0x1c:
    case 0x1d:
      return decodeCloseLenient(message.subarray(reader.position), true);
    case 0x10:
      frame = { type: "max_data", max: credit(reader, "maximum data") };
      break;
    case 0x11:
      frame = {
        type: "max_stream_data",
        id: reader.varint("stream id"),
        max: credit(reader, "maximum stream data"),
      };
      break;
    case 0x12:
    case 0x13:
      frame = { type: "max_streams", bidi: type === 0x12, max: credit(reader, "maximum streams") };
      break;
    case 0x14:
    case 0x16:
    case 0x17:
      credit(reader, "limit");
      frame = { type: "ignored", frameType: `0x${type.toString(16)}` };
      break;
    case 0x15:
      reader.varint("stream id");
      credit(reader, "limit");
      frame = { type: "ignored", frameType: "0x15" };
      break;
    default:
      // DATAGRAM (0x30/0x31), PING and anything newer: not used by moq-lite, skipped whole.
      return { type: "ignored", frameType: `0x${type.toString(16)}` };
  }
  reader.finish();
  return frame;
}

function decodeLegacy(message: Uint8Array): QmuxFrame {
  const type = message[0]!;
  const reader = new ByteReader(message.subarray(1), "legacy frame");
  let frame: QmuxFrame;
  switch (type) {
    case 0x08:
    case 0x09: {
      const id = reader.varint("stream id");
      return { type: "stream", id, data: reader.rest(), fin: type === 0x09 };
    }
    case 0x04:
      frame = { type: "reset_stream", id: reader.varint("stream id"), code: credit(reader, "error code") };
      break;
    case 0x05:
      frame = { type: "stop_sending", id: reader.varint("stream id"), code: credit(reader, "error code") };
      break;
    case 0x1c:
    case 0x1d:
      return decodeCloseLenient(message.subarray(1), false);
    default:
      throw new ProtocolViolationError(`legacy WebSocket framing: unknown frame type 0x${type.toString(16)}`);
  }
  reader.finish();
  return frame;
}

/**
 * CONNECTION_CLOSE as any client version sends it: the code, then (qmux-00) either
 * `frame_type len reason` (0.0.6, RFC 0x1c) or `len reason` (0.3.3 0x1d), or (legacy) the reason
 * as the rest of the message. Never throws past the code.
 */
function decodeCloseLenient(body: Uint8Array, qmux: boolean): QmuxFrame {
  const reader = new ByteReader(body, "CONNECTION_CLOSE");
  let code = 0;
  try {
    code = credit(reader, "code");
  } catch {
    return { type: "connection_close", code: 0, reason: "" };
  }
  const rest = reader.rest();
  if (!qmux) return { type: "connection_close", code, reason: reasonDecoder.decode(rest) };
  for (const skipFrameType of [true, false]) {
    try {
      const tail = new ByteReader(rest, "CONNECTION_CLOSE");
      if (skipFrameType) tail.varint("frame type");
      const reason = tail.lengthPrefixed("reason", rest.byteLength);
      tail.finish();
      return { type: "connection_close", code, reason: reasonDecoder.decode(reason) };
    } catch {
      // Try the other layout.
    }
  }
  return { type: "connection_close", code, reason: "" };
}

/** Decodes the body of QX_TRANSPORT_PARAMETERS; unknown ids are skipped. */
export function decodeTransportParameters(body: Uint8Array): TransportParameters {
  const reader = new ByteReader(body, "TRANSPORT_PARAMETERS");
  const params = {
    maxData: 0,
    maxStreamDataBidiLocal: 0,
    maxStreamDataBidiRemote: 0,
    maxStreamDataUni: 0,
    maxStreamsBidi: 0,
    maxStreamsUni: 0,
  };
  const seen = new Set<bigint>();
  while (reader.remaining > 0) {
    const id = reader.varintBig("parameter id");
    const value = reader.lengthPrefixed("parameter value", reader.remaining);
    if (seen.has(id))
      throw new ProtocolViolationError(`TRANSPORT_PARAMETERS: duplicate parameter 0x${id.toString(16)}`);
    seen.add(id);
    const name = (Object.keys(ParameterId) as Array<keyof typeof ParameterId>).find(
      (key) => BigInt(ParameterId[key]) === id,
    );
    if (name === undefined) continue;
    const valueReader = new ByteReader(value, `TRANSPORT_PARAMETERS 0x${id.toString(16)}`);
    params[name] = credit(valueReader, "value");
    valueReader.finish();
  }
  return params;
}

/** QX_TRANSPORT_PARAMETERS with zero values omitted, in parameter-id order. */
export function encodeTransportParameters(params: TransportParameters): Uint8Array {
  const entries = (Object.keys(ParameterId) as Array<keyof typeof ParameterId>)
    .map((name) => [ParameterId[name], params[name]] as const)
    .filter(([, value]) => value > 0);
  let size = 0;
  for (const [id, value] of entries)
    size += varintSize(id) + varintSize(varintSize(value)) + varintSize(value);
  const writer = new ByteWriter(8 + varintSize(size) + size)
    .varintBig(TRANSPORT_PARAMETERS_TYPE)
    .varint(size);
  for (const [id, value] of entries) writer.varint(id).varint(varintSize(value)).varint(value);
  return writer.finish();
}

/** Header size of a STREAM frame carrying `length` payload bytes on stream `id`. */
export function streamFrameHeaderSize(framing: Framing, id: number, length: number): number {
  return framing === "qmux-00" ? 1 + varintSize(id) + varintSize(length) : 1 + varintSize(id);
}

/** Writes a STREAM frame header at the start of `buf`; returns its size. qmux-00 always uses the LEN bit. */
export function writeStreamFrameHeader(
  buf: Uint8Array,
  framing: Framing,
  id: number,
  length: number,
  fin: boolean,
): number {
  if (framing === "qmux-00") {
    buf[0] = fin ? 0x0b : 0x0a;
    const offset = writeVarint(buf, 1, id);
    return writeVarint(buf, offset, length);
  }
  buf[0] = fin ? 0x09 : 0x08;
  return writeVarint(buf, 1, id);
}

/** A whole STREAM frame (header and a copy of `data`). */
export function encodeStreamFrame(framing: Framing, id: number, data: Uint8Array, fin: boolean): Uint8Array {
  const headerSize = streamFrameHeaderSize(framing, id, data.byteLength);
  const out = new Uint8Array(headerSize + data.byteLength);
  writeStreamFrameHeader(out, framing, id, data.byteLength, fin);
  out.set(data, headerSize);
  return out;
}

/** RESET_STREAM (qmux-00 carries the final size; legacy has none). */
export function encodeResetStream(framing: Framing, id: number, code: number, finalSize: number): Uint8Array {
  if (framing === "qmux-00") {
    return new ByteWriter(1 + varintSize(id) + varintSize(code) + varintSize(finalSize))
      .u8(0x04)
      .varint(id)
      .varint(code)
      .varint(finalSize)
      .finish();
  }
  return new ByteWriter(1 + varintSize(id) + varintSize(code)).u8(0x04).varint(id).varint(code).finish();
}

/** STOP_SENDING (same layout in both framings). */
export function encodeStopSending(id: number, code: number): Uint8Array {
  return new ByteWriter(1 + varintSize(id) + varintSize(code)).u8(0x05).varint(id).varint(code).finish();
}

/**
 * CONNECTION_CLOSE. qmux-00 uses `1d code 00 len reason`, which the 0.0.6 client decodes fully
 * and the 0.3.3 client as that code; legacy is `1d code reason`.
 */
export function encodeConnectionClose(framing: Framing, code: number, reason: string): Uint8Array {
  let text = utf8(reason);
  if (text.byteLength > 1024) text = text.subarray(0, 1024);
  if (framing === "qmux-00") {
    return new ByteWriter(1 + varintSize(code) + 1 + bytesFieldSize(text))
      .u8(0x1d)
      .varint(code)
      .u8(0)
      .lengthPrefixed(text)
      .finish();
  }
  return new ByteWriter(1 + varintSize(code) + text.byteLength).u8(0x1d).varint(code).bytes(text).finish();
}

/** MAX_DATA. */
export function encodeMaxData(max: number): Uint8Array {
  return new ByteWriter(1 + varintSize(max)).u8(0x10).varint(max).finish();
}

/** MAX_STREAM_DATA. */
export function encodeMaxStreamData(id: number, max: number): Uint8Array {
  return new ByteWriter(1 + varintSize(id) + varintSize(max)).u8(0x11).varint(id).varint(max).finish();
}

/** MAX_STREAMS for bidi (0x12) or uni (0x13) streams. */
export function encodeMaxStreams(bidi: boolean, max: number): Uint8Array {
  return new ByteWriter(1 + varintSize(max))
    .u8(bidi ? 0x12 : 0x13)
    .varint(max)
    .finish();
}

/** QUIC stream id arithmetic (RFC 9000 §2.1): `index << 2 | uni << 1 | server`. */
export const StreamId: {
  make(index: number, uni: boolean, server: boolean): number;
  index(id: number): number;
  isUni(id: number): boolean;
  isServerInitiated(id: number): boolean;
} = {
  make: (index, uni, server) => index * 4 + (uni ? 2 : 0) + (server ? 1 : 0),
  index: (id) => Math.floor(id / 4),
  isUni: (id) => (id & 2) !== 0,
  isServerInitiated: (id) => (id & 1) !== 0,
};
