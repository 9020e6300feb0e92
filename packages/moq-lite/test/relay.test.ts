import { connectMoq } from "@lvqr/moq-lite";
import { afterEach, describe, expect, it } from "vitest";
import { patternBytes, readAllGroups, startRelay } from "./helpers.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("relay with our own client on both sides", () => {
  for (const framing of ["qmux-00", "webtransport"] as const) {
    it(`relays groups byte-exact over ${framing}`, async () => {
      const relay = await startRelay();
      cleanups.push(() => relay.server.close());
      const publisher = await connectMoq(relay.url("anon"), { framings: [framing] });
      cleanups.push(() => publisher.close());
      expect(publisher.framing).toBe(framing);
      const broadcast = publisher.createBroadcast("bbb");
      const video = broadcast.createTrack("video");
      const first = video.appendGroup();
      first.writeFrame(patternBytes(100, 1));

      const subscriber = await connectMoq(relay.url("anon"), { framings: [framing] });
      cleanups.push(() => subscriber.close());
      const remote = await subscriber.waitForBroadcast("bbb", { timeoutMs: 5000 });
      const track = remote.subscribeTrack("video");
      const reading = readAllGroups(track, 3);
      await new Promise((r) => setTimeout(r, 100));
      first.writeFrame(patternBytes(700_000, 2));
      first.close();
      for (let g = 1; g < 3; g++) {
        const group = video.appendGroup();
        for (let f = 0; f < 5; f++) group.writeFrame(patternBytes(1000 + f, g * 10 + f));
        group.close();
      }
      const groups = await reading;
      expect(groups.map(([seq]) => seq)).toEqual([0, 1, 2]);
      expect(groups[0]![1]).toEqual([patternBytes(100, 1), patternBytes(700_000, 2)]);
      expect(groups[2]![1][4]).toEqual(patternBytes(1004, 24));
    });
  }
});
