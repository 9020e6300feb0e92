import { TrackProducer } from "@lvqr/moq-lite";
import { describe, expect, it } from "vitest";

describe("TrackConsumer.recvGroup", () => {
  it("returns every group once in arrival order, including late older groups that nextGroup skips", async () => {
    const track = new TrackProducer("video");
    const arrival = track.consume();
    const latest = track.consume();
    for (const sequence of [0, 2, 1, 3]) track.createGroup(sequence)!.close();
    track.close();
    const seen: number[] = [];
    for (;;) {
      const group = await arrival.recvGroup();
      if (!group) break;
      seen.push(group.sequence);
    }
    expect(seen).toEqual([0, 2, 1, 3]);
    expect(arrival.lastSequence).toBe(3);
    const skipping: number[] = [];
    for (;;) {
      const group = await latest.nextGroup();
      if (!group) break;
      skipping.push(group.sequence);
    }
    expect(skipping).toEqual([0, 2, 3]);
  });

  it("starts at the newest group and returns undefined once closed", async () => {
    const track = new TrackProducer("audio");
    track.createGroup(5)!.close();
    const consumer = track.consume();
    expect((await consumer.recvGroup())!.sequence).toBe(5);
    const pending = consumer.recvGroup();
    consumer.close();
    expect(await pending).toBeUndefined();
  });
});
