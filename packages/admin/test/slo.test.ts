import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AdminError,
  LatencyTracker,
  LvqrMetrics,
  percentileOfSorted,
  SLO_RING_CAPACITY,
} from "../src/index.ts";

describe("LatencyTracker", () => {
  it("computes the reference percentiles for samples 1..100", () => {
    const tracker = new LatencyTracker();
    // Insert out of order: the summary must sort.
    for (let i = 100; i >= 1; i--) tracker.record("live/a", "hls", i);
    const [entry] = tracker.snapshot();
    expect(entry).toEqual({
      broadcast: "live/a",
      transport: "hls",
      p50_ms: 51,
      p95_ms: 96,
      p99_ms: 100,
      max_ms: 100,
      sample_count: 100,
      total_observed: 100,
    });
  });

  it("handles one sample and zero", () => {
    const tracker = new LatencyTracker();
    expect(tracker.record("b", "moq", 0)).toBe(true);
    const [entry] = tracker.snapshot();
    expect(entry).toMatchObject({
      p50_ms: 0,
      p95_ms: 0,
      p99_ms: 0,
      max_ms: 0,
      sample_count: 1,
      total_observed: 1,
    });
  });

  it("overwrites the oldest samples once the ring is full, and total_observed keeps counting", () => {
    const tracker = new LatencyTracker();
    // 1024 samples of 10 000, then 1024 of 5: the big ones must all be gone.
    for (let i = 0; i < SLO_RING_CAPACITY; i++) tracker.record("b", "dash", 10_000);
    for (let i = 0; i < SLO_RING_CAPACITY; i++) tracker.record("b", "dash", 5);
    let [entry] = tracker.snapshot();
    expect(entry).toMatchObject({
      max_ms: 5,
      p99_ms: 5,
      sample_count: SLO_RING_CAPACITY,
      total_observed: 2048,
    });
    // One more sample replaces exactly one old one.
    tracker.record("b", "dash", 7);
    [entry] = tracker.snapshot();
    expect(entry).toMatchObject({ max_ms: 7, sample_count: SLO_RING_CAPACITY, total_observed: 2049 });
  });

  it("keeps the newest 1024 samples in FIFO order", () => {
    const tracker = new LatencyTracker();
    for (let i = 1; i <= 3000; i++) tracker.record("b", "hls", i);
    const [entry] = tracker.snapshot();
    // Retained: 1977..3000. p50 = sorted[512] = 1977 + 512.
    expect(entry).toMatchObject({
      p50_ms: 1977 + 512,
      max_ms: 3000,
      sample_count: 1024,
      total_observed: 3000,
    });
  });

  it("sorts entries by broadcast, then transport", () => {
    const tracker = new LatencyTracker();
    tracker.record("live/b", "moq", 1);
    tracker.record("live/a", "moq", 1);
    tracker.record("live/b", "dash", 1);
    tracker.record("live/a", "hls", 1);
    tracker.record("Live/z", "hls", 1);
    expect(tracker.snapshot().map((e) => `${e.broadcast} ${e.transport}`)).toEqual([
      "Live/z hls",
      "live/a hls",
      "live/a moq",
      "live/b dash",
      "live/b moq",
    ]);
  });

  it("refuses negative and non-finite samples and rounds to whole milliseconds", () => {
    const tracker = new LatencyTracker();
    expect(tracker.record("b", "hls", -1)).toBe(false);
    expect(tracker.record("b", "hls", Number.NaN)).toBe(false);
    expect(tracker.record("b", "hls", Number.POSITIVE_INFINITY)).toBe(false);
    expect(tracker.snapshot()).toEqual([]);
    tracker.record("b", "hls", 12.6);
    expect(tracker.snapshot()[0]!.max_ms).toBe(13);
  });

  it("keeps keys apart even when names contain separators", () => {
    const tracker = new LatencyTracker();
    tracker.record("a\u0000b", "c", 1);
    tracker.record("a", "b\u0000c", 2);
    expect(tracker.size).toBe(2);
  });

  it("bounds the number of keys by evicting the least recently updated one", () => {
    const metrics = new LvqrMetrics({ processMetrics: false });
    const tracker = new LatencyTracker({ maxKeys: 3, metrics });
    tracker.record("one", "hls", 1);
    tracker.record("two", "hls", 1);
    tracker.record("three", "hls", 1);
    tracker.record("one", "hls", 1); // "two" is now the stalest
    tracker.record("four", "hls", 1);
    expect(tracker.snapshot().map((e) => e.broadcast)).toEqual(["four", "one", "three"]);
    expect(tracker.size).toBe(3);
  });

  it("forget() drops every transport of a broadcast and its histogram series", async () => {
    const metrics = new LvqrMetrics({ processMetrics: false });
    const tracker = new LatencyTracker({ metrics });
    tracker.record("gone", "hls", 100);
    tracker.record("gone", "dash", 100);
    tracker.record("kept", "hls", 100);
    expect(await metrics.render()).toContain('broadcast="gone"');
    tracker.forget("gone");
    expect(tracker.snapshot().map((e) => e.broadcast)).toEqual(["kept"]);
    const text = await metrics.render();
    expect(text).not.toContain('broadcast="gone"');
    expect(text).toContain('lvqr_subscriber_glass_to_glass_ms_count{broadcast="kept",transport="hls"} 1');
  });

  it("mirrors each sample into the glass-to-glass histogram", async () => {
    const metrics = new LvqrMetrics({ processMetrics: false });
    const tracker = new LatencyTracker({ metrics });
    tracker.record("live/x", "moq", 120);
    tracker.record("live/x", "moq", 480);
    const text = await metrics.render();
    expect(text).toContain(
      'lvqr_subscriber_glass_to_glass_ms_bucket{le="200",broadcast="live/x",transport="moq"} 1',
    );
    expect(text).toContain(
      'lvqr_subscriber_glass_to_glass_ms_bucket{le="500",broadcast="live/x",transport="moq"} 2',
    );
    expect(text).toContain('lvqr_subscriber_glass_to_glass_ms_sum{broadcast="live/x",transport="moq"} 600');
  });

  it("rejects a bad maxKeys", () => {
    expect(() => new LatencyTracker({ maxKeys: 0 })).toThrow(AdminError);
  });

  it("matches a naive percentile computation on random samples", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 300_000 }), { minLength: 1, maxLength: 3000 }),
        (samples) => {
          const tracker = new LatencyTracker();
          for (const s of samples) tracker.record("b", "t", s);
          const kept = samples.slice(-SLO_RING_CAPACITY).sort((a, b) => a - b);
          const at = (p: number) => kept[Math.min(Math.floor((kept.length * p) / 100), kept.length - 1)];
          const [entry] = tracker.snapshot();
          expect(entry).toEqual({
            broadcast: "b",
            transport: "t",
            p50_ms: at(50),
            p95_ms: at(95),
            p99_ms: at(99),
            max_ms: kept[kept.length - 1],
            sample_count: kept.length,
            total_observed: samples.length,
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it("percentileOfSorted of an empty list is 0", () => {
    expect(percentileOfSorted([], 50)).toBe(0);
  });
});
