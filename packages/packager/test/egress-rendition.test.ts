import { OriginProducer } from "@lvqr/moq-lite";
import { describe, expect, it } from "vitest";
import { EgressHub } from "../src/egress/hub.ts";
import { type EgressFrame, RenditionTimeline, type SegmentContext } from "../src/egress/rendition.ts";
import { isPackagerError } from "../src/errors.ts";

const OPTIONS = { targetDurationS: 2, partTargetS: 0.2, maxSegmentBytes: 1 << 24, aligned: false };
const INIT = { timescale: 1000, codec: "avc1.64001e", width: 640, height: 360 };

/** A frame whose bytes are its index repeated (so concatenations can be checked). */
function frame(
  index: number,
  options: { dts?: number; duration?: number; keyframe?: boolean } = {},
): EgressFrame {
  return {
    dts: options.dts ?? index * 40,
    duration: options.duration ?? 40,
    keyframe: options.keyframe ?? index % 25 === 0,
    bytes: new Uint8Array(100 + (index % 7)).fill(index & 0xff),
    samples: 1,
  };
}

let epoch = 0;
const context = (startDts: number): SegmentContext => ({
  epoch,
  discontinuity: false,
  pdtMs: 1_000_000 + startDts,
});

describe("RenditionTimeline", () => {
  it("keeps each segment's bytes once: parts are views into the segment, which is their concatenation", () => {
    const timeline = new RenditionTimeline("video", OPTIONS);
    timeline.setInit(new Uint8Array([1, 2, 3]), INIT);
    const frames = Array.from({ length: 160 }, (_, i) => frame(i));
    for (const f of frames) timeline.push(f, context);
    expect(timeline.segments.length).toBe(3);
    let index = 0;
    for (const segment of timeline.segments) {
      const expected = Buffer.concat(frames.slice(index, index + segment.samples).map((f) => f.bytes));
      expect(Buffer.from(segment.bytes).equals(expected)).toBe(true);
      expect(Buffer.concat(segment.parts.map((p) => p.bytes)).equals(expected)).toBe(true);
      for (const part of segment.parts) expect(part.bytes.buffer).toBe(segment.bytes.buffer);
      expect(segment.parts.every((p) => p.closed)).toBe(true);
      index += segment.samples;
    }
  });

  it("skips video frames until a keyframe at the start and after a break", () => {
    const timeline = new RenditionTimeline("video", OPTIONS);
    timeline.setInit(new Uint8Array([1]), INIT);
    for (let i = 1; i < 25; i++) timeline.push(frame(i), context);
    expect(timeline.open).toBeUndefined();
    expect(timeline.droppedBeforeKeyframe).toBe(24);
    for (let i = 25; i < 40; i++) timeline.push(frame(i), context);
    expect(timeline.open?.startDts).toBe(1000);
    timeline.breakNext();
    timeline.push(frame(40), context);
    expect(timeline.droppedBeforeKeyframe).toBe(25);
    expect(timeline.open?.startDts).toBe(1000);
    timeline.push(frame(50), context);
    expect(timeline.open?.startDts).toBe(2000);
  });

  it("closes a part cut short by a segment boundary (audio aligned mid-part) without disturbing the next", () => {
    const audio = new RenditionTimeline("audio", { ...OPTIONS, aligned: true });
    audio.setInit(new Uint8Array([9]), {
      timescale: 48000,
      codec: "mp4a.40.2",
      sampleRate: 48000,
      channels: 2,
    });
    for (let i = 0; i < 300; i++) {
      if (i === 50) audio.addBoundary(1.03);
      if (i === 140) audio.addBoundary(3.01);
      audio.push(
        { dts: i * 1024, duration: 1024, keyframe: true, bytes: new Uint8Array(10), samples: 1 },
        context,
      );
    }
    const [first, second] = audio.segments;
    expect(first!.parts.at(-1)!.durationTicks).toBeLessThan(9 * 1024);
    // After the boundary, parts are full again (9 AAC frames, 192 ms).
    expect(second!.parts.slice(0, -1).every((p) => p.durationTicks === 9 * 1024)).toBe(true);
  });

  it("corrects a segment's duration to the next segment's tfdt when the writer estimated it", () => {
    const timeline = new RenditionTimeline("video", OPTIONS);
    timeline.setInit(new Uint8Array([1]), INIT);
    for (let i = 0; i < 60; i++) {
      // The last frame before each keyframe claims 45 ms; the timeline says 40.
      timeline.push(frame(i, { duration: i % 25 === 24 ? 45 : 40 }), context);
    }
    const segment = timeline.segments[0]!;
    expect(segment.durationTicks).toBe(2000);
    expect(segment.parts.reduce((sum, p) => sum + p.durationTicks, 0)).toBe(2000);
  });

  it("settles each frame's duration from the next frame's tfdt, and distrusts gap-sized guesses", () => {
    const timeline = new RenditionTimeline("video", OPTIONS);
    timeline.setInit(new Uint8Array([1]), INIT);
    for (let i = 0; i < 20; i++) timeline.push(frame(i), context);
    // A writer that dropped frames and took the gap (600 ms) as this frame's duration.
    timeline.push(frame(20, { dts: 800, duration: 600 }), context);
    for (let i = 21; i < 30; i++) timeline.push(frame(i), context);
    expect(timeline.maxPartDurationS).toBeLessThanOrEqual(0.201);
    // A frame whose successor is a few ms late: the next tfdt settles it (ms rounding, estimates).
    timeline.push(frame(30, { dts: 1200, duration: 40 }), context);
    timeline.push(frame(31, { dts: 1241, duration: 40 }), context);
    const open = timeline.open!;
    expect(open.parts.reduce((sum, p) => sum + p.durationTicks, 0)).toBe(open.durationTicks);
    expect(open.startDts + open.durationTicks).toBe(1281);
    // Lost frames (a gap of many frame durations) stay a gap: no part grows past the target.
    timeline.push(frame(32, { dts: 2500, duration: 40 }), context);
    expect(timeline.maxPartDurationS).toBeLessThanOrEqual(0.201);
  });

  it("versions init segments and finds old ones while their segments are retained", () => {
    const timeline = new RenditionTimeline("video", OPTIONS);
    const a = timeline.setInit(new Uint8Array([1, 1]), INIT);
    expect(timeline.setInit(new Uint8Array([1, 1]), INIT)).toBe(a);
    for (let i = 0; i < 60; i++) timeline.push(frame(i), context);
    const b = timeline.setInit(new Uint8Array([2, 2]), INIT);
    expect([a.version, b.version]).toEqual([0, 1]);
    timeline.breakNext();
    epoch = 1;
    for (let i = 75; i < 140; i++) timeline.push(frame(i), context);
    expect(timeline.findInit(0)).toEqual(new Uint8Array([1, 1]));
    expect(timeline.findInit(1)).toEqual(new Uint8Array([2, 2]));
    // The unversioned name is version 0 while a segment uses it, then the current init.
    expect(timeline.findInit(undefined)).toEqual(new Uint8Array([1, 1]));
    while (timeline.segments.some((s) => s.init.version === 0)) timeline.evictOldest();
    timeline.flush();
    while (timeline.segments.some((s) => s.init.version === 0)) timeline.evictOldest();
    expect(timeline.findInit(0)).toBeUndefined();
    expect(timeline.findInit(undefined)).toEqual(new Uint8Array([2, 2]));
    epoch = 0;
  });
});

describe("EgressHub options", () => {
  it("rejects out-of-range settings with PACKAGER_INVALID_OPTION", () => {
    const origin = new OriginProducer().consume();
    for (const bad of [
      { partTargetS: 0 },
      { targetDurationS: 0 },
      { dvrWindowS: 2 },
      { maxBytesPerBroadcast: 10 },
    ]) {
      let error: unknown;
      try {
        new EgressHub({ origin, ...bad }).close();
      } catch (caught) {
        error = caught;
      }
      expect(isPackagerError(error, "PACKAGER_INVALID_OPTION"), JSON.stringify(bad)).toBe(true);
    }
  });
});
