import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MediaTimeline } from "../src/index.ts";

describe("MediaTimeline", () => {
  it("keeps the first timestamp, including extended ones past 0xFFFFFF", () => {
    const t = new MediaTimeline();
    expect(t.map("video", 20_000_000)).toEqual({ dts: 20_000_000, discontinuity: false });
    expect(t.map("audio", 19_999_990).dts).toBe(19_999_990);
  });

  it("unwraps the 32-bit wrap seamlessly", () => {
    const t = new MediaTimeline();
    const raw = [0xffffffc0, 0xffffffe0, 0x00000000, 0x00000020];
    expect(raw.map((r) => t.map("video", r))).toEqual([
      { dts: 0xffffffc0, discontinuity: false },
      { dts: 0xffffffe0, discontinuity: false },
      { dts: 0x100000000, discontinuity: false },
      { dts: 0x100000020, discontinuity: false },
    ]);
  });

  it("rebases a backwards jump to just after the newest sample", () => {
    const t = new MediaTimeline();
    for (const ts of [10_000, 10_040, 10_080]) t.map("video", ts);
    expect(t.map("video", 5_080)).toEqual({ dts: 10_120, discontinuity: true });
    expect(t.map("video", 5_120)).toEqual({ dts: 10_160, discontinuity: false });
    // Audio that follows the publisher's new clock lands on the same rebased timeline.
    expect(t.map("audio", 5_130)).toEqual({ dts: 10_170, discontinuity: false });
  });

  it("rebases a forward jump of an hour", () => {
    const t = new MediaTimeline();
    t.map("audio", 0);
    t.map("audio", 23);
    expect(t.map("audio", 3_600_023)).toEqual({ dts: 46, discontinuity: true });
    expect(t.map("audio", 3_600_046).dts).toBe(69);
  });

  it("tolerates audio slightly behind video (one timeline, per-kind monotonic)", () => {
    const t = new MediaTimeline();
    expect(t.map("video", 1000).discontinuity).toBe(false);
    expect(t.map("audio", 990)).toEqual({ dts: 990, discontinuity: false });
    expect(t.map("video", 1033).discontinuity).toBe(false);
    expect(t.map("audio", 1013)).toEqual({ dts: 1013, discontinuity: false });
  });

  it("never lets a kind's decode time go backwards and keeps jumps bounded", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.constantFrom("video" as const, "audio" as const),
            fc.integer({ min: 0, max: 0xffffffff }),
          ),
          { minLength: 1, maxLength: 200 },
        ),
        (steps) => {
          const t = new MediaTimeline(10_000);
          const last = { video: -Infinity, audio: -Infinity };
          let newest = -Infinity;
          for (const [kind, raw] of steps) {
            const { dts, discontinuity } = t.map(kind, raw);
            expect(dts).toBeGreaterThanOrEqual(last[kind]);
            if (newest !== -Infinity) expect(dts).toBeLessThanOrEqual(newest + 10_000);
            if (discontinuity) expect(dts).toBeGreaterThan(newest);
            last[kind] = dts;
            newest = Math.max(newest, dts);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
