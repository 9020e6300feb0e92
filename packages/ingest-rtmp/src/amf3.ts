/**
 * The AMF3 values an AMF0 stream may embed after the 0x11 marker (Flash clients with
 * objectEncoding 3). Decoding only: undefined, null, booleans, integers, doubles, strings, XML,
 * dates, arrays and anonymous or sealed objects. Externalizable objects, ByteArrays, vectors and
 * dictionaries are refused with `AMF_DECODE`. Reference tables start fresh for each embedded
 * value, as the AMF0 specification requires.
 */
import { type AmfDecodeBudget, type AmfObject, type AmfValue, spendAmfValue } from "./amf0.ts";
import { type ByteReader, decodeUtf8 } from "./byte-reader.ts";
import { RtmpError } from "./errors.ts";

interface Traits {
  readonly dynamic: boolean;
  readonly sealed: string[];
}

class Amf3Decoder {
  readonly r: ByteReader;
  readonly maxDepth: number;
  readonly budget: AmfDecodeBudget;
  readonly strings: string[] = [];
  readonly objects: (AmfObject | AmfValue[] | Date)[] = [];
  readonly open: Set<unknown> = new Set();
  readonly traits: Traits[] = [];

  constructor(r: ByteReader, budget: AmfDecodeBudget) {
    this.r = r;
    this.budget = budget;
    this.maxDepth = budget.maxDepth;
  }

  u29(): number {
    let v = 0;
    for (let i = 0; i < 3; i++) {
      const b = this.r.u8();
      v = (v << 7) | (b & 0x7f);
      if ((b & 0x80) === 0) return v;
    }
    return ((v << 8) | this.r.u8()) >>> 0;
  }

  string(): string {
    const ref = this.u29();
    if ((ref & 1) === 0) {
      const s = this.strings[ref >>> 1];
      if (s === undefined) throw this.r.error(`AMF3 string reference ${ref >>> 1} is out of range`);
      return s;
    }
    const s = decodeUtf8(this.r.bytesView(ref >>> 1));
    if (s.length > 0) this.strings.push(s);
    return s;
  }

  objectRef(index: number): AmfObject | AmfValue[] | Date {
    const target = this.objects[index];
    if (target === undefined) throw this.r.error(`AMF3 object reference ${index} is out of range`);
    if (this.open.has(target))
      throw this.r.error(`AMF3 object reference ${index} points to an object still being decoded`);
    return target;
  }

  value(depth: number): AmfValue {
    spendAmfValue(this.budget);
    const r = this.r;
    const marker = r.u8();
    switch (marker) {
      case 0x00:
        return undefined;
      case 0x01:
        return null;
      case 0x02:
        return false;
      case 0x03:
        return true;
      case 0x04: {
        const v = this.u29();
        return v & 0x10000000 ? v - 0x20000000 : v;
      }
      case 0x05:
        return r.f64();
      case 0x06:
        return this.string();
      case 0x07:
      case 0x0b: {
        const ref = this.u29();
        if ((ref & 1) === 0) return this.objectRef(ref >>> 1) as AmfValue;
        const s = decodeUtf8(r.bytesView(ref >>> 1));
        return s;
      }
      case 0x08: {
        const ref = this.u29();
        if ((ref & 1) === 0) return this.objectRef(ref >>> 1) as AmfValue;
        const d = new Date(r.f64());
        this.objects.push(d);
        return d;
      }
      case 0x09:
        return this.array(depth);
      case 0x0a:
        return this.object(depth);
      default:
        throw r.error(
          `AMF3 marker 0x${marker.toString(16).padStart(2, "0")} is not supported (offset ${r.offset - 1})`,
        );
    }
  }

  checkDepth(depth: number): void {
    if (depth >= this.maxDepth)
      throw new RtmpError("AMF_DEPTH", `AMF nesting deeper than ${this.maxDepth} levels`);
  }

  array(depth: number): AmfValue {
    const ref = this.u29();
    if ((ref & 1) === 0) return this.objectRef(ref >>> 1) as AmfValue;
    this.checkDepth(depth);
    const dense = ref >>> 1;
    const assoc: AmfObject = {};
    const arr: AmfValue[] = [];
    this.objects.push(arr);
    this.open.add(arr);
    let hasAssoc = false;
    for (;;) {
      const key = this.string();
      if (key === "") break;
      hasAssoc = true;
      setProperty(assoc, key, this.value(depth + 1));
    }
    if (dense > this.r.remaining)
      throw this.r.error(`AMF3 array declares ${dense} elements but only ${this.r.remaining} bytes remain`);
    for (let i = 0; i < dense; i++) arr.push(this.value(depth + 1));
    this.open.delete(arr);
    if (!hasAssoc) return arr;
    // A mixed array has no plain JavaScript equivalent; give the dense part numeric keys.
    for (let i = 0; i < arr.length; i++) assoc[String(i)] = arr[i];
    return assoc;
  }

  object(depth: number): AmfValue {
    const r = this.r;
    const ref = this.u29();
    if ((ref & 1) === 0) return this.objectRef(ref >>> 1) as AmfValue;
    this.checkDepth(depth);
    let traits: Traits;
    if ((ref & 2) === 0) {
      const t = this.traits[ref >>> 2];
      if (t === undefined) throw r.error(`AMF3 traits reference ${ref >>> 2} is out of range`);
      traits = t;
    } else {
      if ((ref & 4) !== 0) throw r.error("AMF3 externalizable objects are not supported");
      const dynamic = (ref & 8) !== 0;
      const count = ref >>> 4;
      this.string(); // Class name.
      if (count > r.remaining)
        throw r.error(`AMF3 traits declare ${count} members but only ${r.remaining} bytes remain`);
      const sealed: string[] = [];
      for (let i = 0; i < count; i++) sealed.push(this.string());
      traits = { dynamic, sealed };
      this.traits.push(traits);
    }
    const obj: AmfObject = {};
    this.objects.push(obj);
    this.open.add(obj);
    for (const name of traits.sealed) setProperty(obj, name, this.value(depth + 1));
    if (traits.dynamic) {
      for (;;) {
        const key = this.string();
        if (key === "") break;
        setProperty(obj, key, this.value(depth + 1));
      }
    }
    this.open.delete(obj);
    return obj;
  }
}

function setProperty(target: AmfObject, key: string, value: AmfValue): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/** Decodes one AMF3 value (the bytes after an AMF0 0x11 marker). */
export function decodeAmf3Value(reader: ByteReader, depth: number, budget: AmfDecodeBudget): AmfValue {
  return new Amf3Decoder(reader, budget).value(depth);
}
