/**
 * The QMux transport against a hand-driven peer: transport parameters first, QUIC flow control
 * in both directions (the §7 #44 replay), stream limits, STOP_SENDING, frame sizes, the legacy
 * framing, the send scheduler's priorities, and ping/pong liveness.
 */
import http from "node:http";
import {
  type BroadcastConsumer,
  decodeAnnouncePlease,
  decodeGroupHeader,
  decodeSubscribe,
  encodeAnnounceInit,
  encodeFrameHeader,
  encodeGroupStreamHeader,
  encodeMaxData,
  encodeMaxStreamData,
  encodeMaxStreams,
  encodeStopSending,
  encodeSubscribeOk,
  MAX_STREAM_PAYLOAD,
  QmuxSession,
  readVarintAt,
  unframeMessage,
  Version,
  WireErrorCode,
} from "@lvqr/moq-lite";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { patternBytes, readGroups, sleep, startRelay, waitUntil } from "./helpers.ts";
import { CLIENT_DEFAULT_PARAMS, RawPeer } from "./raw-peer.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function relayWithPeer(
  framing: "qmux-00" | "webtransport" = "qmux-00",
  params = CLIENT_DEFAULT_PARAMS,
  options: Parameters<typeof startRelay>[0] = {},
) {
  const relay = await startRelay(options);
  cleanups.push(() => relay.server.close());
  const peer = await RawPeer.connect(relay.url("anon"), [framing], params);
  cleanups.push(() => peer.close());
  return { relay, peer };
}

/** The group-stream payload bytes of server uni stream `id`, after the stream header. */
function groupPayload(peer: RawPeer, id: number): Uint8Array {
  return peer.streamData(id).data;
}

describe("QMux handshake", () => {
  it("sends TRANSPORT_PARAMETERS as its first frame, with non-zero limits", async () => {
    const { peer } = await relayWithPeer();
    await peer.waitFor(() => peer.received.length > 0, "first frame");
    const first = peer.received[0]!.frame;
    expect(first.type).toBe("transport_parameters");
    if (first.type !== "transport_parameters") return;
    for (const value of Object.values(first.params)) expect(value).toBeGreaterThan(0);
    expect(first.params.maxStreamDataBidiLocal).toBeGreaterThanOrEqual(262_144);
  });

  it("closes a qmux-00 peer whose first frame is not TRANSPORT_PARAMETERS", async () => {
    const { relay, peer } = await relayWithPeer("qmux-00", null as never);
    peer.stream(0, Uint8Array.of(0x20));
    await peer.waitFor(() => peer.closed, "close");
    const close = peer.frames("connection_close")[0]!;
    expect(close.code).toBe(WireErrorCode.ProtocolViolation);
    expect(close.reason).toMatch(/first frame must be TRANSPORT_PARAMETERS/);
    await waitUntil(() => relay.server.stats().sessionsOpen === 0, 2000, "session cleanup");
  });
});

describe("QMux flow control toward the peer (§7 #44)", () => {
  it("stops at the peer's stream window, resumes on MAX_STREAM_DATA, and never exceeds 16 360-byte payloads", async () => {
    const { relay, peer } = await relayWithPeer();
    const track = relay.origin.createBroadcast("anon/bbb").createTrack("video");
    await peer.setup();
    await peer.subscribe(4, 0, "bbb", "video", 60);
    const group = track.appendGroup();
    const frame = patternBytes(600_000, 44);
    group.writeFrame(frame);
    group.close();

    // 262 144 is the 0.0.6 default per-stream window; the server must stop exactly there.
    await peer.waitFor(() => groupPayload(peer, 3).byteLength === 262_144, "first window");
    await sleep(150);
    expect(groupPayload(peer, 3).byteLength).toBe(262_144);

    peer.send(encodeMaxStreamData(3, 406_148));
    await peer.waitFor(() => groupPayload(peer, 3).byteLength === 406_148, "second window");
    await sleep(100);
    expect(groupPayload(peer, 3).byteLength).toBe(406_148);

    peer.send(encodeMaxStreamData(3, 10_000_000));
    await peer.waitFor(() => peer.streamData(3).fin, "FIN");
    const header = encodeGroupStreamHeader({ subscribeId: 0, sequence: 0 });
    const expected = Uint8Array.from([...header, ...encodeFrameHeader(frame.byteLength), ...frame]);
    expect(groupPayload(peer, 3)).toEqual(expected);
    for (const { frame: f, messageBytes } of peer.received) {
      if (f.type !== "stream") continue;
      expect(f.data.byteLength).toBeLessThanOrEqual(MAX_STREAM_PAYLOAD);
      expect(messageBytes).toBeLessThanOrEqual(16_384);
    }
  });

  it("stops at the peer's connection window until MAX_DATA", async () => {
    const params = { ...CLIENT_DEFAULT_PARAMS, maxStreamDataUni: 10_000_000 };
    const { relay, peer } = await relayWithPeer("qmux-00", params);
    const track = relay.origin.createBroadcast("anon/bbb").createTrack("video");
    await peer.setup();
    await peer.subscribe(4, 0, "bbb", "video");
    track.writeFrame(patternBytes(1_500_000, 3));
    const streamBytes = () => peer.frames("stream").reduce((n, f) => n + f.data.byteLength, 0);
    await peer.waitFor(() => streamBytes() === 1_048_576, "connection window");
    await sleep(150);
    expect(streamBytes()).toBe(1_048_576);
    peer.send(encodeMaxData(4_000_000));
    await peer.waitFor(() => peer.streamData(3).fin, "FIN");
  });

  it("opens no more uni streams than the peer's MAX_STREAMS allows, then continues when raised", async () => {
    const { relay, peer } = await relayWithPeer("qmux-00", { ...CLIENT_DEFAULT_PARAMS, maxStreamsUni: 2 });
    const track = relay.origin.createBroadcast("anon/bbb").createTrack("audio");
    await peer.setup();
    await peer.subscribe(4, 0, "bbb", "audio");
    for (let i = 0; i < 5; i++) track.writeFrame(patternBytes(10, i));
    const uniIds = () =>
      new Set(
        peer
          .frames("stream")
          .filter((f) => f.id % 4 === 3)
          .map((f) => f.id),
      );
    await peer.waitFor(() => uniIds().size === 2, "two uni streams");
    await sleep(150);
    expect([...uniIds()].sort((a, b) => a - b)).toEqual([3, 7]);
    peer.send(encodeMaxStreams(false, 5));
    await peer.waitFor(
      () => uniIds().size === 5 && [...uniIds()].every((id) => peer.streamData(id).fin),
      "five groups",
    );
    const sequences = [...uniIds()].map((id) => {
      const data = groupPayload(peer, id);
      return decodeGroupHeader(unframeMessage(data.subarray(1, 2 + data[1]!), "GROUP")).sequence;
    });
    expect(sequences.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
  });

  it("answers STOP_SENDING with RESET_STREAM at once and sends nothing more on that stream", async () => {
    const { relay, peer } = await relayWithPeer();
    const track = relay.origin.createBroadcast("anon/bbb").createTrack("video");
    await peer.setup();
    await peer.subscribe(4, 0, "bbb", "video");
    track.writeFrame(patternBytes(600_000, 5));
    await peer.waitFor(() => groupPayload(peer, 3).byteLength === 262_144, "first window");
    peer.send(encodeStopSending(3, 0));
    await peer.waitFor(() => peer.frames("reset_stream").some((f) => f.id === 3), "RESET_STREAM");
    expect(peer.frames("reset_stream").find((f) => f.id === 3)).toEqual({
      type: "reset_stream",
      id: 3,
      code: 0,
      finalSize: 262_144,
    });
    const framesBefore = peer.frames("stream").filter((f) => f.id === 3).length;
    peer.send(encodeMaxStreamData(3, 10_000_000));
    await sleep(200);
    expect(peer.frames("stream").filter((f) => f.id === 3).length).toBe(framesBefore);
  });
});

describe("QMux flow control from the peer", () => {
  /** Makes the raw peer a publisher of `x`/`t` and returns the relay-side consumer. */
  async function peerPublisher(options: Parameters<typeof startRelay>[0] = {}) {
    const { relay, peer } = await relayWithPeer("qmux-00", CLIENT_DEFAULT_PARAMS, options);
    await peer.setup();
    // The relay asks for announcements on server bidi 1 right after SETUP.
    await peer.waitFor(() => peer.streamData(1).data.byteLength >= 3, "ANNOUNCE_PLEASE");
    const please = peer.streamData(1).data;
    expect(please[0]).toBe(0x01);
    expect(
      decodeAnnouncePlease(unframeMessage(please.subarray(1), "ANNOUNCE_PLEASE"), Version.Lite02).prefix,
    ).toBe("");
    peer.stream(1, encodeAnnounceInit({ suffixes: ["x"] }, Version.Lite02));
    const consumer: BroadcastConsumer = await relay.origin
      .consume()
      .waitForBroadcast("anon/x", { timeoutMs: 2000 });
    return { relay, peer, consumer };
  }

  it("grants MAX_STREAM_DATA / MAX_DATA as it reads, so a 3 MB upload completes", async () => {
    const { peer, consumer } = await peerPublisher();
    const track = consumer.subscribeTrack("t");
    const reading = readGroups(track, 1);
    await peer.waitFor(() => peer.streamData(5).data.byteLength > 0, "SUBSCRIBE");
    const subscribe = decodeSubscribe(
      unframeMessage(peer.streamData(5).data.subarray(1), "SUBSCRIBE"),
      Version.Lite02,
    );
    expect(subscribe).toMatchObject({ broadcast: "x", track: "t" });
    peer.stream(5, encodeSubscribeOk({ priority: 0 }, Version.Lite02));

    const frame = patternBytes(3_000_000, 9);
    const upload = Uint8Array.from([
      ...encodeGroupStreamHeader({ subscribeId: subscribe.id, sequence: 0 }),
      ...encodeFrameHeader(frame.byteLength),
      ...frame,
    ]);
    // Send only as far as the relay's credit allows, as a real client must.
    const serverParams = peer.frames("transport_parameters")[0]!.params;
    let sent = 0;
    const streamLimit = () =>
      Math.max(
        serverParams.maxStreamDataUni,
        ...peer
          .frames("max_stream_data")
          .filter((f) => f.id === 2)
          .map((f) => f.max),
      );
    const connLimit = () => Math.max(serverParams.maxData, ...peer.frames("max_data").map((f) => f.max));
    while (sent < upload.byteLength) {
      const allowed = Math.min(streamLimit(), connLimit() - 200) - sent;
      if (allowed <= 0) {
        await sleep(5);
        continue;
      }
      const n = Math.min(allowed, MAX_STREAM_PAYLOAD, upload.byteLength - sent);
      peer.stream(2, upload.subarray(sent, sent + n), sent + n === upload.byteLength);
      sent += n;
    }
    const [[sequence, frames]] = (await reading) as [[number, Uint8Array[]]];
    expect(sequence).toBe(0);
    expect(frames).toEqual([frame]);
    expect(peer.frames("max_stream_data").some((f) => f.id === 2)).toBe(true);
    expect(peer.closed).toBe(false);
  });

  it("closes a peer that sends past its stream window", async () => {
    const { relay, peer, consumer } = await peerPublisher({ transportLimits: { maxStreamData: 4096 } });
    consumer.subscribeTrack("t");
    await peer.waitFor(() => peer.streamData(5).data.byteLength > 0, "SUBSCRIBE");
    peer.stream(5, encodeSubscribeOk({ priority: 0 }, Version.Lite02));
    const subscribeId = decodeSubscribe(
      unframeMessage(peer.streamData(5).data.subarray(1), "SUBSCRIBE"),
      Version.Lite02,
    ).id;
    const header = Uint8Array.of(
      ...encodeGroupStreamHeader({ subscribeId, sequence: 0 }),
      ...encodeFrameHeader(8000),
    );
    // One STREAM frame larger than the 4 KiB window the relay advertised.
    peer.stream(2, Uint8Array.of(...header, ...new Uint8Array(8000)));
    await peer.waitFor(() => peer.closed, "close");
    const close = peer.frames("connection_close")[0]!;
    expect(close.code).toBe(WireErrorCode.BoundsExceeded);
    expect(close.reason).toMatch(/flow control: stream 2/);
    await waitUntil(() => relay.server.stats().sessionsOpen === 0, 2000, "session cleanup");
  });

  it("closes a peer that opens more streams than MAX_STREAMS", async () => {
    const { peer } = await relayWithPeer();
    await peer.setup();
    const limit = peer.frames("transport_parameters")[0]!.params.maxStreamsUni;
    peer.stream(limit * 4 + 2, Uint8Array.of(0)); // uni stream index `limit`: one past the grant
    await peer.waitFor(() => peer.closed, "close");
    expect(peer.frames("connection_close")[0]!.reason).toMatch(/MAX_STREAMS is/);
  });
});

describe("legacy framing", () => {
  it("delivers a 600 kB frame in STREAM frames of at most 16 360 bytes with no flow-control frames", async () => {
    const { relay, peer } = await relayWithPeer("webtransport");
    const track = relay.origin.createBroadcast("anon/bbb").createTrack("video");
    await peer.setup();
    await peer.subscribe(4, 0, "bbb", "video");
    const frame = patternBytes(600_000, 6);
    track.writeFrame(frame);
    await peer.waitFor(() => peer.streamData(3).fin, "FIN");
    expect(groupPayload(peer, 3).subarray(-frame.byteLength)).toEqual(frame);
    const types = new Set(peer.received.map((r) => r.frame.type));
    expect([...types].sort()).toEqual(["stream"]);
    expect(Math.max(...peer.frames("stream").map((f) => f.data.byteLength))).toBe(MAX_STREAM_PAYLOAD);
  });
});

describe("send scheduler", () => {
  async function directSession() {
    const server = http.createServer();
    const wss = new WebSocketServer({ server, handleProtocols: () => "qmux-00" });
    const sessions: QmuxSession[] = [];
    wss.on("connection", (ws) => sessions.push(new QmuxSession(ws, { framing: "qmux-00", role: "server" })));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    cleanups.push(() => wss.close());
    const port = (server.address() as { port: number }).port;
    const peer = await RawPeer.connect(`http://127.0.0.1:${port}/`, ["qmux-00"], {
      ...CLIENT_DEFAULT_PARAMS,
      maxData: 100_000_000,
      maxStreamDataUni: 100_000_000,
    });
    cleanups.push(() => peer.close());
    await waitUntil(() => sessions.length === 1, 2000, "session");
    await sleep(20);
    return { session: sessions[0]!, peer };
  }

  it("sends a higher-priority stream's bytes first, and newer (higher order) first among equals", async () => {
    const { session, peer } = await directSession();
    const low = await session.openUni();
    const high = await session.openUni();
    const older = await session.openUni();
    const newer = await session.openUni();
    low.setPriority(1);
    high.setPriority(2);
    older.setPriority(0, 5);
    newer.setPriority(0, 6);
    for (const stream of [low, high, older, newer]) stream.write(new Uint8Array(50_000));
    expect(session.stats().bufferedBytes).toBe(200_000);
    expect(low.bufferedBytes).toBe(50_000);
    for (const stream of [low, high, older, newer]) stream.finish();
    await peer.waitFor(() => peer.frames("stream").filter((f) => f.fin).length === 4, "all streams");
    // Ids are assigned at the first transmission, so they follow the scheduling order.
    const order = peer.frames("stream").map((f) => f.id);
    const firstIndex = (id: number) => order.indexOf(id);
    const lastIndex = (id: number) => order.lastIndexOf(id);
    expect([high.id, low.id, newer.id, older.id]).toEqual([3, 7, 11, 15]);
    expect(lastIndex(high.id)).toBeLessThan(firstIndex(low.id));
    expect(lastIndex(low.id)).toBeLessThan(firstIndex(newer.id));
    expect(lastIndex(newer.id)).toBeLessThan(firstIndex(older.id));
    expect(session.stats().bufferedBytes).toBe(0);
  });

  it("reports write() backpressure at the stream high-water mark and drains", async () => {
    const { session } = await directSession();
    const stream = await session.openUni();
    expect(stream.write(new Uint8Array(10_000))).toBe(true);
    expect(stream.write(new Uint8Array(100_000))).toBe(false);
    await stream.drained();
    expect(stream.bufferedBytes).toBeLessThan(64 * 1024);
  });
});

describe("liveness", () => {
  it("drops a connection that stops answering pings", async () => {
    const { relay, peer } = await relayWithPeer("qmux-00", CLIENT_DEFAULT_PARAMS, { pingIntervalMs: 100 });
    await peer.setup();
    await waitUntil(() => relay.server.stats().sessionsOpen === 1, 2000, "session");
    // A paused socket reads nothing, so pings go unanswered.
    peer.ws.pause();
    await waitUntil(() => relay.server.stats().sessionsOpen === 0, 3000, "dead session dropped");
  });
});

describe("frame lengths on the wire", () => {
  it("uses minimal varints in STREAM headers", () => {
    const header = Uint8Array.of(0x0a, 0x03, 0x7f, 0xe8);
    expect(readVarintAt(header, 2)).toBe(16_360);
  });
});
