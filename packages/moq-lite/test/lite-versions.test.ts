/**
 * lite-03 and lite-04 over WebSocket: the relay offers `qmux-00.moq-lite-0X` when configured with
 * those application protocols, and the official @moq/lite 0.2.2 client (given a qmux session that
 * offers them) then skips SETUP, opens its PROBE stream, and uses the typed SUBSCRIBE responses
 * and hop-carrying ANNOUNCEs of those versions.
 */
import { connectMoq, Version } from "@lvqr/moq-lite";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startRelay } from "./helpers.ts";
import { type PeerKind, relayScenario } from "./peers.ts";

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
