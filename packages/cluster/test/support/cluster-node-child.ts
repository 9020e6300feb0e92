/**
 * A cluster node in its own process, for fault tests: `child_process.fork` runs this file (Node
 * strips the types) and drives it over IPC. It uses the package exactly as a server would: a
 * RedisStore, BroadcastClaims, markMedia() from a simulated publisher, and "owner actions" that
 * check isOwner(), wait, then write to the parent's fenced sink with the claim's epoch.
 *
 * Every report carries Date.now() (one wall clock for all processes on the machine) and, for
 * deadlines, the local monotonic deadline converted to wall time.
 */

import {
  BroadcastBusyError,
  type BroadcastClaim,
  BroadcastClaims,
  type ConflictPolicy,
  RedisStore,
} from "../../src/index.ts";

export interface ChildConfig {
  readonly nodeId: string;
  readonly redisUrl: string;
  readonly keyPrefix: string;
  readonly leaseMs: number;
  readonly renewIntervalMs: number;
  readonly staleMs?: number;
  readonly operationTimeoutMs?: number;
}

export type ChildCommand =
  | {
      readonly op: "claim";
      readonly name: string;
      readonly policy?: ConflictPolicy;
      readonly retryMs?: number;
    }
  | { readonly op: "media"; readonly name: string; readonly periodMs: number }
  | { readonly op: "act"; readonly name: string; readonly periodMs: number; readonly holdMs: number }
  | { readonly op: "release"; readonly name: string }
  | { readonly op: "exit" };

const config = JSON.parse(process.argv[2] ?? "{}") as ChildConfig;
const send = (message: Record<string, unknown>) => {
  process.send?.({ node: config.nodeId, wall: Date.now(), ...message });
};
const toWall = (monotonic: number) => Date.now() + (monotonic - performance.now());
const logger = {
  debug: () => {},
  info: (fields: object, message: string) => send({ type: "log", level: "info", message, fields }),
  warn: (fields: object, message: string) => send({ type: "log", level: "warn", message, fields }),
  error: (fields: object, message: string) => send({ type: "log", level: "error", message, fields }),
};

process.on("unhandledRejection", (err) => {
  send({ type: "unhandled-rejection", error: String(err) });
});

const store = new RedisStore({
  url: config.redisUrl,
  keyPrefix: config.keyPrefix,
  ...(config.operationTimeoutMs ? { operationTimeoutMs: config.operationTimeoutMs } : {}),
  logger,
});
store.onStateChange((state) => send({ type: "store-state", state }));
const claims = new BroadcastClaims({
  store,
  nodeId: config.nodeId,
  leaseMs: config.leaseMs,
  renewIntervalMs: config.renewIntervalMs,
  ...(config.staleMs ? { staleMs: config.staleMs } : {}),
  logger,
});
const loops = new Set<NodeJS.Timeout>();
const claimsByName = new Map<string, BroadcastClaim>();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function watch(name: string, claim: BroadcastClaim, attemptSentWall: number): void {
  claimsByName.set(name, claim);
  const deadlineWall = () => (Number.isFinite(claim.deadline) ? toWall(claim.deadline) : null);
  send({
    type: "acquired",
    name,
    epoch: claim.epoch,
    state: claim.state,
    attemptSentWall,
    deadlineWall: deadlineWall(),
  });
  claim.on("acquired", (info) =>
    send({
      type: "acquired",
      name,
      epoch: info.epoch,
      previousEpoch: info.previousEpoch,
      deadlineWall: deadlineWall(),
    }),
  );
  claim.on("renewed", (info) =>
    send({ type: "renewed", name, epoch: info.epoch, deadlineWall: toWall(info.deadline) }),
  );
  claim.on("stepdown", (info) => send({ type: "stepdown", name, reason: info.reason }));
  claim.on("stolen", (info) => send({ type: "stolen", name, by: info.by }));
  claim.on("lost", (info) => send({ type: "lost", name, reason: info.reason, owner: info.owner }));
}

async function claimLoop(
  name: string,
  policy: ConflictPolicy | undefined,
  retryMs: number | undefined,
): Promise<void> {
  for (;;) {
    const attemptSentWall = Date.now();
    try {
      const claim = await claims.claim(name, policy ? { policy } : {});
      watch(name, claim, attemptSentWall);
      return;
    } catch (err) {
      if (err instanceof BroadcastBusyError) {
        send({ type: "busy", name, owner: err.owner.nodeId, ownerEpoch: err.owner.epoch });
        if (retryMs === undefined) return;
        await sleep(retryMs);
        continue;
      }
      send({ type: "claim-error", name, error: String(err) });
      return;
    }
  }
}

function every(periodMs: number, fn: () => void): void {
  const timer = setInterval(fn, periodMs);
  loops.add(timer);
}

async function actLoop(name: string, periodMs: number, holdMs: number): Promise<void> {
  for (;;) {
    const claim = claimsByName.get(name);
    if (claim?.isOwner()) {
      const epoch = claim.epoch;
      const startWall = Date.now();
      await sleep(holdMs);
      // No second check here on purpose: this is the write a paused process finishes late.
      send({ type: "write", name, epoch, startWall });
    } else {
      await sleep(periodMs);
    }
  }
}

process.on("message", (command: ChildCommand) => {
  switch (command.op) {
    case "claim":
      void claimLoop(command.name, command.policy, command.retryMs);
      break;
    case "media":
      every(command.periodMs, () => claimsByName.get(command.name)?.markMedia());
      break;
    case "act":
      void actLoop(command.name, command.periodMs, command.holdMs);
      break;
    case "release":
      void claimsByName
        .get(command.name)
        ?.release()
        .then(() => send({ type: "released", name: command.name }));
      break;
    case "exit":
      for (const timer of loops) clearInterval(timer);
      void claims
        .close()
        .then(() => store.close())
        .then(() => {
          send({ type: "exited" });
          process.exit(0);
        });
      break;
  }
});

send({ type: "started", pid: process.pid });
