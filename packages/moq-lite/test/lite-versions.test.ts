/**
 * lite-03 and lite-04 over WebSocket: the relay offers `qmux-00.moq-lite-0X` when configured with
 * those application protocols, and the official @moq/lite 0.2.2 client (given a qmux session that
 * offers them) then skips SETUP, opens its PROBE stream, and uses the typed SUBSCRIBE responses
 * and hop-carrying ANNOUNCEs of those versions.
 */
import { connectMoq, encodeFetch, Version, WireErrorCode } from "@lvqr/moq-lite";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startRelay, waitUntil } from "./helpers.ts";
import { type PeerKind, relayScenario } from "./peers.ts";
import { RawPeer } from "./raw-peer.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

beforeAll(() => {
  vi.spyOn(console, "debug").mockImplementation(() => {});
  vi.spyOn(console, "log").mockImplementation(() => {});
  vi.spyOn(console, "info").mockImplementation(() => {});
  vi.spyOn(console, "warn").mockImplementation(() => {});
  // The official clients report their own connection closing at the end of each test as an error.
  const error = console.error.bind(console);
  vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => {
    if (String(args[0]).startsWith("fatal error running connection")) return;
    error(...args);
  });
});

const combos: Array<[PeerKind, PeerKind]> = [
  ["lite-0.2.2", "lite-0.2.2"],
  ["lvqr", "lite-0.2.2"],
  ["lite-0.2.2", "lvqr"],
];

for (const [appProtocol, version] of [
  ["moq-lite-04", Version.Lite04],
  ["moq-lite-03", Version.Lite03],
] as const) {
  describe(`${appProtocol} over qmux-00`, () => {
    for (const [publisherKind, subscriberKind] of combos) {
      it(`${publisherKind} publishes, ${subscriberKind} receives every group byte-exact`, async () => {
        const relay = await startRelay({ appProtocols: [appProtocol] });
        cleanups.push(() => relay.server.close());
        await relayScenario(relay.url("anon"), publisherKind, subscriberKind, { appProtocol }, cleanups);
        expect([...relay.server.sessions].map((session) => session.version)).toEqual([version, version]);
      }, 30_000);
    }

    it("our client negotiates it only when offered, and lite-02 otherwise", async () => {
      const relay = await startRelay({ appProtocols: [appProtocol] });
      cleanups.push(() => relay.server.close());
      const offered = await connectMoq(relay.url(), { appProtocols: [appProtocol] });
      cleanups.push(() => offered.close());
      expect(offered.version).toBe(version);
      expect(offered.session.protocol).toBe(appProtocol);
      const plain = await connectMoq(relay.url());
      cleanups.push(() => plain.close());
      expect(plain.version).toBe(Version.Lite02);
    });
  });
}

describe("lite-04 session features", () => {
  it("a server session sends GOAWAY to a lite-04 client", async () => {
    const relay = await startRelay({ appProtocols: ["moq-lite-04"] });
    cleanups.push(() => relay.server.close());
    const uris: string[] = [];
    const client = await connectMoq(relay.url(), {
      appProtocols: ["moq-lite-04"],
      onGoaway: (uri) => uris.push(uri),
    });
    cleanups.push(() => client.close());
    const [session] = [...relay.server.sessions];
    await session!.goaway("https://b.example/x");
    await waitUntil(() => uris.length === 1, 2000, "GOAWAY");
    expect(uris).toEqual(["https://b.example/x"]);
  });

  it("validates and refuses FETCH (past groups are not served), without ending the session", async () => {
    const relay = await startRelay({ appProtocols: ["moq-lite-03"] });
    cleanups.push(() => relay.server.close());
    const peer = await RawPeer.connect(relay.url(), ["qmux-00.moq-lite-03"]);
    cleanups.push(() => peer.close());
    peer.stream(
      0,
      Uint8Array.of(
        0x03,
        ...encodeFetch({ broadcast: "bbb", track: "video", priority: 1, group: 7 }, Version.Lite03),
      ),
    );
    await peer.waitFor(() => peer.frames("reset_stream").some((f) => f.id === 0), "reset");
    expect(peer.frames("reset_stream").find((f) => f.id === 0)!.code).toBe(WireErrorCode.Unsupported);
    expect(peer.closed).toBe(false);
    // A PROBE stream is finished cleanly, never reset (the official client treats a reset as fatal).
    peer.stream(4, Uint8Array.of(0x04));
    await peer.waitFor(() => peer.streamData(4).fin, "PROBE FIN");
    expect(peer.frames("reset_stream").some((f) => f.id === 4)).toBe(false);
  });
});
