/**
 * Golden bytes for moq-transport drafts 14 to 17. Every vector is produced by calling the
 * official clients' own encoders (@moq/lite 0.2.2 `ietf/*.js`, and @moq/net 0.2.8 where it
 * differs), compared with the annotated hex recorded here (so a vector cannot drift from what
 * the clients send), decoded with this package's decoder, and, where this package writes the
 * same message, encoded back byte for byte. Where this package deliberately writes a message
 * differently (parameter order, parameters a later draft forbids), the vector is decode-only and
 * this package's own bytes are recorded next to it.
 */
import {
  decodeIetfClientSetup,
  decodeIetfMessage,
  decodeIetfServerSetup,
  decodeIetfSetup,
  encodeIetfClientSetup,
  encodeIetfMessage,
  encodeIetfServerSetup,
  encodeIetfSetup,
  encodeLeadingOnes,
  encodeObjectHeader,
  encodeSubgroupHeader,
  type IetfMessage,
  IetfVersion,
  leadingOnesLength,
  readLeadingOnesAt,
  readLeadingOnesBigAt,
  writeLeadingOnesBig,
} from "@lvqr/moq-lite";
import { describe, expect, it } from "vitest";
import * as LiteIetf from "../node_modules/@moq/lite/ietf/index.js";
import { Writer } from "../node_modules/@moq/lite/stream.js";
import * as LiteVarint from "../node_modules/@moq/lite/varint.js";
import * as NetIetf from "../node_modules/@moq/net/ietf/index.js";
import { Writer as NetWriter } from "../node_modules/@moq/net/stream.js";

// The official clients' internal ietf modules are compiled JS whose declarations do not fully
// resolve from here; the tests drive them dynamically and check the bytes they produce.
// biome-ignore lint/suspicious/noExplicitAny: see above.
type UntypedModule = Record<string, any>;
const L = LiteIetf as unknown as UntypedModule;
const N = NetIetf as unknown as UntypedModule;

const { Draft14: D14, Draft15: D15, Draft16: D16, Draft17: D17 } = IetfVersion;
const text = new TextEncoder();

/** "20 00 2c" → bytes. */
function hex(value: string): Uint8Array {
  const clean = value.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g) ?? [], (byte) => Number.parseInt(byte, 16));
}

/** What an official encoder writes (all chunks joined). */
async function official(
  write: (w: never) => Promise<void>,
  version?: number,
  net = false,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      chunks.push(new Uint8Array(chunk));
    },
  });
  const writer = net ? new NetWriter(sink, version as never) : new Writer(sink, version as never);
  await write(writer as never);
  return Uint8Array.from(chunks.flatMap((chunk) => [...chunk]));
}

/** Splits a control message into its type and payload (type varint in the draft's flavour, u16 length). */
function split(bytes: Uint8Array, version: IetfVersion): { type: number; body: Uint8Array } {
  const leadingOnes = version === D17;
  const typeLength = leadingOnes ? leadingOnesLength(bytes[0]!) : 1 << (bytes[0]! >> 6);
  const type = leadingOnes
    ? readLeadingOnesAt(bytes, 0)
    : Number(bytes.subarray(0, typeLength).reduce((v, b, i) => (i === 0 ? b & 0x3f : v * 256 + b), 0));
  const length = (bytes[typeLength]! << 8) | bytes[typeLength + 1]!;
  const body = bytes.subarray(typeLength + 2);
  expect(body.byteLength, "u16 length").toBe(length);
  return { type, body };
}

interface Vector {
  /** Bytes from the official encoder. */
  readonly official: Promise<Uint8Array>;
  /** The recorded, annotated bytes. */
  readonly recorded: string;
  readonly version: IetfVersion;
  readonly message: IetfMessage;
  /** This package's own bytes when it writes the message differently; omitted = identical. */
  readonly ours?: string;
}

async function check(vector: Vector): Promise<void> {
  const recorded = hex(vector.recorded);
  expect(await vector.official, "official encoder output").toEqual(recorded);
  const { type, body } = split(recorded, vector.version);
  expect(decodeIetfMessage(type, body, vector.version)).toEqual(vector.message);
  const encoded = encodeIetfMessage(vector.message, vector.version);
  expect(encoded).toEqual(vector.ours ? hex(vector.ours) : recorded);
  if (vector.ours) {
    const ours = split(encoded, vector.version);
    expect(decodeIetfMessage(ours.type, ours.body, vector.version)).toEqual(vector.message);
  }
}

const subscribe = (version: number, priority = 100) =>
  official(async (w: never) => {
    await (w as Writer).u53(3);
    await new L.Subscribe({
      requestId: 4n,
      trackNamespace: "demo/bbb",
      trackName: "video",
      subscriberPriority: priority,
    }).encode(w, version as never);
  }, version);

describe("leading-ones varints (draft-17)", () => {
  // The examples of the draft-17 text (its fourth example is known to be wrong and is left out).
  const examples: Array<[string, bigint]> = [
    ["25", 37n],
    ["bb bd", 15_293n],
    ["fa a1 a0 e4 03 d8", 2_893_212_287_960n],
    ["fe fa 31 8f a8 e3 ca 11", 70_423_237_261_249_041n],
    ["ff ff ff ff ff ff ff ff ff", (1n << 64n) - 1n],
  ];
  for (const [bytes, value] of examples) {
    it(`${bytes} = ${value}`, () => {
      const encoded = hex(bytes);
      expect(leadingOnesLength(encoded[0]!)).toBe(encoded.byteLength);
      expect(readLeadingOnesBigAt(encoded, 0)).toBe(value);
      const out = new Uint8Array(9);
      expect(out.subarray(0, writeLeadingOnesBig(out, 0, value))).toEqual(encoded);
    });
  }
  it("reads a non-minimal encoding (80 25 = 37) and refuses the reserved prefix 1111110x", () => {
    expect(readLeadingOnesAt(hex("80 25"), 0)).toBe(37);
    expect(leadingOnesLength(0xfc)).toBe(0);
    expect(leadingOnesLength(0xfd)).toBe(0);
  });
  it("matches @moq/lite for every length boundary", () => {
    for (const value of [
      0,
      127,
      128,
      16_383,
      16_384,
      2_097_151,
      2_097_152,
      268_435_455,
      268_435_456,
      2 ** 35 - 1,
      2 ** 35,
      2 ** 42 - 1,
      2 ** 42,
      Number.MAX_SAFE_INTEGER,
    ]) {
      expect(encodeLeadingOnes(value), String(value)).toEqual(
        new Uint8Array(LiteVarint.encodeLeadingOnes(value)),
      );
    }
  });
});

describe("SETUP", () => {
  it("draft-14 CLIENT_SETUP as @moq/lite sends it on the SETUP path (offers lite-02, lite-01, draft-14)", async () => {
    // 20 type | 00 2c length | 03 versions: ff0dad02, ff0dad01, ff00000e as 8-byte varints
    // | 02 params | 02 MAX_REQUEST_ID = 80 00 a4 55 (42069) | 07 IMPLEMENTATION, 0b, "moq-lite-js"
    const recorded = hex(
      "20 00 2c 03 c0 00 00 00 ff 0d ad 02 c0 00 00 00 ff 0d ad 01 c0 00 00 00 ff 00 00 0e 02 02 80 00 a4 55 07 0b 6d 6f 71 2d 6c 69 74 65 2d 6a 73",
    );
    const params = new L.SetupOptions();
    params.setVarint(L.SetupOption.MaxRequestId, 42069n);
    params.setBytes(L.SetupOption.Implementation, text.encode("moq-lite-js"));
    const bytes = await official(async (w: never) => {
      await (w as Writer).u53(0x20);
      await new L.ClientSetup({ versions: [0xff0dad02, 0xff0dad01, D14], parameters: params }).encode(w, D14);
    });
    expect(bytes).toEqual(recorded);
    const msg = decodeIetfClientSetup(recorded.subarray(3), D14);
    expect(msg.versions).toEqual([0xff0dad02, 0xff0dad01, D14]);
    expect(msg.options.get(0x02)).toBe(42069n);
    expect(msg.options.get(0x07)).toEqual(text.encode("moq-lite-js"));
    expect(encodeIetfClientSetup(msg, D14)).toEqual(recorded);
  });

  for (const [version, recordedHex] of [
    // 20 | 00 13 | 02 params | 02 MAX_REQUEST_ID 80 00 a4 55 | 07 IMPLEMENTATION 0b "moq-lite-js"
    [D15, "20 00 13 02 02 80 00 a4 55 07 0b 6d 6f 71 2d 6c 69 74 65 2d 6a 73"],
    // draft-16 delta-encodes the types: 02, then +05 = 07
    [D16, "20 00 13 02 02 80 00 a4 55 05 0b 6d 6f 71 2d 6c 69 74 65 2d 6a 73"],
  ] as const) {
    it(`draft-${version - 0xff000000} CLIENT_SETUP (no versions: moqt-${version - 0xff000000} chose the draft)`, async () => {
      const params = new L.SetupOptions();
      params.setVarint(L.SetupOption.MaxRequestId, 42069n);
      params.setBytes(L.SetupOption.Implementation, text.encode("moq-lite-js"));
      const bytes = await official(async (w: never) => {
        await (w as Writer).u53(0x20);
        await new L.ClientSetup({ versions: [version], parameters: params }).encode(w, version);
      });
      expect(bytes).toEqual(hex(recordedHex));
      const msg = decodeIetfClientSetup(bytes.subarray(3), version);
      expect(msg.options.get(0x02)).toBe(42069n);
      expect(encodeIetfClientSetup(msg, version)).toEqual(bytes);
    });
  }

  for (const [version, recordedHex] of [
    // 21 | 00 1b | selected c0 00 00 00 ff 00 00 0e | 02 params | 02 MAX_REQUEST_ID 42 00 (512) | 07 0d "lvqr-moq-lite"
    [D14, "21 00 1b c0 00 00 00 ff 00 00 0e 02 02 42 00 07 0d 6c 76 71 72 2d 6d 6f 71 2d 6c 69 74 65"],
    [D15, "21 00 13 02 02 42 00 07 0d 6c 76 71 72 2d 6d 6f 71 2d 6c 69 74 65"],
    [D16, "21 00 13 02 02 42 00 05 0d 6c 76 71 72 2d 6d 6f 71 2d 6c 69 74 65"],
  ] as const) {
    it(`draft-${version - 0xff000000} SERVER_SETUP, as the relay sends it, is what @moq/lite writes and reads`, async () => {
      const params = new L.SetupOptions();
      params.setVarint(L.SetupOption.MaxRequestId, 512n);
      params.setBytes(L.SetupOption.Implementation, text.encode("lvqr-moq-lite"));
      const bytes = await official(async (w: never) => {
        await (w as Writer).u53(0x21);
        await new L.ServerSetup({ version, parameters: params }).encode(w, version);
      });
      expect(bytes).toEqual(hex(recordedHex));
      const options = new Map<number, bigint | Uint8Array>([
        [0x02, 512n],
        [0x07, text.encode("lvqr-moq-lite")],
      ]);
      expect(encodeIetfServerSetup({ version, options }, version)).toEqual(bytes);
      expect(decodeIetfServerSetup(bytes.subarray(3), version).options).toEqual(options);
    });
  }

  it("draft-17 SETUP (0x2F00 on a unidirectional stream, options to the end, delta types)", async () => {
    // af 00 type 0x2F00 (leading-ones) | 00 0d | 07 IMPLEMENTATION 0b "moq-lite-js"
    const recorded = hex("af 00 00 0d 07 0b 6d 6f 71 2d 6c 69 74 65 2d 6a 73");
    const params = new L.SetupOptions();
    params.setBytes(L.SetupOption.Implementation, text.encode("moq-lite-js"));
    expect(
      await official(async (w: never) => {
        await (w as Writer).u53(0x2f00);
        await new L.Setup({ parameters: params }).encode(w, D17);
      }, D17),
    ).toEqual(recorded);
    const options = decodeIetfSetup(recorded.subarray(4));
    expect(options).toEqual(new Map([[0x07, text.encode("moq-lite-js")]]));
    expect(encodeIetfSetup(options)).toEqual(recorded);
  });

  it("draft-17 SETUP from @moq/net with the Solicit option (0x40b5a, a 3-byte delta)", async () => {
    // af 00 | 00 11 | 07 0b "moq-lite-js" | c4 0b 53 (+0x40b53 = 0x40b5a) 01
    const recorded = hex("af 00 00 11 07 0b 6d 6f 71 2d 6c 69 74 65 2d 6a 73 c4 0b 53 01");
    const params = new N.SetupOptions();
    params.setBytes(N.SetupOption.Implementation, text.encode("moq-lite-js"));
    N.solicitIntoSetup(params);
    expect(
      await official(
        async (w: never) => {
          await (w as NetWriter).u53(0x2f00);
          await new N.Setup({ parameters: params }).encode(w, D17);
        },
        D17,
        true,
      ),
    ).toEqual(recorded);
    const options = decodeIetfSetup(recorded.subarray(4));
    expect(options.get(0x40b5a)).toBe(1n);
    expect(encodeIetfSetup(options)).toEqual(recorded);
  });
});

const ns = ["demo", "bbb"];

describe("SUBSCRIBE and its answers", () => {
  it("draft-14 SUBSCRIBE: fields for priority, order, forward, filter", async () => {
    await check({
      version: D14,
      official: subscribe(D14),
      // 03 | 00 16 | 04 request id | 02 fields: 04 "demo" 03 "bbb" | 05 "video" | 64 priority 100
      // | 02 descending | 01 forward | 02 filter LargestObject | 00 params
      recorded: "03 00 16 04 02 04 64 65 6d 6f 03 62 62 62 05 76 69 64 65 6f 64 02 01 02 00",
      message: {
        kind: "subscribe",
        requestId: 4,
        namespace: ns,
        track: "video",
        priority: 100,
        groupOrder: 2,
        forward: true,
        filter: { type: 2 },
      },
    });
  });

  it("draft-15 SUBSCRIBE: the same in parameters (this package writes them in ascending order)", async () => {
    await check({
      version: D15,
      official: subscribe(D15),
      // ... 04 params | 20 priority 40 64 (100) | 22 group order 02 | 10 forward 01 | 21 filter, 01 byte: 02
      recorded:
        "03 00 1c 04 02 04 64 65 6d 6f 03 62 62 62 05 76 69 64 65 6f 04 20 40 64 22 02 10 01 21 01 02",
      ours: "03 00 1c 04 02 04 64 65 6d 6f 03 62 62 62 05 76 69 64 65 6f 04 10 01 20 40 64 21 01 02 22 02",
      message: {
        kind: "subscribe",
        requestId: 4,
        namespace: ns,
        track: "video",
        priority: 100,
        groupOrder: 2,
        forward: true,
        filter: { type: 2 },
      },
    });
  });

  it("draft-16 SUBSCRIBE: parameter types as deltas (10, +10, +01, +01)", async () => {
    await check({
      version: D16,
      official: subscribe(D16),
      recorded:
        "03 00 1c 04 02 04 64 65 6d 6f 03 62 62 62 05 76 69 64 65 6f 04 10 01 10 40 64 01 01 02 01 02",
      message: {
        kind: "subscribe",
        requestId: 4,
        namespace: ns,
        track: "video",
        priority: 100,
        groupOrder: 2,
        forward: true,
        filter: { type: 2 },
      },
    });
  });

  it("draft-17 SUBSCRIBE: required request id delta, leading-ones varints (100 is one byte)", async () => {
    await check({
      version: D17,
      official: subscribe(D17),
      // 03 | 00 1c | 04 request id | 00 required delta | namespace | track | 04 params 10 01 10 64 01 01 02 01 02
      recorded:
        "03 00 1c 04 00 02 04 64 65 6d 6f 03 62 62 62 05 76 69 64 65 6f 04 10 01 10 64 01 01 02 01 02",
      message: {
        kind: "subscribe",
        requestId: 4,
        requiredRequestIdDelta: 0,
        namespace: ns,
        track: "video",
        priority: 100,
        groupOrder: 2,
        forward: true,
        filter: { type: 2 },
      },
    });
  });

  it("draft-17 SUBSCRIBE from @moq/net with priority 155: a 2-byte leading-ones value (80 9b)", async () => {
    const recorded = hex(
      "03 00 1d 04 00 02 04 64 65 6d 6f 03 62 62 62 05 76 69 64 65 6f 04 10 01 10 80 9b 01 01 02 01 02",
    );
    expect(
      await official(
        async (w: never) => {
          await (w as NetWriter).u53(3);
          await new N.Subscribe({
            requestId: 4n,
            trackNamespace: "demo/bbb",
            trackName: "video",
            subscriberPriority: 155,
          }).encode(w, D17);
        },
        D17,
        true,
      ),
    ).toEqual(recorded);
    const { type, body } = split(recorded, D17);
    expect(decodeIetfMessage(type, body, D17)).toMatchObject({ priority: 155, forward: true, groupOrder: 2 });
    // The typed layout of the draft-17 text writes the same priority as one raw byte; both are read.
    const typed = hex(
      "03 00 1c 04 00 02 04 64 65 6d 6f 03 62 62 62 05 76 69 64 65 6f 04 10 01 10 9b 01 01 02 01 02",
    );
    const t = split(typed, D17);
    expect(decodeIetfMessage(t.type, t.body, D17)).toMatchObject({
      priority: 155,
      forward: true,
      groupOrder: 2,
    });
  });

  const subscribeOk = (version: number, net = false) =>
    official(
      async (w: never) => {
        await (w as Writer).u53(4);
        const Ok = net ? N.SubscribeOk : L.SubscribeOk;
        await new Ok({ requestId: 4n, trackAlias: 4n }).encode(w, version as never);
      },
      version,
      net,
    );

  it("draft-14 SUBSCRIBE_OK", async () => {
    await check({
      version: D14,
      official: subscribeOk(D14),
      // 04 | 00 06 | 04 request id | 04 track alias | 00 expires | 02 descending | 00 no content | 00 params
      recorded: "04 00 06 04 04 00 02 00 00",
      message: { kind: "subscribe_ok", requestId: 4, trackAlias: 4, expires: 0, groupOrder: 2 },
    });
  });

  it("draft-15 SUBSCRIBE_OK: group order as a parameter", async () => {
    await check({
      version: D15,
      official: subscribeOk(D15),
      // 04 | 00 05 | 04 request id | 04 alias | 01 param: 22 group order 02
      recorded: "04 00 05 04 04 01 22 02",
      message: { kind: "subscribe_ok", requestId: 4, trackAlias: 4, expires: 0, groupOrder: 2 },
    });
  });

  it("draft-16 SUBSCRIBE_OK: @moq/lite still sends GROUP_ORDER (read), @moq/net and this package do not", async () => {
    const lite = hex("04 00 05 04 04 01 22 02");
    expect(await subscribeOk(D16)).toEqual(lite);
    expect(decodeIetfMessage(4, lite.subarray(3), D16)).toEqual({
      kind: "subscribe_ok",
      requestId: 4,
      trackAlias: 4,
      expires: 0,
      groupOrder: 2,
    });
    await check({
      version: D16,
      official: subscribeOk(D16, true),
      recorded: "04 00 03 04 04 00",
      message: { kind: "subscribe_ok", requestId: 4, trackAlias: 4, expires: 0, groupOrder: 0 },
    });
  });

  it("draft-17 SUBSCRIBE_OK: no request id; @moq/net puts the group order in Track Properties", async () => {
    // 04 | 00 04 | 04 alias | 01 param 22 02 (@moq/lite)
    const lite = hex("04 00 04 04 01 22 02");
    expect(await subscribeOk(D17)).toEqual(lite);
    expect(decodeIetfMessage(4, lite.subarray(3), D17)).toEqual({
      kind: "subscribe_ok",
      trackAlias: 4,
      expires: 0,
      groupOrder: 2,
    });
    // 04 | 00 04 | 04 alias | 00 params | 22 02 DEFAULT_PUBLISHER_GROUP_ORDER property (@moq/net)
    const net = hex("04 00 04 04 00 22 02");
    expect(await subscribeOk(D17, true)).toEqual(net);
    expect(decodeIetfMessage(4, net.subarray(3), D17)).toEqual({
      kind: "subscribe_ok",
      trackAlias: 4,
      expires: 0,
      groupOrder: 0,
    });
    expect(
      encodeIetfMessage({ kind: "subscribe_ok", trackAlias: 4, expires: 0, groupOrder: 2 }, D17),
    ).toEqual(hex("04 00 02 04 00"));
  });

  it("draft-14 SUBSCRIBE_ERROR and REQUEST_ERROR in 15, 16 (retry interval) and 17 (no request id)", async () => {
    const reason = "not found";
    await check({
      version: D14,
      official: official(async (w: never) => {
        await (w as Writer).u53(5);
        await new L.SubscribeError({ requestId: 4n, errorCode: 4, reasonPhrase: reason }).encode(w, D14);
      }, D14),
      // 05 | 00 0c | 04 request id | 04 TRACK_DOES_NOT_EXIST | 09 "not found"
      recorded: "05 00 0c 04 04 09 6e 6f 74 20 66 6f 75 6e 64",
      message: {
        kind: "request_error",
        answers: "subscribe",
        requestId: 4,
        code: 4,
        retryInterval: 0,
        reason,
      },
    });
    const requestError = (version: number) =>
      official(async (w: never) => {
        await (w as Writer).u53(5);
        await new L.RequestError({ requestId: 4n, errorCode: 16, reasonPhrase: reason }).encode(
          w,
          version as never,
        );
      }, version);
    await check({
      version: D15,
      official: requestError(D15),
      recorded: "05 00 0c 04 10 09 6e 6f 74 20 66 6f 75 6e 64",
      message: { kind: "request_error", requestId: 4, code: 16, retryInterval: 0, reason },
    });
    await check({
      version: D16,
      official: requestError(D16),
      // ... 10 DOES_NOT_EXIST | 00 retry interval | reason
      recorded: "05 00 0d 04 10 00 09 6e 6f 74 20 66 6f 75 6e 64",
      message: { kind: "request_error", requestId: 4, code: 16, retryInterval: 0, reason },
    });
    await check({
      version: D17,
      official: requestError(D17),
      recorded: "05 00 0c 10 00 09 6e 6f 74 20 66 6f 75 6e 64",
      message: { kind: "request_error", code: 16, retryInterval: 0, reason },
    });
  });

  it("UNSUBSCRIBE (14 to 16) and PUBLISH_DONE (request id dropped in 17)", async () => {
    for (const version of [D14, D15, D16]) {
      await check({
        version,
        official: official(async (w: never) => {
          await (w as Writer).u53(0x0a);
          await new L.Unsubscribe({ requestId: 4n }).encode(w, version);
        }, version),
        recorded: "0a 00 01 04",
        message: { kind: "unsubscribe", requestId: 4 },
      });
    }
    const done = (version: number) =>
      official(async (w: never) => {
        await (w as Writer).u53(0x0b);
        await new L.PublishDone({ requestId: 4n, statusCode: 200, reasonPhrase: "OK" }).encode(
          w,
          version as never,
        );
      }, version);
    for (const version of [D14, D15, D16]) {
      await check({
        version,
        official: done(version),
        // 0b | 00 07 | 04 request id | 40 c8 status 200 | 00 stream count | 02 "OK"
        recorded: "0b 00 07 04 40 c8 00 02 4f 4b",
        message: { kind: "publish_done", requestId: 4, status: 200, streamCount: 0n, reason: "OK" },
      });
    }
    await check({
      version: D17,
      official: done(D17),
      // 0b | 00 06 | 80 c8 status 200 (leading-ones) | 00 | 02 "OK"
      recorded: "0b 00 06 80 c8 00 02 4f 4b",
      message: { kind: "publish_done", status: 200, streamCount: 0n, reason: "OK" },
    });
  });

  it("SUBSCRIBE_UPDATE / REQUEST_UPDATE as @moq/lite writes it", async () => {
    const update = (version: number) =>
      official(async (w: never) => {
        await (w as Writer).u53(2);
        await new L.SubscribeUpdate({ requestId: 8n }).encode(w, version as never);
      }, version);
    await check({
      version: D14,
      official: update(D14),
      // 02 | 00 08 | 08 request id | 00 subscription | 00 00 start | 00 end+1 | 80 priority 128 (u8) | 01 forward | 00 params
      recorded: "02 00 08 08 00 00 00 00 80 01 00",
      message: {
        kind: "request_update",
        requestId: 8,
        existingRequestId: 0,
        start: { group: 0, object: 0 },
        endGroupPlusOne: 0,
        priority: 128,
        forward: true,
      },
    });
    await check({
      version: D16,
      official: update(D16),
      recorded: "02 00 03 08 00 00",
      message: { kind: "request_update", requestId: 8, existingRequestId: 0 },
    });
    await check({
      version: D17,
      official: update(D17),
      // 08 request id | 00 required delta | 00 params
      recorded: "02 00 03 08 00 00",
      message: { kind: "request_update", requestId: 8, requiredRequestIdDelta: 0 },
    });
  });
});

describe("namespaces", () => {
  const publishNamespace = (version: number) =>
    official(async (w: never) => {
      await (w as Writer).u53(6);
      await new L.PublishNamespace({ requestId: 2n, trackNamespace: "live/cam0" }).encode(
        w,
        version as never,
      );
    }, version);
  const cam = ["live", "cam0"];

  it("PUBLISH_NAMESPACE in every draft", async () => {
    for (const version of [D14, D15, D16]) {
      await check({
        version,
        official: publishNamespace(version),
        // 06 | 00 0d | 02 request id | 02 fields 04 "live" 04 "cam0" | 00 params
        recorded: "06 00 0d 02 02 04 6c 69 76 65 04 63 61 6d 30 00",
        message: { kind: "publish_namespace", requestId: 2, namespace: cam },
      });
    }
    await check({
      version: D17,
      official: publishNamespace(D17),
      recorded: "06 00 0e 02 00 02 04 6c 69 76 65 04 63 61 6d 30 00",
      message: { kind: "publish_namespace", requestId: 2, requiredRequestIdDelta: 0, namespace: cam },
    });
  });

  it("PUBLISH_NAMESPACE_OK (14) / REQUEST_OK (15+), and PUBLISH_NAMESPACE_DONE by namespace (14, 15) or id (16)", async () => {
    await check({
      version: D14,
      official: official(async (w: never) => {
        await (w as Writer).u53(7);
        await new L.PublishNamespaceOk({ requestId: 2n }).encode(w, D14);
      }, D14),
      recorded: "07 00 01 02",
      message: { kind: "request_ok", answers: "publish_namespace", requestId: 2, parameters: {} },
    });
    const requestOk = (version: number) =>
      official(async (w: never) => {
        await (w as Writer).u53(7);
        await new L.RequestOk({ requestId: 2n }).encode(w, version as never);
      }, version);
    for (const version of [D15, D16]) {
      await check({
        version,
        official: requestOk(version),
        recorded: "07 00 02 02 00",
        message: { kind: "request_ok", requestId: 2, parameters: {} },
      });
    }
    await check({
      version: D17,
      official: requestOk(D17),
      recorded: "07 00 01 00",
      message: { kind: "request_ok", parameters: {} },
    });
    const done = (version: number) =>
      official(async (w: never) => {
        await (w as Writer).u53(9);
        await new L.PublishNamespaceDone({ requestId: 2n, trackNamespace: "live/cam0" }).encode(
          w,
          version as never,
        );
      }, version);
    for (const version of [D14, D15]) {
      await check({
        version,
        official: done(version),
        recorded: "09 00 0b 02 04 6c 69 76 65 04 63 61 6d 30",
        message: { kind: "publish_namespace_done", namespace: cam },
      });
    }
    await check({
      version: D16,
      official: done(D16),
      recorded: "09 00 01 02",
      message: { kind: "publish_namespace_done", requestId: 2 },
    });
  });

  it("SUBSCRIBE_NAMESPACE with the empty prefix, its draft-14 OK, UNSUBSCRIBE_NAMESPACE, NAMESPACE and NAMESPACE_DONE", async () => {
    const subscribeNamespace = (version: number) =>
      official(async (w: never) => {
        await (w as Writer).u53(0x11);
        await new L.SubscribeNamespace({ requestId: 6n, namespace: "" }).encode(w, version as never);
      }, version);
    for (const version of [D14, D15]) {
      await check({
        version,
        official: subscribeNamespace(version),
        // 11 | 00 03 | 06 request id | 00 fields | 00 params
        recorded: "11 00 03 06 00 00",
        message: { kind: "subscribe_namespace", requestId: 6, prefix: [], options: 1 },
      });
    }
    await check({
      version: D16,
      official: subscribeNamespace(D16),
      // ... | 01 subscribe options: NAMESPACE | 00 params
      recorded: "11 00 04 06 00 01 00",
      message: { kind: "subscribe_namespace", requestId: 6, prefix: [], options: 1 },
    });
    await check({
      version: D17,
      official: subscribeNamespace(D17),
      recorded: "11 00 05 06 00 00 01 00",
      message: {
        kind: "subscribe_namespace",
        requestId: 6,
        requiredRequestIdDelta: 0,
        prefix: [],
        options: 1,
      },
    });
    await check({
      version: D14,
      official: official(async (w: never) => {
        await (w as Writer).u53(0x12);
        await new L.SubscribeNamespaceOk({ requestId: 6n }).encode(w, D14);
      }, D14),
      recorded: "12 00 01 06",
      message: { kind: "request_ok", answers: "subscribe_namespace", requestId: 6, parameters: {} },
    });
    for (const version of [D14, D15]) {
      await check({
        version,
        official: official(async (w: never) => {
          await (w as Writer).u53(0x14);
          await new L.UnsubscribeNamespace({ requestId: 6n }).encode(w, version);
        }, version),
        recorded: "14 00 01 06",
        message: { kind: "unsubscribe_namespace", requestId: 6 },
      });
    }
    for (const version of [D16, D17]) {
      await check({
        version,
        official: official(async (w: never) => {
          await (w as Writer).u53(8);
          await new L.SubscribeNamespaceEntry({ suffix: "bbb" }).encode(w, version);
        }, version),
        // 08 | 00 05 | 01 field 03 "bbb"
        recorded: "08 00 05 01 03 62 62 62",
        message: { kind: "namespace", suffix: ["bbb"] },
      });
      await check({
        version,
        official: official(async (w: never) => {
          await (w as Writer).u53(0x0e);
          await new L.SubscribeNamespaceEntryDone({ suffix: "bbb" }).encode(w, version);
        }, version),
        recorded: "0e 00 05 01 03 62 62 62",
        message: { kind: "namespace_done", suffix: ["bbb"] },
      });
    }
  });
});

describe("request-ID flow control, GOAWAY, TRACK_STATUS and PUBLISH", () => {
  it("MAX_REQUEST_ID and REQUESTS_BLOCKED (14 to 16)", async () => {
    for (const version of [D14, D15, D16]) {
      await check({
        version,
        official: official(async (w: never) => {
          await (w as Writer).u53(0x15);
          await new L.MaxRequestId({ requestId: 42069n }).encode(w, version);
        }, version),
        recorded: "15 00 04 80 00 a4 55",
        message: { kind: "max_request_id", maxRequestId: 42069 },
      });
      await check({
        version,
        official: official(async (w: never) => {
          await (w as Writer).u53(0x1a);
          await new L.RequestsBlocked({ requestId: 512n }).encode(w, version);
        }, version),
        recorded: "1a 00 02 42 00",
        message: { kind: "requests_blocked", maxRequestId: 512 },
      });
    }
  });

  it("GOAWAY (draft-17 adds a timeout)", async () => {
    const goaway = (version: number) =>
      official(async (w: never) => {
        await (w as Writer).u53(0x10);
        await new L.GoAway({ newSessionUri: "https://b.example/x", timeout: 3000n }).encode(
          w,
          version as never,
        );
      }, version);
    const uri = "https://b.example/x";
    for (const version of [D14, D15, D16]) {
      await check({
        version,
        official: goaway(version),
        recorded: "10 00 14 13 68 74 74 70 73 3a 2f 2f 62 2e 65 78 61 6d 70 6c 65 2f 78",
        message: { kind: "goaway", uri, timeoutMs: 0 },
      });
    }
    await check({
      version: D17,
      official: goaway(D17),
      // ... | 8b b8 timeout 3000 ms
      recorded: "10 00 16 13 68 74 74 70 73 3a 2f 2f 62 2e 65 78 61 6d 70 6c 65 2f 78 8b b8",
      message: { kind: "goaway", uri, timeoutMs: 3000 },
    });
  });

  it("TRACK_STATUS and PUBLISH as the official clients write them (the relay answers them)", async () => {
    const trackStatus = (version: number) =>
      official(async (w: never) => {
        await (w as Writer).u53(0x0d);
        await new L.TrackStatusRequest({ requestId: 10n, trackNamespace: "bbb", trackName: "video" }).encode(
          w,
          version as never,
        );
      }, version);
    await check({
      version: D14,
      official: trackStatus(D14),
      // SUBSCRIBE layout: 0a id | 01 03 "bbb" | 05 "video" | 00 priority | 02 order | 00 forward | 02 filter | 00 params
      recorded: "0d 00 11 0a 01 03 62 62 62 05 76 69 64 65 6f 00 02 00 02 00",
      message: {
        kind: "track_status",
        requestId: 10,
        namespace: ["bbb"],
        track: "video",
        priority: 0,
        groupOrder: 2,
        forward: false,
        filter: { type: 2 },
      },
    });
    const status15 = hex("0d 00 0d 0a 01 03 62 62 62 05 76 69 64 65 6f 00");
    expect(await trackStatus(D15)).toEqual(status15);
    expect(decodeIetfMessage(0x0d, status15.subarray(3), D15)).toEqual({
      kind: "track_status",
      requestId: 10,
      namespace: ["bbb"],
      track: "video",
      priority: 128,
      groupOrder: 0,
      forward: true,
    });
    const publish = (version: number) =>
      official(async (w: never) => {
        await (w as Writer).u53(0x1d);
        await new L.Publish({
          requestId: 12n,
          trackNamespace: "bbb",
          trackName: "video",
          trackAlias: 7n,
          groupOrder: 2,
          contentExists: false,
          forward: true,
        }).encode(w, version as never);
      }, version);
    await check({
      version: D14,
      official: publish(D14),
      // 0c id | 01 03 "bbb" | 05 "video" | 07 alias | 02 order | 00 no content | 01 forward | 00 params
      recorded: "1d 00 11 0c 01 03 62 62 62 05 76 69 64 65 6f 07 02 00 01 00",
      message: {
        kind: "publish",
        requestId: 12,
        namespace: ["bbb"],
        track: "video",
        trackAlias: 7,
        groupOrder: 2,
        forward: true,
      },
    });
    const publish17 = hex("1d 00 13 0c 00 01 03 62 62 62 05 76 69 64 65 6f 07 02 10 01 12 02");
    expect(await publish(D17)).toEqual(publish17);
    expect(decodeIetfMessage(0x1d, publish17.subarray(3), D17)).toEqual({
      kind: "publish",
      requestId: 12,
      requiredRequestIdDelta: 0,
      namespace: ["bbb"],
      track: "video",
      trackAlias: 7,
      groupOrder: 2,
      forward: true,
    });
  });

  it("FETCH (joining), FETCH_OK and FETCH_CANCEL in the drafts' layouts (the official clients do not fetch)", () => {
    // draft-14: 16 | 00 07 | 0e id | 80 priority | 02 order | 02 relative joining | 04 subscription | 00 start | 00 params
    const fetch14 = hex("16 00 07 0e 80 02 02 04 00 00");
    const msg14: IetfMessage = {
      kind: "fetch",
      requestId: 14,
      priority: 128,
      groupOrder: 2,
      fetch: { type: 2, joiningRequestId: 4, joiningStart: 0 },
    };
    expect(decodeIetfMessage(0x16, fetch14.subarray(3), D14)).toEqual(msg14);
    expect(encodeIetfMessage(msg14, D14)).toEqual(fetch14);
    // draft-17: 16 | 00 09 | 0e id | 00 required delta | 03 absolute joining | 04 | 05 group | 01 param 20 80 80 (priority 128)
    const fetch17 = hex("16 00 09 0e 00 03 04 05 01 20 80 80");
    expect(decodeIetfMessage(0x16, fetch17.subarray(3), D17)).toEqual({
      kind: "fetch",
      requestId: 14,
      requiredRequestIdDelta: 0,
      priority: 128,
      groupOrder: 0,
      fetch: { type: 3, joiningRequestId: 4, joiningStart: 5 },
    });
    // FETCH_OK draft-14: 18 | 00 06 | 0e id | 02 order | 00 end of track | 05 00 end location | 00 params
    const ok14 = hex("18 00 06 0e 02 00 05 00 00");
    const okMsg: IetfMessage = {
      kind: "fetch_ok",
      requestId: 14,
      groupOrder: 2,
      endOfTrack: false,
      end: { group: 5, object: 0 },
    };
    expect(decodeIetfMessage(0x18, ok14.subarray(3), D14)).toEqual(okMsg);
    expect(encodeIetfMessage(okMsg, D14)).toEqual(ok14);
    expect(encodeIetfMessage({ kind: "fetch_cancel", requestId: 14 }, D15)).toEqual(hex("17 00 01 0e"));
  });
});

describe("subgroup streams", () => {
  const flags = {
    hasExtensions: false,
    hasSubgroup: false,
    hasSubgroupObject: false,
    hasEnd: true,
    hasPriority: true,
  };
  const group = (version: number) =>
    official(async (w: never) => {
      await new L.Group({ trackAlias: 4n, groupId: 300, subGroupId: 0, publisherPriority: 0, flags }).encode(
        w,
      );
      await new L.Frame({ payload: text.encode("hello") }).encode(w, flags);
      await new L.Frame({ payload: new Uint8Array(0) }).encode(w, flags);
    }, version);

  for (const [version, recorded] of [
    // 18 sub-group 0, end of group, priority | 04 alias | 41 2c group 300 | 00 priority
    // | 00 delta 05 "hello" | 00 delta 00 length 00 status Normal (an empty frame)
    [D14, "18 04 41 2c 00 00 05 68 65 6c 6c 6f 00 00 00"],
    [D16, "18 04 41 2c 00 00 05 68 65 6c 6c 6f 00 00 00"],
    // group 300 as a leading-ones varint: 81 2c
    [D17, "18 04 81 2c 00 00 05 68 65 6c 6c 6f 00 00 00"],
  ] as const) {
    it(`the header type 0x18 and objects this package sends are what @moq/lite sends (draft-${version - 0xff000000})`, async () => {
      const bytes = hex(recorded);
      expect(await group(version)).toEqual(bytes);
      const header = encodeSubgroupHeader({ trackAlias: 4, group: 300, priority: 0 }, version);
      const hello = encodeObjectHeader(5, version);
      const empty = encodeObjectHeader(0, version);
      expect(Uint8Array.from([...header, ...hello, ...text.encode("hello"), ...empty])).toEqual(bytes);
    });
  }

  it("@moq/net sends type 0x19 (properties present) with an empty properties block per object", async () => {
    const nflags = { ...flags, hasExtensions: true };
    // 19 | 04 alias | 81 2c group | 00 priority | 00 delta | 00 properties length | 05 "hello"
    expect(
      await official(
        async (w: never) => {
          await new N.Group({
            trackAlias: 4n,
            groupId: 300,
            subGroupId: 0,
            publisherPriority: 0,
            flags: nflags,
          }).encode(w, D17);
          await new N.Frame({ payload: text.encode("hello") }).encode(w, nflags, undefined, D17);
        },
        D17,
        true,
      ),
    ).toEqual(hex("19 04 81 2c 00 00 00 05 68 65 6c 6c 6f"));
  });
});
