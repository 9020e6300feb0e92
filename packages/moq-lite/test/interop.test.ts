/**
 * Interoperability with the official clients over WebSocket: a publisher publishes a broadcast
 * with two tracks through the relay; a subscriber finds it with announced(""), subscribes, and
 * must receive every group and frame byte-exact, including a 650 kB frame (exercising QMux flow
 * control, whose initial windows are 256 KiB per stream and 1 MiB per connection).
 */
import type { Framing } from "@lvqr/moq-lite";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { patternBytes, sleep, startRelay } from "./helpers.ts";
import { connectPublisher, connectSubscriber, type PeerKind } from "./peers.ts";

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
});

const VIDEO_GROUPS = 30;
const AUDIO_GROUPS = 60;

function videoGroup(index: number): Uint8Array[] {
  if (index === 0) return [patternBytes(650_000, 1), patternBytes(1000, 2), patternBytes(5000, 3)];
  return [0, 1, 2].map((f) => patternBytes(100 + ((index * 7919 + f * 104729) % 20_000), index * 10 + f));
}

function audioGroup(index: number): Uint8Array[] {
  return [patternBytes(200 + (index % 200), 100_000 + index)];
}

async function scenario(publisherKind: PeerKind, subscriberKind: PeerKind, framing: Framing): Promise<void> {
  const relay = await startRelay({ framings: [framing] });
  cleanups.push(() => relay.server.close());
  const publisher = await connectPublisher(publisherKind, relay.url("anon"), [framing]);
  cleanups.push(() => publisher.close());
  const writers = publisher.publish("bbb", ["video", "audio"]);

  const subscriber = await connectSubscriber(subscriberKind, relay.url("anon"), [framing]);
  cleanups.push(() => subscriber.close());
  await subscriber.waitAnnounced("bbb");
  const video = subscriber.subscribe("bbb", "video", 60);
  const audio = subscriber.subscribe("bbb", "audio", 80);
  await writers.video!.waitSubscribed();
  await writers.audio!.waitSubscribed();

  // Paced like a live source: every group starts after the previous one was handed on.
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

  const stats = relay.server.stats();
  expect(stats.sessionsOpen).toBe(2);
  expect(stats.subscribers.get("anon/bbb")).toBe(2);
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
