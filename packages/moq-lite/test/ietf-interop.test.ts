/**
 * The official clients on the moq-transport path, through the relay, against official clients
 * on the moq-lite path: a publisher publishes "bbb" with a video track (30 groups, one holding a
 * 650 kB frame and one an empty frame) and an audio track (60 one-frame groups); a subscriber on
 * the other protocol finds it with announced(""), subscribes to both, and must receive every
 * group byte-exact. Both directions, for every draft the clients can reach over WebSocket.
 *
 * Draft-14 is reached over SETUP: the relay the moq-transport client connects to prefers
 * draft-14, and its moq-lite peer connects to a second endpoint on the same origin that does
 * not (both official clients offer lite-02, lite-01 and draft-14, so one endpoint cannot tell
 * them apart). Drafts 15 to 17 are chosen by subprotocol (`qmux-00.moqt-1X`), so one endpoint
 * listing that protocol serves both clients.
 */
import { type MoqServer, OriginProducer, type ServeMoqOptions } from "@lvqr/moq-lite";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { patternBytes, sleep, startRelay } from "./helpers.ts";
import { type IetfPeerKind, ietfPublisher, ietfSubscriber } from "./ietf-peers.ts";
import { connectPublisher, connectSubscriber, type PublisherPeer, type SubscriberPeer } from "./peers.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

beforeAll(() => {
  // The official clients log every message at debug/info level.
  vi.spyOn(console, "debug").mockImplementation(() => {});
  vi.spyOn(console, "log").mockImplementation(() => {});
  vi.spyOn(console, "info").mockImplementation(() => {});
  vi.spyOn(console, "warn").mockImplementation(() => {});
  // They report their own connection closing at the end of each test as an error.
  const error = console.error.bind(console);
  vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => {
    const first = String(args[0]);
    if (first.startsWith("fatal error running connection") || first.startsWith("adapter error")) return;
    error(...args);
  });
});

const VIDEO_GROUPS = 30;
const AUDIO_GROUPS = 60;

function videoGroup(index: number): Uint8Array[] {
  if (index === 0) return [patternBytes(650_000, 1), patternBytes(1000, 2), patternBytes(5000, 3)];
  if (index === 1) return [patternBytes(300, 4), new Uint8Array(0), patternBytes(300, 5)];
  return [0, 1, 2].map((f) => patternBytes(100 + ((index * 7919 + f * 104729) % 20_000), index * 10 + f));
}

function audioGroup(index: number): Uint8Array[] {
  return [patternBytes(200 + (index % 200), 100_000 + index)];
}

interface Endpoints {
  /** Where the moq-transport client connects. */
  readonly ietfUrl: string;
  /** Where the moq-lite client connects. */
  readonly liteUrl: string;
  readonly servers: readonly MoqServer[];
}

/** One origin served by the endpoints the draft needs (see the module comment). */
async function endpoints(
  protocol: string | undefined,
  extra: Partial<ServeMoqOptions> = {},
): Promise<Endpoints> {
  const origin = new OriginProducer();
  if (!protocol) {
    const ietf = await startRelay({ origin, ietf: { preferDraft14: true }, ...extra });
    const lite = await startRelay({ origin, ...extra });
    cleanups.push(
      () => ietf.server.close(),
      () => lite.server.close(),
    );
    return { ietfUrl: ietf.url("anon"), liteUrl: lite.url("anon"), servers: [ietf.server, lite.server] };
  }
  const relay = await startRelay({ origin, appProtocols: [protocol], ...extra });
  cleanups.push(() => relay.server.close());
  return { ietfUrl: relay.url("anon"), liteUrl: relay.url("anon"), servers: [relay.server] };
}

async function scenario(publisher: PublisherPeer, subscriber: SubscriberPeer): Promise<void> {
  const writers = publisher.publish("bbb", ["video", "audio"]);
  await subscriber.waitAnnounced("bbb");
  const video = subscriber.subscribe("bbb", "video", 60);
  const audio = subscriber.subscribe("bbb", "audio", 80);
  await writers.video!.waitSubscribed();
  await writers.audio!.waitSubscribed();
  // Paced like a live source.
  for (let i = 0; i < AUDIO_GROUPS; i++) {
    if (i < VIDEO_GROUPS) writers.video!.writeGroup(videoGroup(i));
    writers.audio!.writeGroup(audioGroup(i));
    await sleep(3);
  }
  await video.waitFor(VIDEO_GROUPS);
  await audio.waitFor(AUDIO_GROUPS);
  expect([...video.groups.keys()].sort((a, b) => a - b)).toEqual([...Array(VIDEO_GROUPS).keys()]);
  for (let i = 0; i < VIDEO_GROUPS; i++)
    expect(video.groups.get(i), `video group ${i}`).toEqual(videoGroup(i));
  expect([...audio.groups.keys()].sort((a, b) => a - b)).toEqual([...Array(AUDIO_GROUPS).keys()]);
  for (let i = 0; i < AUDIO_GROUPS; i++)
    expect(audio.groups.get(i), `audio group ${i}`).toEqual(audioGroup(i));
}

const DRAFTS: ReadonlyArray<{ name: string; protocol: string | undefined; version: string }> = [
  { name: "draft-14 (over SETUP)", protocol: undefined, version: "moq-transport-14" },
  { name: "draft-15 (qmux-00.moqt-15)", protocol: "moqt-15", version: "moq-transport-15" },
  { name: "draft-16 (qmux-00.moqt-16)", protocol: "moqt-16", version: "moq-transport-16" },
  { name: "draft-17 (qmux-00.moqt-17)", protocol: "moqt-17", version: "moq-transport-17" },
];

const CLIENTS: readonly IetfPeerKind[] = ["lite-0.2.2", "net-0.2.8"];

/**
 * An official client publishes on `draft` through the relay and @moq/lite 0.2.2 on lite-02 reads
 * every group byte-exact. Returns the relay's servers, for checks on the sessions they ran.
 */
async function ietfPublishesLiteReceives(
  kind: IetfPeerKind,
  draft: (typeof DRAFTS)[number],
  relay: Partial<ServeMoqOptions> = {},
): Promise<Endpoints["servers"]> {
  const { ietfUrl, liteUrl, servers } = await endpoints(draft.protocol, relay);
  const publisher = await ietfPublisher(kind, ietfUrl, draft.protocol);
  cleanups.push(() => publisher.close());
  expect(publisher.version).toBe(draft.version);
  const subscriber = await connectSubscriber("lite-0.2.2", liteUrl);
  cleanups.push(() => subscriber.close());
  await scenario(publisher, subscriber);
  return servers;
}

for (const draft of DRAFTS) {
  describe(`official clients on ${draft.name} through the relay`, () => {
    for (const kind of CLIENTS) {
      it(`${kind} publishes on ${draft.version}; @moq/lite 0.2.2 on lite-02 receives every group byte-exact`, async () => {
        const servers = await ietfPublishesLiteReceives(kind, draft);
        const versions = servers.flatMap((server) => [...server.sessions].map((session) => session.version));
        expect(versions).toContain(0xff0dad02);
        expect(versions).toContain(0xff000000 + Number(draft.version.slice(-2)));
      }, 40_000);

      it(`@moq/lite 0.2.2 publishes on lite-02; ${kind} on ${draft.version} receives every group byte-exact`, async () => {
        const { ietfUrl, liteUrl } = await endpoints(draft.protocol);
        const publisher = await connectPublisher("lite-0.2.2", liteUrl);
        cleanups.push(() => publisher.close());
        const subscriber = await ietfSubscriber(kind, ietfUrl, draft.protocol);
        cleanups.push(() => subscriber.close());
        expect(subscriber.version).toBe(draft.version);
        await scenario(publisher, subscriber);
      }, 40_000);
    }
  });
}

describe("official clients on the legacy `webtransport` WebSocket framing", () => {
  for (const draft of [DRAFTS[0]!, DRAFTS[3]!]) {
    // @moq/net 0.2.8 offers moqt-15/16/17 only with the qmux-00 prefix (plus a bare `webtransport`,
    // which leads to SETUP): on the legacy framing it reaches draft-14 at most.
    for (const kind of draft.protocol ? (["lite-0.2.2"] as const) : CLIENTS) {
      it(`${kind} publishes on ${draft.version}; @moq/lite 0.2.2 on lite-02 receives every group byte-exact`, async () => {
        // The clients offer both framings; a relay that selects only the legacy one gets it.
        const servers = await ietfPublishesLiteReceives(kind, draft, { framings: ["webtransport"] });
        const framings = servers.flatMap((server) =>
          [...server.sessions].map((session) => (session.transport as { framing?: string }).framing),
        );
        expect(new Set(framings)).toEqual(new Set(["webtransport"]));
      }, 40_000);
    }
  }
});
