/**
 * The latency SLO tracker: glass-to-glass samples per (broadcast, transport), kept in a ring of the
 * most recent 1024 per key, summarised as p50/p95/p99/max. Server-side egresses record how long a
 * frame took from ingest to being available (`hls`, `dash`) or written to a subscriber (`moq`);
 * players push their own measurement through `POST /api/v1/slo/client-sample`.
 */

import { AdminError } from "./errors.ts";

/** Samples kept per (broadcast, transport): the reference's ring size. */
export const SLO_RING_CAPACITY = 1024;

/** Default bound on distinct (broadcast, transport) keys; the least recently updated key is evicted beyond it. */
export const SLO_DEFAULT_MAX_KEYS = 1024;

/** One row of `GET /api/v1/slo`: the latency summary of one (broadcast, transport) key. */
export interface SloEntry {
  broadcast: string;
  transport: string;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Samples currently in the ring (at most 1024). */
  sample_count: number;
  /** Samples ever recorded for this key, including those the ring has overwritten. */
  total_observed: number;
}

/**
 * Where the tracker mirrors every sample as a histogram observation, and which series it drops when
 * it evicts a key. `LvqrMetrics` implements it.
 */
export interface GlassToGlassSink {
  observeGlassToGlass(broadcast: string, transport: string, ms: number): void;
  forgetGlassToGlass(broadcast: string, transport: string): void;
}

/** Options of {@link LatencyTracker}. */
export interface LatencyTrackerOptions {
  /** Receives every recorded sample (the `lvqr_subscriber_glass_to_glass_ms` histogram). */
  metrics?: GlassToGlassSink;
  /**
   * Most (broadcast, transport) keys kept. Each key holds 8 KiB of samples, so the default bounds the
   * tracker at about 8 MiB no matter how many names clients push.
   */
  maxKeys?: number;
}

/**
 * The reference's percentile: the sample at index `min(floor(n * p / 100), n - 1)` of the sorted
 * samples. For the samples 1..100 this gives p50 = 51, p95 = 96, p99 = 100.
 */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  return sorted[Math.min(Math.floor((n * p) / 100), n - 1)]!;
}

class SampleRing {
  readonly broadcast: string;
  readonly transport: string;
  readonly samples: Float64Array = new Float64Array(SLO_RING_CAPACITY);
  /** Samples held (grows to the capacity, then stays). */
  length = 0;
  /** Index the next sample is written at. */
  next = 0;
  total = 0;

  constructor(broadcast: string, transport: string) {
    this.broadcast = broadcast;
    this.transport = transport;
  }

  push(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % SLO_RING_CAPACITY;
    if (this.length < SLO_RING_CAPACITY) this.length++;
    this.total++;
  }

  summarise(): SloEntry {
    const sorted = this.samples.slice(0, this.length).sort();
    return {
      broadcast: this.broadcast,
      transport: this.transport,
      p50_ms: percentileOfSorted(sorted, 50),
      p95_ms: percentileOfSorted(sorted, 95),
      p99_ms: percentileOfSorted(sorted, 99),
      max_ms: this.length === 0 ? 0 : sorted[this.length - 1]!,
      sample_count: this.length,
      total_observed: this.total,
    };
  }
}

/**
 * Latency samples per (broadcast, transport). Each key keeps the most recent
 * {@link SLO_RING_CAPACITY} samples (first in, first overwritten) and a count of every sample ever
 * recorded. Memory is bounded: beyond `maxKeys` keys the least recently updated one is dropped.
 */
export class LatencyTracker {
  // Keyed by JSON.stringify([broadcast, transport]) so no separator can be forged; insertion order
  // is recency order (a key is re-inserted on every sample), which makes eviction O(1).
  readonly #rings = new Map<string, SampleRing>();
  readonly #metrics: GlassToGlassSink | undefined;
  readonly #maxKeys: number;

  constructor(options: LatencyTrackerOptions = {}) {
    const maxKeys = options.maxKeys ?? SLO_DEFAULT_MAX_KEYS;
    if (!Number.isInteger(maxKeys) || maxKeys < 1) {
      throw new AdminError(
        "ADMIN_INVALID_OPTIONS",
        `LatencyTracker maxKeys must be a positive integer, got ${maxKeys}`,
      );
    }
    this.#maxKeys = maxKeys;
    this.#metrics = options.metrics;
  }

  /**
   * Records one latency sample in milliseconds (rounded to a whole millisecond; 0 is valid).
   * Returns false, recording nothing, when `ms` is negative or not finite (a clock that went
   * backwards, or a bad caller).
   */
  record(broadcast: string, transport: string, ms: number): boolean {
    if (!Number.isFinite(ms) || ms < 0) return false;
    const value = Math.round(ms);
    const key = JSON.stringify([broadcast, transport]);
    let ring = this.#rings.get(key);
    if (ring === undefined) {
      ring = new SampleRing(broadcast, transport);
      if (this.#rings.size >= this.#maxKeys) this.#evictOldest();
    } else {
      this.#rings.delete(key);
    }
    this.#rings.set(key, ring);
    ring.push(value);
    this.#metrics?.observeGlassToGlass(broadcast, transport, value);
    return true;
  }

  /** Summaries of every key, sorted by broadcast, then transport (code-unit order). */
  snapshot(): SloEntry[] {
    const rings = [...this.#rings.values()];
    rings.sort((a, b) => compare(a.broadcast, b.broadcast) || compare(a.transport, b.transport));
    return rings.map((ring) => ring.summarise());
  }

  /** Drops every key of `broadcast` (call when a broadcast ends for good), with its histogram series. */
  forget(broadcast: string): void {
    for (const [key, ring] of this.#rings) {
      if (ring.broadcast !== broadcast) continue;
      this.#rings.delete(key);
      this.#metrics?.forgetGlassToGlass(ring.broadcast, ring.transport);
    }
  }

  /** Number of (broadcast, transport) keys held. */
  get size(): number {
    return this.#rings.size;
  }

  #evictOldest(): void {
    const oldest = this.#rings.entries().next();
    if (oldest.done) return;
    const [key, ring] = oldest.value;
    this.#rings.delete(key);
    this.#metrics?.forgetGlassToGlass(ring.broadcast, ring.transport);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
