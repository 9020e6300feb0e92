/**
 * CPU time and resident memory of another process, read from Linux's /proc (what `top` shows),
 * so the server is measured alone while the viewers run elsewhere.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** One reading of a process. */
export interface ProcessSample {
  /** Wall clock, ms (performance.now()). */
  readonly atMs: number;
  /** User + system CPU time so far, ms. */
  readonly cpuMs: number;
  /** Resident set size, bytes. */
  readonly rssBytes: number;
}

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Reads `pid`'s CPU time and RSS now. Throws on systems without /proc. */
export function sampleProcess(pid: number): ProcessSample {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of the file (utime, stime) are at 11 and 12 after the name.
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? "0");
  return { atMs: performance.now(), cpuMs: (ticks * 1000) / clockTicks(), rssBytes: rssKb * 1024 };
}

/** CPU used between two samples as a percentage of one core. */
export function cpuPercent(from: ProcessSample, to: ProcessSample): number {
  const wall = to.atMs - from.atMs;
  return wall > 0 ? ((to.cpuMs - from.cpuMs) / wall) * 100 : 0;
}

/** Samples `pid` every `intervalMs` until `stop()`; keeps every sample. */
export class ProcessSampler {
  readonly pid: number;
  readonly samples: ProcessSample[] = [];
  readonly #timer: NodeJS.Timeout;

  constructor(pid: number, intervalMs = 1000) {
    this.pid = pid;
    this.samples.push(sampleProcess(pid));
    this.#timer = setInterval(() => {
      try {
        this.samples.push(sampleProcess(pid));
      } catch {
        // The process exited; the samples so far stand.
      }
    }, intervalMs);
  }

  /** Per-interval CPU percentages. */
  intervals(): number[] {
    const out: number[] = [];
    for (let i = 1; i < this.samples.length; i++)
      out.push(cpuPercent(this.samples[i - 1]!, this.samples[i]!));
    return out;
  }

  stop(): void {
    clearInterval(this.#timer);
    try {
      this.samples.push(sampleProcess(this.pid));
    } catch {
      // exited
    }
  }
}

/** Fails with a clear message where /proc is missing (the bench measures Linux processes). */
export function requireProcfs(): void {
  try {
    readFileSync(`/proc/${process.pid}/stat`, "utf8");
  } catch {
    throw new Error("this benchmark reads CPU and memory from /proc and runs on Linux only");
  }
}
