/**
 * AMF0 encoding and decoding (with the AMF3 values an AMF0 stream may switch to through the
 * 0x11 "avmplus" marker). The decoder is bounded: every length is checked against the bytes left,
 * declared counts are never used to pre-allocate, nesting is capped (64 by default), and any
 * failure is one {@link RtmpError} with code `AMF_DECODE` or `AMF_DEPTH`.
 */
import { decodeAmf3Value } from "./amf3.ts";
import { ByteReader, decodeUtf8 } from "./byte-reader.ts";
import { RtmpError } from "./errors.ts";

/** A plain AMF object (also what ECMA arrays and typed objects decode to). */
export interface AmfObject {
  [key: string]: AmfValue;
}

/** Any value AMF0 can carry, as JavaScript sees it. */
export type AmfValue =
  | number
  | boolean
  | string
  | null
  | undefined
  | Date
  | AmfObject
  | AmfValue[]
  | AmfEcmaArray;

/**
 * Marks an object to be written as an AMF0 ECMA array (marker 0x08) rather than an anonymous
 * object; `onMetaData` is conventionally an ECMA array. Decoding gives back a plain object.
 */
export class AmfEcmaArray {
  /** The array's properties. */
  readonly entries: AmfObject;

  constructor(entries: AmfObject) {
    this.entries = entries;
  }
}

/** Options of the AMF decoders. */
export interface AmfDecodeOptions {
  /** Maximum nesting of objects and arrays (default 64). */
  readonly maxDepth?: number;
  /**
   * Maximum number of values (including every property value and array element) in one decode
   * (default 1024). Each distinct property name costs the engine a few microseconds, so this
   * bounds the CPU a hostile message can take.
   */
  readonly maxValues?: number;
}

/** The default value-count limit. */
export const DEFAULT_AMF_MAX_VALUES = 1024;

/** Decode limits shared by the AMF0 decoder and the AMF3 values it embeds. */
export interface AmfDecodeBudget {
  readonly maxDepth: number;
  readonly maxValues: number;
  valuesLeft: number;
}

function budgetOf(options: AmfDecodeOptions | undefined): AmfDecodeBudget {
  const maxValues = options?.maxValues ?? DEFAULT_AMF_MAX_VALUES;
  return { maxDepth: options?.maxDepth ?? DEFAULT_AMF_MAX_DEPTH, maxValues, valuesLeft: maxValues };
}

/** Counts one decoded value against the budget. */
export function spendAmfValue(budget: AmfDecodeBudget): void {
  if (--budget.valuesLeft < 0)
    throw new RtmpError("AMF_DECODE", `AMF data has more than ${budget.maxValues} values (maxValues)`);
}

/** The default nesting limit. */
export const DEFAULT_AMF_MAX_DEPTH = 64;

const Marker = {
  number: 0x00,
  boolean: 0x01,
  string: 0x02,
  object: 0x03,
  movieClip: 0x04,
  null: 0x05,
  undefined: 0x06,
  reference: 0x07,
  ecmaArray: 0x08,
  objectEnd: 0x09,
  strictArray: 0x0a,
  date: 0x0b,
  longString: 0x0c,
  unsupported: 0x0d,
  recordSet: 0x0e,
  xmlDocument: 0x0f,
  typedObject: 0x10,
  avmPlus: 0x11,
} as const;

/** Sets a property without ever touching the prototype chain (a key may be "__proto__"). */
export function setAmfProperty(target: AmfObject, key: string, value: AmfValue): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

class Amf0Decoder {
  readonly reader: ByteReader;
  readonly maxDepth: number;
  readonly budget: AmfDecodeBudget;
  // Complex values in the order they started, for 0x07 references.
  readonly refs: (AmfObject | AmfValue[])[] = [];
  readonly open: Set<AmfObject | AmfValue[]> = new Set();

  constructor(reader: ByteReader, budget: AmfDecodeBudget) {
    this.reader = reader;
    this.budget = budget;
    this.maxDepth = budget.maxDepth;
  }

  value(depth: number): AmfValue {
    spendAmfValue(this.budget);
    const r = this.reader;
    const marker = r.u8();
    switch (marker) {
      case Marker.number:
        return r.f64();
      case Marker.boolean:
        return r.u8() !== 0;
      case Marker.string:
        return decodeUtf8(r.bytesView(r.u16()));
      case Marker.object:
        return this.object(depth, false);
      case Marker.null:
        return null;
      case Marker.undefined:
      case Marker.unsupported:
        return undefined;
      case Marker.reference: {
        const index = r.u16();
        const target = this.refs[index];
        if (target === undefined)
          throw r.error(`AMF0 reference ${index} points past the ${this.refs.length} objects decoded so far`);
        if (this.open.has(target))
          throw r.error(`AMF0 reference ${index} points to an object that is still being decoded`);
        return target;
      }
      case Marker.ecmaArray:
        r.u32(); // The count is advisory; the properties end with an object-end marker.
        return this.object(depth, true);
      case Marker.strictArray:
        return this.strictArray(depth);
      case Marker.date: {
        const ms = r.f64();
        r.i16(); // Time zone: reserved, always 0 in practice.
        return new Date(ms);
      }
      case Marker.longString:
      case Marker.xmlDocument:
        return decodeUtf8(r.bytesView(r.u32()));
      case Marker.typedObject:
        r.bytesView(r.u16()); // Class name: not represented in JavaScript values.
        return this.object(depth, false);
      case Marker.avmPlus:
        return decodeAmf3Value(r, depth, this.budget);
      case Marker.objectEnd:
        throw r.error(`AMF0 object-end marker outside an object at offset ${r.offset - 1}`);
      default:
        throw r.error(
          `AMF0 marker 0x${marker.toString(16).padStart(2, "0")} is not supported (offset ${r.offset - 1})`,
        );
    }
  }

  object(depth: number, ecma: boolean): AmfObject {
    if (depth >= this.maxDepth)
      throw new RtmpError("AMF_DEPTH", `AMF nesting deeper than ${this.maxDepth} levels`);
    const r = this.reader;
    const obj: AmfObject = {};
    this.refs.push(obj);
    this.open.add(obj);
    for (;;) {
      // Some encoders end an ECMA array at the end of the message without the end marker.
      if (ecma && r.remaining === 0) break;
      const keyLength = r.u16();
      if (keyLength === 0) {
        const end = r.u8();
        if (end !== Marker.objectEnd)
          throw r.error(
            `AMF0 object has an empty key not followed by the end marker (offset ${r.offset - 1})`,
          );
        break;
      }
      const key = decodeUtf8(r.bytesView(keyLength));
      setAmfProperty(obj, key, this.value(depth + 1));
    }
    this.open.delete(obj);
    return obj;
  }

  strictArray(depth: number): AmfValue[] {
    if (depth >= this.maxDepth)
      throw new RtmpError("AMF_DEPTH", `AMF nesting deeper than ${this.maxDepth} levels`);
    const r = this.reader;
    const count = r.u32();
    // Every element takes at least one byte, so a count above the bytes left is a lie.
    if (count > r.remaining)
      throw r.error(`AMF0 strict array declares ${count} elements but only ${r.remaining} bytes remain`);
    const arr: AmfValue[] = [];
    this.refs.push(arr);
    this.open.add(arr);
    for (let i = 0; i < count; i++) arr.push(this.value(depth + 1));
    this.open.delete(arr);
    return arr;
  }
}

/** Decodes every AMF0 value in `bytes` (a command or data message body). */
export function decodeAmf0(bytes: Uint8Array, options?: AmfDecodeOptions): AmfValue[] {
  const reader = new ByteReader(bytes, "AMF_DECODE", "AMF0 data");
  const decoder = new Amf0Decoder(reader, budgetOf(options));
  const values: AmfValue[] = [];
  while (reader.remaining > 0) values.push(decoder.value(0));
  return values;
}

/** Decodes one AMF0 value at the reader's position. */
export function decodeAmf0Value(reader: ByteReader, options?: AmfDecodeOptions): AmfValue {
  return new Amf0Decoder(reader, budgetOf(options)).value(0);
}

// ---------------------------------------------------------------------------------------------
// Encoding: compute the size, then fill one buffer.

function isPlainObject(value: object): value is AmfObject {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function sizeOf(value: AmfValue, depth: number, maxDepth: number): number {
  if (value === null || value === undefined) return 1;
  switch (typeof value) {
    case "number":
      return 9;
    case "boolean":
      return 2;
    case "string": {
      const n = Buffer.byteLength(value, "utf8");
      return n > 0xffff ? 5 + n : 3 + n;
    }
    case "object":
      break;
    default:
      throw new RtmpError("AMF_ENCODE", `cannot write a ${typeof value} as AMF0`);
  }
  if (depth >= maxDepth) throw new RtmpError("AMF_ENCODE", `AMF value nests deeper than ${maxDepth} levels`);
  if (value instanceof Date) return 11;
  if (Array.isArray(value)) {
    let n = 5;
    for (const item of value) n += sizeOf(item, depth + 1, maxDepth);
    return n;
  }
  if (value instanceof AmfEcmaArray) return 4 + sizeOfProperties(value.entries, depth, maxDepth);
  if (!isPlainObject(value))
    throw new RtmpError(
      "AMF_ENCODE",
      `cannot write an instance of ${(value as object).constructor?.name ?? "a class"} as AMF0`,
    );
  return sizeOfProperties(value, depth, maxDepth);
}

function sizeOfProperties(obj: AmfObject, depth: number, maxDepth: number): number {
  let n = 1 + 3; // marker + end marker
  for (const key of Object.keys(obj)) {
    const k = Buffer.byteLength(key, "utf8");
    if (k === 0 || k > 0xffff)
      throw new RtmpError("AMF_ENCODE", `AMF0 property key of ${k} bytes cannot be written (1..65535)`);
    n += 2 + k + sizeOf(obj[key], depth + 1, maxDepth);
  }
  return n;
}

class Amf0Writer {
  readonly buf: Buffer;
  offset = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  value(value: AmfValue): void {
    const b = this.buf;
    if (value === null) {
      b[this.offset++] = Marker.null;
      return;
    }
    if (value === undefined) {
      b[this.offset++] = Marker.undefined;
      return;
    }
    switch (typeof value) {
      case "number":
        b[this.offset++] = Marker.number;
        this.offset = b.writeDoubleBE(value, this.offset);
        return;
      case "boolean":
        b[this.offset++] = Marker.boolean;
        b[this.offset++] = value ? 1 : 0;
        return;
      case "string": {
        const n = Buffer.byteLength(value, "utf8");
        if (n > 0xffff) {
          b[this.offset++] = Marker.longString;
          this.offset = b.writeUInt32BE(n, this.offset);
        } else {
          b[this.offset++] = Marker.string;
          this.offset = b.writeUInt16BE(n, this.offset);
        }
        this.offset += b.write(value, this.offset, "utf8");
        return;
      }
      default:
        break;
    }
    if (value instanceof Date) {
      b[this.offset++] = Marker.date;
      this.offset = b.writeDoubleBE(value.getTime(), this.offset);
      this.offset = b.writeInt16BE(0, this.offset);
      return;
    }
    if (Array.isArray(value)) {
      b[this.offset++] = Marker.strictArray;
      this.offset = b.writeUInt32BE(value.length, this.offset);
      for (const item of value) this.value(item);
      return;
    }
    if (value instanceof AmfEcmaArray) {
      b[this.offset++] = Marker.ecmaArray;
      this.offset = b.writeUInt32BE(Object.keys(value.entries).length, this.offset);
      this.properties(value.entries);
      return;
    }
    b[this.offset++] = Marker.object;
    this.properties(value as AmfObject);
  }

  properties(obj: AmfObject): void {
    const b = this.buf;
    for (const key of Object.keys(obj)) {
      this.offset = b.writeUInt16BE(Buffer.byteLength(key, "utf8"), this.offset);
      this.offset += b.write(key, this.offset, "utf8");
      this.value(obj[key]);
    }
    b[this.offset++] = 0;
    b[this.offset++] = 0;
    b[this.offset++] = Marker.objectEnd;
  }
}

/** Encodes values as consecutive AMF0 (e.g. a command: name, transaction id, object, args). */
export function encodeAmf0(
  values: readonly AmfValue[],
  maxDepth: number = DEFAULT_AMF_MAX_DEPTH,
): Uint8Array {
  let size = 0;
  for (const v of values) size += sizeOf(v, 0, maxDepth);
  const writer = new Amf0Writer(size);
  for (const v of values) writer.value(v);
  return writer.buf;
}
