/**
 * Interoperability with the official clients over WebSocket: a publisher publishes a broadcast
 * with two tracks through the relay; a subscriber finds it with announced(""), subscribes, and
 * must receive every group and frame byte-exact, including a 650 kB frame (exercising QMux flow
 * control, whose initial windows are 256 KiB per stream and 1 MiB per connection).
 */
import type { Framing } from "@lvqr/moq-lite";
import * as Net from "@moq/net";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startRelay } from "./helpers.ts";
import { type PeerKind, relayScenario } from "./peers.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

beforeAll(() => {
  // The official clients log every stream at debug/info level.
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

async function scenario(publisherKind: PeerKind, subscriberKind: PeerKind, framing: Framing): Promise<void> {
  const relay = await startRelay({ framings: [framing] });
  cleanups.push(() => relay.server.close());
  await relayScenario(relay.url("anon"), publisherKind, subscriberKind, { framings: [framing] }, cleanups);
  const stats = relay.server.stats();
  expect(stats.sessionsOpen).toBe(2);
  // One viewer session, subscribed to two tracks, is one subscriber.
  expect(stats.subscribers.get("anon/bbb")).toBe(1);
  expect(stats.bytesOut).toBeGreaterThan(650_000);
}

const combos: Array<[PeerKind, PeerKind]> = [
  ["lite-0.2.2", "lite-0.2.2"],
  ["net-0.2.8", "net-0.2.8"],
  ["lvqr", "lite-0.2.2"],
  ["lite-0.2.2", "lvqr"],
  ["lvqr", "net-0.2.8"],
  ["net-0.2.8", "lvqr"],
  ["lite-0.2.2", "net-0.2.8"],
];

for (const framing of ["qmux-00", "webtransport"] as const) {
  describe(`official clients through the relay (${framing} framing)`, () => {
    for (const [publisherKind, subscriberKind] of combos) {
      it(`${publisherKind} publishes, ${subscriberKind} receives every group byte-exact`, async () => {
        await scenario(publisherKind, subscriberKind, framing);
      }, 30_000);
    }
  });
}

describe("what @moq/watch relies on", () => {
  it("@moq/net 0.2.8 announced(<exact broadcast path>) sees the broadcast come and go", async () => {
    const relay = await startRelay();
    cleanups.push(() => relay.server.close());
    const conn = await Net.Connection.connect(new URL(relay.url("anon")));
    cleanups.push(() => conn.close());
    const broadcast = relay.origin.createBroadcast("anon/live/cam0");
    const announced = conn.announced(Net.Path.from("live/cam0"));
    const first = await announced.next();
    expect(first?.active).toBe(true);
    expect(first?.path).toBe(""); // @moq/net reports paths relative to the prefix

    broadcast.close();
    const second = await announced.next();
    expect(second).toMatchObject({ path: "", active: false });
    announced.close();
  });
});
