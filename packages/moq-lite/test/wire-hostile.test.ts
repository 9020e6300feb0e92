/**
 * Hand-framed hostile bytes for every decoder: truncations at every position, trailing bytes,
 * overlong and oversized lengths, invalid booleans and UTF-8, out-of-range counts, unknown types.
 * Each must raise ProtocolViolationError (never another error, never a silent success).
 */
import {
  decodeAnnounce,
  decodeAnnounceInit,
  decodeAnnouncePlease,
  decodeClientSetup,
  decodeFetch,
  decodeFrame,
  decodeGoaway,
  decodeGroupHeader,
  decodeProbe,
  decodeServerSetup,
  decodeSessionUpdate,
  decodeSubscribe,
  decodeSubscribeDrop,
  decodeSubscribeOk,
  decodeSubscribeUpdate,
  decodeTransportParameters,
  ProtocolViolationError,
  type RecvStream,
  StreamReader,
  unframeMessage,
  Version,
} from "@lvqr/moq-lite";
import { describe, expect, it } from "vitest";

function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g) ?? [], (byte) => Number.parseInt(byte, 16));
}
const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((part) => [...part]));

const { Lite01, Lite02, Lite03, Lite04 } = Version;

interface DecoderCase {
  readonly name: string;
  readonly decode: (body: Uint8Array) => unknown;
  /** A valid body; every strict prefix and any trailing byte must be rejected. */
  readonly valid: string;
  /** Prefix lengths that are themselves valid (a parameter list may end at any entry). */
  readonly validPrefixes?: readonly number[];
}

const decoders: DecoderCase[] = [
  {
    name: "CLIENT_SETUP",
    decode: decodeClientSetup,
    valid: "01 c0 00 00 00 ff 0d ad 02 02 02 40 64 07 02 61 62",
  },
  { name: "SERVER_SETUP", decode: decodeServerSetup, valid: "c0 00 00 00 ff 0d ad 02 00" },
  { name: "SESSION_UPDATE", decode: (b) => decodeSessionUpdate(b, Lite02), valid: "80 0f 42 40" },
  {
    name: "ANNOUNCE_PLEASE lite-02",
    decode: (b) => decodeAnnouncePlease(b, Lite02),
    valid: "04 64 65 6d 6f",
  },
  {
    name: "ANNOUNCE_PLEASE lite-04",
    decode: (b) => decodeAnnouncePlease(b, Lite04),
    valid: "04 64 65 6d 6f 00",
  },
  { name: "ANNOUNCE_INIT", decode: (b) => decodeAnnounceInit(b, Lite02), valid: "02 03 62 62 62 01 63" },
  { name: "ANNOUNCE lite-02", decode: (b) => decodeAnnounce(b, Lite02), valid: "01 03 62 62 62" },
  { name: "ANNOUNCE lite-03", decode: (b) => decodeAnnounce(b, Lite03), valid: "01 03 62 62 62 00" },
  { name: "ANNOUNCE lite-04", decode: (b) => decodeAnnounce(b, Lite04), valid: "01 03 62 62 62 02 07 09" },
  {
    name: "SUBSCRIBE lite-02",
    decode: (b) => decodeSubscribe(b, Lite02),
    valid: "00 03 62 62 62 05 76 69 64 65 6f 3c",
  },
  {
    name: "SUBSCRIBE lite-03",
    decode: (b) => decodeSubscribe(b, Lite03),
    valid: "01 03 62 62 62 05 76 69 64 65 6f 3c 01 41 f4 06 00",
  },
  { name: "SUBSCRIBE_UPDATE lite-01", decode: (b) => decodeSubscribeUpdate(b, Lite01), valid: "05" },
  {
    name: "SUBSCRIBE_UPDATE lite-04",
    decode: (b) => decodeSubscribeUpdate(b, Lite04),
    valid: "05 01 00 00 00",
  },
  { name: "SUBSCRIBE_OK lite-01", decode: (b) => decodeSubscribeOk(b, Lite01), valid: "64" },
  { name: "SUBSCRIBE_OK lite-03", decode: (b) => decodeSubscribeOk(b, Lite03), valid: "64 01 00 00 00" },
  { name: "SUBSCRIBE_DROP", decode: (b) => decodeSubscribeDrop(b, Lite03), valid: "03 04 00" },
  { name: "GROUP", decode: decodeGroupHeader, valid: "03 43 e8" },
  { name: "PROBE lite-03", decode: (b) => decodeProbe(b, Lite03), valid: "80 26 25 a0" },
  { name: "PROBE lite-04", decode: (b) => decodeProbe(b, Lite04), valid: "80 26 25 a0 2a" },
  { name: "FETCH", decode: (b) => decodeFetch(b, Lite03), valid: "03 62 62 62 05 76 69 64 65 6f 3c 07" },
  { name: "GOAWAY", decode: (b) => decodeGoaway(b, Lite04), valid: "03 61 62 63" },
  {
    name: "TRANSPORT_PARAMETERS",
    decode: decodeTransportParameters,
    valid: "04 04 80 10 00 00 08 02 40 64",
    validPrefixes: [0, 6],
  },
];

describe("every decoder rejects truncations and trailing bytes", () => {
  for (const { name, decode, valid, validPrefixes = [] } of decoders) {
    it(name, () => {
      const bytes = hex(valid);
      expect(() => decode(bytes)).not.toThrow();
      for (let length = 0; length < bytes.byteLength; length++) {
        if (validPrefixes.includes(length)) continue;
        expect(() => decode(bytes.subarray(0, length)), `${name} truncated to ${length}`).toThrow(
          ProtocolViolationError,
        );
      }
      expect(() => decode(concat(bytes, hex("00"))), `${name} with a trailing byte`).toThrow(
        ProtocolViolationError,
      );
    });
  }
});

describe("hostile field values", () => {
  const rejects = (what: string, run: () => unknown, message?: RegExp) =>
    it(what, () => {
      expect(run).toThrow(ProtocolViolationError);
      if (message) expect(run).toThrow(message);
    });

  rejects(
    "a bool byte other than 0/1 (SUBSCRIBE ordered = 2)",
    () => decodeSubscribe(hex("01 03 62 62 62 05 76 69 64 65 6f 3c 02 00 00 00"), Lite03),
    /must be 0 or 1/,
  );
  rejects("an ANNOUNCE status other than 0/1", () => decodeAnnounce(hex("02 03 62 62 62"), Lite02), /status/);
  rejects(
    "a string length beyond the message",
    () => decodeAnnouncePlease(hex("09 61 62"), Lite02),
    /truncated/,
  );
  rejects(
    "a path longer than 1024 bytes",
    () => {
      const long = new Uint8Array(2 + 1025).fill(0x61);
      long.set([0x44, 0x01], 0); // varint 1025
      return decodeAnnouncePlease(long, Lite02);
    },
    /exceeds the limit 1024/,
  );
  rejects(
    "invalid UTF-8 in a track name",
    () => decodeSubscribe(hex("00 01 61 02 c3 28 3c"), Lite02),
    /UTF-8/,
  );
  rejects(
    "a subscribe_id above 2^53",
    () => decodeSubscribe(hex("ff ff ff ff ff ff ff ff 01 61 01 62 3c"), Lite02),
    /2\^53/,
  );
  rejects("more than 256 hops", () => decodeAnnounce(hex("01 01 61 41 01"), Lite04), /hop count/);
  rejects("an ANNOUNCE_INIT count larger than the body could hold", () =>
    decodeAnnounceInit(hex("05 01 61"), Lite02),
  );
  rejects("more than 64 SETUP versions", () => decodeClientSetup(hex("41 00")), /version count/);
  rejects("more than 64 SETUP parameters", () => decodeServerSetup(hex("01 41 00")), /parameter count/);
  rejects("a duplicate SETUP parameter", () => decodeServerSetup(hex("01 02 02 01 02 02")), /duplicate/);
  rejects("an odd SETUP parameter longer than the body", () => decodeServerSetup(hex("01 01 07 05 61")));
  rejects(
    "SUBSCRIBE_DROP with end before start",
    () => decodeSubscribeDrop(hex("05 04 00"), Lite03),
    /before start/,
  );
  rejects(
    "ANNOUNCE_INIT on lite-03 (the message does not exist there)",
    () => decodeAnnounceInit(hex("00"), Lite03),
    /does not exist/,
  );
  rejects("SESSION_UPDATE on lite-04", () => decodeSessionUpdate(hex("00"), Lite04), /does not exist/);
  rejects("PROBE on lite-02", () => decodeProbe(hex("00"), Lite02), /does not exist/);
  rejects("FETCH on lite-01", () => decodeFetch(hex("00 00 00 00"), Lite01), /does not exist/);
  rejects("GOAWAY on lite-03", () => decodeGoaway(hex("00"), Lite03), /does not exist/);
  rejects("SUBSCRIBE_DROP on lite-02", () => decodeSubscribeDrop(hex("00 00 00"), Lite02), /does not exist/);
  rejects("a message size prefix beyond the bytes", () => unframeMessage(hex("05 01 02"), "x"), /truncated/);
  rejects(
    "a message size above the bound",
    () => unframeMessage(hex("44 00"), "x", 1000),
    /exceeds the limit/,
  );
  rejects("bytes after a framed message", () => unframeMessage(hex("01 00 00"), "x"), /trailing/);
  rejects(
    "a duplicate transport parameter",
    () => decodeTransportParameters(hex("04 01 01 04 01 02")),
    /duplicate/,
  );
  rejects("a transport parameter value that is not one varint", () =>
    decodeTransportParameters(hex("04 02 01 01")),
  );
});

describe("QMux frame decoding", () => {
  const cases: Array<[string, "qmux-00" | "webtransport", string]> = [
    ["an empty message", "qmux-00", ""],
    ["an empty legacy message", "webtransport", ""],
    ["a STREAM length beyond the message", "qmux-00", "0a 00 05 20"],
    ["bytes after a STREAM with LEN", "qmux-00", "0a 00 01 20 21"],
    ["a STREAM id truncated", "qmux-00", "0a 40"],
    ["a STREAM offset truncated", "qmux-00", "0e 00 80 00"],
    ["RESET_STREAM without its final size", "qmux-00", "04 03 00"],
    ["RESET_STREAM with trailing bytes", "qmux-00", "04 03 00 00 00"],
    ["STOP_SENDING truncated", "qmux-00", "05 03"],
    ["MAX_DATA truncated", "qmux-00", "10 80 20"],
    ["MAX_STREAM_DATA with trailing bytes", "qmux-00", "11 03 01 00"],
    [
      "TRANSPORT_PARAMETERS with a length beyond the message",
      "qmux-00",
      "ff 51 53 30 0d 0a 0d 0a 10 04 01 01",
    ],
    ["a legacy frame type that does not exist", "webtransport", "0a 00 01 20"],
    ["a legacy RESET_STREAM with a final size", "webtransport", "04 03 00 00"],
    ["a legacy STOP_SENDING truncated", "webtransport", "05"],
    ["a legacy STREAM id truncated", "webtransport", "08 80 00"],
  ];
  for (const [what, framing, bytes] of cases) {
    it(`rejects ${what} (${framing})`, () => {
      expect(() => decodeFrame(hex(bytes), framing)).toThrow(ProtocolViolationError);
    });
  }

  it("skips unknown and unused frame types in qmux-00 instead of failing", () => {
    expect(decodeFrame(hex("30 01 02"), "qmux-00").type).toBe("ignored"); // DATAGRAM
    expect(decodeFrame(hex("01"), "qmux-00").type).toBe("ignored"); // PING
    expect(decodeFrame(hex("c0 00 00 00 00 00 00 99 00"), "qmux-00").type).toBe("ignored");
    expect(decodeFrame(hex("14 40 10"), "qmux-00").type).toBe("ignored"); // DATA_BLOCKED
  });

  it("parses CONNECTION_CLOSE leniently in every layout", () => {
    expect(decodeFrame(hex("1c 05 00 02 6f 6b"), "qmux-00")).toEqual({
      type: "connection_close",
      code: 5,
      reason: "ok",
    });
    expect(decodeFrame(hex("1d 05"), "qmux-00")).toEqual({ type: "connection_close", code: 5, reason: "" });
    expect(decodeFrame(hex("1d"), "qmux-00")).toEqual({ type: "connection_close", code: 0, reason: "" });
    expect(decodeFrame(hex("1d 05 ff ff"), "qmux-00")).toEqual({
      type: "connection_close",
      code: 5,
      reason: "",
    });
    expect(decodeFrame(hex("1c 07 ff fe"), "webtransport")).toMatchObject({
      type: "connection_close",
      code: 7,
    });
  });

  it("accepts the OFF bit and unknown transport parameters", () => {
    expect(decodeFrame(hex("0f 03 40 10 02 61 62"), "qmux-00")).toEqual({
      type: "stream",
      id: 3,
      offset: 16,
      data: hex("61 62"),
      fin: true,
    });
    const params = decodeTransportParameters(hex("01 02 75 30 c5 71 c5 94 29 cd 08 45 02 7f fe 04 01 10"));
    expect(params.maxData).toBe(16);
  });
});

/** A RecvStream fed from an array of chunks. */
function chunks(...parts: string[]): RecvStream {
  const queue = parts.map(hex);
  return {
    id: 0,
    read: async () => queue.shift(),
    stop: () => {},
  };
}

describe("StreamReader", () => {
  it("reads messages split across chunks, copying only the split one", async () => {
    const reader = new StreamReader(chunks("05 01", "03 62", "62 62 02 01 00"), "test");
    expect(await reader.message("m", 100)).toEqual(hex("01 03 62 62 62"));
    const second = await reader.message("m", 100);
    expect(second).toEqual(hex("01 00"));
    expect(await reader.messageOrEnd("m", 100)).toBeUndefined();
  });

  it("rejects a stream that ends inside a varint, a message, or a frame", async () => {
    await expect(new StreamReader(chunks("40"), "t").varint("v")).rejects.toThrow(ProtocolViolationError);
    await expect(new StreamReader(chunks("05 01 02"), "t").message("m", 100)).rejects.toThrow(
      /stream ended inside/,
    );
    await expect(new StreamReader(chunks(), "t").chunk(10, "payload")).rejects.toThrow(
      ProtocolViolationError,
    );
  });

  it("messageOrEnd gives undefined only at a clean end; a cut size or body is named", async () => {
    expect(await new StreamReader(chunks(), "t").messageOrEnd("m", 100)).toBeUndefined();
    await expect(new StreamReader(chunks("40"), "t").messageOrEnd("m", 100)).rejects.toThrow(
      "t: stream ended inside m size (needs 2 byte(s), 1 left)",
    );
    await expect(new StreamReader(chunks("04 01", "02"), "t").messageOrEnd("m", 100)).rejects.toThrow(
      "t: stream ended inside m (needs 4 byte(s), 2 left)",
    );
    // A message arriving one byte per chunk is assembled, and the reader goes on after it.
    const reader = new StreamReader(chunks("40", "05", "01", "02", "03", "04", "05", "00"), "t");
    expect(await reader.messageOrEnd("m", 100)).toEqual(hex("01 02 03 04 05"));
    expect(await reader.message("m", 100)).toEqual(new Uint8Array(0));
    expect(await reader.done()).toBe(true);
  });

  it("rejects a message size above the bound before buffering it", async () => {
    await expect(new StreamReader(chunks("80 10 00 00"), "t").message("m", 1024)).rejects.toThrow(
      /exceeds the limit 1024/,
    );
  });

  it("hands out frame payload chunks as views without copying", async () => {
    const data = hex("03 61 62 63 64");
    const reader = new StreamReader({ id: 0, read: async () => data, stop: () => {} }, "t");
    expect(await reader.varint("len")).toBe(3);
    const chunk = await reader.chunk(3, "payload");
    expect(chunk.buffer).toBe(data.buffer);
    expect(chunk).toEqual(hex("61 62 63"));
  });
});
