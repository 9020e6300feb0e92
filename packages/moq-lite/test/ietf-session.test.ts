/**
 * moq-transport sessions against the relay: this package's own client on every draft, and a
 * hand-driven peer for what the official clients never do — request-ID flow control both ways,
 * GOAWAY, FETCH, TRACK_STATUS, PUBLISH, sub-groups other than 0, PUBLISH_DONE at the end of a
 * track, UNSUBSCRIBE, namespace subscriptions in each draft's form, and a slow subscriber.
 */
import {
  connectMoq,
  encodeIetfMessage,
  type IetfMessage,
  IetfVersion,
  type MoqClient,
  OriginProducer,
} from "@lvqr/moq-lite";
import { afterEach, describe, expect, it } from "vitest";
import { patternBytes, readGroups, sleep, startRelay, waitUntil } from "./helpers.ts";
import { IetfRawPeer, parseMessages } from "./ietf-raw-peer.ts";

const { Draft14: D14, Draft15: D15, Draft16: D16, Draft17: D17 } = IetfVersion;
const ALL = [D14, D15, D16, D17] as const;
const name = (version: IetfVersion) => `draft-${version - 0xff000000}`;
const protocols = ["moqt-15", "moqt-16", "moqt-17"];

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function relay(options: Parameters<typeof startRelay>[0] = {}) {
  const r = await startRelay({ appProtocols: protocols, webTransport: false, ...options });
  cleanups.push(() => r.server.close());
  return r;
}

async function client(
  url: string,
  version: IetfVersion | "lite",
  extra: Parameters<typeof connectMoq>[1] = {},
): Promise<MoqClient> {
  const options =
    version === "lite"
      ? {}
      : version === D14
        ? { ietf: { preferDraft14: true } }
        : { appProtocols: [`moqt-${version - 0xff000000}`] };
  const c = await connectMoq(url, { ...options, ...extra });
  cleanups.push(() => c.close());
  return c;
}

async function rawPeer(url: string, version: IetfVersion, maxRequestId = 64): Promise<IetfRawPeer> {
  const peer = await IetfRawPeer.connect(url, version);
  cleanups.push(() => peer.close());
  await peer.setup(maxRequestId);
  return peer;
}

/** The response of `msg` kind for the request on `stream` (draft-17) or with `requestId` (14 to 16). */
function response(peer: IetfRawPeer, requestId: number, stream: number, kinds: IetfMessage["kind"][]) {
  return peer.waitMessage(
    (m) =>
      kinds.includes(m.kind) &&
      (peer.version === D17 || (m as { requestId?: number }).requestId === requestId),
    kinds.join("/"),
    peer.version === D17 ? stream : undefined,
  );
}

const subscribe = (
  requestId: number,
  namespace: string[],
  track: string,
  version: IetfVersion,
): IetfMessage => ({
  kind: "subscribe",
  requestId,
  ...(version === D17 ? { requiredRequestIdDelta: 0 } : {}),
  namespace,
  track,
  priority: 128,
  groupOrder: 2,
  forward: true,
  filter: { type: 2 },
});

describe("this package's client on moq-transport", () => {
  for (const version of ALL) {
    it(`${name(version)}: publishes to a moq-lite viewer and views a moq-lite publisher, byte-exact`, async () => {
      const r = await relay({ ietf: { preferDraft14: version === D14 } });
      const ietf = await client(r.url("anon"), version);
      const lite = await client(r.url("anon"), version === D14 ? "lite" : "lite");
      expect(ietf.version).toBe(version);

      // IETF publisher -> lite viewer.
      const up = ietf.createBroadcast("up").createTrack("video");
      const remoteUp = await lite.waitForBroadcast("up", { timeoutMs: 5000 });
      const upTrack = remoteUp.subscribeTrack("video");
      const readingUp = readGroups(upTrack, 4);
      await waitUntil(() => up.consumerCount > 0, 5000, "upstream subscription");
      for (let g = 0; g < 4; g++) {
        const group = up.appendGroup();
        group.writeFrame(patternBytes(g === 0 ? 300_000 : 500, g));
        group.writeFrame(new Uint8Array(0));
        group.close();
        await sleep(5);
      }
      const gotUp = await readingUp;
      expect(gotUp.map(([s]) => s)).toEqual([0, 1, 2, 3]);
      expect(gotUp[0]![1]).toEqual([patternBytes(300_000, 0), new Uint8Array(0)]);

      // lite publisher -> IETF viewer.
      const down = lite.createBroadcast("down").createTrack("audio");
      const remoteDown = await ietf.waitForBroadcast("down", { timeoutMs: 5000 });
      const downTrack = remoteDown.subscribeTrack("audio");
      const readingDown = readGroups(downTrack, 3);
      await waitUntil(() => down.consumerCount > 0, 5000, "downstream subscription");
      for (let g = 0; g < 3; g++) {
        down.writeFrame(patternBytes(1000 + g, 100 + g));
        await sleep(5);
      }
      const gotDown = await readingDown;
      expect(gotDown.map(([, frames]) => frames)).toEqual(
        [0, 1, 2].map((g) => [patternBytes(1000 + g, 100 + g)]),
      );
      // The relay counts the IETF viewer's subscription like any other.
      expect(r.server.stats().subscribers.get("anon/down")).toBe(1);
    });
  }

  it("an imported broadcast ends when its moq-transport publisher withdraws it, and its viewers see the end", async () => {
    for (const version of ALL) {
      const r = await relay({ ietf: { preferDraft14: version === D14 } });
      const ietf = await client(r.url("anon"), version);
      const broadcast = ietf.createBroadcast("gone");
      const announced = r.origin.consume().announced("anon");
      expect(await announced.next()).toMatchObject({ path: "anon/gone", active: true });
      broadcast.close();
      expect(await announced.next(), name(version)).toMatchObject({ path: "anon/gone", active: false });
      announced.close();
    }
  });
});

describe("moq-transport on the legacy `webtransport` WebSocket framing", () => {
  for (const version of ALL) {
    it(`${name(version)}: both directions, byte-exact`, async () => {
      const r = await relay({ ietf: { preferDraft14: version === D14 } });
      const ietf = await client(r.url("anon"), version, { framings: ["webtransport"] });
      expect(ietf.framing).toBe("webtransport");
      expect(ietf.version).toBe(version);
      const lite = await client(r.url("anon"), "lite");
      const up = ietf.createBroadcast("up").createTrack("video");
      const reading = readGroups(
        (await lite.waitForBroadcast("up", { timeoutMs: 5000 })).subscribeTrack("video"),
        2,
      );
      await waitUntil(() => up.consumerCount > 0, 5000, "upstream subscription");
      for (let g = 0; g < 2; g++) {
        up.writeFrame(patternBytes(30_000 + g, g));
        await sleep(5);
      }
      expect((await reading).map(([, frames]) => frames)).toEqual([
        [patternBytes(30_000, 0)],
        [patternBytes(30_001, 1)],
      ]);
      const down = lite.createBroadcast("down").createTrack("audio");
      const back = readGroups(
        (await ietf.waitForBroadcast("down", { timeoutMs: 5000 })).subscribeTrack("audio"),
        2,
      );
      await waitUntil(() => down.consumerCount > 0, 5000, "downstream subscription");
      for (let g = 0; g < 2; g++) {
        down.writeFrame(patternBytes(700 + g, 70 + g));
        await sleep(5);
      }
      expect((await back).map(([, frames]) => frames)).toEqual([
        [patternBytes(700, 70)],
        [patternBytes(701, 71)],
      ]);
    });
  }
});

describe("moq-transport over WebTransport (HTTP/2)", () => {
  for (const version of ALL) {
    it(`${name(version)}: this package's client publishes and views over WebTransport, a lite client over WebSocket`, async () => {
      const protocol = `moqt-${version - 0xff000000}`;
      // Drafts 15 to 17 by WT-Protocol; draft-14 over SETUP ("moql"), offering draft-14 alone.
      const r = await startRelay(version === D14 ? {} : { webTransportProtocols: [protocol] });
      cleanups.push(() => r.server.close());
      const ietf = await client(r.url("anon"), "lite", {
        transport: "webtransport",
        ...(version === D14
          ? { webTransportProtocols: ["moql"], ietf: { preferDraft14: true } }
          : { webTransportProtocols: [protocol] }),
      });
      expect(ietf.transport).toBe("webtransport-h2");
      expect(ietf.version).toBe(version);
      const lite = await client(r.url("anon"), "lite");
      const video = ietf.createBroadcast("wt").createTrack("video");
      const remote = await lite.waitForBroadcast("wt", { timeoutMs: 5000 });
      const reading = readGroups(remote.subscribeTrack("video"), 3);
      await waitUntil(() => video.consumerCount > 0, 5000, "upstream subscription");
      const sent: Array<[number, Uint8Array[]]> = [];
      for (let g = 0; g < 3; g++) {
        const frames = [patternBytes(40_000, g), new Uint8Array(0), patternBytes(70_000, g + 20)];
        const group = video.appendGroup();
        for (const frame of frames) group.writeFrame(frame);
        group.close();
        sent.push([group.sequence, frames]);
        await sleep(5);
      }
      expect(await reading).toEqual(sent);

      // And back: the lite client publishes, the WebTransport client views.
      const audio = lite.createBroadcast("ws").createTrack("audio");
      const back = await ietf.waitForBroadcast("ws", { timeoutMs: 5000 });
      const readingBack = readGroups(back.subscribeTrack("audio"), 3);
      await waitUntil(() => audio.consumerCount > 0, 5000, "downstream subscription");
      for (let g = 0; g < 3; g++) {
        audio.writeFrame(patternBytes(500 + g, 300 + g));
        await sleep(5);
      }
      expect((await readingBack).map(([, frames]) => frames)).toEqual(
        [0, 1, 2].map((g) => [patternBytes(500 + g, 300 + g)]),
      );
    });
  }
});

describe("request IDs", () => {
  it("the relay grants a window and raises it with MAX_REQUEST_ID as requests finish", async () => {
    const r = await relay({ ietf: { maxRequests: 4 } });
    const peer = await rawPeer(r.url("anon"), D16);
    // Client IDs are even, from 0: a window of 4 is IDs 0, 2, 4, 6.
    expect(peer.serverOptions?.get(0x02)).toBe(8n);
    for (let i = 0; i < 8; i++) {
      peer.request(subscribe(2 * i, ["missing"], "video", D16));
      await response(peer, 2 * i, 0, ["request_error"]);
      if (i === 3) await peer.waitMessage((m) => m.kind === "max_request_id", "MAX_REQUEST_ID");
    }
    const grants = peer
      .messages()
      .filter((m) => m.kind === "max_request_id")
      .map((m) => (m as { maxRequestId: number }).maxRequestId);
    expect(grants.length).toBeGreaterThanOrEqual(2);
    expect(grants).toEqual([...grants].sort((a, b) => a - b));
    expect(peer.closeFrame()).toBeUndefined();
  });

  for (const [what, ids, code] of [
    ["an ID at the maximum closes with TOO_MANY_REQUESTS", [8], 0x7],
    ["a repeated ID closes with INVALID_REQUEST_ID", [0, 0], 0x4],
    ["an ID of the server's parity closes with INVALID_REQUEST_ID", [1], 0x4],
  ] as const) {
    it(what, async () => {
      const r = await relay({ ietf: { maxRequests: 4 } });
      const peer = await rawPeer(r.url("anon"), D15);
      for (const id of ids) peer.request(subscribe(id, ["missing"], "video", D15));
      await peer.raw.waitFor(() => peer.closeFrame() !== undefined, "CONNECTION_CLOSE");
      expect(peer.closeFrame()?.code).toBe(code);
    });
  }

  it("the relay waits for the peer's credit, says REQUESTS_BLOCKED, and continues after MAX_REQUEST_ID", async () => {
    const r = await relay();
    // MAX_REQUEST_ID 1: the relay may use no ID at all (its first would be 1).
    const peer = await rawPeer(r.url("anon"), D14, 1);
    peer.request({ kind: "publish_namespace", requestId: 0, namespace: ["cam"] });
    await response(peer, 0, 0, ["request_ok"]);
    const broadcast = r.origin.consume().consume("anon/cam")!;
    const track = broadcast.subscribeTrack("video");
    const blocked = await peer.waitMessage((m) => m.kind === "requests_blocked", "REQUESTS_BLOCKED");
    expect(blocked).toEqual({ kind: "requests_blocked", maxRequestId: 1 });
    expect(peer.messages().some((m) => m.kind === "subscribe")).toBe(false);
    peer.control({ kind: "max_request_id", maxRequestId: 3 });
    const sub = await peer.waitMessage((m) => m.kind === "subscribe", "SUBSCRIBE");
    expect(sub).toMatchObject({ requestId: 1, namespace: ["cam"], track: "video" });
    track.close();
  });
});

describe("GOAWAY", () => {
  for (const version of [D14, D17]) {
    it(`${name(version)}: the relay sends GOAWAY with a URI on its control stream`, async () => {
      const r = await relay();
      const peer = await rawPeer(r.url("anon"), version);
      await waitUntil(() => [...r.server.sessions].length === 1, 5000, "session");
      await [...r.server.sessions][0]!.goaway("https://other.example/anon");
      const goaway = await peer.waitMessage((m) => m.kind === "goaway", "GOAWAY");
      expect(goaway).toMatchObject({ uri: "https://other.example/anon" });
    });
  }

  it("a client's GOAWAY with a URI, or a second GOAWAY, closes its session with PROTOCOL_VIOLATION", async () => {
    const r = await relay();
    const withUri = await rawPeer(r.url("anon"), D16);
    withUri.control({ kind: "goaway", uri: "https://x", timeoutMs: 0 });
    await withUri.raw.waitFor(() => withUri.closeFrame() !== undefined, "close");
    expect(withUri.closeFrame()?.code).toBe(0x3);
    const twice = await rawPeer(r.url("anon"), D17);
    twice.control({ kind: "goaway", uri: "", timeoutMs: 0 });
    twice.control({ kind: "goaway", uri: "", timeoutMs: 0 });
    await twice.raw.waitFor(() => twice.closeFrame() !== undefined, "close");
    expect(twice.closeFrame()).toMatchObject({ code: 0x3, reason: "second GOAWAY" });
  });

  it("this package's client hears a moq-transport GOAWAY", async () => {
    const r = await relay();
    const uris: string[] = [];
    await client(r.url("anon"), D17, { onGoaway: (uri) => uris.push(uri) });
    await waitUntil(() => [...r.server.sessions].length === 1, 5000, "session");
    await [...r.server.sessions][0]!.goaway("https://b.example/x");
    await waitUntil(() => uris.length === 1, 5000, "GOAWAY");
    expect(uris).toEqual(["https://b.example/x"]);
  });
});

describe("FETCH, TRACK_STATUS and PUBLISH", () => {
  for (const version of [D14, D16, D17]) {
    it(`${name(version)}: a joining fetch gets an empty range; standalone fetches and unknown subscriptions are refused`, async () => {
      const r = await relay();
      const track = r.origin.createBroadcast("anon/live").createTrack("video");
      track.writeFrame(patternBytes(100, 1));
      const peer = await rawPeer(r.url("anon"), version);
      const subStream = peer.request(subscribe(0, ["live"], "video", version));
      await response(peer, 0, subStream, ["subscribe_ok"]);
      const joining: IetfMessage = {
        kind: "fetch",
        requestId: 2,
        ...(version === D17 ? { requiredRequestIdDelta: 0 } : {}),
        priority: 0,
        groupOrder: 2,
        fetch: { type: 2, joiningRequestId: 0, joiningStart: 0 },
      };
      const fetchStream = peer.request(joining);
      const ok = await response(peer, 2, fetchStream, ["fetch_ok"]);
      expect(ok).toMatchObject({ endOfTrack: false });
      // The fetch data stream: FETCH_HEADER (type 0x05, request id 2), then FIN with no objects.
      await peer.raw.waitFor(
        () => peer.raw.frames("stream").some((f) => f.fin && peer.raw.streamData(f.id).data[0] === 0x05),
        "fetch stream",
      );
      const fetchData = peer.raw.frames("stream").find((f) => peer.raw.streamData(f.id).data[0] === 0x05)!;
      expect([...peer.raw.streamData(fetchData.id).data]).toEqual([0x05, 0x02]);

      const standalone = peer.request({
        ...joining,
        requestId: 4,
        fetch: {
          type: 1,
          namespace: ["live"],
          track: "video",
          start: { group: 0, object: 0 },
          end: { group: 1, object: 0 },
        },
      } as IetfMessage);
      const refused = await response(peer, 4, standalone, ["request_error"]);
      expect(refused).toMatchObject({ code: 0x3 });
      const unknown = peer.request({
        ...joining,
        requestId: 6,
        fetch: { type: 2, joiningRequestId: 40, joiningStart: 0 },
      } as IetfMessage);
      const invalid = await response(peer, 6, unknown, ["request_error"]);
      expect(invalid).toMatchObject({ code: version === D14 ? 0x7 : 0x32 });
      expect(peer.closeFrame()).toBeUndefined();
    });
  }

  it("TRACK_STATUS is answered from the origin; PUBLISH is refused", async () => {
    const r = await relay();
    r.origin.createBroadcast("anon/live").createTrack("video").writeFrame(patternBytes(10, 1));
    const d14 = await rawPeer(r.url("anon"), D14);
    d14.request({ ...subscribe(0, ["live"], "video", D14), kind: "track_status" } as IetfMessage);
    expect(await response(d14, 0, 0, ["track_status_ok"])).toMatchObject({ trackAlias: 0 });
    d14.request({ ...subscribe(2, ["nothing"], "video", D14), kind: "track_status" } as IetfMessage);
    expect(await response(d14, 2, 0, ["request_error"])).toMatchObject({
      answers: "track_status",
      code: 0x4,
    });
    d14.request({
      kind: "publish",
      requestId: 4,
      namespace: ["x"],
      track: "t",
      trackAlias: 9,
      groupOrder: 2,
      forward: true,
    });
    expect(await response(d14, 4, 0, ["request_error"])).toMatchObject({ answers: "publish", code: 0x3 });

    const d17 = await rawPeer(r.url("anon"), D17);
    const status = d17.request({
      ...subscribe(0, ["live"], "video", D17),
      kind: "track_status",
    } as IetfMessage);
    expect(await response(d17, 0, status, ["request_ok"])).toMatchObject({ parameters: {} });
    await d17.raw.waitFor(() => d17.raw.streamData(status).fin, "FIN after TRACK_STATUS");
  });
});

describe("objects from a moq-transport publisher", () => {
  it("keeps sub-group 0, drops other sub-groups, reads properties and empty objects", async () => {
    const r = await relay();
    const peer = await rawPeer(r.url("anon"), D16);
    peer.request({ kind: "publish_namespace", requestId: 0, namespace: ["cam"] });
    await response(peer, 0, 0, ["request_ok"]);
    const track = r.origin.consume().consume("anon/cam")!.subscribeTrack("video");
    const sub = (await peer.waitMessage((m) => m.kind === "subscribe", "SUBSCRIBE")) as { requestId: number };
    peer.control({
      kind: "subscribe_ok",
      requestId: sub.requestId,
      trackAlias: 7,
      expires: 0,
      groupOrder: 0,
    });
    const hex = (s: string) => Uint8Array.from(s.split(" "), (b) => Number.parseInt(b, 16));
    // Group 5 in sub-group 1 (type 0x1c: explicit sub-group id): dropped, its stream stopped
    // (left open: a stream already received in full gets no STOP_SENDING).
    const dropped = peer.uni(hex("1c 07 05 01 80 00 03 61 62 63"));
    // Group 6 in sub-group 0 with properties (type 0x19): "abc", an empty object, "de".
    peer.uni(hex("19 07 06 80 00 02 aa bb 03 61 62 63 00 00 00 00 00 00 02 64 65"), true);
    const groups = await readGroups(track, 1);
    expect(groups).toEqual([[6, [hex("61 62 63"), new Uint8Array(0), hex("64 65")]]]);
    await peer.raw.waitFor(
      () => peer.raw.frames("stop_sending").some((f) => f.id === dropped),
      "STOP_SENDING of sub-group 1",
    );
    expect(peer.closeFrame()).toBeUndefined();
    track.close();
    // The last consumer left: the relay unsubscribes.
    await peer.waitMessage((m) => m.kind === "unsubscribe", "UNSUBSCRIBE");
  });

  it("an object status the draft does not define closes the session", async () => {
    const r = await relay();
    const peer = await rawPeer(r.url("anon"), D15);
    peer.request({ kind: "publish_namespace", requestId: 0, namespace: ["cam"] });
    await response(peer, 0, 0, ["request_ok"]);
    const track = r.origin.consume().consume("anon/cam")!.subscribeTrack("video");
    const sub = (await peer.waitMessage((m) => m.kind === "subscribe", "SUBSCRIBE")) as { requestId: number };
    peer.control({
      kind: "subscribe_ok",
      requestId: sub.requestId,
      trackAlias: sub.requestId,
      expires: 0,
      groupOrder: 0,
    });
    peer.uni(Uint8Array.of(0x18, sub.requestId, 0x00, 0x80, 0x00, 0x00, 0x09), true);
    await peer.raw.waitFor(() => peer.closeFrame() !== undefined, "close");
    expect(peer.closeFrame()).toMatchObject({ code: 0x3, reason: "object status 9 is not defined" });
    track.close();
  });
});

describe("serving a moq-transport subscriber", () => {
  for (const version of ALL) {
    it(`${name(version)}: groups on sub-group 0 streams, then PUBLISH_DONE (TRACK_ENDED) after the last stream`, async () => {
      const r = await relay();
      const track = r.origin.createBroadcast("anon/live").createTrack("video");
      const peer = await rawPeer(r.url("anon"), version);
      const stream = peer.request(subscribe(0, ["live"], "video", version));
      const ok = await response(peer, 0, stream, ["subscribe_ok"]);
      // Group order is a SUBSCRIBE_OK field in 14, a parameter in 15, and gone from 16.
      expect(ok).toMatchObject({ trackAlias: 0, groupOrder: version === D14 || version === D15 ? 2 : 0 });
      for (let g = 0; g < 3; g++) track.writeFrame(patternBytes(200, g));
      track.close();
      const done = await response(peer, 0, stream, ["publish_done"]);
      expect(done).toMatchObject({ status: 0x2, streamCount: 3n });
      const groups = peer.raw
        .frames("stream")
        .filter((f) => f.id % 4 === 3 && f.fin)
        .map((f) => peer.raw.streamData(f.id).data);
      expect(groups.length).toBe(3);
      for (const data of groups) expect(data[0]).toBe(0x18);
      if (version === D17)
        await peer.raw.waitFor(() => peer.raw.streamData(stream).fin, "FIN of the request stream");
    });
  }

  it("UNSUBSCRIBE resets the group streams in flight", async () => {
    const r = await relay();
    const track = r.origin.createBroadcast("anon/live").createTrack("video");
    const open = track.appendGroup();
    open.writeFrame(patternBytes(100, 1));
    const peer = await rawPeer(r.url("anon"), D14);
    peer.request(subscribe(0, ["live"], "video", D14));
    await response(peer, 0, 0, ["subscribe_ok"]);
    await peer.raw.waitFor(() => peer.raw.frames("stream").some((f) => f.id % 4 === 3), "group stream");
    peer.control({ kind: "unsubscribe", requestId: 0 });
    await peer.raw.waitFor(
      () => peer.raw.frames("reset_stream").some((f) => f.code === 0x1),
      "RESET_STREAM (CANCELLED)",
    );
    await waitUntil(() => r.server.stats().subscribers.size === 0, 5000, "subscription ended");
    open.close();
  });

  it("drafts 14 and 15 announce with PUBLISH_NAMESPACE (once per broadcast); 16 and 17 with NAMESPACE entries", async () => {
    const r = await relay();
    const first = r.origin.createBroadcast("anon/a/one");
    for (const version of [D14, D15]) {
      const peer = await rawPeer(r.url("anon"), version);
      peer.request({ kind: "subscribe_namespace", requestId: 0, prefix: [], options: 1 });
      peer.request({ kind: "subscribe_namespace", requestId: 2, prefix: ["a"], options: 1 });
      await peer.waitMessage((m) => m.kind === "publish_namespace", "PUBLISH_NAMESPACE");
      const announced = peer.messages().filter((m) => m.kind === "publish_namespace") as unknown as Array<{
        requestId: number;
        namespace: string[];
      }>;
      expect(announced.map((m) => m.namespace)).toEqual([["a", "one"]]);
      expect(announced[0]!.requestId % 2).toBe(1);
      peer.control({
        kind: "request_ok",
        ...(version === D14 ? { answers: "publish_namespace" } : {}),
        requestId: announced[0]!.requestId,
        parameters: {},
      } as IetfMessage);
      peer.control({ kind: "unsubscribe_namespace", requestId: 2 });
      await sleep(50);
      expect(peer.messages().some((m) => m.kind === "publish_namespace_done")).toBe(false);
      peer.control({ kind: "unsubscribe_namespace", requestId: 0 });
      expect(
        await peer.waitMessage((m) => m.kind === "publish_namespace_done", "PUBLISH_NAMESPACE_DONE"),
      ).toEqual({
        kind: "publish_namespace_done",
        namespace: ["a", "one"],
      });
    }
    for (const version of [D16, D17]) {
      const peer = await IetfRawPeer.connect(r.url("anon"), version);
      cleanups.push(() => peer.close());
      await peer.setup();
      // Draft-16 SUBSCRIBE_NAMESPACE opens a stream of its own (client bidi 4).
      const stream = 4;
      const msg = encodeFor(version, {
        kind: "subscribe_namespace",
        requestId: 0,
        ...(version === D17 ? { requiredRequestIdDelta: 0 } : {}),
        prefix: ["a"],
        options: 1,
      });
      peer.raw.stream(stream, msg);
      const entries = () => parseMessages(peer.raw.streamData(stream).data, version).messages;
      await peer.raw.waitFor(() => entries().length >= 2, "REQUEST_OK and NAMESPACE");
      expect(entries()[1]).toEqual({ kind: "namespace", suffix: ["one"] });
      const second = r.origin.createBroadcast("anon/a/two");
      await peer.raw.waitFor(() => entries().length >= 3, "NAMESPACE two");
      second.close();
      await peer.raw.waitFor(() => entries().length >= 4, "NAMESPACE_DONE two");
      expect(entries().slice(2)).toEqual([
        { kind: "namespace", suffix: ["two"] },
        { kind: "namespace_done", suffix: ["two"] },
      ]);
    }
    first.close();
  });
});

const encodeFor = (version: IetfVersion, msg: IetfMessage) => encodeIetfMessage(msg, version);

describe("a slow moq-transport subscriber", () => {
  it("that withholds flow-control credit holds no more than its budget, while a fast one gets every group", async () => {
    const BUDGET = 256 * 1024;
    const GROUP_BYTES = 100_000;
    const origin = new OriginProducer();
    const r = await relay({ origin, sessionLimits: { subscriberBudgetBytes: BUDGET } });
    const track = origin.createBroadcast("anon/live").createTrack("video");
    // The raw peer never returns QMux credit: after 1 MiB it stalls like a congested viewer, and
    // the groups that finish meanwhile wait in the relay's send queues.
    const slow = await rawPeer(r.url("anon"), D17);
    slow.request(subscribe(0, ["live"], "video", D17));
    const fast = await client(r.url("anon"), D16);
    const remote = await fast.waitForBroadcast("live", { timeoutMs: 5000 });
    const reading = readGroups(remote.subscribeTrack("video"), 40);
    await waitUntil(() => r.server.stats().subscribers.get("anon/live") === 2, 5000, "two subscriptions");
    const slowSession = [...r.server.sessions].find((s) => s.version === D17)!;
    let maxBuffered = 0;
    for (let g = 0; g < 40; g++) {
      track.writeFrame(patternBytes(GROUP_BYTES, g));
      await sleep(2);
      maxBuffered = Math.max(maxBuffered, slowSession.stats().bufferedBytes);
    }
    const got = await reading;
    expect(got.length).toBe(40);
    for (const [sequence, frames] of got)
      expect(frames, `group ${sequence}`).toEqual([patternBytes(GROUP_BYTES, sequence)]);
    await slow.raw.waitFor(
      () => slow.raw.frames("reset_stream").some((f) => f.code === 0x5),
      "TOO_FAR_BEHIND resets",
    );
    // 4 MB went to the fast subscriber; the stalled one holds the budget plus the group in flight.
    expect(maxBuffered).toBeLessThanOrEqual(BUDGET + GROUP_BYTES + 1024);
    expect(slowSession.stats().bytesOut).toBeLessThan(1.1 * 1024 * 1024);
    expect(slowSession.stats().subscriptions).toBe(1);
  }, 20_000);
});
