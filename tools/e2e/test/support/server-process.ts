/**
 * The built `lvqr` command (`apps/server/dist/cli.js`) run as a child process, the way operators
 * run it: its JSON log lines are parsed as they arrive and the bound ports are read from the
 * "lvqr ready" line, so every port can be 0.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { createInterface } from "node:readline";
import { waitFor } from "@lvqr/test-utils";

/** A parsed pino log line. */
export type LogLine = Record<string, unknown> & { readonly msg?: string; readonly level?: number };

/** The ports the "lvqr ready" line reports. */
export interface ReadyPorts {
  readonly moq: number;
  readonly rtmp: number;
  readonly admin: number;
  readonly hls: number | null;
  readonly dash: number | null;
}

/** How the process ended. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Unix ms when it exited. */
  readonly atMs: number;
}

/** The path of the built CLI (the package's `bin.lvqr`); throws a message saying how to build it when it is missing. */
export function builtCliPath(): string {
  // Resolves to src/ or dist/ depending on the export conditions in effect; the package root is
  // the nearest folder above it with a package.json.
  let dir = path.dirname(createRequire(import.meta.url).resolve("@lvqr/server"));
  while (!existsSync(path.join(dir, "package.json"))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error("cannot find the package.json of @lvqr/server");
    dir = parent;
  }
  const manifest = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as {
    bin: { lvqr: string };
  };
  const cli = path.join(dir, manifest.bin.lvqr);
  if (!existsSync(cli)) {
    throw new Error(
      `${path.relative(process.cwd(), cli)} is missing: build the workspace first (pnpm exec tsc -b)`,
    );
  }
  return cli;
}

/** Flags that put every listener on 127.0.0.1 with an ephemeral port. */
export const EPHEMERAL_FLAGS: readonly string[] = [
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
];

/** A running `lvqr` process. */
export class ServerProcess {
  readonly child: ChildProcess;
  /** Every JSON log line so far. */
  readonly logs: LogLine[] = [];
  /** Anything on stdout that was not JSON, and all of stderr. */
  readonly output: string[] = [];
  /** Resolves when the process has exited. */
  readonly exited: Promise<ProcessExit>;
  #exit: ProcessExit | undefined;

  private constructor(child: ChildProcess) {
    this.child = child;
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        this.logs.push(JSON.parse(line) as LogLine);
      } catch {
        this.output.push(line);
      }
    });
    createInterface({ input: child.stderr! }).on("line", (line) => this.output.push(line));
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.#exit = { code, signal, atMs: Date.now() };
        resolve(this.#exit);
      });
    });
  }

  /** Runs `node apps/server/dist/cli.js <args>` with `env` added to the environment. */
  static spawn(
    args: readonly string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
  ): ServerProcess {
    const child = spawn(process.execPath, [builtCliPath(), ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new ServerProcess(child);
  }

  /** Runs `lvqr serve` with `args` and resolves with the process once its "lvqr ready" line is out. */
  static async serve(
    args: readonly string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
  ): Promise<{ process: ServerProcess; ports: ReadyPorts }> {
    const server = ServerProcess.spawn(["serve", ...args], options);
    try {
      const ports = await server.ready(options.timeoutMs);
      return { process: server, ports };
    } catch (error) {
      server.kill();
      throw error;
    }
  }

  /** Waits for the "lvqr ready" log line and returns the ports it names. */
  async ready(timeoutMs = 20_000): Promise<ReadyPorts> {
    const line = await waitFor(
      () => {
        if (this.#exit) {
          throw new Error(
            `lvqr exited (${this.#exit.code ?? this.#exit.signal}) before it was ready:\n${this.output.join("\n")}`,
          );
        }
        return this.logs.find((entry) => entry.msg === "lvqr ready");
      },
      { timeoutMs, intervalMs: 25, message: "the 'lvqr ready' log line" },
    );
    return line as unknown as ReadyPorts;
  }

  /** Resolves with the first log line `predicate` accepts. */
  async waitForLog(
    predicate: (line: LogLine) => boolean,
    timeoutMs = 10_000,
    message = "a log line",
  ): Promise<LogLine> {
    return waitFor(() => this.logs.find(predicate), { timeoutMs, intervalMs: 25, message });
  }

  /** How it exited, once it has. */
  get exit(): ProcessExit | undefined {
    return this.#exit;
  }

  /** Sends `signal` (SIGTERM by default). */
  signal(signal: NodeJS.Signals = "SIGTERM"): void {
    this.child.kill(signal);
  }

  /** Kills it outright if it is still running (cleanup after a failed test). */
  kill(): void {
    if (!this.#exit) this.child.kill("SIGKILL");
  }
}
