/**
 * Parent side of the multi-process fault tests: forks `cluster-node-child.ts`, records every report
 * it sends, and offers waits and signals (SIGKILL, SIGSTOP, SIGCONT). Also the fenced sink that the
 * children write to.
 */

import { type ChildProcess, fork } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ChildCommand, ChildConfig } from "./cluster-node-child.ts";

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), "cluster-node-child.ts");

/** One report from a child; `type` says which. */
export interface NodeReport {
  readonly node: string;
  readonly wall: number;
  readonly type: string;
  readonly [key: string]: unknown;
}

/** A forked cluster node. */
export class NodeProcess {
  readonly nodeId: string;
  readonly reports: NodeReport[] = [];
  readonly #child: ChildProcess;
  readonly #waiters = new Set<() => void>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = "";

  private constructor(config: ChildConfig, onReport?: (report: NodeReport) => void) {
    this.nodeId = config.nodeId;
    this.#child = fork(CHILD, [JSON.stringify(config)], {
      execArgv: [],
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    this.#child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-16_384);
    });
    this.#child.on("message", (message: NodeReport) => {
      this.reports.push(message);
      onReport?.(message);
      for (const wake of [...this.#waiters]) wake();
    });
    this.exited = new Promise((resolve) => {
      this.#child.once("exit", (code, signal) => {
        resolve({ code, signal });
        for (const wake of [...this.#waiters]) wake();
      });
    });
  }

  /** Forks a node and waits for its `started` report. */
  static async start(config: ChildConfig, onReport?: (report: NodeReport) => void): Promise<NodeProcess> {
    const node = new NodeProcess(config, onReport);
    await node.waitFor((r) => r.type === "started", 15_000, "child start");
    return node;
  }

  get pid(): number {
    return this.#child.pid!;
  }

  send(command: ChildCommand): void {
    this.#child.send(command);
  }

  signal(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  /** Resolves with the first report (past or future) matching `predicate`. */
  waitFor(
    predicate: (report: NodeReport) => boolean,
    timeoutMs: number,
    what = "report",
  ): Promise<NodeReport> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.reports.find(predicate);
        if (found) {
          cleanup();
          resolve(found);
          return true;
        }
        if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
          cleanup();
          reject(new Error(`${this.nodeId} exited while waiting for ${what}; stderr:\n${this.stderr}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `${this.nodeId}: timed out after ${timeoutMs} ms waiting for ${what}; stderr:\n${this.stderr}`,
          ),
        );
      }, timeoutMs);
      const wake = () => {
        check();
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
      };
      if (!check()) this.#waiters.add(wake);
    });
  }

  /** Reports of one type, in arrival order. */
  of(type: string): NodeReport[] {
    return this.reports.filter((report) => report.type === type);
  }

  /** Asks the child to release everything and exit; SIGKILLs it if that takes too long. */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    try {
      this.#child.kill("SIGCONT");
      this.send({ op: "exit" });
    } catch {
      // The IPC channel may already be gone.
    }
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** One write that reached the sink. */
export interface SinkWrite {
  readonly node: string;
  readonly name: string;
  readonly epoch: number;
  readonly startWall: number;
  readonly arrivedWall: number;
  readonly accepted: boolean;
}

/**
 * A fenced sink, like a recording or an edge cache: per broadcast it accepts a write only if its
 * epoch is at least the highest it has accepted.
 */
export class FencedSink {
  readonly writes: SinkWrite[] = [];
  readonly #highest = new Map<string, number>();

  write(report: NodeReport): SinkWrite {
    const name = String(report["name"]);
    const epoch = Number(report["epoch"]);
    const highest = this.#highest.get(name) ?? Number.NEGATIVE_INFINITY;
    const accepted = epoch >= highest;
    if (accepted) this.#highest.set(name, epoch);
    const write: SinkWrite = {
      node: report.node,
      name,
      epoch,
      startWall: Number(report["startWall"]),
      arrivedWall: Date.now(),
      accepted,
    };
    this.writes.push(write);
    return write;
  }

  accepted(node?: string): SinkWrite[] {
    return this.writes.filter((w) => w.accepted && (node === undefined || w.node === node));
  }

  rejected(node?: string): SinkWrite[] {
    return this.writes.filter((w) => !w.accepted && (node === undefined || w.node === node));
  }
}
