/**
 * Server benchmark: one RTMP publisher at 2.5 Mbit/s (ffmpeg, 1280x720 at 30 fps with a 2 s GOP
 * plus 128 kbit/s AAC) and, by default, 200 MoQ viewers, 200 LL-HLS viewers and 50 DASH viewers
 * for 60 s, all on loopback. The server runs alone in its own process (`lvqr serve`, the built
 * `dist/cli.js`) and its CPU time and resident memory are read from /proc once a second;
 * the viewers run in other, lower-priority processes (see `viewers.ts` and `PER_PROCESS`) and
 * report what they received, so the figures are only accepted when every viewer was served.
 *
 * Targets: at most 60 % of one core and 200 MB RSS for the server.
 *
 *   node --conditions=@lvqr/source bench/server.bench.ts            full run (about 110 s)
 *   node --conditions=@lvqr/source bench/server.bench.ts --smoke    10 s, 20/20/5 viewers (CI)
 *   ... --seconds 120 --moq 100 --hls 100 --dash 20                 other loads
 *   ... --enforce                                                   exit 1 when a target is missed
 *
 * The publisher copies a pre-encoded clip in a loop (`-stream_loop -1 -c copy`), so ffmpeg costs
 * almost no CPU and does not compete with the server on a small machine.
 */
import { type ChildProcess, execFile, fork, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, loadavg, setPriority, tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ProcessSampler, requireProcfs, sampleProcess } from "./process-stats.ts";
import type { ViewerCommand, ViewerCounters, ViewerReport } from "./viewers.ts";

const execFileAsync = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

const args = process.argv.slice(2);
const SMOKE = args.includes("--smoke");
const ENFORCE = args.includes("--enforce");
function numberFlag(name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} needs a number, got ${args[at + 1]}`);
  return value;
}
const SECONDS = numberFlag("seconds", SMOKE ? 10 : 60);
/** Extra Node options for the server process, e.g. `--node-options "--max-semi-space-size=8"`. */
const SERVER_NODE_OPTIONS = (() => {
  const at = args.indexOf("--node-options");
  return at < 0 ? [] : (args[at + 1] ?? "").split(/\s+/).filter(Boolean);
})();
const VIEWERS = {
  moq: numberFlag("moq", SMOKE ? 20 : 200),
  hls: numberFlag("hls", SMOKE ? 20 : 200),
  dash: numberFlag("dash", SMOKE ? 5 : 50),
} as const;
/**
 * Viewers per child process. A moq-lite viewer reassembles and decodes about 340 kB/s of
 * WebSocket and QMux in JavaScript; beyond about 25 per process the process's own event-loop
 * delays hold back flow-control credit and the viewers fall behind. HTTP viewers are cheaper.
 */
const PER_PROCESS: Record<"moq" | "hls" | "dash", number> = { moq: 25, hls: 100, dash: 50 };
/**
 * What a viewer that keeps up receives per second: MoQ frames (30 video + 46.9 AAC), LL-HLS parts
 * (5 video + about 5.2 audio), DASH segments (one 2 s segment per representation every 2 s).
 */
const EXPECTED_RATE: Record<"moq" | "hls" | "dash", number> = { moq: 76, hls: 10, dash: 1 };
/** Viewers join over this long (a whole audience arriving in the same second is a different test). */
const RAMP_SECONDS = 20;
const WARMUP_SECONDS = SMOKE ? 2 : 5;
/** Niceness of the viewer processes (the server and ffmpeg keep the default 0). */
const VIEWER_NICENESS = 15;
const CLIP_SECONDS = SMOKE ? 4 : 10;
const TARGETS = { cpuPercentOfOneCore: 60, rssMb: 200 } as const;
const BROADCAST = "live/bench";

type Protocol = keyof typeof VIEWERS;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Polls `check` until it returns something other than undefined/false. */
async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Encodes the looped clip: 2.5 Mbit/s H.264 (moving noise keeps the encoder busy enough to reach it) + AAC. */
async function encodeClip(file: string): Promise<void> {
  await execFileAsync(
    "ffmpeg",
    [
      ...["-hide_banner", "-nostdin", "-loglevel", "error", "-y"],
      ...["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t+u"],
      ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", String(CLIP_SECONDS)],
      ...["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"],
      ...[
        "-g",
        "60",
        "-keyint_min",
        "60",
        "-sc_threshold",
        "0",
        "-b:v",
        "2500k",
        "-maxrate",
        "2500k",
        "-bufsize",
        "5000k",
      ],
      ...["-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", "-f", "flv", file],
    ],
    { timeout: 120_000 },
  );
}

interface ServerChild {
  readonly child: ChildProcess;
  readonly ports: { moq: number; rtmp: number; admin: number; hls: number; dash: number };
  readonly exited: Promise<number | null>;
  readonly output: string[];
}

/**
 * The built CLI (`dist/cli.js`), what operators run. Running the sources through Node's type
 * stripping would add about 40 MB of RSS that production never has, so the bench measures the
 * build and says so when the build is older than the sources.
 */
function builtCli(): string {
  const cli = path.join(here, "../dist/cli.js");
  if (!existsSync(cli))
    throw new Error("dist/cli.js is missing: build first (pnpm exec tsc -b, or ./lvqr bench)");
  const src = path.join(here, "../src");
  const stale = readdirSync(src, { recursive: true, withFileTypes: true }).some((entry) => {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) return false;
    const source = path.join(entry.parentPath, entry.name);
    const output = path.join(here, "../dist", path.relative(src, source).replace(/\.ts$/, ".js"));
    return !existsSync(output) || statSync(source).mtimeMs > statSync(output).mtimeMs;
  });
  if (stale)
    console.log(
      "note: src/ is newer than dist/; the bench measures the last build (pnpm exec tsc -b to refresh)",
    );
  return cli;
}

/** The Node options on the CLI's `#!` line (`#!/usr/bin/env -S node --flag …`), as the `lvqr` command runs with them. */
function shebangNodeOptions(cli: string): string[] {
  const first = readFileSync(cli, "utf8").split("\n", 1)[0] ?? "";
  const words = first.startsWith("#!") ? first.slice(2).trim().split(/\s+/) : [];
  const node = words.findIndex((word) => word === "node" || word.endsWith("/node"));
  return node < 0 ? [] : words.slice(node + 1);
}

/** Starts `lvqr serve` (the built CLI, with its `#!` line's Node options) in its own process, on ephemeral ports. */
async function startServer(dataDir: string): Promise<ServerChild> {
  const cli = builtCli();
  const child = spawn(
    process.execPath,
    [
      ...shebangNodeOptions(cli),
      ...SERVER_NODE_OPTIONS,
      cli,
      "serve",
      ...["--host", "127.0.0.1", "--port", "0", "--rtmp-port", "0", "--admin-port", "0"],
      ...["--hls-port", "0", "--dash-port", "0", "--data-dir", dataDir, "--log-level", "info"],
      ...["--shutdown-grace-ms", "2000"],
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const output: string[] = [];
  let ready: ServerChild["ports"] | undefined;
  createInterface({ input: child.stdout! }).on("line", (line) => {
    output.push(line);
    if (output.length > 200) output.shift();
    try {
      const entry = JSON.parse(line) as { msg?: string } & ServerChild["ports"];
      if (entry.msg === "lvqr ready") ready = entry;
    } catch {
      // not a log line
    }
  });
  createInterface({ input: child.stderr! }).on("line", (line) => output.push(line));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const ports = await until(
    "the server's ready line",
    () => {
      if (gone) throw new Error(`the server exited:\n${output.join("\n")}`);
      return ready;
    },
    30_000,
  ).catch((error: Error) => {
    child.kill("SIGKILL");
    throw new Error(`${error.message}\n${output.join("\n")}`);
  });
  return { child, ports, exited, output };
}

/** A child process running the viewers of one protocol. */
class ViewerGroup {
  readonly protocol: Protocol;
  readonly count: number;
  readonly firstIndex: number;
  readonly child: ChildProcess;
  readonly #waiting = new Map<string, (report: ViewerReport) => void>();

  constructor(protocol: Protocol, count: number, firstIndex: number) {
    this.protocol = protocol;
    this.count = count;
    this.firstIndex = firstIndex;
    this.child = fork(path.join(here, "viewers.ts"), [], { execArgv: process.execArgv, stdio: "inherit" });
    // Viewers run at a low priority: on a small machine the scheduler would otherwise split the
    // cores evenly between a dozen viewer processes and the server, capping the server's CPU at
    // its fair share and measuring contention instead of what the server needs.
    if (this.child.pid !== undefined) setPriority(this.child.pid, VIEWER_NICENESS);
    this.child.on("message", (report: ViewerReport) => {
      const waiter = this.#waiting.get(report.type);
      this.#waiting.delete(report.type);
      waiter?.(report);
    });
  }

  #ask<T extends ViewerReport["type"]>(command: ViewerCommand, answer: T, timeoutMs: number) {
    return new Promise<Extract<ViewerReport, { type: T }>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.protocol} viewers did not answer ${command.type}`)),
        timeoutMs,
      );
      this.#waiting.set(answer, (report) => {
        clearTimeout(timer);
        resolve(report as Extract<ViewerReport, { type: T }>);
      });
      this.child.send(command);
    });
  }

  start(url: string, rampMs: number) {
    return this.#ask(
      {
        type: "start",
        protocol: this.protocol,
        count: this.count,
        firstIndex: this.firstIndex,
        url,
        broadcast: BROADCAST,
        rampMs,
      },
      "ready",
      90_000,
    );
  }

  snapshot() {
    return this.#ask({ type: "snapshot" }, "snapshot", 60_000);
  }

  stop() {
    return this.#ask({ type: "stop" }, "stopped", 60_000).catch(() => undefined);
  }
}

/** Per-viewer rates over the window between two snapshots. */
function viewerRates(
  protocol: Protocol,
  from: readonly ViewerCounters[],
  to: readonly ViewerCounters[],
  seconds: number,
) {
  const media = to.map((counters, i) => (counters.media - (from[i]?.media ?? 0)) / seconds);
  const kbps = to.map((counters, i) => ((counters.bytes - (from[i]?.bytes ?? 0)) * 8) / 1000 / seconds);
  const errors = to.reduce((sum, counters, i) => sum + counters.errors - (from[i]?.errors ?? 0), 0);
  const lastError = to.find((counters) => counters.lastError)?.lastError;
  return {
    viewers: to.length,
    /** Viewers that received at least 90 % of what the stream carries. */
    keptUp: media.filter((rate) => rate >= EXPECTED_RATE[protocol] * 0.9).length,
    mediaPerSecond: { min: round(Math.min(...media), 2), median: round(percentile(media, 50), 2) },
    kbitPerSecond: { min: round(Math.min(...kbps)), median: round(percentile(kbps, 50)) },
    errors,
    ...(errors > 0 && lastError ? { lastError } : {}),
  };
}

async function adminJson<T>(port: number, route: string): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${port}${route}`);
  if (!response.ok) throw new Error(`GET ${route}: ${response.status}`);
  return (await response.json()) as T;
}

async function main(): Promise<void> {
  requireProcfs();
  const started = Date.now();
  const work = await mkdtemp(path.join(tmpdir(), "lvqr-server-bench-"));
  const cleanups: Array<() => unknown> = [];
  // An interrupted bench must not leave a server, ffmpeg or viewers behind.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      for (const cleanup of cleanups.reverse()) cleanup();
      process.exit(130);
    });
  }
  try {
    console.log(
      `server bench${SMOKE ? " (smoke)" : ""}: ${VIEWERS.moq} MoQ + ${VIEWERS.hls} LL-HLS + ${VIEWERS.dash} DASH viewers, ` +
        `${SECONDS} s, load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(" ")}`,
    );
    const clip = path.join(work, "clip.flv");
    await encodeClip(clip);

    const server = await startServer(path.join(work, "data"));
    cleanups.push(() => server.child.kill("SIGKILL"));
    const { ports } = server;
    const idle = sampleProcess(server.child.pid!);

    const ffmpeg = spawn(
      "ffmpeg",
      [
        ...["-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", clip],
        ...["-c", "copy", "-f", "flv", `rtmp://127.0.0.1:${ports.rtmp}/${BROADCAST}`],
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let ffmpegLog = "";
    ffmpeg.stderr!.on("data", (chunk: Buffer) => {
      ffmpegLog = (ffmpegLog + chunk.toString()).slice(-4000);
    });
    cleanups.push(() => ffmpeg.kill("SIGKILL"));
    const hlsBase = `http://127.0.0.1:${ports.hls}/hls/${BROADCAST}`;
    await until(
      "two HLS segments of the publish",
      async () => {
        if (ffmpeg.exitCode !== null) throw new Error(`ffmpeg exited: ${ffmpegLog}`);
        const response = await fetch(`${hlsBase}/playlist.m3u8`);
        return response.ok && ((await response.text()).match(/#EXTINF/g) ?? []).length >= 2;
      },
      30_000,
    );

    // Each protocol's viewers, split over as many processes as they need.
    const groups: ViewerGroup[] = [];
    for (const protocol of Object.keys(VIEWERS) as Protocol[]) {
      for (let left = VIEWERS[protocol]; left > 0; left -= PER_PROCESS[protocol]) {
        groups.push(
          new ViewerGroup(protocol, Math.min(left, PER_PROCESS[protocol]), VIEWERS[protocol] - left),
        );
      }
    }
    cleanups.push(() => {
      for (const group of groups) group.child.kill("SIGKILL");
    });
    const urls: Record<Protocol, string> = {
      moq: `http://127.0.0.1:${ports.moq}/`,
      hls: `${hlsBase}/master.m3u8`,
      dash: `http://127.0.0.1:${ports.dash}/dash/${BROADCAST}/manifest.mpd`,
    };
    const readiness = await Promise.all(
      groups.map((group) => group.start(urls[group.protocol], SMOKE ? 1000 : RAMP_SECONDS * 1000)),
    );
    for (const [i, ready] of readiness.entries()) {
      if (ready.receiving < ready.count) {
        const message = `only ${ready.receiving} of ${ready.count} ${groups[i]!.protocol} viewers received media (${ready.errors} errors, last: ${ready.lastError})`;
        if (SMOKE) throw new Error(message);
        console.log(`warning: ${message}`);
      }
    }
    await sleep(WARMUP_SECONDS * 1000);

    // The measured window.
    const stats0 = await adminJson<{ bytes_received: number; bytes_sent: number }>(
      ports.admin,
      "/api/v1/stats",
    );
    const before = await Promise.all(groups.map((group) => group.snapshot()));
    const sampler = new ProcessSampler(server.child.pid!, 1000);
    const viewerSamplers = groups.map((group) => new ProcessSampler(group.child.pid!, 1000));
    const windowStart = performance.now();
    await sleep((SECONDS * 1000) / 2);
    const statsDuring = await adminJson<{ subscribers_by_protocol?: Record<string, number> }>(
      ports.admin,
      "/api/v1/stats",
    );
    await sleep((SECONDS * 1000) / 2);
    sampler.stop();
    for (const viewerSampler of viewerSamplers) viewerSampler.stop();
    const windowSeconds = (performance.now() - windowStart) / 1000;
    const after = await Promise.all(groups.map((group) => group.snapshot()));
    const stats1 = await adminJson<{ bytes_received: number; bytes_sent: number }>(
      ports.admin,
      "/api/v1/stats",
    );
    const slo = await adminJson<{ broadcasts: Array<Record<string, number | string>> }>(
      ports.admin,
      "/api/v1/slo",
    );
    const metricsText = await (await fetch(`http://127.0.0.1:${ports.admin}/metrics`)).text();
    const metricMb = (name: string) => {
      const value = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, "m").exec(metricsText)?.[1];
      return value === undefined ? null : round(Number(value) / 2 ** 20);
    };

    const first = sampler.samples[0]!;
    const last = sampler.samples[sampler.samples.length - 1]!;
    const cpuMean = ((last.cpuMs - first.cpuMs) / (last.atMs - first.atMs)) * 100;
    const perSecond = sampler.intervals();
    const rssPeakMb = Math.max(...sampler.samples.map((s) => s.rssBytes)) / 2 ** 20;
    const protocols = [...new Set(groups.map((group) => group.protocol))];
    const viewers = Object.fromEntries(
      protocols.map((protocol) => {
        const mine = groups
          .map((group, i) => [group, i] as const)
          .filter(([group]) => group.protocol === protocol);
        const seconds = Math.min(...mine.map(([, i]) => (after[i]!.atMs - before[i]!.atMs) / 1000));
        return [
          protocol,
          viewerRates(
            protocol,
            mine.flatMap(([, i]) => before[i]!.viewers),
            mine.flatMap(([, i]) => after[i]!.viewers),
            seconds,
          ),
        ];
      }),
    );
    const results = {
      server: {
        cpuPercentOfOneCore: {
          mean: round(cpuMean),
          p95: round(percentile(perSecond, 95)),
          max: round(Math.max(...perSecond)),
        },
        rssMb: {
          idle: round(idle.rssBytes / 2 ** 20),
          peak: round(rssPeakMb),
          end: round(last.rssBytes / 2 ** 20),
        },
        /** RSS at each quarter of the window: a plateau or a slope. */
        rssCurveMb: [0.25, 0.5, 0.75, 1].map((f) => {
          const at = Math.min(sampler.samples.length - 1, Math.round(f * (sampler.samples.length - 1)));
          return round(sampler.samples[at]!.rssBytes / 2 ** 20);
        }),
        /** The server's own view at the end: V8 heap in use and reserved, memory outside it (Buffers). */
        memoryMb: {
          heapUsed: metricMb("nodejs_heap_size_used_bytes"),
          heapTotal: metricMb("nodejs_heap_size_total_bytes"),
          external: metricMb("nodejs_external_memory_bytes"),
          /** Reserved size of each V8 heap space. */
          heapSpaces: Object.fromEntries(
            [...metricsText.matchAll(/^nodejs_heap_space_size_total_bytes\{space="([^"]+)"\} ([0-9.e+]+)$/gm)]
              .map((m) => [m[1]!, round(Number(m[2]) / 2 ** 20)])
              .filter(([, mb]) => (mb as number) >= 1),
          ),
        },
        ingestKbps: round(((stats1.bytes_received - stats0.bytes_received) * 8) / 1000 / windowSeconds),
        egressMbps: round(((stats1.bytes_sent - stats0.bytes_sent) * 8) / 1e6 / windowSeconds),
        subscribersByProtocol: statsDuring?.subscribers_by_protocol,
        sloMs: Object.fromEntries(
          slo.broadcasts
            .filter((entry) => entry.broadcast === BROADCAST)
            .map((entry) => [entry.transport, { p50: entry.p50_ms, p95: entry.p95_ms, p99: entry.p99_ms }]),
        ),
      },
      viewers,
      viewerProcessesCpuPercent: Object.fromEntries(
        protocols.map((protocol) => [
          protocol,
          round(
            groups.reduce((sum, group, i) => {
              if (group.protocol !== protocol) return sum;
              const s = viewerSamplers[i]!.samples;
              return (
                sum + ((s[s.length - 1]!.cpuMs - s[0]!.cpuMs) / (s[s.length - 1]!.atMs - s[0]!.atMs)) * 100
              );
            }, 0),
          ),
        ]),
      ),
      windowSeconds: round(windowSeconds),
    };
    // The CPU figure only means something if every viewer was served in full.
    const problems: string[] = [];
    for (const [protocol, rates] of Object.entries(viewers) as Array<
      [Protocol, ReturnType<typeof viewerRates>]
    >) {
      if (rates.keptUp < rates.viewers) {
        problems.push(
          `${rates.viewers - rates.keptUp} of ${rates.viewers} ${protocol} viewers received less than 90 % of the stream`,
        );
      }
    }
    const verdict = {
      cpu: cpuMean <= TARGETS.cpuPercentOfOneCore ? "met" : "MISSED",
      rss: rssPeakMb <= TARGETS.rssMb ? "met" : "MISSED",
      /** False when some viewers fell behind: the server then did less work than this load needs. */
      everyViewerServed: problems.length === 0,
    };

    console.log(
      `server CPU       mean ${results.server.cpuPercentOfOneCore.mean} % of one core (p95 ${results.server.cpuPercentOfOneCore.p95} %, max ${results.server.cpuPercentOfOneCore.max} %), target ≤ ${TARGETS.cpuPercentOfOneCore} %: ${verdict.cpu}`,
    );
    console.log(
      `server RSS       peak ${results.server.rssMb.peak} MB (idle ${results.server.rssMb.idle} MB, end ${results.server.rssMb.end} MB), target ≤ ${TARGETS.rssMb} MB: ${verdict.rss}`,
    );
    console.log(
      `server memory    RSS by quarter of the window ${JSON.stringify(results.server.rssCurveMb)} MB; at the end ${JSON.stringify(results.server.memoryMb)} MB`,
    );
    console.log(
      `ingest           ${results.server.ingestKbps} kbit/s; egress ${results.server.egressMbps} Mbit/s`,
    );
    console.log(
      `server sees      ${JSON.stringify(results.server.subscribersByProtocol)} subscribers; SLO ms ${JSON.stringify(results.server.sloMs)}`,
    );
    for (const [protocol, rates] of Object.entries(viewers)) {
      const unit = protocol === "moq" ? "frames" : protocol === "hls" ? "parts" : "segments";
      console.log(
        `${protocol.padEnd(5)} viewers    ${rates.viewers} (${rates.keptUp} kept up): ${unit}/s per viewer min ${rates.mediaPerSecond.min} median ${rates.mediaPerSecond.median}, ` +
          `kbit/s min ${rates.kbitPerSecond.min} median ${rates.kbitPerSecond.median}, errors ${rates.errors}${"lastError" in rates ? ` (${rates.lastError})` : ""}`,
      );
    }
    console.log(`viewer processes CPU % of one core ${JSON.stringify(results.viewerProcessesCpuPercent)}`);
    console.log(
      JSON.stringify({
        bench: "server",
        smoke: SMOKE,
        seconds: SECONDS,
        viewers: VIEWERS,
        targets: TARGETS,
        verdict,
        results,
      }),
    );

    if (problems.length > 0 && !SMOKE) {
      console.log(
        `warning: the load generator did not keep up (${problems.join("; ")}); with viewers and server sharing ` +
          `${availableParallelism()} cores the server figures are a lower bound for this load`,
      );
    }
    await Promise.all(groups.map((group) => group.stop()));
    ffmpeg.kill("SIGINT");
    server.child.kill("SIGTERM");
    const code = await Promise.race([server.exited, sleep(10_000).then(() => "timeout" as const)]);
    console.log(`done in ${round((Date.now() - started) / 1000)} s`);
    if (code !== 0) throw new Error(`the server exited with ${code} on SIGTERM`);
    // In smoke mode the load is light: every viewer must have been served in full.
    if (SMOKE && problems.length > 0) throw new Error(problems.join("; "));
    if (ENFORCE && (verdict.cpu !== "met" || verdict.rss !== "met")) process.exitCode = 1;
  } finally {
    for (const cleanup of cleanups.reverse()) cleanup();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
