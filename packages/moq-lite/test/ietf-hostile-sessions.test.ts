/**
 * 1,000 hostile moq-transport sessions against one relay, spread over drafts 14 to 17: broken
 * SETUP, control messages that are truncated, padded, unknown or out of place, request IDs that
 * break the flow-control rules, namespaces over the bounds, GOAWAY misuse, data streams of
 * unknown type, publishers whose objects break their declared sizes, and random or mutated bytes.
 * Each scripted fault must close its session with the draft's code for it; the fuzzed ones may
 * close it or be answered, but never take anything else down. Meanwhile healthy sessions on the
 * same relay — official @moq/lite and @moq/net clients and this package's client, on lite-02 and
 * on moq-transport — must receive every group byte-exact, and the process must never throw.
 */
import { randomBytes } from "node:crypto";
import {
  connectMoq,
  encodeIetfClientSetup,
  encodeIetfMessage,
  encodeIetfSetup,
  encodeObjectHeader,
  encodeSubgroupHeader,
  encodeVarint,
  type IetfMessage,
  IetfSessionCode,
  IetfVersion,
  type OriginProducer,
  WireErrorCode,
} from "@lvqr/moq-lite";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { patternBytes, sleep, startRelay, waitUntil } from "./helpers.ts";
import { ietfPublisher, ietfSubscriber } from "./ietf-peers.ts";
import { IetfRawPeer } from "./ietf-raw-peer.ts";
import { connectSubscriber, type GroupCollector } from "./peers.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

beforeAll(() => {
  // The official clients log every message; they report their own close at the end as an error.
  for (const level of ["debug", "log", "info", "warn"] as const)
    vi.spyOn(console, level).mockImplementation(() => {});
  const error = console.error.bind(console);
  vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => {
    const first = String(args[0]);
    if (first.startsWith("fatal error running connection") || first.startsWith("adapter error")) return;
    error(...args);
  });
});

const { Draft14: D14, Draft15: D15, Draft16: D16, Draft17: D17 } = IetfVersion;
const ALL = [D14, D15, D16, D17] as const;
const CONTROL = [D14, D15, D16] as const;
const { ProtocolViolation, InvalidRequestId, TooManyRequests } = IetfSessionCode;
/** The relay's request window for each hostile session (IDs 0 to 2 * MAX_REQUESTS - 2). */
const MAX_REQUESTS = 8;
const SETUP_TIMEOUT_MS = 1000;

const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((part) => [...part]));
const hex = (text: string) => Uint8Array.from(text.split(" "), (b) => Number.parseInt(b, 16));

const subscribe = (requestId: number, version: IetfVersion, namespace: string[] = ["x"]): IetfMessage => ({
  kind: "subscribe",
  requestId,
  ...(version === D17 ? { requiredRequestIdDelta: 0 } : {}),
  namespace,
  track: "video",
  priority: 128,
  groupOrder: 2,
  forward: true,
  filter: { type: 2 },
});

/** A control message with `extra` bytes appended inside its declared length. */
function padded(msg: IetfMessage, version: IetfVersion, extra: Uint8Array): Uint8Array {
  const bytes = encodeIetfMessage(msg, version);
  // Type 0x03 (SUBSCRIBE) is one byte in every draft; the u16 length follows.
  const length = ((bytes[1]! << 8) | bytes[2]!) + extra.byteLength;
  return concat(Uint8Array.of(bytes[0]!, length >> 8, length & 0xff), bytes.subarray(3), extra);
}

interface HostileCase {
  readonly name: string;
  /** Drafts this fault exists in, taken in turn by the sessions that run it. */
  readonly drafts: readonly IetfVersion[];
  /** Skip this side's SETUP (the attack sends its own). */
  readonly noSetup?: boolean;
  /** Announce namespace `x`, let the relay subscribe to `x`/`t`, and answer with SUBSCRIBE_OK first. */
  readonly publisher?: boolean;
  /** `alias` is the track alias of the relay's subscription when `publisher` is set. */
  readonly attack: (peer: IetfRawPeer, i: number, alias: number) => void;
  /** The CONNECTION_CLOSE code the relay must answer with; undefined for fuzz (any outcome). */
  readonly code?: number | ((version: IetfVersion) => number);
}

const cases: HostileCase[] = [
  {
    name: "SETUP truncated by FIN",
    // Draft-14 shares CLIENT_SETUP with lite-01/02 on bare qmux-00: until the version is chosen,
    // the session answers in moq-lite codes (Decode).
    drafts: ALL,
    noSetup: true,
    attack: (peer, i) => {
      if (peer.version === D17) {
        const setup = encodeIetfSetup(new Map([[0x07, new TextEncoder().encode("hostile")]]));
        peer.raw.stream(2, setup.subarray(0, 2 + (i % 3)), true);
      } else {
        const setup = encodeIetfClientSetup(
          { versions: peer.version === D14 ? [D14] : [], options: new Map([[0x02, 8n]]) },
          peer.version,
        );
        peer.raw.stream(0, setup.subarray(0, 1 + (i % 3)), true);
      }
    },
    code: (version) => (version === D14 ? WireErrorCode.Decode : ProtocolViolation),
  },
  {
    name: "no SETUP within the setup timeout",
    drafts: ALL,
    noSetup: true,
    attack: () => {},
    // Draft-14 again answers in moq-lite codes (Timeout); the others with CONTROL_MESSAGE_TIMEOUT.
    code: (version) => (version === D14 ? WireErrorCode.Timeout : IetfSessionCode.ControlMessageTimeout),
  },
  {
    name: "a request before SETUP",
    drafts: [D15, D16],
    noSetup: true,
    attack: (peer) => peer.raw.stream(0, encodeIetfMessage(subscribe(0, peer.version), peer.version)),
    code: ProtocolViolation,
  },
  {
    name: "a second SETUP stream",
    drafts: [D17],
    attack: (peer) => peer.uni(encodeIetfSetup(new Map())),
    code: ProtocolViolation,
  },
  {
    name: "CLIENT_SETUP again on the control stream",
    drafts: CONTROL,
    attack: (peer) =>
      peer.control(
        encodeIetfClientSetup(
          { versions: peer.version === D14 ? [D14] : [], options: new Map() },
          peer.version,
        ),
      ),
    code: ProtocolViolation,
  },
  {
    name: "an unknown control message type",
    drafts: ALL,
    attack: (peer, i) => peer.request(concat(encodeVarint(0x30 + (i % 8)), hex("00 02 01 02"))),
    code: ProtocolViolation,
  },
  {
    name: "SUBSCRIBE with trailing bytes inside its length",
    drafts: ALL,
    attack: (peer, i) =>
      peer.request(padded(subscribe(0, peer.version), peer.version, new Uint8Array(1 + (i % 4)))),
    code: ProtocolViolation,
  },
  {
    name: "SUBSCRIBE whose namespace has 33 fields",
    drafts: ALL,
    attack: (peer) => peer.request(rawSubscribeWithFields(peer.version, 33)),
    code: ProtocolViolation,
  },
  {
    name: "SUBSCRIBE whose namespace field is not UTF-8",
    drafts: ALL,
    attack: (peer) => peer.request(rawSubscribeWithFields(peer.version, 1, Uint8Array.of(0xff, 0xfe))),
    code: ProtocolViolation,
  },
  {
    name: "a repeated request ID",
    drafts: ALL,
    attack: (peer) => {
      peer.request(subscribe(0, peer.version, ["missing"]));
      peer.request(subscribe(0, peer.version, ["missing"]));
    },
    code: InvalidRequestId,
  },
  {
    name: "a request ID of the server's parity",
    drafts: ALL,
    attack: (peer, i) => peer.request(subscribe(1 + 2 * (i % 3), peer.version)),
    code: InvalidRequestId,
  },
  {
    name: "a request ID at the granted maximum",
    drafts: CONTROL,
    attack: (peer, i) => peer.request(subscribe(2 * MAX_REQUESTS + 2 * (i % 3), peer.version)),
    code: TooManyRequests,
  },
  {
    name: "GOAWAY from a client with a URI",
    drafts: ALL,
    attack: (peer) => peer.control({ kind: "goaway", uri: "https://elsewhere.example", timeoutMs: 0 }),
    code: ProtocolViolation,
  },
  {
    name: "MAX_REQUEST_ID that lowers the window",
    drafts: CONTROL,
    attack: (peer) => peer.control({ kind: "max_request_id", maxRequestId: 2 }),
    code: ProtocolViolation,
  },
  {
    name: "a data stream of unknown type",
    drafts: ALL,
    attack: (peer, i) => peer.uni(concat(encodeVarint(0x06 + (i % 3)), hex("01 02 03"))),
    code: ProtocolViolation,
  },
  {
    name: "an object with a status the draft does not define",
    drafts: ALL,
    publisher: true,
    attack: (peer, _i, alias) =>
      peer.uni(
        concat(
          encodeSubgroupHeader({ trackAlias: alias, group: 0, priority: 128 }, peer.version),
          hex("00 00 09"),
        ),
        true,
      ),
    code: ProtocolViolation,
  },
  {
    name: "a group stream that ends inside an object",
    drafts: ALL,
    publisher: true,
    attack: (peer, i, alias) =>
      peer.uni(
        concat(
          encodeSubgroupHeader({ trackAlias: alias, group: 0, priority: 128 }, peer.version),
          encodeObjectHeader(1000, peer.version),
          new Uint8Array(10 + (i % 50)),
        ),
        true,
      ),
    code: ProtocolViolation,
  },
  {
    name: "an object larger than the frame limit",
    drafts: ALL,
    publisher: true,
    attack: (peer, _i, alias) =>
      peer.uni(
        concat(
          encodeSubgroupHeader({ trackAlias: alias, group: 0, priority: 128 }, peer.version),
          encodeObjectHeader(64 * 1024 * 1024, peer.version),
          new Uint8Array(8),
        ),
      ),
    code: ProtocolViolation,
  },
  {
    name: "fuzz: random bytes as a request",
    drafts: ALL,
    attack: (peer, i) => peer.request(randomBytes(1 + (i % 200))),
  },
  {
    name: "fuzz: a SUBSCRIBE with random bytes changed",
    drafts: ALL,
    attack: (peer, i) => {
      const bytes = encodeIetfMessage(subscribe(0, peer.version), peer.version).slice();
      for (let k = 0; k <= i % 3; k++)
        bytes[Math.floor(Math.random() * bytes.byteLength)] = randomBytes(1)[0]!;
      peer.request(bytes);
    },
  },
  {
    name: "fuzz: a publisher's group stream with random bytes",
    drafts: ALL,
    publisher: true,
    attack: (peer, i, alias) =>
      peer.uni(
        concat(
          encodeSubgroupHeader({ trackAlias: alias, group: i, priority: 128 }, peer.version),
          randomBytes(1 + (i % 300)),
        ),
        i % 2 === 0,
      ),
  },
];

/** A SUBSCRIBE (request ID 0) whose namespace has `count` fields, each `field` (default "a"). */
function rawSubscribeWithFields(
  version: IetfVersion,
  count: number,
  field = Uint8Array.of(0x61),
): Uint8Array {
  // Encode with a one-byte field, then splice the namespace in by hand: the codec refuses to
  // write what the decoder must reject. The body follows type (1 byte) and length (2 bytes);
  // request ID 0 (and draft-17's required-request-ID delta 0) precede the namespace: count 1,
  // field length 1, "a".
  const reference = encodeIetfMessage(subscribe(0, version, ["a"]), version);
  const body = reference.subarray(3);
  const at = version === D17 ? 2 : 1;
  const namespace = concat(
    encodeVarint(count),
    ...Array.from({ length: count }, () => concat(encodeVarint(field.byteLength), field)),
  );
  const newBody = concat(body.subarray(0, at), namespace, body.subarray(at + 3));
  return concat(Uint8Array.of(reference[0]!, newBody.byteLength >> 8, newBody.byteLength & 0xff), newBody);
}

/** The draft session `i` runs its case in. */
const draftOf = (c: HostileCase, i: number) => c.drafts[Math.floor(i / cases.length) % c.drafts.length]!;

/** Runs one hostile session; returns its outcome ("close 0x3", "open", ...). */
async function runHostile(url: string, origin: OriginProducer, c: HostileCase, i: number): Promise<string> {
  const version = draftOf(c, i);
  const peer = await IetfRawPeer.connect(url, version);
  try {
    if (!c.noSetup) await peer.setup(MAX_REQUESTS * 2);
    let alias = 0;
    if (c.publisher) {
      const stream = peer.request({
        kind: "publish_namespace",
        requestId: 0,
        ...(version === D17 ? { requiredRequestIdDelta: 0 } : {}),
        namespace: ["x"],
      });
      await peer.waitMessage(
        (m) => m.kind === "request_ok",
        "REQUEST_OK",
        version === D17 ? stream : undefined,
      );
      const broadcast = await origin.consume().waitForBroadcast(`attack${i}/x`, { timeoutMs: 5000 });
      const track = broadcast.subscribeTrack("t");
      cleanupsOfRun.add(() => track.close());
      const { stream: subStream, msg } = await peer.incoming((m) => m.kind === "subscribe", "SUBSCRIBE");
      alias = (msg as { requestId: number }).requestId;
      peer.reply(subStream, {
        kind: "subscribe_ok",
        ...(version === D17 ? {} : { requestId: alias }),
        trackAlias: alias,
        expires: 0,
        groupOrder: 2,
      } as IetfMessage);
    }
    c.attack(peer, i, alias);
    const fuzz = c.code === undefined;
    try {
      await peer.raw.waitFor(
        () => peer.closeFrame() !== undefined || peer.raw.closed,
        `close for ${c.name}`,
        fuzz ? 300 : 5000,
      );
    } catch (err) {
      if (!fuzz) throw err;
    }
    const close = peer.closeFrame();
    if (close) return `close 0x${close.code.toString(16)}`;
    return peer.raw.closed ? "socket closed" : "open";
  } finally {
    peer.close();
  }
}
const cleanupsOfRun = new Set<() => void>();

/** A healthy subscription: who, and what it collected. */
interface Healthy {
  readonly name: string;
  readonly groups: GroupCollector;
  readonly expected: Map<number, Uint8Array[]>;
}

describe("1,000 hostile moq-transport sessions", () => {
  it("each scripted fault closes its session with the draft's code; healthy sessions lose nothing", {
    timeout: 120_000,
  }, async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on("uncaughtException", onUncaught);
    process.on("unhandledRejection", onUncaught);
    cleanups.push(() => {
      process.off("uncaughtException", onUncaught);
      process.off("unhandledRejection", onUncaught);
    });

    const { server, url, origin } = await startRelay({
      webTransport: false,
      appProtocols: ["moqt-17", "moqt-16", "moqt-15"],
      ietf: { maxRequests: MAX_REQUESTS },
      sessionLimits: { setupTimeoutMs: SETUP_TIMEOUT_MS },
    });
    cleanups.push(() => server.close());
    cleanups.push(() => {
      for (const cleanup of cleanupsOfRun) cleanup();
    });

    // Healthy flow 1: this package's client publishes on lite-02; official @moq/lite views on
    // lite-02, @moq/lite on moqt-15 (its own QMux session), @moq/net on the draft it prefers, and
    // this package's client on draft-14 (SETUP path).
    const publisher = await connectMoq(url("healthy"), { announceInterest: [] });
    cleanups.push(() => publisher.close());
    const track = publisher.createBroadcast("cam").createTrack("video");
    const liteViewer = await connectSubscriber("lite-0.2.2", url("healthy"));
    const lite15Viewer = await ietfSubscriber("lite-0.2.2", url("healthy"), "moqt-15");
    const netViewer = await ietfSubscriber("net-0.2.8", url("healthy"));
    const ownD14 = await connectMoq(url("healthy"), { ietf: { preferDraft14: true } });
    cleanups.push(
      () => liteViewer.close(),
      () => lite15Viewer.close(),
      () => netViewer.close(),
      () => ownD14.close(),
    );
    expect(lite15Viewer.version).toBe("moq-transport-15");
    expect(ownD14.version).toBe(D14);

    // Healthy flow 2: official @moq/net publishes on moq-transport; @moq/lite views on lite-02.
    const netPublisher = await ietfPublisher("net-0.2.8", url("healthy"));
    cleanups.push(() => netPublisher.close());
    const netTrack = netPublisher.publish("net", ["audio"]).audio!;

    const cam = new Map<number, Uint8Array[]>();
    const audio = new Map<number, Uint8Array[]>();
    const healthy: Healthy[] = [];
    for (const [name, viewer] of [
      ["@moq/lite lite-02", liteViewer],
      [`@moq/lite ${lite15Viewer.version}`, lite15Viewer],
      [`@moq/net ${netViewer.version}`, netViewer],
    ] as const) {
      await viewer.waitAnnounced("cam");
      healthy.push({ name, groups: viewer.subscribe("cam", "video", 10), expected: cam });
    }
    const ownGroups = new Map<number, Uint8Array[]>();
    const ownTrack = (await ownD14.waitForBroadcast("cam", { timeoutMs: 5000 })).subscribeTrack("video");
    void (async () => {
      for (let group = await ownTrack.recvGroup(); group; group = await ownTrack.recvGroup()) {
        const g = group;
        void (async () => {
          const frames: Uint8Array[] = [];
          for (let frame = await g.readFrame(); frame; frame = await g.readFrame())
            frames.push(new Uint8Array(frame));
          ownGroups.set(g.sequence, frames);
        })();
      }
    })();
    healthy.push({
      name: "this package on draft-14",
      groups: {
        groups: ownGroups,
        waitFor: (n, t = 10_000) => waitUntil(() => ownGroups.size >= n, t, `${n} groups`),
      },
      expected: cam,
    });
    await liteViewer.waitAnnounced("net");
    healthy.push({
      name: "@moq/lite lite-02 from @moq/net",
      groups: liteViewer.subscribe("net", "audio", 20),
      expected: audio,
    });
    await waitUntil(() => track.consumerCount === 1, 5000, "healthy subscriptions");
    await netTrack.waitSubscribed();
    await waitUntil(() => server.stats().subscribers.get("healthy/cam") === 4, 5000, "four viewers of cam");

    // The healthy publishers: 5-frame groups, one frame every 20 ms (cam) and one group every
    // 50 ms (audio), until the attacks are over.
    let sending = true;
    const publishing = (async () => {
      for (let g = 0; sending; g++) {
        const group = track.appendGroup();
        const frames: Uint8Array[] = [];
        cam.set(g, frames);
        for (let f = 0; f < 5; f++) {
          const frame = patternBytes(100 + ((g * 131 + f * 977) % 4000), g * 10 + f);
          frames.push(frame);
          group.writeFrame(frame);
          await sleep(20);
        }
        group.close();
      }
    })();
    const publishingAudio = (async () => {
      for (let g = 0; sending; g++) {
        const frames = [patternBytes(200 + (g % 300), 50_000 + g)];
        audio.set(g, frames);
        netTrack.writeGroup(frames);
        await sleep(50);
      }
    })();

    const outcomes = new Map<string, Map<string, number>>();
    const record = (name: string, outcome: string) => {
      const counts = outcomes.get(name) ?? new Map<string, number>();
      counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
      outcomes.set(name, counts);
    };
    const total = Number(process.env.IETF_HOSTILE_TOTAL ?? 1000);
    const concurrency = 40;
    let next = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < total; i = next++) {
          const c = cases[i % cases.length]!;
          const draft = draftOf(c, i);
          let outcome: string;
          try {
            outcome = await runHostile(url(`attack${i}`), origin, c, i);
          } catch (err) {
            outcome = `failed: ${(err as Error).message}`;
          }
          const code = typeof c.code === "function" ? c.code(draft) : c.code;
          const expected = code === undefined ? undefined : `close 0x${code.toString(16)}`;
          record(
            `${c.name} (draft-${draft - 0xff000000})`,
            expected === undefined ? `fuzz ${outcome}` : outcome === expected ? "ok" : outcome,
          );
        }
      }),
    );
    const elapsed = Date.now() - started;
    const summary = Object.fromEntries(
      [...outcomes].map(([name, counts]) => [name, Object.fromEntries(counts)]),
    );
    process.stdout.write(`${total} hostile sessions in ${elapsed} ms: ${JSON.stringify(summary, null, 1)}\n`);
    const wrong = Object.entries(summary).filter(([name, counts]) =>
      name.startsWith("fuzz")
        ? Object.keys(counts).some((outcome) => !/^fuzz (close 0x[0-9a-f]+|open)$/.test(outcome))
        : Object.keys(counts).join() !== "ok",
    );
    expect(wrong).toEqual([]);
    expect(
      Object.values(summary).reduce((n, counts) => n + Object.values(counts).reduce((a, b) => a + b, 0), 0),
    ).toBe(total);

    sending = false;
    await Promise.all([publishing, publishingAudio]);
    const received: Record<string, number> = {};
    for (const { name, groups, expected } of healthy) {
      await groups.waitFor(expected.size, 10_000).catch(() => {});
      received[name] = groups.groups.size;
      const missing = [...expected.keys()].filter((g) => !groups.groups.has(g));
      expect(missing, `${name}: groups missing`).toEqual([]);
      for (const [g, frames] of expected) expect(groups.groups.get(g), `${name}: group ${g}`).toEqual(frames);
    }
    process.stdout.write(`healthy groups received: ${JSON.stringify(received)}\n`);
    expect(cam.size).toBeGreaterThan(10);
    expect(uncaught).toEqual([]);
    // Only the six healthy sessions remain.
    await waitUntil(() => server.stats().sessionsOpen === 6, 5000, "only the healthy sessions left");
    // Nothing a hostile publisher announced outlives its session.
    const leftover = Array.from({ length: total }, (_, i) => `attack${i}/x`).filter((path) =>
      origin.consume().consume(path),
    );
    expect(leftover).toEqual([]);
  });
});
