import { OriginProducer } from "@lvqr/moq-lite";
import { afterEach, describe, expect, it } from "vitest";
import { parseFragment } from "../src/cmaf/fragment.ts";
import { EgressHub } from "../src/egress/hub.ts";
import type { RenditionTimeline, SegmentRecord } from "../src/egress/rendition.ts";
import { followed, StepFeed, settle, until } from "./egress-harness.ts";

const hubs: EgressHub[] = [];
afterEach(() => {
  for (const hub of hubs.splice(0)) hub.close();
});

function setup(options: Partial<ConstructorParameters<typeof EgressHub>[0]> = {}) {
  const origin = new OriginProducer();
  const hub = new EgressHub({ origin: origin.consume(), ...options });
  hubs.push(hub);
  return { origin, hub };
}

function durationS(segment: SegmentRecord): number {
  return segment.durationTicks / segment.init.timescale;
}

function allParts(rendition: RenditionTimeline) {
  return [...rendition.segments, ...(rendition.open ? [rendition.open] : [])].flatMap((s) =>
    s.parts.filter((p) => p.closed).map((p) => ({ segment: s, part: p })),
  );
}

describe("following an Origin broadcast", () => {
  it("segments video and audio with GOP-aligned segments and whole-frame parts", async () => {
    const { origin, hub } = setup();
    const feed = new StepFeed(origin, "live/a");
    await followed(hub, "live/a");
    await feed.advanceTo(12_900);
    await until(() => (hub.get("live/a")?.video.segments.length ?? 0) >= 6, 5000, "6 video segments");
    const egress = hub.get("live/a")!;
    const video = egress.video;
    expect(video.init?.codec).toMatch(/^avc1\./);
    expect(video.init?.width).toBe(640);
    for (const segment of video.segments) {
      expect(segment.independent).toBe(true);
      expect(durationS(segment)).toBeGreaterThanOrEqual(2);
      // Segment bytes are exactly the concatenation of its parts.
      const joined = Buffer.concat(segment.parts.map((p) => p.bytes));
      expect(Buffer.compare(joined, Buffer.from(segment.bytes))).toBe(0);
      // The first bytes are a moof whose first sample is a sync sample.
      expect(parseFragment(segment.bytes.subarray(0, segment.bytes.byteLength)).samples[0]?.keyframe).toBe(
        true,
      );
    }
    for (const { part } of allParts(video)) {
      // The part target plus at most 1 ms of timestamp rounding.
      expect(part.durationTicks / 90000).toBeLessThanOrEqual(0.201 + 1e-9);
    }
    // 1 s GOPs in 2 s segments: every part that starts with a keyframe is marked independent.
    const independent = allParts(video).filter(({ part }) => part.independent);
    expect(independent.length).toBeGreaterThanOrEqual(video.segments.length * 2);
    // Audio segments start within a frame or so of a video segment start (nearest frame once the
    // video boundary is known; audio fed ahead of video can land one frame later).
    for (const audioSegment of egress.audio.segments.slice(1)) {
      const starts = video.segments.map((s) => s.startDts / 90000);
      const start = audioSegment.startDts / audioSegment.init.timescale;
      expect(Math.min(...starts.map((s) => Math.abs(s - start)))).toBeLessThanOrEqual(0.033);
    }
    for (const { part } of allParts(egress.audio)) {
      expect(part.durationTicks / 48000).toBeLessThanOrEqual(0.2);
    }
    feed.close();
  });

  it("derives PROGRAM-DATE-TIME from one anchor plus media time (no accumulated rounding)", async () => {
    const { origin, hub } = setup();
    const feed = new StepFeed(origin, "live/pdt");
    await followed(hub, "live/pdt");
    await feed.advanceTo(40_000);
    await until(() => (hub.get("live/pdt")?.video.segments.length ?? 0) >= 16, 5000, "segments");
    const segments = hub.get("live/pdt")!.video.segments;
    const first = segments[0]!;
    for (const segment of segments) {
      const mediaMs = ((segment.startDts - first.startDts) * 1000) / 90000;
      expect(segment.pdtMs - first.pdtMs).toBeCloseTo(mediaMs, 6);
    }
    feed.close();
  });

  it("works from the bytes alone: a relayed copy without frame metadata is served the same", async () => {
    const { origin, hub } = setup();
    const feed = new StepFeed(origin, "source/a");
    await followed(hub, "source/a");
    // A relay: copies the source's catalog and media tracks group by group, frames without metadata,
    // into a broadcast of its own (what a pull from another node publishes).
    const source = origin.consume().consume("source/a")!;
    const relay = origin.createBroadcast("relay/a");
    const copies = ["catalog.json", "video", "audio"].map(async (name) => {
      const input = source.subscribeTrack(name);
      const output = relay.createTrack(name);
      for (;;) {
        const group = await input.nextGroup().catch(() => undefined);
        if (!group) break;
        const copy = output.createGroup(group.sequence) ?? output.appendGroup();
        void (async () => {
          for (;;) {
            const frame = await group.readFrame().catch(() => undefined);
            if (!frame) break;
            copy.writeFrame(frame);
          }
          copy.close();
        })();
      }
      output.close();
    });
    await followed(hub, "relay/a");
    await feed.advanceTo(8_500);
    await until(() => (hub.get("relay/a")?.video.segments.length ?? 0) >= 3, 5000, "relayed segments");
    const relayed = hub.get("relay/a")!;
    const direct = hub.get("source/a")!;
    expect(relayed.droppedFrames).toBe(0);
    expect(relayed.video.segments.every((s) => s.firstIngestMs === undefined)).toBe(true);
    expect(direct.video.segments.every((s) => s.firstIngestMs !== undefined)).toBe(true);
    // Same segmentation, same bytes, whichever way the frames came.
    for (const segment of relayed.video.segments) {
      const twin = direct.video.segments.find((s) => s.startDts === segment.startDts);
      expect(twin).toBeDefined();
      expect(Buffer.compare(Buffer.from(twin!.bytes), Buffer.from(segment.bytes))).toBe(0);
    }
    // Wall clock from arrival time instead of ingest time: close to the source's.
    expect(
      Math.abs(
        relayed.video.segments[0]!.pdtMs - direct.video.findSegment(relayed.video.segments[0]!.msn)!.pdtMs,
      ),
    ).toBeLessThan(1000);
    feed.close();
    relay.close();
    await Promise.all(copies);
  });

  it("ends on unpublish and continues with a discontinuity on republish (numbers keep growing)", async () => {
    const { origin, hub } = setup();
    const first = new StepFeed(origin, "live/re");
    await followed(hub, "live/re");
    await first.advanceTo(6_500);
    await until(() => (hub.get("live/re")?.video.segments.length ?? 0) >= 2, 5000, "segments");
    first.close();
    const egress = hub.get("live/re")!;
    await until(() => egress.ended, 2000, "ended");
    const lastMsn = egress.video.segments[egress.video.segments.length - 1]!.msn;
    expect(egress.video.open).toBeUndefined();

    // Republish with timestamps that start over (a new encoder session).
    const second = new StepFeed(origin, "live/re", { offsetMs: -5000 });
    await followed(hub, "live/re");
    await second.advanceTo(4_500);
    await until(() => egress.video.segments.some((s) => s.msn > lastMsn + 1), 5000, "republished segments");
    expect(egress.ended).toBe(false);
    const next = egress.video.segments.find((s) => s.msn === lastMsn + 1)!;
    expect(next.discontinuity).toBe(true);
    expect(next.epoch).not.toBe(egress.video.segments[0]!.epoch);
    expect(egress.audio.segments.find((s) => s.epoch === next.epoch)?.discontinuity).toBe(true);
    expect(egress.epochs.length).toBe(2);
    second.close();
  });

  it("evicts by the DVR window and by the byte budget; evicted segments are gone", async () => {
    const { origin, hub } = setup({ dvrWindowS: 6, maxBytesPerBroadcast: 4 * 1024 * 1024 });
    const feed = new StepFeed(origin, "live/dvr");
    await followed(hub, "live/dvr");
    await feed.advanceTo(30_000);
    await until(() => (hub.get("live/dvr")?.video.nextMsn ?? 0) >= 14, 5000, "segments");
    const egress = hub.get("live/dvr")!;
    const video = egress.video;
    // Retained: the window plus at most one segment.
    expect(video.closedDurationS()).toBeLessThan(6 + 2.1);
    expect(video.closedDurationS()).toBeGreaterThanOrEqual(6);
    expect(video.segments[0]!.msn).toBeGreaterThan(0);
    expect(video.findSegment(0)).toBeUndefined();
    expect(egress.audio.closedDurationS()).toBeLessThan(6 + 2.1);
    feed.close();

    // A tight byte budget evicts further (but keeps a playable minimum of two segments).
    const tight = setup({ maxBytesPerBroadcast: 1024 * 1024 });
    const feed2 = new StepFeed(tight.origin, "live/bytes");
    await followed(tight.hub, "live/bytes");
    await feed2.advanceTo(60_000);
    await until(() => (tight.hub.get("live/bytes")?.video.nextMsn ?? 0) >= 29, 5000, "segments");
    const small = tight.hub.get("live/bytes")!;
    expect(small.bytes).toBeLessThanOrEqual(1024 * 1024 + 512 * 1024);
    expect(small.video.segments.length).toBeLessThan(29);
    feed2.close();
  });

  it("forgets an ended broadcast after the linger, and keeps numbering if it returns", async () => {
    const { origin, hub } = setup({ lingerS: 0.2 });
    const feed = new StepFeed(origin, "live/linger");
    await followed(hub, "live/linger");
    await feed.advanceTo(4_500);
    await until(() => (hub.get("live/linger")?.video.segments.length ?? 0) >= 1, 5000, "segments");
    feed.close();
    const next = hub.get("live/linger")!.video.nextMsn;
    await until(() => hub.get("live/linger") === undefined, 3000, "forgotten");
    expect(hub.paths()).not.toContain("live/linger");
    const again = new StepFeed(origin, "live/linger");
    await followed(hub, "live/linger");
    await again.advanceTo(2_500);
    await until(() => (hub.get("live/linger")?.video.segments.length ?? 0) >= 1, 5000, "segments again");
    expect(hub.get("live/linger")!.video.segments[0]!.msn).toBe(next);
    again.close();
  });

  it("starts a new epoch when the init segment changes mid-broadcast", async () => {
    const { origin, hub } = setup();
    const feed = new StepFeed(origin, "live/init");
    await followed(hub, "live/init");
    await feed.advanceTo(4_500);
    await until(() => (hub.get("live/init")?.video.segments.length ?? 0) >= 1, 5000, "segments");
    // New codec configuration: same stream, different avcC (a changed level byte).
    const fixtureVideo = (feed.publisher as unknown as { videoInit: Uint8Array }).videoInit;
    expect(fixtureVideo).toBeDefined();
    const { loadFixture } = await import("./support/feed-fixture.ts");
    const config = loadFixture().video!;
    const description = Uint8Array.from(config.description);
    description[3] = 0x1f;
    feed.publisher.setVideoConfig({ ...config, description, codecString: "avc1.64001f" });
    await feed.advanceTo(feed.mediaMs + 4_500);
    await settle(50);
    const egress = hub.get("live/init")!;
    await until(() => egress.video.segments.some((s) => s.init.version === 1), 5000, "new init");
    const changed = egress.video.segments.find((s) => s.init.version === 1)!;
    expect(changed.discontinuity).toBe(true);
    expect(changed.init.codec).toBe("avc1.64001f");
    expect(egress.video.findInit(0)).toBeDefined();
    expect(egress.video.findInit(1)).toEqual(changed.init.bytes);
    feed.close();
  });
});
