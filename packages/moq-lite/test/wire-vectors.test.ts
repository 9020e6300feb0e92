/**
 * Golden bytes: every test vector of the wire reference (§7), produced by or observed with the
 * official clients. Each case encodes with our codec and compares byte for byte, then decodes
 * the bytes back. Comments break the bytes down field by field.
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
  encodeAnnounce,
  encodeAnnounceInit,
  encodeAnnouncePlease,
  encodeClientSetup,
  encodeConnectionClose,
  encodeFetch,
  encodeFrameHeader,
  encodeGoaway,
  encodeGroupStreamHeader,
  encodeMaxData,
  encodeMaxStreamData,
  encodeMaxStreams,
  encodeProbe,
  encodeResetStream,
  encodeServerSetup,
  encodeSessionUpdate,
  encodeStopSending,
  encodeStreamFrame,
  encodeSubscribe,
  encodeSubscribeDrop,
  encodeSubscribeOk,
  encodeSubscribeUpdate,
  encodeTransportParameters,
  encodeVarint,
  offeredSubprotocols,
  readVarintAt,
  SetupParameter,
  StreamId,
  StreamType,
  selectSubprotocol,
  unframeMessage,
  Version,
} from "@lvqr/moq-lite";
import { describe, expect, it } from "vitest";

/** "20 00 2c" → bytes. */
function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g) ?? [], (byte) => Number.parseInt(byte, 16));
}

const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((part) => [...part]));
const ascii = (text: string) => new TextEncoder().encode(text);
const streamType = (type: number) => encodeVarint(type);
/** The body of a size-prefixed message (strips and checks the prefix). */
const body = (bytes: Uint8Array) => unframeMessage(bytes, "vector");

const { Lite01, Lite02, Lite03, Lite04 } = Version;

describe("§7.1 SETUP (lite-02 path)", () => {
  it("#1 CLIENT_SETUP as sent by @moq/lite 0.2.2", () => {
    // 20 type | 00 2c length 44 | 03 versions | c0000000ff0dad02, …01, c0000000ff00000e (8-byte varints)
    // | 02 params | 02 MaxRequestId = 80 00 a4 55 (42069) | 07 Implementation, 0b, "moq-lite-js"
    const vector = hex(
      "20 00 2c 03 c0 00 00 00 ff 0d ad 02 c0 00 00 00 ff 0d ad 01 c0 00 00 00 ff 00 00 0e 02 02 80 00 a4 55 07 0b 6d 6f 71 2d 6c 69 74 65 2d 6a 73",
    );
    const msg = {
      versions: [0xff0dad02, 0xff0dad01, 0xff00000e],
      parameters: new Map<number, bigint | Uint8Array>([
        [SetupParameter.MaxRequestId, 42069n],
        [SetupParameter.Implementation, ascii("moq-lite-js")],
      ]),
    };
    expect(encodeClientSetup(msg)).toEqual(vector);
    const decoded = decodeClientSetup(vector.subarray(3));
    expect(decoded.versions).toEqual(msg.versions);
    expect(decoded.parameters.get(2)).toBe(42069n);
    expect(new TextDecoder().decode(decoded.parameters.get(7) as Uint8Array)).toBe("moq-lite-js");
  });

  it("#2 SERVER_SETUP, minimal (lite-02, no parameters)", () => {
    // 21 type | 00 09 length | c0000000ff0dad02 version | 00 params
    const vector = hex("21 00 09 c0 00 00 00 ff 0d ad 02 00");
    expect(encodeServerSetup({ version: Lite02, parameters: new Map() })).toEqual(vector);
    expect(decodeServerSetup(vector.subarray(3))).toEqual({ version: Lite02, parameters: new Map() });
  });

  it("#3 SERVER_SETUP as @moq/lite accept() sends it", () => {
    const vector = hex(
      "21 00 1b c0 00 00 00 ff 0d ad 02 02 02 80 00 a4 55 07 0b 6d 6f 71 2d 6c 69 74 65 2d 6a 73",
    );
    const parameters = new Map<number, bigint | Uint8Array>([
      [2, 42069n],
      [7, ascii("moq-lite-js")],
    ]);
    expect(encodeServerSetup({ version: Lite02, parameters })).toEqual(vector);
    const decoded = decodeServerSetup(vector.subarray(3));
    expect(decoded.version).toBe(Lite02);
    expect(decoded.parameters.get(2)).toBe(42069n);
  });

  it("#4 SESSION_UPDATE bitrate 1 000 000", () => {
    // 04 size | 80 0f 42 40 bitrate (4-byte varint)
    const vector = hex("04 80 0f 42 40");
    expect(encodeSessionUpdate({ bitrate: 1_000_000 }, Lite02)).toEqual(vector);
    expect(decodeSessionUpdate(body(vector), Lite02)).toEqual({ bitrate: 1_000_000 });
  });
});

describe("§7.2 Announce", () => {
  it("#5 open announce + ANNOUNCE_PLEASE prefix '' (lite-01/02/03)", () => {
    // 01 stream type | 01 size | 00 empty prefix
    for (const version of [Lite01, Lite02, Lite03]) {
      expect(concat(streamType(StreamType.Announce), encodeAnnouncePlease({ prefix: "" }, version))).toEqual(
        hex("01 01 00"),
      );
      expect(decodeAnnouncePlease(hex("00"), version).prefix).toBe("");
    }
  });

  it("#6 the same on lite-04 (exclude_hop 0)", () => {
    // 01 stream type | 02 size | 00 prefix | 00 exclude_hop
    expect(concat(streamType(1), encodeAnnouncePlease({ prefix: "" }, Lite04))).toEqual(hex("01 02 00 00"));
    expect(decodeAnnouncePlease(hex("00 00"), Lite04)).toEqual({ prefix: "", excludeHop: 0 });
  });

  it("#7/#7b ANNOUNCE_PLEASE prefix 'demo'", () => {
    expect(encodeAnnouncePlease({ prefix: "demo" }, Lite02)).toEqual(hex("05 04 64 65 6d 6f"));
    expect(encodeAnnouncePlease({ prefix: "demo" }, Lite03)).toEqual(hex("05 04 64 65 6d 6f"));
    expect(encodeAnnouncePlease({ prefix: "demo" }, Lite04)).toEqual(hex("06 04 64 65 6d 6f 00"));
    expect(decodeAnnouncePlease(body(hex("06 04 64 65 6d 6f 00")), Lite04).prefix).toBe("demo");
  });

  it("#8-#12 ANNOUNCE_INIT", () => {
    const cases: Array<[string[], string]> = [
      [["bbb"], "05 01 03 62 62 62"], // #8: size 5 | count 1 | "bbb"
      [["bbb", "live/cam0"], "0f 02 03 62 62 62 09 6c 69 76 65 2f 63 61 6d 30"], // #9
      [[], "01 00"], // #10: the 0.2.2 reply when it publishes nothing
      [[""], "02 01 00"], // #11: exact-path prefix, suffix ""
      [["mybcast"], "09 01 07 6d 79 62 63 61 73 74"], // #12: client → relay
    ];
    for (const [suffixes, bytes] of cases) {
      expect(encodeAnnounceInit({ suffixes }, Lite02)).toEqual(hex(bytes));
      expect(decodeAnnounceInit(body(hex(bytes)), Lite02)).toEqual({ suffixes });
      expect(decodeAnnounceInit(body(hex(bytes)), Lite01)).toEqual({ suffixes });
    }
  });

  it("#13-#15 ANNOUNCE per version", () => {
    const cases: Array<[boolean, number, number[], string]> = [
      [true, Lite02, [], "05 01 03 62 62 62"], // #13: size | status 1 | "bbb"
      [false, Lite02, [], "05 00 03 62 62 62"], // #13b
      [true, Lite03, [], "06 01 03 62 62 62 00"], // #14: … | hop_count 0
      [false, Lite03, [], "06 00 03 62 62 62 00"], // #14b
      [true, Lite04, [], "06 01 03 62 62 62 00"], // #14c
      [false, Lite04, [], "06 00 03 62 62 62 00"], // #14c
      [true, Lite04, [7, 9], "08 01 03 62 62 62 02 07 09"], // #15: hop_count 2, hops 7, 9
    ];
    for (const [active, version, hops, bytes] of cases) {
      const v = version as Version;
      expect(encodeAnnounce({ active, suffix: "bbb", hops }, v)).toEqual(hex(bytes));
      expect(decodeAnnounce(body(hex(bytes)), v)).toEqual({ active, suffix: "bbb", hops });
    }
  });
});

describe("§7.3 Subscribe", () => {
  it("#16 open subscribe + SUBSCRIBE id 0 demo/bbb catalog.json prio 100 (lite-01/02)", () => {
    // 02 stream type | 18 size 24 | 00 id | 08 "demo/bbb" | 0c "catalog.json" | 64 priority (raw u8)
    const vector = hex("02 18 00 08 64 65 6d 6f 2f 62 62 62 0c 63 61 74 61 6c 6f 67 2e 6a 73 6f 6e 64");
    const msg = { id: 0, broadcast: "demo/bbb", track: "catalog.json", priority: 100 };
    for (const version of [Lite01, Lite02]) {
      expect(concat(streamType(StreamType.Subscribe), encodeSubscribe(msg, version))).toEqual(vector);
      expect(decodeSubscribe(body(vector.subarray(1)), version)).toEqual(msg);
    }
  });

  it("#17 the same on lite-03/04 with the 0.2.2 defaults", () => {
    // … 64 priority | 00 ordered | 00 max_latency | 00 start_group | 00 end_group
    const vector = hex(
      "02 1c 00 08 64 65 6d 6f 2f 62 62 62 0c 63 61 74 61 6c 6f 67 2e 6a 73 6f 6e 64 00 00 00 00",
    );
    const msg = { id: 0, broadcast: "demo/bbb", track: "catalog.json", priority: 100 };
    for (const version of [Lite03, Lite04]) {
      expect(concat(streamType(2), encodeSubscribe(msg, version))).toEqual(vector);
      expect(decodeSubscribe(body(vector.subarray(1)), version)).toEqual({
        ...msg,
        ordered: false,
        maxLatencyMs: 0,
        startGroup: undefined,
        endGroup: undefined,
      });
    }
  });

  it("#18/#19 SUBSCRIBE as seen live in both directions", () => {
    // #18: client → relay, id 0, "bbb"/"video", priority 60 (3c)
    const v18 = hex("02 0c 00 03 62 62 62 05 76 69 64 65 6f 3c");
    expect(
      concat(
        streamType(2),
        encodeSubscribe({ id: 0, broadcast: "bbb", track: "video", priority: 60 }, Lite02),
      ),
    ).toEqual(v18);
    // #19: relay → client, id 7, "mybcast"/"t", priority 100, answered with 00
    const v19 = hex("02 0c 07 07 6d 79 62 63 61 73 74 01 74 64");
    expect(decodeSubscribe(body(v19.subarray(1)), Lite02)).toEqual({
      id: 7,
      broadcast: "mybcast",
      track: "t",
      priority: 100,
    });
    expect(encodeSubscribeOk({ priority: 100 }, Lite02)).toEqual(hex("00"));
  });

  it("#20 SUBSCRIBE lite-03: ordered, start group 5, max latency 500 ms", () => {
    // 11 size 17 | 01 id | "bbb" | "video" | 3c prio | 01 ordered | 41 f4 latency 500 | 06 start 5+1 | 00 end
    const vector = hex("11 01 03 62 62 62 05 76 69 64 65 6f 3c 01 41 f4 06 00");
    const msg = {
      id: 1,
      broadcast: "bbb",
      track: "video",
      priority: 60,
      ordered: true,
      maxLatencyMs: 500,
      startGroup: 5,
    };
    expect(encodeSubscribe(msg, Lite03)).toEqual(vector);
    expect(decodeSubscribe(body(vector), Lite03)).toEqual({ ...msg, endGroup: undefined });
  });

  it("#21 SUBSCRIBE_OK per version", () => {
    expect(encodeSubscribeOk({ priority: 100 }, Lite01)).toEqual(hex("01 64")); // size 1 | priority
    expect(decodeSubscribeOk(hex("64"), Lite01)).toEqual({ priority: 100 });
    expect(encodeSubscribeOk({ priority: 100 }, Lite02)).toEqual(hex("00")); // #21b: size 0
    expect(decodeSubscribeOk(hex(""), Lite02)).toEqual({ priority: 0 });
    // #21c: 00 type OK | 05 size | 64 prio | 01 ordered | 00 latency | 00 start | 00 end
    const v21c = hex("00 05 64 01 00 00 00");
    for (const version of [Lite03, Lite04]) {
      expect(encodeSubscribeOk({ priority: 100, ordered: true }, version)).toEqual(v21c);
      expect(decodeSubscribeOk(body(v21c.subarray(1)), version)).toMatchObject({
        priority: 100,
        ordered: true,
      });
    }
  });

  it("#22 SUBSCRIBE_DROP start 3 end 4 error 0", () => {
    // 01 type DROP | 03 size | 03 start | 04 end | 00 error
    expect(encodeSubscribeDrop({ start: 3, end: 4, errorCode: 0 }, Lite03)).toEqual(hex("01 03 03 04 00"));
    expect(decodeSubscribeDrop(hex("03 04 00"), Lite04)).toEqual({ start: 3, end: 4, errorCode: 0 });
  });

  it("#23 SUBSCRIBE_UPDATE priority 5", () => {
    expect(encodeSubscribeUpdate({ priority: 5 }, Lite02)).toEqual(hex("01 05"));
    expect(decodeSubscribeUpdate(hex("05"), Lite02)).toEqual({ priority: 5 });
    // #23b: 05 size | 05 prio | 01 ordered | 00 latency | 00 start | 00 end
    expect(encodeSubscribeUpdate({ priority: 5 }, Lite03)).toEqual(hex("05 05 01 00 00 00"));
    expect(decodeSubscribeUpdate(hex("05 01 00 00 00"), Lite03)).toMatchObject({
      priority: 5,
      ordered: true,
    });
  });
});

describe("§7.4 Groups and frames", () => {
  it("#24 group stream: type, GROUP{0,0}, FRAME 'hello'", () => {
    // 00 uni type | 02 size | 00 subscribe_id | 00 sequence | 05 frame length | "hello"
    const vector = hex("00 02 00 00 05 68 65 6c 6c 6f");
    expect(
      concat(encodeGroupStreamHeader({ subscribeId: 0, sequence: 0 }), encodeFrameHeader(5), ascii("hello")),
    ).toEqual(vector);
    expect(decodeGroupHeader(hex("00 00"))).toEqual({ subscribeId: 0, sequence: 0 });
  });

  it("#25 a client-published group on uni 2 with subscribe id 7", () => {
    const vector = hex("00 02 07 00 11 66 72 61 6d 65 2d 66 72 6f 6d 2d 63 6c 69 65 6e 74");
    expect(
      concat(
        encodeGroupStreamHeader({ subscribeId: 7, sequence: 0 }),
        encodeFrameHeader(17),
        ascii("frame-from-client"),
      ),
    ).toEqual(vector);
  });

  it("#26 GROUP header sub 3 seq 1000, #27 frame prefix for 70 bytes", () => {
    // 00 type | 03 size | 03 sub | 43 e8 sequence 1000 (2-byte varint)
    expect(encodeGroupStreamHeader({ subscribeId: 3, sequence: 1000 })).toEqual(hex("00 03 03 43 e8"));
    expect(decodeGroupHeader(hex("03 43 e8"))).toEqual({ subscribeId: 3, sequence: 1000 });
    expect(encodeFrameHeader(70)).toEqual(hex("40 46"));
  });
});

describe("§7.5 PROBE, GOAWAY, FETCH", () => {
  it("#28 PROBE 2.5 Mbps", () => {
    expect(encodeProbe({ bitrate: 2_500_000 }, Lite03)).toEqual(hex("04 80 26 25 a0"));
    expect(decodeProbe(hex("80 26 25 a0"), Lite03)).toEqual({ bitrate: 2_500_000 });
    // #28b lite-04: … | 2a rtt 42 ms
    expect(encodeProbe({ bitrate: 2_500_000, rttMs: 42 }, Lite04)).toEqual(hex("05 80 26 25 a0 2a"));
    expect(decodeProbe(hex("80 26 25 a0 2a"), Lite04)).toEqual({ bitrate: 2_500_000, rttMs: 42 });
  });

  it("#29 open GOAWAY (lite-04)", () => {
    // 05 stream type | 14 size 20 | 13 uri length 19 | "https://b.example/x"
    const vector = hex("05 14 13 68 74 74 70 73 3a 2f 2f 62 2e 65 78 61 6d 70 6c 65 2f 78");
    expect(
      concat(streamType(StreamType.Goaway), encodeGoaway({ uri: "https://b.example/x" }, Lite04)),
    ).toEqual(vector);
    expect(decodeGoaway(body(vector.subarray(1)), Lite04)).toEqual({ uri: "https://b.example/x" });
  });

  it("#30 open FETCH (lite-03)", () => {
    // 03 stream type | 0c size | "bbb" | "video" | 3c priority | 07 group
    const vector = hex("03 0c 03 62 62 62 05 76 69 64 65 6f 3c 07");
    const msg = { broadcast: "bbb", track: "video", priority: 60, group: 7 };
    expect(concat(streamType(StreamType.Fetch), encodeFetch(msg, Lite03))).toEqual(vector);
    expect(decodeFetch(body(vector.subarray(1)), Lite03)).toEqual(msg);
  });
});

describe("§7.6 QMux qmux-00", () => {
  it("#31 TRANSPORT_PARAMETERS with the client defaults", () => {
    // ff5153300d0a0d0a type | 20 length 32 | 04 04 80100000 max_data | 05/06/07 04 80040000 | 08 02 4064 | 09 02 4064
    const vector = hex(
      "ff 51 53 30 0d 0a 0d 0a 20 04 04 80 10 00 00 05 04 80 04 00 00 06 04 80 04 00 00 07 04 80 04 00 00 08 02 40 64 09 02 40 64",
    );
    const params = {
      maxData: 1_048_576,
      maxStreamDataBidiLocal: 262_144,
      maxStreamDataBidiRemote: 262_144,
      maxStreamDataUni: 262_144,
      maxStreamsBidi: 100,
      maxStreamsUni: 100,
    };
    expect(encodeTransportParameters(params)).toEqual(vector);
    expect(decodeFrame(vector, "qmux-00")).toEqual({ type: "transport_parameters", params });
  });

  it("#32-#34 STREAM frames (type 0x0a/0x0b with LEN)", () => {
    expect(encodeStreamFrame("qmux-00", 0, hex("20"), false)).toEqual(hex("0a 00 01 20")); // type | id 0 | len 1 | data
    expect(encodeStreamFrame("qmux-00", 3, hex("00 02 00 00"), true)).toEqual(hex("0b 03 04 00 02 00 00"));
    expect(encodeStreamFrame("qmux-00", 1, hex(""), true)).toEqual(hex("0b 01 00"));
    expect(decodeFrame(hex("0a 00 01 20"), "qmux-00")).toEqual({
      type: "stream",
      id: 0,
      data: hex("20"),
      fin: false,
    });
    expect(decodeFrame(hex("0b 01 00"), "qmux-00")).toEqual({
      type: "stream",
      id: 1,
      data: hex(""),
      fin: true,
    });
  });

  it("#35/#36 RESET_STREAM and STOP_SENDING", () => {
    expect(encodeResetStream("qmux-00", 3, 0, 0)).toEqual(hex("04 03 00 00")); // id | code | final size
    expect(decodeFrame(hex("04 03 00 00"), "qmux-00")).toEqual({
      type: "reset_stream",
      id: 3,
      code: 0,
      finalSize: 0,
    });
    expect(encodeStopSending(3, 0)).toEqual(hex("05 03 00"));
    expect(decodeFrame(hex("05 03 00"), "qmux-00")).toEqual({ type: "stop_sending", id: 3, code: 0 });
  });

  it("#37 CONNECTION_CLOSE in the 0.0.6 layout (code, frame type 0, reason)", () => {
    expect(encodeConnectionClose("qmux-00", 0, "bye")).toEqual(hex("1d 00 00 03 62 79 65"));
    expect(encodeConnectionClose("qmux-00", 0, "")).toEqual(hex("1d 00 00 00")); // #37b
    // #37c: 43 ea code 1002 | 00 frame type | 0f "frame too large"
    const v37c = hex("1d 43 ea 00 0f 66 72 61 6d 65 20 74 6f 6f 20 6c 61 72 67 65");
    expect(encodeConnectionClose("qmux-00", 1002, "frame too large")).toEqual(v37c);
    expect(decodeFrame(v37c, "qmux-00")).toEqual({
      type: "connection_close",
      code: 1002,
      reason: "frame too large",
    });
    // 0.3.3 sends 0x1d without the frame-type field; the lenient parser still finds the reason.
    expect(decodeFrame(hex("1d 00 03 62 79 65"), "qmux-00")).toEqual({
      type: "connection_close",
      code: 0,
      reason: "bye",
    });
  });

  it("#38 MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS", () => {
    expect(encodeMaxData(2_097_152)).toEqual(hex("10 80 20 00 00"));
    expect(decodeFrame(hex("10 80 20 00 00"), "qmux-00")).toEqual({ type: "max_data", max: 2_097_152 });
    expect(encodeMaxStreamData(3, 524_288)).toEqual(hex("11 03 80 08 00 00"));
    expect(decodeFrame(hex("11 03 80 08 00 00"), "qmux-00")).toEqual({
      type: "max_stream_data",
      id: 3,
      max: 524_288,
    });
    expect(encodeMaxStreams(true, 150)).toEqual(hex("12 40 96"));
    expect(encodeMaxStreams(false, 150)).toEqual(hex("13 40 96"));
    expect(decodeFrame(hex("13 40 96"), "qmux-00")).toEqual({ type: "max_streams", bidi: false, max: 150 });
  });
});

describe("§7.7 legacy 'webtransport' framing", () => {
  it("#39 STREAM, RESET, STOP, CLOSE", () => {
    expect(encodeStreamFrame("webtransport", 0, hex("20"), false)).toEqual(hex("08 00 20")); // type | id | data
    expect(encodeStreamFrame("webtransport", 3, hex("00 02 00 00"), true)).toEqual(hex("09 03 00 02 00 00")); // #39b
    expect(encodeResetStream("webtransport", 3, 0, 1234)).toEqual(hex("04 03 00")); // #39c: no final size
    expect(encodeStopSending(3, 0)).toEqual(hex("05 03 00")); // #39d
    expect(encodeConnectionClose("webtransport", 0, "bye")).toEqual(hex("1d 00 62 79 65")); // #39e
    expect(encodeConnectionClose("webtransport", 0, "")).toEqual(hex("1d 00")); // #39f
    const v39g = hex("1d 43 ea 66 72 61 6d 65 20 74 6f 6f 20 6c 61 72 67 65"); // #39g
    expect(encodeConnectionClose("webtransport", 1002, "frame too large")).toEqual(v39g);
    expect(decodeFrame(v39g, "webtransport")).toEqual({
      type: "connection_close",
      code: 1002,
      reason: "frame too large",
    });
    expect(decodeFrame(hex("09 03 00 02 00 00"), "webtransport")).toEqual({
      type: "stream",
      id: 3,
      data: hex("00 02 00 00"),
      fin: true,
    });
    expect(decodeFrame(hex("04 03 00"), "webtransport")).toEqual({ type: "reset_stream", id: 3, code: 0 });
  });
});

describe("§7.8 misc", () => {
  it("#40 stream ids for indices 0, 1, 2", () => {
    const ids = (uni: boolean, server: boolean) => [0, 1, 2].map((i) => StreamId.make(i, uni, server));
    expect(ids(false, false)).toEqual([0, 4, 8]);
    expect(ids(true, false)).toEqual([2, 6, 10]);
    expect(ids(false, true)).toEqual([1, 5, 9]);
    expect(ids(true, true)).toEqual([3, 7, 11]);
    expect(StreamId.index(11)).toBe(2);
    expect(StreamId.isUni(10) && !StreamId.isServerInitiated(10)).toBe(true);
  });

  it("#41 the subprotocols 0.2.2 offers, and what the relay selects", () => {
    expect(offeredSubprotocols(["qmux-00", "webtransport"])).toEqual(["qmux-00", "webtransport"]);
    expect(selectSubprotocol(["qmux-00", "webtransport"])).toEqual({
      subprotocol: "qmux-00",
      framing: "qmux-00",
      protocol: "",
    });
    expect(selectSubprotocol(["qmux-00", "webtransport"], ["webtransport"])?.subprotocol).toBe(
      "webtransport",
    );
    // @moq/net 0.2.8 offers app-prefixed forms first; a relay without lite-03/04 picks bare qmux-00.
    const net = [
      "qmux-02.moq-lite-05",
      "qmux-00.moq-lite-04",
      "qmux-00.moql",
      "qmux-02",
      "qmux-01",
      "qmux-00",
      "webtransport",
    ];
    expect(selectSubprotocol(net)?.subprotocol).toBe("qmux-00");
    expect(selectSubprotocol(net, undefined, ["moq-lite-04"])).toEqual({
      subprotocol: "qmux-00.moq-lite-04",
      framing: "qmux-00",
      protocol: "moq-lite-04",
    });
    expect(selectSubprotocol(["qmux-01", "qmux-02"])).toBeUndefined();
  });

  it("#42/#43 legacy hang frames: varint timestamp (µs) then payload", () => {
    expect(concat(encodeVarint(33_333), hex("00 00 00 02 09 f0"))).toEqual(
      hex("80 00 82 35 00 00 00 02 09 f0"),
    );
    const v43 = hex("80 0f 42 40 01 02 03");
    expect(readVarintAt(v43, 0)).toBe(1_000_000);
    expect(v43.subarray(4)).toEqual(hex("01 02 03"));
  });

  it("#45 frame-size boundary: a 16 360-byte STREAM payload decodes", () => {
    const frame = encodeStreamFrame("qmux-00", 3, new Uint8Array(16_360), false);
    const decoded = decodeFrame(frame, "qmux-00");
    expect(decoded.type === "stream" && decoded.data.byteLength).toBe(16_360);
  });
});
