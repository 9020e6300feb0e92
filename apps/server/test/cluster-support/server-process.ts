/**
 * One `lvqr serve` process for the multi-process cluster tests: the real CLI from `dist/` (build
 * first: `pnpm exec tsc -b`), every port 0, on loopback. `LVQR_CLUSTER_TEST_CLI=source` runs the
 * same CLI from `src/` instead (Node strips the types), which needs no build while developing. Its JSON log lines are parsed and kept, so
 * tests can wait for the `lvqr ready` line (which carries the bound ports) and assert on what the
 * node logged (claims, stepdowns, relays). Signals (SIGKILL, SIGSTOP, SIGCONT, SIGTERM) go to the
 * process by PID.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const APP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const FROM_SOURCE = process.env["LVQR_CLUSTER_TEST_CLI"] === "source";
const CLI = path.join(APP, FROM_SOURCE ? "src/cli.ts" : "dist/cli.js");

/** One parsed JSON log line, with the test process's receive time. */
export interface LogLine {
  readonly msg: string;
  readonly level: number;
  /** `performance.now()` in the test process when the line arrived. */
  readonly at: number;
  readonly [field: string]: unknown;
}

/** Ports from the `lvqr ready` line. */
export interface NodePorts {
  readonly moq: number;
  readonly rtmp: number;
  readonly admin: number;
  readonly hls: number;
  readonly dash: number;
}

/** Options of {@link ServerProcess.start}. */
export interface ServerProcessOptions {
  readonly nodeId: string;
  /** `--cluster-redis-url`; without it the node runs unclustered (the other cluster options are ignored). */
  readonly redisUrl?: string;
  /** `--cluster-lease-ms` / `--cluster-renew-ms`. */
  readonly leaseMs?: number;
  readonly renewMs?: number;
  readonly egress?: "relay" | "redirect";
  readonly conflict?: "takeover-if-stale" | "takeover" | "reject";
  readonly extraArgs?: readonly string[];
  /** Bearer token for the admin API (when the node runs with auth). */
  readonly adminBearer?: string;
  /** How long to wait for `lvqr ready`. Default 20000. */
  readonly readyTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
let exitHook = false;

/** A running server node. */
export class ServerProcess {
  readonly nodeId: string;
  readonly logs: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  ports!: NodePorts;
  stderr = "";
  adminBearer: string | undefined;
  readonly #child: ChildProcess;
  readonly #dataDir: string;
  readonly #waiters = new Set<() => void>();
  #exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  private constructor(nodeId: string, child: ChildProcess, dataDir: string) {
    this.nodeId = nodeId;
    this.#child = child;
    this.#dataDir = dataDir;
    let pending = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      pending += chunk;
      for (;;) {
        const newline = pending.indexOf("\n");
        if (newline < 0) break;
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          this.logs.push({ ...(JSON.parse(line) as object), at: performance.now() } as LogLine);
        } catch {
          // Not JSON (should not happen with the default logger); ignore.
        }
      }
      this.#wake();
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-16_384);
    });
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        live.delete(child);
        this.#exitInfo = { code, signal };
        resolve({ code, signal });
        this.#wake();
      });
    });
  }

  /** Spawns `node dist/cli.js serve` and waits for `lvqr ready`. */
  static async start(options: ServerProcessOptions): Promise<ServerProcess> {
    if (!existsSync(CLI)) {
      throw new Error(`${CLI} is missing: build the workspace first (pnpm exec tsc -b)`);
    }
    if (!exitHook) {
      exitHook = true;
      process.once("exit", () => {
        for (const child of live) child.kill("SIGKILL");
      });
    }
    const dataDir = await mkdtemp(path.join(os.tmpdir(), `lvqr-${options.nodeId}-`));
    const args = [
      ...(FROM_SOURCE ? ["--conditions=@lvqr/source"] : []),
      CLI,
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--rtmp-port",
      "0",
      "--admin-port",
      "0",
      "--hls-port",
      "0",
      "--dash-port",
      "0",
      "--data-dir",
      dataDir,
      "--shutdown-grace-ms",
      "200",
      ...(options.redisUrl === undefined ? [] : clusterArgs(options, options.redisUrl)),
      ...(options.extraArgs ?? []),
    ];
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LVQR_LOG_LEVEL: "info" },
    });
    live.add(child);
    const node = new ServerProcess(options.nodeId, child, dataDir);
    node.adminBearer = options.adminBearer;
    const ready = await node.waitForLog(
      (line) => line.msg === "lvqr ready",
      options.readyTimeoutMs ?? 20_000,
      "lvqr ready",
    );
    node.ports = {
      moq: Number(ready["moq"]),
      rtmp: Number(ready["rtmp"]),
      admin: Number(ready["admin"]),
      hls: Number(ready["hls"]),
      dash: Number(ready["dash"]),
    };
    return node;
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** True while the process runs. */
  get running(): boolean {
    return this.#exitInfo === undefined;
  }

  rtmpUrl(broadcast: string): string {
    return `rtmp://127.0.0.1:${this.ports.rtmp}/${broadcast}`;
  }

  hlsUrl(broadcast: string, file = "master.m3u8"): string {
    return `http://127.0.0.1:${this.ports.hls}/hls/${broadcast}/${file}`;
  }

  dashUrl(broadcast: string, file = "manifest.mpd"): string {
    return `http://127.0.0.1:${this.ports.dash}/dash/${broadcast}/${file}`;
  }

  moqUrl(root = ""): string {
    return `http://127.0.0.1:${this.ports.moq}/${root}`;
  }

  /** GET on the admin port, parsed as JSON; throws on a non-2xx status. */
  async admin<T>(route: string): Promise<T> {
    const response = await fetch(`http://127.0.0.1:${this.ports.admin}${route}`, {
      headers: this.adminBearer ? { authorization: `Bearer ${this.adminBearer}` } : {},
      signal: AbortSignal.timeout(5000),
    });
    if (!response.ok)
      throw new Error(`${this.nodeId} ${route}: HTTP ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }

  /** Log lines with message `msg` (optionally filtered). */
  lines(msg: string, filter: (line: LogLine) => boolean = () => true): LogLine[] {
    return this.logs.filter((line) => line.msg === msg && filter(line));
  }

  /** Waits for a log line matching `predicate` (already logged ones count). */
  async waitForLog(predicate: (line: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine> {
    const deadline = performance.now() + timeoutMs;
    let seen = 0;
    for (;;) {
      for (; seen < this.logs.length; seen++) if (predicate(this.logs[seen]!)) return this.logs[seen]!;
      if (this.#exitInfo) {
        throw new Error(
          `${this.nodeId} exited (${JSON.stringify(this.#exitInfo)}) while waiting for ${what}\n${this.stderr}`,
        );
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${this.nodeId}: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 250));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#waiters.add(done);
      });
    }
  }

  /** Sends `signal` to the process. */
  signal(signal: NodeJS.Signals): void {
    if (this.running) process.kill(this.pid, signal);
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    this.signal("SIGKILL");
    await this.exited;
  }

  /** SIGTERM (graceful drain), SIGKILL after `timeoutMs`; resolves with the exit. */
  async stop(timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) {
      this.signal("SIGCONT");
      this.signal("SIGTERM");
      const timer = setTimeout(() => this.signal("SIGKILL"), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    await rm(this.#dataDir, { recursive: true, force: true }).catch(() => {});
    return this.#exitInfo!;
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) {
      this.#waiters.delete(wake);
      wake();
    }
  }
}

function clusterArgs(options: ServerProcessOptions, redisUrl: string): string[] {
  return [
    "--cluster-redis-url",
    redisUrl,
    "--cluster-node-id",
    options.nodeId,
    ...(options.leaseMs === undefined ? [] : ["--cluster-lease-ms", String(options.leaseMs)]),
    ...(options.renewMs === undefined ? [] : ["--cluster-renew-ms", String(options.renewMs)]),
    ...(options.egress === undefined ? [] : ["--cluster-egress", options.egress]),
    ...(options.conflict === undefined ? [] : ["--cluster-conflict", options.conflict]),
  ];
}
