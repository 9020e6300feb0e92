/**
 * The SETUP exchange of lite-01/02 (draft-14 encoding): `varint type` (0x20 client, 0x21 server),
 * a big-endian u16 body length, then the body. Parameters follow the draft-14 rule: an even id
 * carries a bare varint value, an odd id a length-prefixed byte string. After SETUP the same bidi
 * stream is the session stream and carries SESSION_UPDATE messages.
 */
import { ProtocolViolationError } from "../error.ts";
import { ByteReader, ByteWriter, bytesFieldSize } from "./bytes.ts";
import { requireVersion, setupEraOnly } from "./message.ts";
import { MAX_SAFE_VARINT, varintSize, varintSizeBig } from "./varint.ts";
import { StreamType, type Version } from "./version.ts";

/** SETUP parameters: even ids map to varint values, odd ids to bytes. */
export type SetupParameters = ReadonlyMap<number, bigint | Uint8Array>;

/** Well-known SETUP parameter ids. */
export const SetupParameter: { readonly MaxRequestId: 0x02; readonly Implementation: 0x07 } = {
  MaxRequestId: 0x02,
  Implementation: 0x07,
};

/** CLIENT_SETUP: the versions the client offers, best first. */
export interface ClientSetup {
  readonly versions: readonly number[];
  readonly parameters: SetupParameters;
}

/** SERVER_SETUP: the version the server selected. */
export interface ServerSetup {
  readonly version: number;
  readonly parameters: SetupParameters;
}

/** SESSION_UPDATE (a.k.a. SessionInfo), lite-01/02 session stream: estimated bitrate, 0 = unknown. */
export interface SessionUpdate {
  readonly bitrate: number;
}

const MAX_VERSIONS = 64;
const MAX_PARAMETERS = 64;
const MAX_PARAMETER_BYTES = 4096;

function parametersSize(parameters: SetupParameters): number {
  let size = varintSize(parameters.size);
  for (const [id, value] of parameters) {
    size += varintSize(id);
    if (id % 2 === 0) {
      if (typeof value !== "bigint")
        throw new TypeError(`SETUP parameter ${id} is even and needs a varint value`);
      size += varintSizeBig(value);
    } else {
      if (typeof value === "bigint")
        throw new TypeError(`SETUP parameter ${id} is odd and needs a byte value`);
      size += bytesFieldSize(value);
    }
  }
  return size;
}

function writeParameters(writer: ByteWriter, parameters: SetupParameters): void {
  writer.varint(parameters.size);
  for (const [id, value] of parameters) {
    writer.varint(id);
    if (typeof value === "bigint") writer.varintBig(value);
    else writer.lengthPrefixed(value);
  }
}

function readParameters(reader: ByteReader): Map<number, bigint | Uint8Array> {
  const count = reader.varint("parameter count", MAX_PARAMETERS);
  const parameters = new Map<number, bigint | Uint8Array>();
  for (let i = 0; i < count; i++) {
    const id = reader.varint("parameter id");
    const value =
      id % 2 === 0
        ? reader.varintBig(`parameter ${id}`)
        : reader.lengthPrefixed(`parameter ${id}`, MAX_PARAMETER_BYTES);
    if (parameters.has(id)) throw new ProtocolViolationError(`SETUP: duplicate parameter ${id}`);
    parameters.set(id, value);
  }
  return parameters;
}

function setupMessage(type: number, bodySize: number): ByteWriter {
  if (bodySize > 0xffff) throw new RangeError(`SETUP body of ${bodySize} bytes does not fit its u16 length`);
  return new ByteWriter(varintSize(type) + 2 + bodySize).varint(type).u16(bodySize);
}

/** CLIENT_SETUP with its type and u16 length. */
export function encodeClientSetup(msg: ClientSetup): Uint8Array {
  let size = varintSize(msg.versions.length) + parametersSize(msg.parameters);
  for (const version of msg.versions) size += varintSize(version);
  const writer = setupMessage(StreamType.ClientSetup, size).varint(msg.versions.length);
  for (const version of msg.versions) writer.varint(version);
  writeParameters(writer, msg.parameters);
  return writer.finish();
}

/** Decodes a CLIENT_SETUP body (after the type and u16 length). Versions above 2^53 are dropped. */
export function decodeClientSetup(body: Uint8Array): ClientSetup {
  const reader = new ByteReader(body, "CLIENT_SETUP");
  const count = reader.varint("version count", MAX_VERSIONS);
  const versions: number[] = [];
  for (let i = 0; i < count; i++) {
    const version = reader.varintBig("version");
    if (version <= BigInt(MAX_SAFE_VARINT)) versions.push(Number(version));
  }
  const parameters = readParameters(reader);
  reader.finish();
  return { versions, parameters };
}

/** SERVER_SETUP with its type and u16 length. */
export function encodeServerSetup(msg: ServerSetup): Uint8Array {
  const size = varintSize(msg.version) + parametersSize(msg.parameters);
  const writer = setupMessage(StreamType.ServerSetup, size).varint(msg.version);
  writeParameters(writer, msg.parameters);
  return writer.finish();
}

/** Decodes a SERVER_SETUP body (after the type and u16 length). */
export function decodeServerSetup(body: Uint8Array): ServerSetup {
  const reader = new ByteReader(body, "SERVER_SETUP");
  const version = reader.varint("version");
  const parameters = readParameters(reader);
  reader.finish();
  return { version, parameters };
}

/** SESSION_UPDATE, size-prefixed (lite-01/02 only). */
export function encodeSessionUpdate(msg: SessionUpdate, version: Version): Uint8Array {
  requireVersion("SESSION_UPDATE", version, setupEraOnly, false);
  const size = varintSize(msg.bitrate);
  return ByteWriter.message(size).varint(msg.bitrate).finish();
}

/** Decodes a SESSION_UPDATE body. */
export function decodeSessionUpdate(body: Uint8Array, version: Version): SessionUpdate {
  requireVersion("SESSION_UPDATE", version, setupEraOnly, true);
  const reader = new ByteReader(body, "SESSION_UPDATE");
  const bitrate = reader.varint("bitrate");
  reader.finish();
  return { bitrate };
}
