/**
 * 1,000 hostile sessions against one relay (reliability row "malformed input"): malformed and
 * truncated transport frames, SETUP and control messages, group streams that break their
 * declared sizes, flow-control violations, and random bytes on the raw TCP port. Each session
 * must be closed with the specific CONNECTION_CLOSE code for its fault (or, for bytes that are
 * not HTTP, refused by the HTTP layer), the process must never throw, and a healthy publisher and
 * subscriber on the same relay must receive every frame in order meanwhile.
 */
import { randomBytes } from "node:crypto";
import net from "node:net";
import {
  decodeSubscribe,
  encodeAnnounceInit,
  encodeClientSetup,
  encodeFrameHeader,
  encodeGroupStreamHeader,
  encodeSubscribe,
  encodeSubscribeOk,
  encodeVarint,
  type Framing,
  type OriginProducer,
  unframeMessage,
  Version,
  WireErrorCode,
} from "@lvqr/moq-lite";
import { afterEach, describe, expect, it } from "vitest";
import { startRelay, waitUntil } from "./helpers.ts";
import { RawPeer } from "./raw-peer.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((part) => [...part]));
const setup = () => encodeClientSetup({ versions: [Version.Lite02], parameters: new Map() });

interface HostileCase {
  readonly name: string;
  readonly framing: Framing;
  /** Send TRANSPORT_PARAMETERS first (qmux-00). */
  readonly params?: boolean;
  /** Do SETUP (lite-02) before the attack. */
  readonly setup?: boolean;
  /** Also announce broadcast `x` and accept the relay's subscription to track `t` (implies setup). */
  readonly publisher?: boolean;
  /** `subscribeId` is the relay's subscription when `publisher` is set. */
  readonly attack: (peer: RawPeer, i: number, subscribeId: number) => void;
  /** The CONNECTION_CLOSE code the relay must answer with. */
  readonly code: number;
}

const { Decode, ProtocolViolation, BoundsExceeded } = WireErrorCode;

/** The start of a group stream for the relay's subscription, then a frame size. */
const groupStart = (subscribeId: number, frameSize: number) =>
  concat(encodeGroupStreamHeader({ subscribeId, sequence: 0 }), encodeFrameHeader(frameSize));

const cases: HostileCase[] = [
  {
    name: "group stream that ends in the middle of a frame",
    framing: "qmux-00",
    publisher: true,
    attack: (peer, i, id) =>
      peer.stream(2, concat(groupStart(id, 1000), new Uint8Array(10 + (i % 50))), true),
    code: Decode,
  },
  {
    name: "group frame larger than the frame limit",
    framing: "webtransport",
    publisher: true,
    attack: (peer, _i, id) => peer.stream(2, concat(groupStart(id, 64 * 1024 * 1024), new Uint8Array(8))),
    code: BoundsExceeded,
  },
  {
    name: "first frame is not TRANSPORT_PARAMETERS",
    framing: "qmux-00",
    params: false,
    attack: (peer) => peer.stream(0, setup()),
    code: ProtocolViolation,
  },
  {
    name: "STREAM frame whose length runs past the message",
    framing: "qmux-00",
    attack: (peer) => peer.send(Uint8Array.of(0x0a, 0x00, 0x40, 0x50, 1, 2, 3)),
    code: Decode,
  },
  {
    name: "unknown frame type on the legacy framing",
    framing: "webtransport",
    attack: (peer) => peer.send(Uint8Array.of(0x7e, 1, 2, 3)),
    code: ProtocolViolation,
  },
  {
    name: "first stream is not CLIENT_SETUP",
    framing: "qmux-00",
    attack: (peer) => peer.stream(0, Uint8Array.of(0x05, 0x00)),
    code: ProtocolViolation,
  },
  {
    name: "CLIENT_SETUP truncated by FIN",
    framing: "qmux-00",
    attack: (peer, i) => peer.stream(0, setup().subarray(0, 3 + (i % 5)), true),
    code: Decode,
  },
  {
    name: "CLIENT_SETUP with trailing bytes",
    framing: "webtransport",
    attack: (peer) => {
      const body = setup();
      // Declare a u16 length two bytes longer, and add two garbage bytes inside it.
      const length = ((body[1]! << 8) | body[2]!) + 2;
      peer.stream(
        0,
        concat(Uint8Array.of(0x20, length >> 8, length & 0xff), body.subarray(3), Uint8Array.of(9, 9)),
      );
    },
    code: Decode,
  },
  {
    name: "SUBSCRIBE declaring a size above the message limit",
    framing: "qmux-00",
    setup: true,
    attack: (peer) => peer.stream(4, concat(Uint8Array.of(0x02), encodeVarint(1 << 20), Uint8Array.of(0, 0))),
    code: BoundsExceeded,
  },
  {
    name: "SUBSCRIBE with trailing bytes inside its size",
    framing: "qmux-00",
    setup: true,
    attack: (peer) => {
      const message = encodeSubscribe({ id: 1, broadcast: "x", track: "y", priority: 0 }, Version.Lite02);
      // message = size varint + body; grow the size by one and append a byte.
      const body = message.subarray(1);
      peer.stream(4, concat(Uint8Array.of(0x02, message[0]! + 1), body, Uint8Array.of(0)));
    },
    code: Decode,
  },
  {
    name: "SUBSCRIBE whose broadcast path is not UTF-8",
    framing: "webtransport",
    setup: true,
    // type 0x02, size 7: id 1, broadcast (2 bytes ff fe), track "v", priority 0
    attack: (peer) => peer.stream(4, Uint8Array.of(0x02, 0x07, 0x01, 0x02, 0xff, 0xfe, 0x01, 0x76, 0x00)),
    code: Decode,
  },
  {
    name: "a stream beyond the granted MAX_STREAMS",
    framing: "qmux-00",
    setup: true,
    // Client uni stream index 300 (id 300 * 4 + 2); the relay grants 256.
    attack: (peer) => peer.stream(300 * 4 + 2, Uint8Array.of(0x00)),
    code: BoundsExceeded,
  },
  {
    name: "STREAM frame at an offset that skips data",
    framing: "qmux-00",
    setup: true,
    // Type 0x0e (OFF|LEN): stream 4, offset 1000, length 1.
    attack: (peer) => peer.send(Uint8Array.of(0x0e, 0x04, 0x43, 0xe8, 0x01, 0x02)),
    code: ProtocolViolation,
  },
];

async function runHostile(
  url: string,
  origin: OriginProducer,
  c: HostileCase,
  i: number,
): Promise<number | undefined> {
  const peer = await RawPeer.connect(
    url,
    [c.framing],
    c.framing === "qmux-00" && c.params !== false ? undefined : null,
  );
  try {
    if (c.setup || c.publisher) await peer.setup();
    let subscribeId = 0;
    if (c.publisher) {
      // The relay asks for announcements on server bidi 1; announce `x`, let something on the
      // relay subscribe to `x`/`t`, and accept that SUBSCRIBE (server bidi 5).
      await peer.waitFor(() => peer.streamData(1).data.byteLength >= 3, "ANNOUNCE_PLEASE");
      peer.stream(1, encodeAnnounceInit({ suffixes: ["x"] }, Version.Lite02));
      const broadcast = await origin.consume().waitForBroadcast(`attack${i}/x`, { timeoutMs: 5000 });
      broadcast.subscribeTrack("t");
      await peer.waitFor(() => peer.streamData(5).data.byteLength > 1, "SUBSCRIBE");
      subscribeId = decodeSubscribe(
        unframeMessage(peer.streamData(5).data.subarray(1), "SUBSCRIBE"),
        Version.Lite02,
      ).id;
      peer.stream(5, encodeSubscribeOk({ priority: 0 }, Version.Lite02));
    }
    c.attack(peer, i, subscribeId);
    await peer.waitFor(
      () => peer.frames("connection_close").length > 0 || peer.closed,
      `close for ${c.name}`,
      5000,
    );
    return peer.frames("connection_close")[0]?.code;
  } finally {
    peer.close();
  }
}

/** Random bytes on the raw TCP port: the HTTP layer must refuse and close the socket. */
function randomTcp(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () =>
      socket.end(randomBytes(64 + Math.floor(Math.random() * 512))),
    );
    let reply = "";
    socket.on("data", (data) => {
      reply += data.toString("latin1");
    });
    socket.on("close", () => resolve(reply));
    socket.on("error", () => resolve(reply));
    setTimeout(() => reject(new Error("random-bytes socket not closed within 5 s")), 5000).unref();
  });
}

describe("1,000 hostile sessions", () => {
  it("each is closed with its fault's code while a healthy pair loses nothing", {
    timeout: 60_000,
  }, async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on("uncaughtException", onUncaught);
    process.on("unhandledRejection", onUncaught);
    cleanups.push(() => {
      process.off("uncaughtException", onUncaught);
      process.off("unhandledRejection", onUncaught);
    });

    const { server, url, origin } = await startRelay({ webTransport: false });
    cleanups.push(() => server.close());
    const { connectMoq } = await import("@lvqr/moq-lite");
    const publisher = await connectMoq(url("healthy"), { announceInterest: [] });
    cleanups.push(() => publisher.close());
    const track = publisher.createBroadcast("cam").createTrack("video");
    const viewer = await connectMoq(url("healthy"));
    cleanups.push(() => viewer.close());
    const consumer = (await viewer.waitForBroadcast("cam", { timeoutMs: 5000 })).subscribeTrack("video");
    await waitUntil(() => track.consumerCount === 1, 5000, "healthy subscription");

    // The healthy publisher: 10-frame groups every 20 ms per frame, until the attacks are over.
    let sending = true;
    let sent = 0;
    const publishing = (async () => {
      while (sending) {
        const group = track.appendGroup();
        for (let f = 0; f < 10; f++) {
          group.writeFrame(
            Uint8Array.of(sent >> 16, (sent >> 8) & 0xff, sent & 0xff, ...new Uint8Array(1000)),
          );
          sent++;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        group.close();
      }
    })();
    const received = new Map<number, number[]>();
    const reading = (async () => {
      for (let group = await consumer.recvGroup(); group; group = await consumer.recvGroup()) {
        const frames: number[] = [];
        received.set(group.sequence, frames);
        for (let frame = await group.readFrame(); frame; frame = await group.readFrame()) {
          frames.push((frame[0]! << 16) | (frame[1]! << 8) | frame[2]!);
        }
      }
    })();

    const port = server.address!.port;
    const outcomes = new Map<string, Map<string, number>>();
    const record = (name: string, outcome: string) => {
      const counts = outcomes.get(name) ?? new Map<string, number>();
      counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
      outcomes.set(name, counts);
    };
    const total = 1000;
    const concurrency = 40;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < total; i = next++) {
          if (i % (cases.length + 1) === cases.length) {
            const reply = await randomTcp(port);
            record(
              "random bytes on the TCP port",
              reply === "" || reply.startsWith("HTTP/1.1 400") ? "refused" : `reply ${reply.slice(0, 20)}`,
            );
            continue;
          }
          const c = cases[i % (cases.length + 1)]!;
          const code = await runHostile(url(`attack${i}`), origin, c, i);
          record(c.name, code === c.code ? "ok" : `code ${code}`);
        }
      }),
    );
    const summary = Object.fromEntries(
      [...outcomes].map(([name, counts]) => [name, Object.fromEntries(counts)]),
    );
    for (const [name, counts] of Object.entries(summary)) {
      expect(Object.keys(counts), `${name}: ${JSON.stringify(counts)}`).toEqual([
        name.startsWith("random") ? "refused" : "ok",
      ]);
    }
    expect(
      Object.values(summary).reduce((n, counts) => n + Object.values(counts).reduce((a, b) => a + b, 0), 0),
    ).toBe(total);

    sending = false;
    await publishing;
    await waitUntil(
      () => [...received.values()].reduce((n, frames) => n + frames.length, 0) >= sent,
      5000,
      "healthy frames",
    );
    // Every frame, in order inside its group, every group present.
    const all = [...received.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, frames]) => frames);
    expect(all).toEqual(Array.from({ length: sent }, (_, k) => k));
    expect(uncaught).toEqual([]);
    await waitUntil(() => server.stats().sessionsOpen === 2, 5000, "only the healthy pair left");
    viewer.close();
    await reading;
  });
});
