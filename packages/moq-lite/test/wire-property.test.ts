/**
 * Property tests: every codec round-trips arbitrary messages in every version, varints round-trip
 * over their whole range (and non-minimal encodings decode), and no decoder throws anything but a
 * MoqError on arbitrary bytes.
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
  encodeAnnounce,
  encodeAnnounceInit,
  encodeAnnouncePlease,
  encodeClientSetup,
  encodeFetch,
  encodeGoaway,
  encodeGroupStreamHeader,
  encodeProbe,
  encodeServerSetup,
  encodeStreamFrame,
  encodeSubscribe,
  encodeSubscribeOk,
  encodeSubscribeUpdate,
  encodeTransportParameters,
  isSetupEra,
  MoqError,
  readVarintAt,
  readVarintBigAt,
  unframeMessage,
  Version,
  varintSize,
  varintSizeBig,
  writeVarint,
  writeVarintBig,
} from "@lvqr/moq-lite";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

const versions = [Version.Lite01, Version.Lite02, Version.Lite03, Version.Lite04] as const;
const version = fc.constantFrom(...versions);
const segment = fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/);
const path = fc.array(segment, { maxLength: 4 }).map((parts) => parts.join("/"));
const trackName = fc.string({ unit: "grapheme", maxLength: 40 });
const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const small = fc.integer({ min: 0, max: 1_000_000 });
const priority = fc.integer({ min: 0, max: 255 });
const body = (bytes: Uint8Array) => unframeMessage(bytes, "property", 1 << 20);

describe("varints", () => {
  it("round-trip every safe integer with the minimal length", () => {
    fc.assert(
      fc.property(u53, (value) => {
        const buf = new Uint8Array(8);
        const end = writeVarint(buf, 0, value);
        expect(end).toBe(varintSize(value));
        expect(readVarintAt(buf, 0)).toBe(value);
      }),
    );
  });

  it("round-trip the full 62-bit range as bigints", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 62n) - 1n }), (value) => {
        const buf = new Uint8Array(8);
        expect(writeVarintBig(buf, 0, value)).toBe(varintSizeBig(value));
        expect(readVarintBigAt(buf, 0)).toBe(value);
        expect(readVarintAt(buf, 0)).toBe(value > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(value));
      }),
    );
  });

  it("decode non-minimal encodings to the same value", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x3fff_ffff }), (value) => {
        const eight = new Uint8Array(8);
        eight[0] = 0xc0;
        eight[4] = value >>> 24;
        eight[5] = (value >>> 16) & 0xff;
        eight[6] = (value >>> 8) & 0xff;
        eight[7] = value & 0xff;
        expect(readVarintAt(eight, 0)).toBe(value);
      }),
    );
  });
});

describe("message codecs round-trip", () => {
  it("SUBSCRIBE / SUBSCRIBE_UPDATE / SUBSCRIBE_OK", () => {
    fc.assert(
      fc.property(
        version,
        u53,
        path,
        trackName,
        priority,
        fc.boolean(),
        small,
        fc.option(small, { nil: undefined }),
        fc.option(small, { nil: undefined }),
        (v, id, broadcast, track, prio, ordered, maxLatencyMs, startGroup, endGroup) => {
          const full = { id, broadcast, track, priority: prio, ordered, maxLatencyMs, startGroup, endGroup };
          const subscribe = decodeSubscribe(body(encodeSubscribe(full, v)), v);
          const update = decodeSubscribeUpdate(body(encodeSubscribeUpdate(full, v)), v);
          if (isSetupEra(v)) {
            expect(subscribe).toEqual({ id, broadcast, track, priority: prio });
            expect(update).toEqual({ priority: prio });
          } else {
            expect(subscribe).toEqual(full);
            expect(update).toEqual({ priority: prio, ordered, maxLatencyMs, startGroup, endGroup });
            const ok = encodeSubscribeOk(full, v);
            expect(ok[0]).toBe(0); // the lite-03+ response type
            expect(decodeSubscribeOk(body(ok.subarray(1)), v)).toEqual({
              priority: prio,
              ordered,
              maxLatencyMs,
              startGroup,
              endGroup,
            });
          }
        },
      ),
    );
  });

  it("ANNOUNCE_PLEASE / ANNOUNCE / ANNOUNCE_INIT", () => {
    fc.assert(
      fc.property(
        version,
        path,
        fc.boolean(),
        fc.array(small, { maxLength: 8 }),
        fc.array(path, { maxLength: 20 }),
        (v, p, active, hops, suffixes) => {
          expect(
            decodeAnnouncePlease(body(encodeAnnouncePlease({ prefix: p, excludeHop: 3 }, v)), v),
          ).toEqual({
            prefix: p,
            excludeHop: v === Version.Lite04 ? 3 : 0,
          });
          const announce = decodeAnnounce(body(encodeAnnounce({ active, suffix: p, hops }, v)), v);
          expect(announce.active).toBe(active);
          expect(announce.suffix).toBe(p);
          expect(announce.hops).toEqual(
            v === Version.Lite04 ? hops : v === Version.Lite03 ? hops.map(() => 0) : [],
          );
          if (isSetupEra(v))
            expect(decodeAnnounceInit(body(encodeAnnounceInit({ suffixes }, v)), v)).toEqual({ suffixes });
        },
      ),
    );
  });

  it("SETUP, GROUP, PROBE, FETCH, GOAWAY, TRANSPORT_PARAMETERS", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffff_ffff }), { maxLength: 8 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.bigInt({ min: 0n, max: 1n << 40n })), {
          maxLength: 6,
        }),
        u53,
        u53,
        path,
        trackName,
        priority,
        (versionsOffered, params, a, b, p, track, prio) => {
          const parameters = new Map<number, bigint | Uint8Array>();
          for (const [id, value] of params) {
            parameters.set(id, id % 2 === 0 ? value : new TextEncoder().encode(String(value)));
          }
          const client = encodeClientSetup({ versions: versionsOffered, parameters });
          expect(decodeClientSetup(client.subarray(3))).toEqual({ versions: versionsOffered, parameters });
          const server = encodeServerSetup({ version: a, parameters });
          expect(decodeServerSetup(server.subarray(3))).toEqual({ version: a, parameters });
          const group = encodeGroupStreamHeader({ subscribeId: a, sequence: b });
          expect(decodeGroupHeader(body(group.subarray(1)))).toEqual({ subscribeId: a, sequence: b });
          expect(
            decodeProbe(body(encodeProbe({ bitrate: a, rttMs: 5 }, Version.Lite04)), Version.Lite04),
          ).toEqual({
            bitrate: a,
            rttMs: 5,
          });
          const fetch = { broadcast: p, track, priority: prio, group: b };
          expect(decodeFetch(body(encodeFetch(fetch, Version.Lite03)), Version.Lite03)).toEqual(fetch);
          expect(decodeGoaway(body(encodeGoaway({ uri: track }, Version.Lite04)), Version.Lite04)).toEqual({
            uri: track,
          });
          const tp = {
            maxData: a,
            maxStreamDataBidiLocal: b,
            maxStreamDataBidiRemote: 0,
            maxStreamDataUni: 7,
            maxStreamsBidi: 100,
            maxStreamsUni: a % 1000,
          };
          const frame = decodeFrame(encodeTransportParameters(tp), "qmux-00");
          expect(frame).toEqual({ type: "transport_parameters", params: tp });
        },
      ),
    );
  });

  it("STREAM frames in both framings", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("qmux-00", "webtransport" as const),
        u53,
        fc.uint8Array({ maxLength: 300 }),
        fc.boolean(),
        (framing, id, data, fin) => {
          expect(decodeFrame(encodeStreamFrame(framing, id, data, fin), framing)).toEqual({
            type: "stream",
            id,
            data,
            fin,
          });
        },
      ),
    );
  });
});

describe("decoders never throw anything but MoqError", () => {
  const decoders: Array<(bytes: Uint8Array, v: Version) => unknown> = [
    (b) => decodeClientSetup(b),
    (b) => decodeServerSetup(b),
    decodeSessionUpdate,
    decodeAnnouncePlease,
    decodeAnnounceInit,
    decodeAnnounce,
    decodeSubscribe,
    decodeSubscribeUpdate,
    decodeSubscribeOk,
    decodeSubscribeDrop,
    (b) => decodeGroupHeader(b),
    decodeProbe,
    decodeFetch,
    decodeGoaway,
    (b) => decodeTransportParameters(b),
    (b) => decodeFrame(b, "qmux-00"),
    (b) => decodeFrame(b, "webtransport"),
    (b) => unframeMessage(b, "arbitrary"),
  ];

  it("on arbitrary bytes, in every version", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), version, (bytes, v) => {
        for (const decode of decoders) {
          try {
            decode(bytes, v);
          } catch (err) {
            expect(err).toBeInstanceOf(MoqError);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("on mutated valid messages", () => {
    const valid = encodeSubscribe(
      { id: 3, broadcast: "live/cam0", track: "video", priority: 60, ordered: true, maxLatencyMs: 9 },
      Version.Lite03,
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: valid.byteLength - 1 }),
        fc.integer({ min: 0, max: 255 }),
        (index, value) => {
          const mutated = valid.slice();
          mutated[index] = value;
          try {
            decodeSubscribe(unframeMessage(mutated, "SUBSCRIBE"), Version.Lite03);
          } catch (err) {
            expect(err).toBeInstanceOf(MoqError);
          }
        },
      ),
    );
  });
});
