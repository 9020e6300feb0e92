import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ChunkStreamReader,
  ChunkStreamWriter,
  isRtmpError,
  MessageType,
  RtmpError,
  type RtmpMessage,
} from "../src/index.ts";
import { concat, hex, toHex } from "./helpers/hex.ts";

function readAll(reader: ChunkStreamReader, ...pieces: Uint8Array[]): RtmpMessage[] {
  const out: RtmpMessage[] = [];
  for (const piece of pieces) {
    reader.push(piece);
    for (let m = reader.next(); m !== null; m = reader.next()) out.push(m);
  }
  return out;
}

function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (!isRtmpError(err)) throw err;
    return err.code;
  }
  return "no error";
}

const payload = (n: number, seed = 0): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

describe("chunk headers, golden bytes", () => {
  // Four audio/video messages on chunk stream 4 using all four header types.
  const p32a = payload(32, 1);
  const p32b = payload(32, 2);
  const p32c = payload(32, 3);
  const p5 = payload(5, 4);
  const stream = concat(
    hex("04 0003e8 000020 08 01000000"), // fmt 0, csid 4: ts 1000, length 32, type 8, stream 1 (LE)
    p32a,
    hex("84 000014"), // fmt 2, csid 4: delta 20
    p32b,
    hex("c4"), // fmt 3, csid 4: new message, same length/type, same delta (20)
    p32c,
    hex("44 000021 000005 09"), // fmt 1, csid 4: delta 33, length 5, type 9
    p5,
  );

  it("reads type 0, 2, 3 and 1 headers", () => {
    const messages = readAll(new ChunkStreamReader(), stream);
    expect(
      messages.map((m) => [m.chunkStreamId, m.typeId, m.streamId, m.timestamp, m.payload.byteLength]),
    ).toEqual([
      [4, 8, 1, 1000, 32],
      [4, 8, 1, 1020, 32],
      [4, 8, 1, 1040, 32],
      [4, 9, 1, 1073, 5],
    ]);
    expect(toHex(messages[2]!.payload)).toBe(toHex(p32c));
    expect(toHex(messages[3]!.payload)).toBe(toHex(p5));
  });

  it("writes the same bytes for the same messages", () => {
    const writer = new ChunkStreamWriter();
    const out = [
      writer.encode({ chunkStreamId: 4, typeId: 8, streamId: 1, timestamp: 1000, payload: p32a }),
      writer.encode({ chunkStreamId: 4, typeId: 8, streamId: 1, timestamp: 1020, payload: p32b }),
      writer.encode({ chunkStreamId: 4, typeId: 8, streamId: 1, timestamp: 1040, payload: p32c }),
      writer.encode({ chunkStreamId: 4, typeId: 9, streamId: 1, timestamp: 1073, payload: p5 }),
    ];
    expect(toHex(concat(...out))).toBe(toHex(stream));
  });

  it("gives the same messages whatever the read boundaries", () => {
    const whole = readAll(new ChunkStreamReader(), stream);
    const bytewise = readAll(new ChunkStreamReader(), ...Array.from(stream, (b) => Uint8Array.of(b)));
    const flat = (ms: RtmpMessage[]) => ms.map((m) => ({ ...m, payload: toHex(m.payload) }));
    expect(flat(bytewise)).toEqual(flat(whole));
  });

  it("splits a 300-byte message into 128-byte chunks with type 3 continuations", () => {
    const body = payload(300);
    const bytes = concat(
      hex("06 000000 00012c 09 01000000"),
      body.subarray(0, 128),
      hex("c6"),
      body.subarray(128, 256),
      hex("c6"),
      body.subarray(256),
    );
    expect(
      toHex(
        new ChunkStreamWriter().encode({
          chunkStreamId: 6,
          typeId: 9,
          streamId: 1,
          timestamp: 0,
          payload: body,
        }),
      ),
    ).toBe(toHex(bytes));
    const [m] = readAll(new ChunkStreamReader(), bytes);
    expect(toHex(m!.payload)).toBe(toHex(body));
  });

  it("repeats the extended timestamp in type 3 chunks (timestamp >= 0xFFFFFF)", () => {
    const body = payload(300);
    const bytes = concat(
      hex("06 ffffff 00012c 09 01000000 01312d00"), // fmt 0, ts field 0xFFFFFF, extended 20,000,000
      body.subarray(0, 128),
      hex("c6 01312d00"), // fmt 3 continuation repeats the extended timestamp
      body.subarray(128, 256),
      hex("c6 01312d00"),
      body.subarray(256),
    );
    expect(
      toHex(
        new ChunkStreamWriter().encode({
          chunkStreamId: 6,
          typeId: 9,
          streamId: 1,
          timestamp: 20_000_000,
          payload: body,
        }),
      ),
    ).toBe(toHex(bytes));
    const [m] = readAll(new ChunkStreamReader(), bytes);
    expect(m!.timestamp).toBe(20_000_000);
    expect(toHex(m!.payload)).toBe(toHex(body));
  });

  it("also reads continuations from encoders that omit the repeated extended timestamp", () => {
    const body = payload(300);
    const bytes = concat(
      hex("06 ffffff 00012c 09 01000000 01312d00"),
      body.subarray(0, 128),
      hex("c6"),
      body.subarray(128, 256),
      hex("c6"),
      body.subarray(256),
    );
    const [m] = readAll(new ChunkStreamReader(), bytes);
    expect(m!.timestamp).toBe(20_000_000);
    expect(toHex(m!.payload)).toBe(toHex(body));
  });

  it("uses extended timestamps for large deltas in type 1/2 headers and new-message type 3 chunks", () => {
    const bytes = concat(
      hex("04 000000 000001 08 01000000 aa"), // ts 0
      hex("84 ffffff 01000000 bb"), // fmt 2, delta 0x01000000 extended
      hex("c4 01000000 cc"), // fmt 3 new message: extended delta repeated
    );
    const messages = readAll(new ChunkStreamReader(), bytes);
    expect(messages.map((m) => m.timestamp)).toEqual([0, 0x01000000, 0x02000000]);
    const writer = new ChunkStreamWriter();
    const written = concat(
      writer.encode({ chunkStreamId: 4, typeId: 8, streamId: 1, timestamp: 0, payload: hex("aa") }),
      writer.encode({ chunkStreamId: 4, typeId: 8, streamId: 1, timestamp: 0x01000000, payload: hex("bb") }),
      writer.encode({ chunkStreamId: 4, typeId: 8, streamId: 1, timestamp: 0x02000000, payload: hex("cc") }),
    );
    expect(toHex(written)).toBe(toHex(bytes));
  });

  it("wraps timestamps at 2^32", () => {
    const bytes = concat(hex("04 ffffff 000001 08 01000000 fffffff0 aa"), hex("84 000020 bb"));
    expect(readAll(new ChunkStreamReader(), bytes).map((m) => m.timestamp)).toEqual([0xfffffff0, 0x10]);
  });

  it("encodes and decodes the 2- and 3-byte chunk stream id forms", () => {
    const writer = new ChunkStreamWriter();
    for (const [csid, header] of [
      [63, "3f"],
      [64, "00 00"],
      [319, "00 ff"],
      [320, "01 00 01"],
      [65599, "01 ff ff"],
    ] as const) {
      const bytes = writer.encode({
        chunkStreamId: csid,
        typeId: 20,
        streamId: 0,
        timestamp: 0,
        payload: hex("05"),
      });
      expect(toHex(bytes.subarray(0, hex(header).byteLength))).toBe(toHex(hex(header)));
      const [m] = readAll(new ChunkStreamReader(), bytes);
      expect(m!.chunkStreamId).toBe(csid);
    }
  });

  it("applies Set Chunk Size and Abort as they are read", () => {
    const reader = new ChunkStreamReader();
    const body = payload(200);
    const messages = readAll(
      reader,
      hex("02 000000 000004 01 00000000 00001000"), // Set Chunk Size 4096
      hex("06 000000 0000c8 09 01000000"),
      body, // 200 bytes in one chunk now
      hex("02 000000 000004 01 00000000 00000064"), // Set Chunk Size 100
      hex("07 000000 0000c8 09 01000000"),
      payload(100), // first chunk of a 200-byte message on csid 7
      hex("02 000000 000004 02 00000000 00000007"), // Abort csid 7
      hex("47 000000 000002 09 0102"), // fmt 1 on csid 7 starts afresh
    );
    expect(reader.chunkSize).toBe(100);
    expect(messages.map((m) => [m.typeId, m.chunkStreamId, m.payload.byteLength])).toEqual([
      [1, 2, 4],
      [9, 6, 200],
      [1, 2, 4],
      [2, 2, 4],
      [9, 7, 2],
    ]);
  });

  it("hands out a single-chunk message as a view of the received buffer", () => {
    const input = concat(hex("06 000000 000003 09 01000000"), hex("aabbcc"));
    const [m] = readAll(new ChunkStreamReader(), input);
    expect(m!.payload.buffer).toBe(input.buffer);
  });
});

describe("chunk stream limits", () => {
  it("refuses a message above maxMessageSize at its header, before buffering", () => {
    const reader = new ChunkStreamReader();
    reader.push(hex("06 000000 ffffff 09 01000000")); // 16 MiB - 1
    expect(errorCode(() => reader.next())).toBe("RTMP_MESSAGE_TOO_LARGE");
    expect(reader.bufferedBytes).toBe(0);
  });

  it("refuses chunk size 0 and 2^31 with an actionable message", () => {
    for (const [size, text] of [
      ["00000000", "RTMP chunk size 0 is invalid (must be 1..16777216)"],
      ["80000000", "RTMP chunk size 2147483648 is invalid (must be 1..16777216)"],
      ["01000001", "RTMP chunk size 16777217 is invalid (must be 1..16777216)"],
    ] as const) {
      const reader = new ChunkStreamReader();
      reader.push(hex(`02 000000 000004 01 00000000 ${size}`));
      expect(() => reader.next()).toThrow(text);
      expect(errorCode(() => new ChunkStreamReader().next())).toBe("no error");
    }
  });

  it("refuses the 65th chunk stream of 65,599 one-byte partial messages", () => {
    const reader = new ChunkStreamReader();
    reader.push(hex("02 000000 000004 01 00000000 00000001")); // chunk size 1
    reader.next();
    let code = "no error";
    let opened = 0;
    for (let csid = 3; csid <= 65599 && code === "no error"; csid++) {
      const id = csid - 64;
      const basic =
        csid < 64
          ? Uint8Array.of(csid)
          : csid < 320
            ? Uint8Array.of(0, id)
            : Uint8Array.of(1, id & 0xff, id >>> 8);
      reader.push(concat(basic, hex("000000 000064 09 01000000 ee")));
      code = errorCode(() => reader.next());
      if (code === "no error") opened++;
    }
    expect(code).toBe("RTMP_TOO_MANY_CHUNK_STREAMS");
    expect(opened).toBe(63); // 63 media chunk streams + the control stream = 64
    expect(reader.bufferedBytes).toBeLessThan(64 * 100 + 64);
  });

  it("refuses reassembly beyond the byte budget", () => {
    const reader = new ChunkStreamReader({ budgetBytes: 1024 * 1024 });
    reader.push(hex("02 000000 000004 01 00000000 00100000")); // chunk size 1 MiB
    reader.next();
    reader.push(concat(hex("06 000000 0c0000 09 01000000"), payload(600_000))); // 768 KiB message, 600 KB sent
    expect(reader.next()).toBeNull();
    expect(reader.bufferedBytes).toBeLessThanOrEqual(1024 * 1024);
    expect(
      errorCode(() => {
        reader.push(concat(payload(100_000), hex("07 000000 0c0000 09 01000000"), payload(400_000)));
        while (reader.next() !== null);
      }),
    ).toBe("RTMP_BUDGET_EXCEEDED");
  });

  it("refuses type 2 and 3 chunks on a chunk stream that never had a header", () => {
    expect(errorCode(() => readAll(new ChunkStreamReader(), hex("85 000010 aa")))).toBe(
      "RTMP_CHUNK_STREAM_INVALID",
    );
    expect(errorCode(() => readAll(new ChunkStreamReader(), hex("c5 aa")))).toBe("RTMP_CHUNK_STREAM_INVALID");
    // A type 1 header on a fresh chunk stream is accepted (librtmp sends one): it carries length and type.
    expect(readAll(new ChunkStreamReader(), hex("45 000010 000001 09 aa"))[0]!.timestamp).toBe(16);
  });
});

interface Msg {
  csid: number;
  typeId: number;
  streamId: number;
  timestamp: number;
  payload: Uint8Array;
}

const messageArb: fc.Arbitrary<Msg> = fc.record({
  csid: fc.constantFrom(3, 4, 5, 6, 63, 64, 300, 320, 65599),
  typeId: fc.constantFrom(8, 9, 18, 20),
  streamId: fc.constantFrom(0, 1),
  timestamp: fc.oneof(
    fc.nat(1000),
    fc.integer({ min: 0xfffff0, max: 0x1000010 }),
    fc.integer({ min: 0xfffffff0, max: 0xffffffff }),
  ),
  payload: fc.uint8Array({ maxLength: 700 }),
});

describe("chunk stream properties", () => {
  it("writer → reader round-trips any messages at any chunk size and read boundaries", () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 600 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (messages, chunkSize, cuts) => {
          const writer = new ChunkStreamWriter();
          const parts = [
            writer.encode({
              chunkStreamId: 2,
              typeId: MessageType.SetChunkSize,
              streamId: 0,
              timestamp: 0,
              payload: Uint8Array.of(0, 0, chunkSize >> 8, chunkSize & 0xff),
            }),
          ];
          writer.setChunkSize(chunkSize);
          // Timestamps only increase per chunk stream in real streams; sort per csid to keep that.
          const last = new Map<number, number>();
          const sent = messages.map((m) => {
            const ts = Math.max(m.timestamp, last.get(m.csid) ?? 0);
            last.set(m.csid, ts);
            return { ...m, timestamp: ts };
          });
          for (const m of sent)
            parts.push(
              writer.encode({
                chunkStreamId: m.csid,
                typeId: m.typeId,
                streamId: m.streamId,
                timestamp: m.timestamp,
                payload: m.payload,
              }),
            );
          const bytes = concat(...parts);
          const points = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b);
          const pieces: Uint8Array[] = [];
          let prev = 0;
          for (const p of [...points, bytes.byteLength]) {
            pieces.push(bytes.slice(prev, p));
            prev = p;
          }
          const got = readAll(new ChunkStreamReader(), ...pieces).filter(
            (m) => m.typeId !== MessageType.SetChunkSize,
          );
          expect(
            got.map((m) => [m.chunkStreamId, m.typeId, m.streamId, m.timestamp, toHex(m.payload)]),
          ).toEqual(sent.map((m) => [m.csid, m.typeId, m.streamId, m.timestamp, toHex(m.payload)]));
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("reading random or mutated bytes throws nothing but RtmpError", () => {
    const writer = new ChunkStreamWriter();
    const seed = concat(
      writer.encode({ chunkStreamId: 2, typeId: 1, streamId: 0, timestamp: 0, payload: hex("00000040") }),
      ...Array.from({ length: 6 }, (_, i) =>
        writer.encode({
          chunkStreamId: 4 + (i % 2),
          typeId: 9,
          streamId: 1,
          timestamp: i * 40 + 0xfffff0,
          payload: payload(90 + i),
        }),
      ),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 512 }),
          fc
            .array(fc.tuple(fc.nat(seed.byteLength - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 })
            .map((edits) => {
              const b = seed.slice();
              for (const [at, v] of edits) b[at] = v;
              return b;
            }),
        ),
        (bytes) => {
          try {
            readAll(new ChunkStreamReader({ maxMessageSize: 4096, budgetBytes: 65536 }), bytes);
          } catch (err) {
            expect(err).toBeInstanceOf(RtmpError);
          }
        },
      ),
      { numRuns: 20_000 },
    );
  });
});
