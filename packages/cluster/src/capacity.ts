/**
 * `CapacityMeter`: measures what a node advertises in the registry. CPU is process CPU time (user +
 * system) over wall time, as a percentage of one core; RSS is read at sampling time; bytes out per
 * second is the growth of a counter the server feeds (`addBytesOut`) or provides; subscribers come
 * from a provider. Each sample covers the interval since the previous one; the first covers the
 * process's lifetime for CPU and the meter's lifetime for bytes.
 */

import type { NodeCapacity } from "./store.ts";

/** Options of {@link CapacityMeter}. */
export interface CapacityMeterOptions {
  /** Current number of subscribers (all egresses). Default: always 0. */
  readonly subscribers?: () => number;
  /**
   * Total bytes sent so far, if the server keeps its own counter. Without it the meter counts what
   * is passed to {@link CapacityMeter.addBytesOut}.
   */
  readonly bytesOut?: () => number;
}

/** Measures CPU, RSS, egress rate and subscribers of this process. */
export class CapacityMeter {
  readonly #subscribers: () => number;
  readonly #bytesOutProvider: (() => number) | undefined;
  #bytesOut = 0;
  #lastCpu: NodeJS.CpuUsage | undefined;
  #lastWallMs: number;
  #lastBytes: number;

  constructor(options: CapacityMeterOptions = {}) {
    this.#subscribers = options.subscribers ?? (() => 0);
    this.#bytesOutProvider = options.bytesOut;
    this.#lastWallMs = performance.now();
    this.#lastBytes = this.#totalBytes();
  }

  /** Adds `bytes` to the egress counter (when no `bytesOut` provider was given). */
  addBytesOut(bytes: number): void {
    if (Number.isFinite(bytes) && bytes > 0) this.#bytesOut += bytes;
  }

  /** Total bytes counted so far. */
  get totalBytesOut(): number {
    return this.#totalBytes();
  }

  /** Takes a sample covering the time since the previous one. */
  sample(): NodeCapacity {
    const wallMs = performance.now();
    const cpu = process.cpuUsage();
    let cpuMicros: number;
    let elapsedMs: number;
    if (this.#lastCpu === undefined) {
      cpuMicros = cpu.user + cpu.system;
      elapsedMs = process.uptime() * 1000;
    } else {
      cpuMicros = cpu.user - this.#lastCpu.user + (cpu.system - this.#lastCpu.system);
      elapsedMs = wallMs - this.#lastWallMs;
    }
    const bytes = this.#totalBytes();
    const bytesElapsedMs = wallMs - this.#lastWallMs;
    const bytesOutPerSec =
      bytesElapsedMs > 0 ? Math.round(((bytes - this.#lastBytes) * 1000) / bytesElapsedMs) : 0;
    this.#lastCpu = cpu;
    this.#lastWallMs = wallMs;
    this.#lastBytes = bytes;
    const cpuPct = elapsedMs > 0 ? Math.round((cpuMicros / 1000 / elapsedMs) * 1000) / 10 : 0;
    let subscribers = 0;
    try {
      const value = this.#subscribers();
      subscribers = Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
    } catch {
      // A failing provider reports 0 rather than stopping the heartbeat.
    }
    return {
      cpuPct: Math.max(0, cpuPct),
      rssBytes: process.memoryUsage.rss(),
      bytesOutPerSec: Math.max(0, bytesOutPerSec),
      subscribers,
    };
  }

  #totalBytes(): number {
    if (!this.#bytesOutProvider) return this.#bytesOut;
    try {
      const value = this.#bytesOutProvider();
      return Number.isFinite(value) && value >= 0 ? value : this.#lastBytes;
    } catch {
      return this.#lastBytes;
    }
  }
}
