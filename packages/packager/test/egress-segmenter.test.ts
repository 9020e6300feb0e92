import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type FrameTiming, Segmenter, type SegmenterOptions } from "../src/egress/segmenter.ts";

interface Part {
  frames: FrameTiming[];
  duration: number;
}
interface Segment {
  parts: Part[];
  start: number;
  duration: number;
}

/** Runs frames through a segmenter and rebuilds the parts and segments it decided on. */
function segment(
  options: SegmenterOptions,
  frames: FrameTiming[],
): { segments: Segment[]; eagerCloses: number } {
  const segmenter = new Segmenter(options);
  const segments: Segment[] = [];
  let part: Part | undefined;
  let eagerCloses = 0;
  for (const frame of frames) {
    const placement = segmenter.push(frame);
    if (placement.startsSegment) {
      segments.push({ parts: [], start: frame.dts, duration: 0 });
      part = undefined;
    }
    if (placement.startsPart || !part) {
      part = { frames: [], duration: 0 };
      segments[segments.length - 1]!.parts.push(part);
    }
    part.frames.push(frame);
    part.duration += frame.duration;
    segments[segments.length - 1]!.duration += frame.duration;
    if (placement.endsPart) {
      part = undefined;
      eagerCloses++;
    }
  }
  return { segments, eagerCloses };
}

function video(fps: number, seconds: number, gopFrames: number, timescale = 90000): FrameTiming[] {
  const frames: FrameTiming[] = [];
  for (let i = 0; i < fps * seconds; i++) {
    // Exact rational timestamps rounded per frame, as an encoder with this timescale writes them.
    const dts = Math.round((i * timescale) / fps);
    const next = Math.round(((i + 1) * timescale) / fps);
    frames.push({ dts, duration: next - dts, keyframe: i % gopFrames === 0 });
  }
  return frames;
}

const VIDEO: SegmenterOptions = {
  timescale: 90000,
  targetDurationS: 2,
  partTargetS: 0.2,
  splitPartsAtKeyframes: true,
};

describe("Segmenter", () => {
  it("cuts 30 fps video with 2 s GOPs into 2 s segments of ten 200 ms parts", () => {
    const { segments } = segment(VIDEO, video(30, 10, 60));
    expect(segments).toHaveLength(5);
    for (const s of segments) {
      expect(s.duration).toBe(180000);
      expect(s.parts).toHaveLength(10);
      expect(s.parts.every((p) => p.frames.length === 6 && p.duration === 18000)).toBe(true);
      expect(s.parts[0]!.frames[0]!.keyframe).toBe(true);
      expect(s.parts.slice(1).every((p) => !p.frames[0]!.keyframe)).toBe(true);
    }
  });

  it("closes a part as soon as the next frame cannot fit (no one-frame delay)", () => {
    const segmenter = new Segmenter(VIDEO);
    const frames = video(30, 1, 60);
    const ends = frames.map((frame) => segmenter.push(frame).endsPart);
    // Frames 5, 11, 17, ... complete their 6-frame part.
    expect(ends.slice(0, 12)).toEqual([
      false,
      false,
      false,
      false,
      false,
      true,
      false,
      false,
      false,
      false,
      false,
      true,
    ]);
  });

  it("keeps segments at the first keyframe at or after the target (1 s GOPs give 2 s, 3 s GOPs give 3 s)", () => {
    expect(segment(VIDEO, video(30, 10, 30)).segments.map((s) => s.duration / 90000)).toEqual([
      2, 2, 2, 2, 2,
    ]);
    expect(segment(VIDEO, video(30, 9, 90)).segments.map((s) => s.duration / 90000)).toEqual([3, 3, 3]);
  });

  it("starts a new part at a keyframe unless that would leave a part under 85% of the target", () => {
    // 25 fps (40 ms frames), keyframe every 7 frames (280 ms): after a 200 ms part, 80 ms remain
    // before the next keyframe, too short to stand alone, so that keyframe stays inside a part.
    const frames = video(25, 6, 7, 1000);
    const { segments } = segment({ ...VIDEO, timescale: 1000 }, frames);
    for (const s of segments) {
      s.parts.forEach((p, i) => {
        expect(p.duration).toBeLessThanOrEqual(201);
        if (i < s.parts.length - 1) expect(p.duration).toBeGreaterThanOrEqual(170);
        let elapsed = 0;
        for (const f of p.frames) {
          // A keyframe inside a part only where the part before it was shorter than 85%.
          if (f !== p.frames[0] && f.keyframe) expect(elapsed).toBeLessThan(170);
          elapsed += f.duration;
        }
      });
    }
    // With 1 s GOPs at 30 fps (a whole number of parts) every keyframe starts a part.
    const aligned = segment(VIDEO, video(30, 6, 30)).segments;
    for (const s of aligned) expect(s.parts.filter((p) => p.frames[0]!.keyframe)).toHaveLength(2);
  });

  it("absorbs millisecond rounding: six 30 fps frames of 199-201 ms stay one part", () => {
    // Decode times rounded to whole ms with an irregular B-frame cadence.
    const dts = [0, 33, 66, 100, 134, 167, 201, 233, 266, 300, 334, 367, 401, 433, 467, 500];
    const frames = dts.slice(0, -1).map((t, i) => ({ dts: t, duration: dts[i + 1]! - t, keyframe: i === 0 }));
    const { segments } = segment({ ...VIDEO, timescale: 1000 }, frames);
    expect(segments[0]!.parts.slice(0, 2).map((p) => p.frames.length)).toEqual([6, 6]);
    expect(Math.max(...segments[0]!.parts.map((p) => p.duration))).toBe(201);
  });

  it("handles millisecond timestamps (33/34 ms frames) without exceeding the part target", () => {
    const { segments } = segment({ ...VIDEO, timescale: 1000 }, video(30, 6, 60, 1000));
    const parts = segments.flatMap((s) => s.parts);
    expect(Math.max(...parts.map((p) => p.duration))).toBeLessThanOrEqual(201);
    // Only a segment's last part may be short.
    expect(parts.filter((p) => p.duration < 170).length).toBeLessThanOrEqual(segments.length);
  });

  it("makes a single over-long frame a part of its own", () => {
    const frames: FrameTiming[] = [0, 1, 2, 3].map((i) => ({
      dts: i * 250,
      duration: 250,
      keyframe: i === 0,
    }));
    const { segments } = segment({ ...VIDEO, timescale: 1000 }, frames);
    expect(segments[0]!.parts.map((p) => p.frames.length)).toEqual([1, 1, 1, 1]);
  });

  it("forces a segment break when no keyframe arrives for maxSegmentDurationS", () => {
    const frames = video(30, 12, 100000);
    const { segments } = segment({ ...VIDEO, maxSegmentDurationS: 5 }, frames);
    expect(segments.map((s) => s.duration / 90000)).toEqual([5, 5, 2]);
  });

  it("aligned audio follows the boundaries it is given", () => {
    const audio: SegmenterOptions = {
      timescale: 48000,
      targetDurationS: 2,
      partTargetS: 0.2,
      splitPartsAtKeyframes: false,
      alignToBoundaries: true,
    };
    const segmenter = new Segmenter(audio);
    const starts: number[] = [];
    let announced = 0;
    for (let i = 0; i < 400; i++) {
      const dts = i * 1024;
      // The video segmenter announces its segment starts (every 2.1 s) slightly before audio gets there.
      while (2.1 * (announced + 1) <= dts / 48000 + 0.05) segmenter.addBoundary(2.1 * ++announced);
      const placement = segmenter.push({ dts, duration: 1024, keyframe: true });
      if (placement.startsSegment) starts.push(dts / 48000);
    }
    expect(starts.length).toBeGreaterThan(3);
    starts.slice(1).forEach((start, i) => {
      // Each audio segment starts at the audio frame nearest the video boundary.
      expect(Math.abs(start - 2.1 * (i + 1))).toBeLessThanOrEqual(512 / 48000);
    });
  });

  it("aligned audio with 2 s boundaries stays within half a frame of them, without drift", () => {
    const segmenter = new Segmenter({
      timescale: 48000,
      targetDurationS: 2,
      partTargetS: 0.2,
      splitPartsAtKeyframes: false,
      alignToBoundaries: true,
    });
    const starts: number[] = [];
    let announced = 0;
    for (let i = 0; i < 3000; i++) {
      const dts = 8016 + i * 1024;
      while (0.1 + 2 * (announced + 1) <= dts / 48000 + 0.05) segmenter.addBoundary(0.1 + 2 * ++announced);
      if (segmenter.push({ dts, duration: 1024, keyframe: true }).startsSegment) starts.push(dts / 48000);
    }
    expect(starts.length).toBeGreaterThan(25);
    starts.slice(1).forEach((start, i) => {
      expect(Math.abs(start - (0.1 + 2 * (i + 1)))).toBeLessThanOrEqual(512 / 48000);
    });
  });

  it("aligned audio that starts a frame before the first video segment absorbs that boundary", () => {
    const segmenter = new Segmenter({
      timescale: 48000,
      targetDurationS: 2,
      partTargetS: 0.2,
      splitPartsAtKeyframes: false,
      alignToBoundaries: true,
    });
    // Audio starts at 0; video's first segment starts 30 ms later, then every 2 s.
    const starts: number[] = [];
    let next = 0.03;
    for (let i = 0; i < 400; i++) {
      const dts = i * 1024;
      while (next <= dts / 48000 + 0.05) {
        segmenter.addBoundary(next);
        next += 2;
      }
      if (segmenter.push({ dts, duration: 1024, keyframe: true }).startsSegment) starts.push(dts);
    }
    // No one-frame first segment: the next cut is at the second video boundary (2.03 s).
    expect(starts[0]).toBe(0);
    expect(Math.abs(starts[1]! / 48000 - 2.03)).toBeLessThanOrEqual(512 / 48000);
  });

  it("aligned audio without boundaries falls back to its own clock", () => {
    const segmenter = new Segmenter({
      timescale: 48000,
      targetDurationS: 2,
      partTargetS: 0.2,
      splitPartsAtKeyframes: false,
      alignToBoundaries: true,
    });
    let segments = 0;
    for (let i = 0; i < 1000; i++)
      if (segmenter.push({ dts: i * 1024, duration: 1024, keyframe: true }).startsSegment) segments++;
    // 1000 frames = 21.3 s; the fallback is 3 x target = 6 s.
    expect(segments).toBe(4);
  });

  it("predicts the next keyframe from the GOP cadence (for the preload hint)", () => {
    const segmenter = new Segmenter(VIDEO);
    const frames = video(30, 5, 60);
    const predictions: number[] = [];
    frames.forEach((frame, i) => {
      segmenter.push(frame);
      if (segmenter.nextPartLikelyStartsSegment()) predictions.push(i + 1);
    });
    // After the first GOP is known, it predicts exactly the frames that start segments.
    expect(predictions).toEqual([120, 180, 240, 300].filter((n) => n < frames.length + 1));
  });

  it("holds its invariants for arbitrary frame timings (property)", () => {
    const frameArb = fc.record({ duration: fc.integer({ min: 1, max: 400 }), keyframe: fc.boolean() });
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 400 }), (input) => {
        let dts = 0;
        const frames = input.map((f, i) => {
          const frame = { dts, duration: f.duration, keyframe: i === 0 || f.keyframe };
          dts += f.duration;
          return frame;
        });
        const { segments } = segment({ ...VIDEO, timescale: 1000 }, frames);
        expect(segments.reduce((n, s) => n + s.parts.reduce((m, p) => m + p.frames.length, 0), 0)).toBe(
          frames.length,
        );
        segments.forEach((s, i) => {
          expect(s.parts[0]!.frames[0]!.keyframe).toBe(true);
          if (i < segments.length - 1) expect(s.duration).toBeGreaterThanOrEqual(2000);
          for (const p of s.parts) {
            if (p.frames.length > 1) expect(p.duration).toBeLessThanOrEqual(201);
            let elapsed = 0;
            p.frames.forEach((f, k) => {
              // A keyframe inside a part only where the part before it was under 85% of the target.
              if (k > 0 && f.keyframe) expect(elapsed).toBeLessThan(170);
              elapsed += f.duration;
            });
          }
        });
      }),
      { numRuns: 300 },
    );
  });
});
