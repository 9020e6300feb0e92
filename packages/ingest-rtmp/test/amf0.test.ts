import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AmfEcmaArray,
  type AmfValue,
  decodeAmf0,
  encodeAmf0,
  isRtmpError,
  parseCommand,
  RtmpError,
} from "../src/index.ts";
import { hex, toHex } from "./helpers/hex.ts";

describe("AMF0 golden bytes", () => {
  it("encodes a connect command field by field", () => {
    const bytes = encodeAmf0(["connect", 1, { app: "live", objectEncoding: 0 }]);
    expect(toHex(bytes)).toBe(
      toHex(
        hex(`
          02 0007 636f6e6e656374          # string "connect"
          00 3ff0000000000000             # number 1
          03                              # object
            0003 617070 02 0004 6c697665  #   app: "live"
            000e 6f626a656374456e636f64696e67 00 0000000000000000  # objectEncoding: 0
          000009                          # object end
        `),
      ),
    );
  });

  it("encodes an ECMA array, strict array, null, undefined, boolean and date", () => {
    const bytes = encodeAmf0([new AmfEcmaArray({ a: true }), [null, undefined], false, new Date(0)]);
    expect(toHex(bytes)).toBe(
      toHex(
        hex(`
          08 00000001 0001 61 01 01 000009   # ECMA array, count 1, a: true
          0a 00000002 05 06                  # strict array [null, undefined]
          01 00                              # false
          0b 0000000000000000 0000           # date 0, tz 0
        `),
      ),
    );
  });

  it("uses the long string marker above 65535 bytes", () => {
    const s = "x".repeat(70000);
    const bytes = encodeAmf0([s]);
    expect(bytes[0]).toBe(0x0c);
    expect(new DataView(bytes.buffer, bytes.byteOffset).getUint32(1)).toBe(70000);
    expect(decodeAmf0(bytes)).toEqual([s]);
  });

  it("decodes what ffmpeg sends for @setDataFrame (ECMA array)", () => {
    const bytes = hex(`
      02 000d 40736574446174614672616d65   # "@setDataFrame"
      02 000a 6f6e4d65746144617461         # "onMetaData"
      08 00000002
        0005 7769647468 00 4074000000000000   # width: 320
        000c 617564696f636f6465636964 00 4024000000000000  # audiocodecid: 10
      000009
    `);
    expect(decodeAmf0(bytes)).toEqual(["@setDataFrame", "onMetaData", { width: 320, audiocodecid: 10 }]);
  });

  it("resolves references, typed objects, long strings, XML and unsupported markers", () => {
    const bytes = hex(`
      0a 00000002                        # strict array of 2
        03 0001 6b 00 3ff0000000000000 000009   # {k: 1} (reference 1; the array is 0)
        07 0001                          # reference to object 1
      10 0003 466f6f 0001 78 05 000009   # typed object "Foo" {x: null}
      0c 00000002 6869                   # long string "hi"
      0f 00000001 3c                     # XML "<"
      0d                                 # unsupported -> undefined
    `);
    const [arr, typed, long, xml, unsupported] = decodeAmf0(bytes) as [
      AmfValue[],
      AmfValue,
      string,
      string,
      undefined,
    ];
    expect(arr[0]).toEqual({ k: 1 });
    expect(arr[1]).toBe(arr[0]);
    expect(typed).toEqual({ x: null });
    expect(long).toBe("hi");
    expect(xml).toBe("<");
    expect(unsupported).toBeUndefined();
  });

  it("decodes AMF3 values embedded after the 0x11 marker", () => {
    const bytes = hex(`
      11 04 7f                    # AMF3 integer 127
      11 04 ffffffff              # AMF3 integer -1 (29-bit two's complement)
      11 06 0b 68656c6c6f         # AMF3 string "hello"
      11 0a 0b 01                 # AMF3 anonymous dynamic object, no sealed members
        03 61 04 01               #   a: 1
        03 62 06 00               #   b: string reference 0 ("a": tables restart per 0x11 value)
        01                        #   end of dynamic members
      11 09 05 01 02 03           # AMF3 dense array [false, true]
    `);
    expect(decodeAmf0(bytes)).toEqual([127, -1, "hello", { a: 1, b: "a" }, [false, true]]);
  });

  it("keeps a __proto__ key as data, never as the prototype", () => {
    const bytes = hex("03 0009 5f5f70726f746f5f5f 03 0001 78 01 01 000009 000009");
    const [obj] = decodeAmf0(bytes) as [Record<string, unknown>];
    expect(Object.getPrototypeOf(obj)).toBe(Object.prototype);
    expect(Object.keys(obj)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>)["x"]).toBeUndefined();
  });
});

describe("AMF0 hostile input", () => {
  function codeOf(fn: () => unknown): string {
    try {
      fn();
    } catch (err) {
      if (!isRtmpError(err)) throw err;
      return err.code;
    }
    return "no error";
  }

  it("refuses truncation at every byte of a valid command", () => {
    const bytes = encodeAmf0([
      "connect",
      1,
      { app: "live", tcUrl: "rtmp://x/live", nested: { a: [1, "b", null] } },
    ]);
    for (let n = 1; n < bytes.byteLength; n++) {
      expect(codeOf(() => decodeAmf0(bytes.subarray(0, n)))).toMatch(/AMF_DECODE|no error/);
    }
  });

  it("caps nesting at 64 without recursing 10,000 levels deep", () => {
    const deep = new Uint8Array(10_000 * 5 + 1);
    for (let i = 0; i < 10_000; i++) deep.set([0x0a, 0, 0, 0, 1], i * 5);
    expect(codeOf(() => decodeAmf0(deep))).toBe("AMF_DEPTH");
    const objects = new Uint8Array(10_000 * 4).fill(0);
    for (let i = 0; i < 10_000; i++) objects.set([0x03, 0x00, 0x01, 0x61], i * 4);
    expect(codeOf(() => decodeAmf0(objects))).toBe("AMF_DEPTH");
    let ok: AmfValue = 1;
    for (let i = 0; i < 63; i++) ok = [ok];
    expect(decodeAmf0(encodeAmf0([ok]))).toEqual([ok]);
    const tooDeep: AmfValue = [[ok]]; // 65 levels
    expect(codeOf(() => decodeAmf0(encodeAmf0([tooDeep], 100)))).toBe("AMF_DEPTH");
    expect(codeOf(() => decodeAmf0(encodeAmf0([tooDeep], 100), { maxDepth: 100 }))).toBe("no error");
  });

  it("refuses declared lengths and counts of 2^32-1 quickly, without allocating them", () => {
    const started = performance.now();
    expect(codeOf(() => decodeAmf0(hex("0c ffffffff 41")))).toBe("AMF_DECODE");
    expect(codeOf(() => decodeAmf0(hex("0a ffffffff 05 05")))).toBe("AMF_DECODE");
    expect(codeOf(() => decodeAmf0(hex("08 ffffffff 0001")))).toBe("AMF_DECODE");
    expect(codeOf(() => decodeAmf0(hex("11 09 ffffff7f 01")))).toBe("AMF_DECODE");
    expect(performance.now() - started).toBeLessThan(50);
  });

  it("refuses unknown markers, stray end markers and self references", () => {
    expect(codeOf(() => decodeAmf0(hex("12")))).toBe("AMF_DECODE");
    expect(codeOf(() => decodeAmf0(hex("09")))).toBe("AMF_DECODE");
    expect(codeOf(() => decodeAmf0(hex("04")))).toBe("AMF_DECODE");
    expect(codeOf(() => decodeAmf0(hex("07 0000")))).toBe("AMF_DECODE");
    expect(codeOf(() => decodeAmf0(hex("03 0001 61 07 0000 000009")))).toBe("AMF_DECODE");
    expect(codeOf(() => decodeAmf0(hex("11 0a 07 00")))).toBe("AMF_DECODE");
  });

  it("refuses values it cannot write", () => {
    expect(codeOf(() => encodeAmf0([{ ["k".repeat(70000)]: 1 }]))).toBe("AMF_ENCODE");
    expect(codeOf(() => encodeAmf0([new Map() as unknown as AmfValue]))).toBe("AMF_ENCODE");
    const cyclic: Record<string, AmfValue> = {};
    cyclic["self"] = cyclic;
    expect(codeOf(() => encodeAmf0([cyclic]))).toBe("AMF_ENCODE");
  });
});

const amfKey = fc.string({ minLength: 1, maxLength: 12 }).filter((k) => k !== "__proto__");
const amfLeaf = fc.oneof(
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.string({ maxLength: 40 }),
  fc.constant(null),
  fc.constant(undefined),
  fc.date({ noInvalidDate: true }),
);
const amfValue = fc.letrec<{ value: AmfValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    amfLeaf,
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(amfKey, tie("value"), { maxKeys: 5 }),
  ),
})).value;

describe("AMF0 properties", () => {
  it("round-trips values", () => {
    fc.assert(
      fc.property(fc.array(amfValue, { maxLength: 6 }), (values) => {
        expect(decodeAmf0(encodeAmf0(values))).toEqual(values);
      }),
      { numRuns: 2000 },
    );
  });

  it("decoding random bytes throws nothing but RtmpError and stays fast", () => {
    const durations: number[] = [];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        const started = performance.now();
        try {
          decodeAmf0(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(RtmpError);
        }
        durations.push(performance.now() - started);
      }),
      { numRuns: 20_000 },
    );
    durations.sort((a, b) => a - b);
    // p99 rather than max: a garbage collection pause is not the decoder's doing.
    expect(durations[Math.floor(durations.length * 0.99)]!).toBeLessThan(10);
  });

  it("bounds the work of a hostile message: nesting, and at most 1024 values by default", () => {
    // 64 KiB of 1-element strict arrays, and 7,000 objects with distinct keys (each distinct key
    // costs the engine microseconds, so the value count is what bounds CPU time).
    const deep = new Uint8Array(65536);
    for (let i = 0; i + 5 <= deep.byteLength; i += 5) deep.set([0x0a, 0, 0, 0, 1], i);
    const wide = encodeAmf0([Array.from({ length: 7000 }, (_, i) => ({ [`k${i}`]: null }))]);
    const flat = encodeAmf0([Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`key${i}`, i]))]);
    for (const [bytes, code] of [
      [deep, "AMF_DEPTH"],
      [wide, "AMF_DECODE"],
      [flat, "AMF_DECODE"],
    ] as const) {
      const started = performance.now();
      expect(() => decodeAmf0(bytes)).toThrow(expect.objectContaining({ code }));
      // Typically 1-3 ms; the bound is generous for loaded CI machines.
      expect(performance.now() - started).toBeLessThan(50);
    }
    expect(() => decodeAmf0(flat)).toThrow("AMF data has more than 1024 values (maxValues)");
    expect(decodeAmf0(flat, { maxValues: 10_000 })[0]).toMatchObject({ key4999: 4999 });
  });

  it("decoding mutated valid commands throws nothing but RtmpError", () => {
    const seed = encodeAmf0([
      "publish",
      5,
      null,
      "stream?key=abc",
      "live",
      { a: [1, 2, { b: "c" }], d: new AmfEcmaArray({ e: 1 }) },
    ]);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(seed.byteLength - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(seed.byteLength),
        (edits, cut) => {
          const bytes = seed.slice(0, Math.max(1, cut));
          for (const [at, value] of edits) if (at < bytes.byteLength) bytes[at] = value;
          try {
            parseCommand(bytes, false);
          } catch (err) {
            expect(err).toBeInstanceOf(RtmpError);
          }
        },
      ),
      { numRuns: 20_000 },
    );
  });
});
