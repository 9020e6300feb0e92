/**
 * Session and relay behaviour: hostile peers close only their own session, announcements
 * (exact-path prefixes, ends, roots, no echo), one shared upstream subscription per track that is
 * cancelled when unused, publisher departure, and the frame-sent hook.
 */
import {
  connectMoq,
  encodeAnnounce,
  encodeAnnounceInit,
  encodeAnnouncePlease,
  encodeFrameHeader,
  encodeGroupStreamHeader,
  encodeSubscribeOk,
  type MoqLogger,
  type ServerFrameSentEvent,
  type TrackProducer,
  Version,
  WireErrorCode,
} from "@lvqr/moq-lite";
import { afterEach, describe, expect, it } from "vitest";
import { patternBytes, readAllGroups, readGroups, sleep, startRelay, waitUntil } from "./helpers.ts";
import { RawPeer } from "./raw-peer.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function captureLogger(): MoqLogger & { lines: Array<{ level: string; fields: object; message?: string }> } {
  const lines: Array<{ level: string; fields: object; message?: string }> = [];
  const at = (level: string) => (fields: object, message?: string) => lines.push({ level, fields, message });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

async function relay(options: Parameters<typeof startRelay>[0] = {}) {
  const r = await startRelay(options);
  cleanups.push(() => r.server.close());
  return r;
}

async function client(url: string, options: Parameters<typeof connectMoq>[1] = {}) {
  const c = await connectMoq(url, options);
  cleanups.push(() => c.close());
  return c;
}

async function raw(url: string, framing: "qmux-00" | "webtransport" = "qmux-00") {
  const peer = await RawPeer.connect(url, [framing]);
  cleanups.push(() => peer.close());
  return peer;
}

/** A publisher/subscriber pair through `url`; `check()` proves a fresh group still flows. */
async function livePair(url: string, name: string, framing: "qmux-00" | "webtransport") {
  const publisher = await client(url, { framings: [framing], announceInterest: [] });
  const track = publisher.createBroadcast(name).createTrack("t");
  const subscriber = await client(url, { framings: [framing] });
  const consumer = (await subscriber.waitForBroadcast(name, { timeoutMs: 3000 })).subscribeTrack("t");
  await waitUntil(() => track.consumerCount > 0, 3000, "upstream subscription");
  let n = 0;
  return {
    async check() {
      n++;
      const reading = readGroups(consumer, 1);
      track.writeFrame(patternBytes(5000, n));
      const [[, frames]] = (await reading) as [[number, Uint8Array[]]];
      expect(frames).toEqual([patternBytes(5000, n)]);
    },
  };
}

describe("a hostile peer closes only its own session", () => {
  it("garbage from three peers closes each of them with a reason, and live pairs lose nothing", async () => {
    const logger = captureLogger();
    const { url, server } = await relay({ logger });
    const pairA = await livePair(url("room"), "a", "qmux-00");
    const pairB = await livePair(url("room"), "b", "webtransport");
    await pairA.check();
    await pairB.check();

    // 1: a first stream that is not CLIENT_SETUP.
    const notSetup = await raw(url("room"));
    notSetup.stream(0, Uint8Array.of(0x7f, 0xff));
    // 2: a legacy frame type that does not exist.
    const badFrame = await raw(url("room"), "webtransport");
    badFrame.send(Uint8Array.of(0x07, 0x00, 0x01));
    // 3: after SETUP, a SUBSCRIBE with trailing bytes inside the message.
    const badSubscribe = await raw(url("room"));
    await badSubscribe.setup();
    badSubscribe.stream(
      4,
      Uint8Array.of(0x02, 0x07, 0x00, 0x01, 0x61, 0x01, 0x62, 0x00 /* priority */, 0x00),
    );

    for (const peer of [notSetup, badFrame, badSubscribe]) await peer.waitFor(() => peer.closed, "close");
    expect(notSetup.frames("connection_close")[0]).toMatchObject({ code: WireErrorCode.ProtocolViolation });
    expect(notSetup.frames("connection_close")[0]!.reason).toMatch(/CLIENT_SETUP/);
    expect(badFrame.frames("connection_close")[0]!.reason).toMatch(/unknown frame type 0x7/);
    expect(badSubscribe.frames("connection_close")[0]).toMatchObject({ code: WireErrorCode.Decode });
    expect(badSubscribe.frames("connection_close")[0]!.reason).toMatch(/SUBSCRIBE: 1 trailing byte/);

    await pairA.check();
    await pairB.check();
    await waitUntil(() => server.stats().sessionsOpen === 4, 2000, "only the pairs remain");
    const violations = logger.lines.filter((line) => line.level === "warn");
    expect(violations).toHaveLength(3);
    for (const line of violations) expect(line.message).toMatch(/protocol violation|setup failed/);
  });

  it("closes a publisher that announces the same broadcast twice, or truncates a frame", async () => {
    const { url, origin } = await relay();
    const duplicate = await raw(url());
    await duplicate.setup();
    await duplicate.waitFor(() => duplicate.streamData(1).data.byteLength >= 3, "ANNOUNCE_PLEASE");
    duplicate.stream(1, encodeAnnounceInit({ suffixes: ["x"] }, Version.Lite02));
    duplicate.stream(1, encodeAnnounce({ active: true, suffix: "x" }, Version.Lite02));
    await duplicate.waitFor(() => duplicate.closed, "close");
    expect(duplicate.frames("connection_close")[0]).toMatchObject({ code: WireErrorCode.Duplicate });
    await waitUntil(() => origin.consume().list().length === 0, 2000, "broadcast removed");

    const truncating = await raw(url());
    await truncating.setup();
    await truncating.waitFor(() => truncating.streamData(1).data.byteLength >= 3, "ANNOUNCE_PLEASE");
    truncating.stream(1, encodeAnnounceInit({ suffixes: ["y"] }, Version.Lite02));
    const consumer = (await origin.consume().waitForBroadcast("y", { timeoutMs: 2000 })).subscribeTrack("t");
    await truncating.waitFor(() => truncating.streamData(5).data.byteLength > 0, "SUBSCRIBE");
    truncating.stream(5, encodeSubscribeOk({ priority: 0 }, Version.Lite02));
    // A frame that declares 100 bytes, then FIN after 10.
    truncating.stream(
      2,
      Uint8Array.of(...encodeGroupStreamHeader({ subscribeId: 0, sequence: 0 }), ...encodeFrameHeader(100)),
    );
    truncating.stream(2, new Uint8Array(10), true);
    await truncating.waitFor(() => truncating.closed, "close");
    expect(truncating.frames("connection_close")[0]!.reason).toMatch(/stream ended inside frame payload/);
    // Local readers of the half-received frame see the failure instead of waiting forever.
    await expect(readGroups(consumer, 1)).rejects.toThrow(/stream ended inside frame payload/);
  });

  it("closes a publisher whose frame exceeds the configured maximum", async () => {
    const { url, origin } = await relay({ sessionLimits: { maxFrameBytes: 1000 } });
    const peer = await raw(url());
    await peer.setup();
    await peer.waitFor(() => peer.streamData(1).data.byteLength >= 3, "ANNOUNCE_PLEASE");
    peer.stream(1, encodeAnnounceInit({ suffixes: ["big"] }, Version.Lite02));
    (await origin.consume().waitForBroadcast("big", { timeoutMs: 2000 })).subscribeTrack("t");
    await peer.waitFor(() => peer.streamData(5).data.byteLength > 0, "SUBSCRIBE");
    peer.stream(5, encodeSubscribeOk({ priority: 0 }, Version.Lite02));
    peer.stream(
      2,
      Uint8Array.of(...encodeGroupStreamHeader({ subscribeId: 0, sequence: 0 }), ...encodeFrameHeader(1001)),
    );
    await peer.waitFor(() => peer.closed, "close");
    expect(peer.frames("connection_close")[0]).toMatchObject({ code: WireErrorCode.BoundsExceeded });
    expect(peer.frames("connection_close")[0]!.reason).toMatch(/frame size 1001 exceeds the limit 1000/);
  });
});

describe("announcements", () => {
  it("answers an exact-path ANNOUNCE_PLEASE with ANNOUNCE_INIT [''] and then the end", async () => {
    const { url, origin } = await relay();
    const broadcast = origin.createBroadcast("bbb");
    const peer = await raw(url());
    await peer.setup();
    peer.stream(4, Uint8Array.of(0x01, ...encodeAnnouncePlease({ prefix: "bbb" }, Version.Lite02)));
    await peer.waitFor(() => peer.streamData(4).data.byteLength >= 3, "ANNOUNCE_INIT");
    expect(peer.streamData(4).data).toEqual(Uint8Array.of(0x02, 0x01, 0x00));
    broadcast.close();
    await peer.waitFor(() => peer.streamData(4).data.byteLength >= 5, "ANNOUNCE ended");
    expect(peer.streamData(4).data.subarray(3)).toEqual(Uint8Array.of(0x02, 0x00, 0x00));
  });

  it("scopes paths to the URL root and never echoes a peer's own broadcast back to it", async () => {
    const { url, origin } = await relay();
    const publisher = await client(url("anon"));
    publisher.createBroadcast("bbb");
    await origin.consume().waitForBroadcast("anon/bbb", { timeoutMs: 2000 });
    const rootViewer = await client(url());
    const roomViewer = await client(url("anon"));
    await rootViewer.waitForBroadcast("anon/bbb", { timeoutMs: 2000 });
    await roomViewer.waitForBroadcast("bbb", { timeoutMs: 2000 });
    await sleep(100);
    expect(rootViewer.remote.list()).toEqual(["anon/bbb"]);
    expect(roomViewer.remote.list()).toEqual(["bbb"]);
    expect(publisher.remote.list()).toEqual([]);
  });
});

describe("on-demand upstream subscriptions", () => {
  it("shares one upstream subscription between subscribers and cancels it when the last one leaves", async () => {
    const { url } = await relay();
    const publisher = await client(url(), { announceInterest: [] });
    const track: TrackProducer = publisher.createBroadcast("show").createTrack("video");
    const first = await client(url());
    const second = await client(url());
    const a = (await first.waitForBroadcast("show", { timeoutMs: 2000 })).subscribeTrack("video");
    const b = (await second.waitForBroadcast("show", { timeoutMs: 2000 })).subscribeTrack("video");
    await waitUntil(() => track.consumerCount === 1, 2000, "one upstream subscription");
    const readingA = readGroups(a, 1);
    const readingB = readGroups(b, 1);
    track.writeFrame(patternBytes(2000, 1));
    expect((await readingA)[0]![1]).toEqual([patternBytes(2000, 1)]);
    expect((await readingB)[0]![1]).toEqual([patternBytes(2000, 1)]);
    expect(track.consumerCount).toBe(1);
    a.close();
    await sleep(100);
    expect(track.consumerCount).toBe(1);
    b.close();
    await waitUntil(() => track.consumerCount === 0, 2000, "upstream cancelled");
  });

  it("ends the broadcast downstream when its publisher disconnects", async () => {
    const { url, server, origin } = await relay();
    const publisher = await client(url(), { announceInterest: [] });
    const track = publisher.createBroadcast("gone").createTrack("t");
    const viewer = await client(url());
    const consumer = (await viewer.waitForBroadcast("gone", { timeoutMs: 2000 })).subscribeTrack("t");
    await waitUntil(() => track.consumerCount === 1, 2000, "subscribed");
    publisher.close();
    await waitUntil(() => origin.consume().list().length === 0, 2000, "unannounced at the relay");
    await waitUntil(() => viewer.remote.list().length === 0, 2000, "unannounced downstream");
    expect(await consumer.nextGroup()).toBeUndefined();
    await waitUntil(() => server.stats().sessionsOpen === 1, 2000, "publisher session gone");
  });
});

describe("hooks and counters", () => {
  it("reports every frame handed to a subscriber with its broadcast path and ingest time", async () => {
    const events: ServerFrameSentEvent[] = [];
    const { url, server } = await relay({ onFrameSent: (event) => events.push(event) });
    const publisher = await client(url("live"), { announceInterest: [] });
    const track = publisher.createBroadcast("cam").createTrack("video");
    const viewer = await client(url("live"));
    const consumer = (await viewer.waitForBroadcast("cam", { timeoutMs: 2000 })).subscribeTrack("video");
    await waitUntil(() => track.consumerCount === 1, 2000, "subscribed");
    // Both groups are ready at once, so the newer one may be sent first: read every group.
    const reading = readAllGroups(consumer, 2);
    const before = Date.now();
    track.writeFrame(patternBytes(100, 1));
    track.writeFrame(patternBytes(70_000, 2));
    await reading;
    expect(
      events.map((e) => [e.broadcast, e.track, e.bytes]).sort((a, b) => Number(a[2]) - Number(b[2])),
    ).toEqual([
      ["live/cam", "video", 100],
      ["live/cam", "video", 70_000],
    ]);
    for (const event of events) {
      expect(event.meta?.ingestTimeMs).toBeGreaterThanOrEqual(before);
      expect(event.sentAtMs).toBeGreaterThanOrEqual(event.meta!.ingestTimeMs!);
    }
    const stats = server.stats();
    expect(stats.sessionsOpen).toBe(2);
    expect(stats.sessionsTotal).toBe(2);
    expect(stats.subscribers.get("live/cam")).toBe(1);
    expect(stats.bytesIn).toBeGreaterThan(70_100);
    expect(stats.bytesOut).toBeGreaterThan(70_100);
    viewer.close();
    await waitUntil(() => server.stats().sessionsOpen === 1, 2000, "viewer gone");
    expect(server.stats().subscribers.get("live/cam")).toBeUndefined();
    expect(server.stats().sessionsTotal).toBe(2);
  });
});
