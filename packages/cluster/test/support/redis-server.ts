/**
 * Starts a throwaway `redis-server` for tests: loopback only, no persistence (`--save ''
 * --appendonly no`), its own temp directory, on a random free high port (Redis cannot bind port 0,
 * so a port is picked at random and another is tried on EADDRINUSE). The handle can SIGKILL the
 * server and start it again on the same port, which is how outage and data-loss tests work.
 *
 * Self-contained on purpose (only Node built-ins), so other packages can copy or import it.
 * Throws a clear error when `redis-server` is not installed: tests that need Redis must fail,
 * never pass silently.
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** A running (or stopped, restartable) redis-server. */
export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** PID of the current process (changes after a restart); undefined while stopped. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** SIGKILLs the server (like a crash) and waits until it has exited. */
  kill(): Promise<void>;
  /** Starts the server again on the same port (after `kill`); its data is gone. */
  restart(): Promise<void>;
  /** Kills the server and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Extra command-line arguments, e.g. `["--notify-keyspace-events", "Egx"]`. */
  readonly args?: readonly string[];
  /** How long to wait for "Ready to accept connections", ms. Default 10000. */
  readonly readyTimeoutMs?: number;
}

const HOST = "127.0.0.1";
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Throws unless `redis-server` can be executed. */
export function assertRedisServerInstalled(): void {
  const probe = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      "redis-server is not installed or not on PATH; the cluster tests need it " +
        "(Debian/Ubuntu: apt-get install redis-server). " +
        (probe.error ? probe.error.message : `exit status ${probe.status}`),
    );
  }
}

/** Starts a redis-server on a free loopback port. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  assertRedisServerInstalled();
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Never leave a server behind, even when the test process ends abruptly.
    process.once("exit", () => {
      for (const child of live) child.kill("SIGKILL");
    });
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), "lvqr-redis-"));
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const extra = options.args ?? [];
  let child: ChildProcess | undefined;
  let port = 0;
  for (let attempt = 0; attempt < 20 && !child; attempt += 1) {
    const candidate = 20_000 + Math.floor(Math.random() * 40_000);
    if (!(await portLooksFree(candidate))) continue;
    const started = await launch(candidate, dir, extra, readyTimeoutMs);
    if (started === "in-use") continue;
    child = started;
    port = candidate;
  }
  if (!child) {
    await rm(dir, { recursive: true, force: true });
    throw new Error("could not find a free port for redis-server after 20 attempts");
  }

  let current: ChildProcess | undefined = child;
  let stopped = false;
  const server: RedisServer = {
    host: HOST,
    port,
    url: `redis://${HOST}:${port}`,
    get pid() {
      return current?.pid;
    },
    get running() {
      return current !== undefined;
    },
    async kill() {
      const proc = current;
      current = undefined;
      if (proc) await killAndWait(proc);
    },
    async restart() {
      if (stopped) throw new Error("redis-server was stopped");
      if (current) throw new Error("redis-server is still running; kill() it first");
      for (let attempt = 0; attempt < 50; attempt += 1) {
        const started = await launch(port, dir, extra, readyTimeoutMs);
        if (started !== "in-use") {
          current = started;
          return;
        }
        // Another process grabbed the port in between; it may let go shortly.
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`redis-server could not bind port ${port} again (EADDRINUSE)`);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}

function portLooksFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, HOST, () => probe.close(() => resolve(true)));
  });
}

function launch(
  port: number,
  dir: string,
  extra: readonly string[],
  timeoutMs: number,
): Promise<ChildProcess | "in-use"> {
  const args = [
    "--port",
    String(port),
    "--bind",
    HOST,
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    "--daemonize",
    "no",
    "--loglevel",
    "notice",
    ...extra,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    live.add(child);
    let output = "";
    let settled = false;
    const finish = (result: ChildProcess | "in-use" | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout?.removeListener("data", onData);
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      if (output.length > 65_536) output = output.slice(-32_768);
      if (output.includes("Ready to accept connections")) finish(child);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    // Keep draining output after startup so the pipe never fills and blocks the server.
    child.stdout?.on("data", () => {});
    child.once("error", (err) => finish(new Error(`could not start redis-server: ${err.message}`)));
    child.once("exit", (code, signal) => {
      live.delete(child);
      if (/Address already in use/i.test(output)) finish("in-use");
      else
        finish(
          new Error(
            `redis-server exited during startup (code ${code}, signal ${signal}):\n${output.slice(-2000)}`,
          ),
        );
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish(new Error(`redis-server did not become ready within ${timeoutMs} ms:\n${output.slice(-2000)}`));
    }, timeoutMs);
  });
}

function killAndWait(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      live.delete(child);
      resolve();
      return;
    }
    child.once("exit", () => {
      live.delete(child);
      resolve();
    });
    child.kill("SIGKILL");
  });
}
