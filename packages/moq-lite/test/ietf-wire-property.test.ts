/**
 * Property tests for the moq-transport codecs: leading-ones varints round-trip over their whole
 * range; every control message round-trips in every draft that has it (arbitrary messages
 * shaped as that draft carries them); and no decoder, setup decoder or data-stream header reader
 * throws anything but a MoqError on arbitrary bytes.
 */
import {
  decodeIetfClientSetup,
  decodeIetfMessage,
  decodeIetfServerSetup,
  decodeIetfSetup,
  encodeIetfMessage,
  type IetfMessage,
  IetfReader,
  IetfVersion,
  leadingOnesLength,
  leadingOnesSizeBig,
  MoqError,
  type RecvStream,
  readLeadingOnesAt,
  readLeadingOnesBigAt,
  readMessageParameters,
  readSubgroupHeader,
  StreamReader,
  writeLeadingOnes,
  writeLeadingOnesBig,
} from "@lvqr/moq-lite";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

const { Draft14: D14, Draft15: D15, Draft16: D16, Draft17: D17 } = IetfVersion;
const VERSIONS = [D14, D15, D16, D17] as const;
type V = (typeof VERSIONS)[number];

const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const small = fc.integer({ min: 0, max: 1_000_000 });
const u8 = fc.integer({ min: 0, max: 255 });
const order = fc.integer({ min: 0, max: 2 });
const field = fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/);
const namespace = fc.array(field, { maxLength: 5 });
const track = fc.string({ unit: "grapheme", maxLength: 30 }).filter((s) => s === s.toWellFormed());
const reason = fc.stringMatching(/^[ -~]{0,40}$/);
const location = fc.record({ group: small, object: small });
const filter = fc.oneof(
  fc.record({ type: fc.constantFrom(1 as const, 2 as const) }),
  fc.record({ type: fc.constant(3 as const), start: location }),
  location.chain((start) =>
    fc.record({
      type: fc.constant(4 as const),
      start: fc.constant(start),
      endGroup: fc.integer({ min: start.group, max: start.group + 1000 }),
    }),
  ),
);
const streamCount = fc.bigInt({ min: 0n, max: (1n << 62n) - 1n });

/** Request header fields: draft-17 adds a Required Request ID Delta of at most half the ID. */
function request(version: V) {
  return u53.chain((requestId) =>
    version === D17
      ? fc
          .integer({ min: 0, max: Math.floor(requestId / 2) })
          .map((requiredRequestIdDelta) => ({ requestId, requiredRequestIdDelta }))
      : fc.constant({ requestId }),
  );
}

const responseId = (version: V) =>
  version === D17 ? fc.constant({}) : u53.map((requestId) => ({ requestId }));
const opt = <T>(arb: fc.Arbitrary<T>, key: string) =>
  fc.option(arb, { nil: undefined }).map((v) => (v === undefined ? {} : { [key]: v }));

/** Arbitrary messages of every kind `version` has, shaped as its decoder returns them. */
function message(version: V): fc.Arbitrary<IetfMessage> {
  const d14 = version === D14;
  const upTo16 = version !== D17;
  const nsKeys = version === D14 || version === D15;
  const kinds: Array<fc.Arbitrary<IetfMessage>> = [];
  for (const kind of ["subscribe", "track_status"] as const) {
    kinds.push(
      fc
        .tuple(
          request(version),
          namespace,
          track,
          u8,
          order,
          fc.boolean(),
          d14 ? filter : fc.option(filter, { nil: undefined }),
        )
        .map(([header, ns, name, priority, groupOrder, forward, f]) => ({
          kind,
          ...header,
          namespace: ns,
          track: name,
          priority,
          groupOrder,
          forward,
          ...(f ? { filter: f } : {}),
        })),
    );
  }
  const okShape = (kind: "subscribe_ok" | "track_status_ok") =>
    fc
      .tuple(
        responseId(version),
        u53,
        d14 ? small : fc.constant(0),
        version === D14 || version === D15 ? order : fc.constant(0),
        opt(location, "largest"),
      )
      .map(
        ([id, trackAlias, expires, groupOrder, largest]) =>
          ({ kind, ...id, trackAlias, expires, groupOrder, ...largest }) as IetfMessage,
      );
  kinds.push(okShape("subscribe_ok"));
  if (d14) kinds.push(okShape("track_status_ok"));
  kinds.push(
    fc
      .tuple(
        responseId(version),
        d14
          ? fc.constantFrom(
              "subscribe",
              "publish_namespace",
              "subscribe_namespace",
              "fetch",
              "track_status",
              "publish",
            )
          : fc.constant(undefined),
        u53,
        version === D16 || version === D17 ? u53 : fc.constant(0),
        reason,
      )
      .map(
        ([id, answers, code, retryInterval, text]) =>
          ({
            kind: "request_error",
            ...(answers ? { answers } : {}),
            ...id,
            code,
            retryInterval,
            reason: text,
          }) as IetfMessage,
      ),
  );
  kinds.push(
    d14
      ? fc
          .tuple(u53, fc.constantFrom("publish_namespace" as const, "subscribe_namespace" as const))
          .map(
            ([requestId, answers]) =>
              ({ kind: "request_ok", answers, requestId, parameters: {} }) as IetfMessage,
          )
      : fc
          .tuple(responseId(version), opt(small, "expires"), opt(location, "largest"))
          .map(
            ([id, expires, largest]) =>
              ({ kind: "request_ok", ...id, parameters: { ...expires, ...largest } }) as IetfMessage,
          ),
  );
  kinds.push(
    d14
      ? fc.tuple(u53, u53, location, small, u8, fc.boolean()).map(
          ([requestId, existingRequestId, start, endGroupPlusOne, priority, forward]) =>
            ({
              kind: "request_update",
              requestId,
              existingRequestId,
              start,
              endGroupPlusOne,
              priority,
              forward,
            }) as IetfMessage,
        )
      : fc
          .tuple(
            version === D17
              ? request(version)
              : fc
                  .tuple(u53, u53)
                  .map(([requestId, existingRequestId]) => ({ requestId, existingRequestId })),
            opt(u8, "priority"),
            opt(fc.boolean(), "forward"),
            opt(filter, "filter"),
          )
          .map(
            ([header, priority, forward, f]) =>
              ({ kind: "request_update", ...header, ...priority, ...forward, ...f }) as IetfMessage,
          ),
  );
  if (upTo16) {
    kinds.push(u53.map((requestId) => ({ kind: "unsubscribe", requestId }) as IetfMessage));
    kinds.push(u53.map((requestId) => ({ kind: "fetch_cancel", requestId }) as IetfMessage));
    kinds.push(u53.map((maxRequestId) => ({ kind: "max_request_id", maxRequestId }) as IetfMessage));
    kinds.push(u53.map((maxRequestId) => ({ kind: "requests_blocked", maxRequestId }) as IetfMessage));
    kinds.push(
      nsKeys
        ? namespace.map((ns) => ({ kind: "publish_namespace_done", namespace: ns }) as IetfMessage)
        : u53.map((requestId) => ({ kind: "publish_namespace_done", requestId }) as IetfMessage),
    );
    kinds.push(
      fc
        .tuple(
          nsKeys ? namespace.map((ns) => ({ namespace: ns })) : u53.map((requestId) => ({ requestId })),
          u53,
          reason,
        )
        .map(
          ([key, code, text]) =>
            ({ kind: "publish_namespace_cancel", ...key, code, reason: text }) as IetfMessage,
        ),
    );
  }
  if (nsKeys)
    kinds.push(u53.map((requestId) => ({ kind: "unsubscribe_namespace", requestId }) as IetfMessage));
  if (!nsKeys) {
    kinds.push(namespace.map((suffix) => ({ kind: "namespace", suffix }) as IetfMessage));
    kinds.push(namespace.map((suffix) => ({ kind: "namespace_done", suffix }) as IetfMessage));
  }
  if (version === D17) {
    kinds.push(
      fc
        .tuple(namespace, track)
        .map(([suffix, name]) => ({ kind: "publish_blocked", suffix, track: name }) as IetfMessage),
    );
  }
  kinds.push(
    fc
      .tuple(responseId(version), u53, reason)
      .map(
        ([id, status, text]) =>
          ({ kind: "publish_done", ...id, status, streamCount: 0n, reason: text }) as IetfMessage,
      ),
    fc
      .tuple(responseId(version), streamCount)
      .map(
        ([id, count]) =>
          ({ kind: "publish_done", ...id, status: 2, streamCount: count, reason: "" }) as IetfMessage,
      ),
    fc
      .tuple(request(version), namespace)
      .map(([header, ns]) => ({ kind: "publish_namespace", ...header, namespace: ns }) as IetfMessage),
    fc
      .tuple(request(version), namespace, version === D16 || version === D17 ? order : fc.constant(1))
      .map(
        ([header, prefix, options]) =>
          ({ kind: "subscribe_namespace", ...header, prefix, options }) as IetfMessage,
      ),
    fc
      .tuple(
        request(version),
        u8,
        order,
        fc.oneof(
          fc
            .tuple(namespace, track, location, location)
            .map(([ns, name, start, end]) => ({ type: 1 as const, namespace: ns, track: name, start, end })),
          fc
            .tuple(fc.constantFrom(2 as const, 3 as const), u53, small)
            .map(([type, joiningRequestId, joiningStart]) => ({ type, joiningRequestId, joiningStart })),
        ),
      )
      .map(
        ([header, priority, groupOrder, fetch]) =>
          ({ kind: "fetch", ...header, priority, groupOrder, fetch }) as IetfMessage,
      ),
    fc
      .tuple(responseId(version), d14 ? order : fc.constant(0), fc.boolean(), location)
      .map(
        ([id, groupOrder, endOfTrack, end]) =>
          ({ kind: "fetch_ok", ...id, groupOrder, endOfTrack, end }) as IetfMessage,
      ),
    fc
      .tuple(
        request(version),
        namespace,
        track,
        u53,
        d14 || version === D15 ? fc.constantFrom(1, 2) : fc.constant(2),
        opt(location, "largest"),
        fc.boolean(),
      )
      .map(
        ([header, ns, name, trackAlias, groupOrder, largest, forward]) =>
          ({
            kind: "publish",
            ...header,
            namespace: ns,
            track: name,
            trackAlias,
            groupOrder,
            forward,
            ...largest,
          }) as IetfMessage,
      ),
    fc
      .tuple(fc.stringMatching(/^[!-~]{0,60}$/), version === D17 ? small : fc.constant(0))
      .map(([uri, timeoutMs]) => ({ kind: "goaway", uri, timeoutMs }) as IetfMessage),
  );
  return fc.oneof(...kinds);
}

/** The payload and type of an encoded control message. */
function split(bytes: Uint8Array, version: V): { type: number; body: Uint8Array } {
  const r = new IetfReader(bytes, "message", version);
  const type = r.varint("type");
  const length = r.bytes(2, "length");
  const body = r.rest();
  expect(body.byteLength).toBe((length[0]! << 8) | length[1]!);
  return { type, body };
}

describe("leading-ones varints", () => {
  it("round-trip every safe integer and report their length from the first byte", () => {
    fc.assert(
      fc.property(u53, (value) => {
        const buf = new Uint8Array(9);
        const end = writeLeadingOnes(buf, 0, value);
        expect(leadingOnesLength(buf[0]!)).toBe(end);
        expect(readLeadingOnesAt(buf, 0)).toBe(value);
      }),
    );
  });
  it("round-trip the full 64-bit range as bigints", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (value) => {
        const buf = new Uint8Array(9);
        const end = writeLeadingOnesBig(buf, 0, value);
        expect(end).toBe(leadingOnesSizeBig(value));
        expect(readLeadingOnesBigAt(buf, 0)).toBe(value);
      }),
    );
  });
});

describe("control messages round-trip", () => {
  for (const version of VERSIONS) {
    it(`every message of draft-${version - 0xff000000}`, () => {
      fc.assert(
        fc.property(message(version), (msg) => {
          const encoded = encodeIetfMessage(msg, version);
          const { type, body } = split(encoded, version);
          expect(decodeIetfMessage(type, body, version)).toEqual(msg);
        }),
        { numRuns: 2000 },
      );
    });
  }
});

/** A receive stream over fixed chunks. */
function chunks(parts: Uint8Array[]): RecvStream {
  let i = 0;
  return {
    id: 3,
    read: async () => parts[i++],
    stop() {},
  };
}

const anyMoqError = (run: () => unknown) => {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(MoqError);
  }
};

describe("decoders throw only MoqError", () => {
  const bytes = fc.uint8Array({ maxLength: 96 });
  it("decodeIetfMessage on arbitrary payloads of every type, in every draft", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...VERSIONS),
        fc.integer({ min: 0, max: 0x40 }),
        bytes,
        (version, type, body) => {
          anyMoqError(() => decodeIetfMessage(type, body, version));
        },
      ),
      { numRuns: 20_000 },
    );
  });
  it("setup decoders and message parameters", () => {
    fc.assert(
      fc.property(fc.constantFrom(D14, D15, D16), bytes, (version, body) => {
        anyMoqError(() => decodeIetfClientSetup(body, version));
        anyMoqError(() => decodeIetfServerSetup(body, version));
      }),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(bytes, (body) => anyMoqError(() => decodeIetfSetup(body))),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...VERSIONS),
        fc.constantFrom("pairs" as const, "typed" as const),
        bytes,
        (version, layout, body) => {
          anyMoqError(() => readMessageParameters(new IetfReader(body, "params", version), "params", layout));
        },
      ),
      { numRuns: 5000 },
    );
  });
  it("subgroup headers from arbitrary stream chunks", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...VERSIONS),
        fc.integer({ min: 0, max: 0x40 }),
        fc.array(fc.uint8Array({ maxLength: 12 }), { maxLength: 4 }),
        async (version, type, parts) => {
          try {
            await readSubgroupHeader(new StreamReader(chunks(parts), "data stream"), type, version);
          } catch (err) {
            expect(err).toBeInstanceOf(MoqError);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
