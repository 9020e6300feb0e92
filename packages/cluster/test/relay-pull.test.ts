/**
 * Relay-pull between in-process nodes: each node has its own Origin and a real moq-lite server on a
 * loopback port, and they share one MemoryStore. Checks that a non-owner announces remote
 * broadcasts without pulling them, opens one upstream session per broadcast only while something
 * reads, forwards the owner's exact frames, follows ownership to a higher epoch, feeds the egress
 * origin only on demand, retries a failing owner with backoff, and lets local media win.
 */

import {
  type BroadcastConsumer,
  type BroadcastProducer,
  connectMoq,
  type MoqClient,
  type MoqServer,
  OriginProducer,
  serveMoq,
  type TrackConsumer,
} from "@lvqr/moq-lite";
import { afterEach, describe, expect, it } from "vitest";
import {
  BroadcastClaims,
  ClusterDirectory,
  MemoryStore,
  type MoqConnector,
  NodeRegistry,
  RelayPull,
  type RelayPullOptions,
} from "../src/index.ts";
import { BlackholeProxy } from "./support/blackhole-proxy.ts";
import { sleep } from "./support/harness.ts";
import { recordingLogger } from "./support/recording-logger.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

interface TestNode {
  readonly id: string;
  readonly origin: OriginProducer;
  readonly moq: MoqServer;
  readonly url: string;
  readonly claims: BroadcastClaims;
}

async function startNode(
  store: MemoryStore,
  id: string,
  advertise?: (moqPort: number) => Promise<string>,
): Promise<TestNode> {
  const origin = new OriginProducer();
  const moq = await serveMoq({ port: 0, host: "127.0.0.1", origin });
  cleanups.push(() => moq.close());
  const url = advertise ? await advertise(moq.address!.port) : `http://127.0.0.1:${moq.address!.port}`;
  const registry = new NodeRegistry({ store, nodeId: id, endpoints: { moq: url }, heartbeatMs: 200 });
  await registry.start();
  cleanups.push(() => registry.close());
  const claims = new BroadcastClaims({
    store,
    nodeId: id,
    leaseMs: 2000,
    renewIntervalMs: 500,
    stepdownMarginMs: 500,
  });
  cleanups.push(() => claims.close());
  return { id, origin, moq, url, claims };
}

async function startRelay(
  store: MemoryStore,
  node: TestNode,
  extra: Partial<RelayPullOptions> = {},
): Promise<{ relay: RelayPull; egress: OriginProducer; directory: ClusterDirectory }> {
  const directory = new ClusterDirectory({ store, pollIntervalMs: 200 });
  await directory.start();
  cleanups.push(() => directory.close());
  const egress = new OriginProducer();
  const relay = new RelayPull({
    nodeId: node.id,
    origin: node.origin,
    egressOrigin: egress,
    directory,
    upstreamIdleMs: 300,
    ownerGapMs: 400,
    egressIdleMs: 400,
    retryInitialMs: 50,
    retryMaxMs: 400,
    ...extra,
  });
  cleanups.push(() => relay.close());
  return { relay, egress, directory };
}

/** The payload of frame `index` of group `sequence` written by `tag`. */
function payload(tag: string, sequence: number, index: number): Uint8Array {
  return new TextEncoder().encode(`${tag}:${sequence}:${index}:${"x".repeat(200 + index)}`);
}

/** Publishes `path` with one track "video": a group of 3 frames every 50 ms. */
function publish(origin: OriginProducer, path: string, tag: string): BroadcastProducer {
  const broadcast = origin.createBroadcast(path);
  const track = broadcast.createTrack("video");
  const timer = setInterval(() => {
    const group = track.appendGroup();
    for (let i = 0; i < 3; i++) group.writeFrame(payload(tag, group.sequence, i));
    group.close();
  }, 50);
  void broadcast.closed.then(() => clearInterval(timer));
  cleanups.push(() => {
    clearInterval(timer);
    broadcast.close();
  });
  return broadcast;
}

async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Reads `count` whole groups; returns [sequence, frames] pairs. */
async function readGroups(track: TrackConsumer, count: number): Promise<Array<[number, Uint8Array[]]>> {
  const out: Array<[number, Uint8Array[]]> = [];
  while (out.length < count) {
    const group = await track.nextGroup();
    if (!group) throw new Error("track ended early");
    const frames: Uint8Array[] = [];
    for (;;) {
      const frame = await group.readFrame();
      if (!frame) break;
      frames.push(frame);
    }
    out.push([group.sequence, frames]);
  }
  return out;
}

function expectFramesFrom(tag: string, groups: Array<[number, Uint8Array[]]>): void {
  for (const [sequence, frames] of groups) {
    expect(frames.length).toBe(3);
    frames.forEach((frame, i) => {
      expect(Buffer.from(frame).equals(Buffer.from(payload(tag, sequence, i)))).toBe(true);
    });
  }
}

const relayedAt = (origin: OriginProducer, path: string): BroadcastConsumer | undefined =>
  origin.consume().consume(path);

describe("RelayPull", () => {
  it("announces a remote broadcast without pulling it, pulls the owner's exact frames on demand, and lets go when unused", async () => {
    const store = new MemoryStore();
    const a = await startNode(store, "node-a");
    const b = await startNode(store, "node-b");
    const { relay } = await startRelay(store, b);

    const claim = await a.claims.claim("live/x");
    publish(a.origin, "live/x", "A");
    await waitUntil(() => relayedAt(b.origin, "live/x") !== undefined, 3000, "the relayed announcement");
    await sleep(200);
    expect(a.moq.stats().sessionsOpen).toBe(0); // announced, nothing pulled
    expect(relay.status()).toMatchObject([
      { broadcast: "live/x", owner: "node-a", epoch: claim.epoch, state: "idle" },
    ]);

    const first = relayedAt(b.origin, "live/x")!.subscribeTrack("video");
    const second = relayedAt(b.origin, "live/x")!.subscribeTrack("video");
    const [fromFirst, fromSecond] = await Promise.all([readGroups(first, 5), readGroups(second, 5)]);
    expectFramesFrom("A", fromFirst);
    expectFramesFrom("A", fromSecond);
    // One session and one upstream subscription for both local readers.
    expect(a.moq.stats().sessionsOpen).toBe(1);
    expect(a.moq.stats().subscribers.get("live/x")).toBe(1);
    expect(relay.status()[0]).toMatchObject({ state: "pulling", sessions: 1 });

    first.close();
    second.close();
    await waitUntil(() => a.moq.stats().sessionsOpen === 0, 3000, "the idle upstream session to close");
    expect(relay.isLocal("live/x")).toBe(false);
  });

  it("lets a MoQ client of the non-owner discover the broadcast with announced(prefix) and play it", async () => {
    const store = new MemoryStore();
    const a = await startNode(store, "node-a");
    const b = await startNode(store, "node-b");
    await startRelay(store, b);
    const client: MoqClient = await connectMoq(`${b.url}/live`);
    cleanups.push(() => client.close());
    const announced = client.announced("");
    cleanups.push(() => announced.close());

    await a.claims.claim("live/show");
    publish(a.origin, "live/show", "A");
    let found: BroadcastConsumer | undefined;
    for (;;) {
      const next = await announced.next();
      if (next?.active && next.path === "show") {
        found = next.broadcast;
        break;
      }
    }
    const groups = await readGroups(found!.subscribeTrack("video"), 4);
    expectFramesFrom("A", groups);
  });

  it("follows a takeover to the new owner with the higher epoch and never goes back", async () => {
    const store = new MemoryStore();
    const a = await startNode(store, "node-a");
    const b = await startNode(store, "node-b");
    const c = await startNode(store, "node-c");
    const logger = recordingLogger();
    const { relay } = await startRelay(store, b, { logger });

    const claimA = await a.claims.claim("live/x");
    publish(a.origin, "live/x", "A");
    await waitUntil(() => relayedAt(b.origin, "live/x") !== undefined, 3000, "relay from A");
    const fromA = relayedAt(b.origin, "live/x")!;
    expectFramesFrom("A", await readGroups(fromA.subscribeTrack("video"), 3));

    const claimC = await c.claims.claim("live/x", { policy: "takeover" });
    publish(c.origin, "live/x", "C");
    expect(claimC.epoch!).toBeGreaterThan(claimA.epoch!);
    await waitUntil(() => relay.status()[0]?.owner === "node-c", 5000, "relay from C");
    await waitUntil(() => relayedAt(b.origin, "live/x") !== fromA, 5000, "the replaced broadcast");
    expect(fromA.done).toBe(true);
    expectFramesFrom("C", await readGroups(relayedAt(b.origin, "live/x")!.subscribeTrack("video"), 3));
    expect(relay.status()[0]!.epoch).toBe(claimC.epoch);

    const relayed = logger.lines.filter((line) => line.message === "relaying a remote broadcast");
    const epochs = relayed.map((line) => (line.fields as { epoch: number }).epoch);
    expect(epochs).toEqual([...epochs].sort((x, y) => x - y));
    expect(epochs.at(-1)).toBe(claimC.epoch);
  });

  it("puts remote broadcasts into the egress origin only while HLS/DASH asks, and mirrors local ones at once", async () => {
    const store = new MemoryStore();
    const a = await startNode(store, "node-a");
    const b = await startNode(store, "node-b");
    const { relay, egress } = await startRelay(store, b);

    publish(b.origin, "live/local", "B");
    await waitUntil(() => egress.consume().consume("live/local") !== undefined, 2000, "the local mirror");
    expect(await relay.request("live/local")).toBe("local");

    await a.claims.claim("live/x");
    publish(a.origin, "live/x", "A");
    await waitUntil(() => relayedAt(b.origin, "live/x") !== undefined, 3000, "relay from A");
    expect(egress.consume().consume("live/x")).toBeUndefined();
    expect(await relay.request("live/x")).toBe("relayed");
    const packaged = egress.consume().consume("live/x")!;
    expect(relay.isRelayed(packaged)).toBe(true);
    expectFramesFrom("A", await readGroups(packaged.subscribeTrack("video"), 3));
    expect(await relay.request("live/nothing")).toBe("unknown");

    // No request for longer than egressIdleMs: it leaves the egress origin (the MoQ side stays).
    await waitUntil(
      () => egress.consume().consume("live/x") === undefined,
      3000,
      "the idle egress copy to go",
    );
    expect(relayedAt(b.origin, "live/x")).toBeDefined();
  });

  it("retries a failing owner with growing backoff and recovers", async () => {
    const store = new MemoryStore();
    const a = await startNode(store, "node-a");
    const b = await startNode(store, "node-b");
    let down = true;
    const attempts: number[] = [];
    const connect: MoqConnector = async (url, options) => {
      attempts.push(performance.now());
      if (down) throw new Error("connection refused (test)");
      return connectMoq(url, options);
    };
    const logger = recordingLogger();
    const { relay } = await startRelay(store, b, { connect, logger });

    await a.claims.claim("live/x");
    publish(a.origin, "live/x", "A");
    await waitUntil(() => relayedAt(b.origin, "live/x") !== undefined, 3000, "relay from A");
    // A reader keeps asking: every attempt replaces the broadcast, so re-subscribe to the newest one.
    let latest: BroadcastConsumer | undefined;
    let reader: TrackConsumer | undefined;
    const follow = setInterval(() => {
      const now = relayedAt(b.origin, "live/x");
      if (now && now !== latest) {
        latest = now;
        reader?.close();
        reader = now.subscribeTrack("video");
      }
    }, 5);
    cleanups.push(() => {
      clearInterval(follow);
      reader?.close();
    });
    await waitUntil(() => attempts.length >= 4, 5000, "four connection attempts");
    const delays = logger.lines
      .filter((line) => line.message === "relay pull failed; retrying")
      .map((line) => (line.fields as { retryInMs: number }).retryInMs);
    expect(delays.length).toBeGreaterThanOrEqual(3);
    expect(delays[2]!).toBeGreaterThan(delays[0]!);
    expect(Math.max(...delays)).toBeLessThanOrEqual(400);
    expect(relay.status()[0]?.state).toBe("failed");

    down = false;
    await waitUntil(() => relay.status()[0]?.state === "pulling", 5000, "recovery");
    expectFramesFrom("A", await readGroups(reader!, 3));
  });

  it("reopens a dropped connection to a live owner in place: readers carry on, nothing is re-announced", async () => {
    const store = new MemoryStore();
    const a = await startNode(store, "node-a");
    const b = await startNode(store, "node-b");
    const logger = recordingLogger();
    const { relay } = await startRelay(store, b, { logger });
    await a.claims.claim("live/x");
    publish(a.origin, "live/x", "A");
    await waitUntil(() => relayedAt(b.origin, "live/x") !== undefined, 3000, "relay from A");
    const relayed = relayedAt(b.origin, "live/x")!;
    const reader = relayed.subscribeTrack("video");
    expectFramesFrom("A", await readGroups(reader, 3));
    expect(a.moq.stats().sessionsTotal).toBe(1);

    // The owner drops the session (as it does when a node token expires).
    for (const session of [...a.moq.sessions]) session.close();
    const groups = await readGroups(reader, 5);
    expectFramesFrom("A", groups);
    const sequences = groups.map(([sequence]) => sequence);
    expect(sequences).toEqual([...sequences].sort((x, y) => x - y)); // no group twice, none backwards
    expect(relayedAt(b.origin, "live/x")).toBe(relayed); // not replaced, not re-announced
    expect(a.moq.stats().sessionsTotal).toBe(2);
    expect(logger.messages()).toContain("relay upstream session dropped; reconnecting");
    expect(logger.messages()).not.toContain("relay pull failed; retrying");
    expect(relay.status()[0]).toMatchObject({ state: "pulling", sessions: 2 });
    reader.close();
  });

  it("survives a partition between edge and owner: a stall, retries with backoff, and recovery after the heal", async () => {
    const store = new MemoryStore();
    let proxy: BlackholeProxy | undefined;
    const a = await startNode(store, "node-a", async (port) => {
      proxy = await BlackholeProxy.start(port);
      cleanups.push(() => proxy!.close());
      return `http://127.0.0.1:${proxy.port}`;
    });
    const b = await startNode(store, "node-b");
    const logger = recordingLogger();
    const { relay } = await startRelay(store, b, {
      logger,
      upstreamPingIntervalMs: 200,
      upstreamConnectTimeoutMs: 500,
      retryMaxMs: 1000,
    });
    await a.claims.claim("live/x");
    publish(a.origin, "live/x", "A");
    await waitUntil(() => relayedAt(b.origin, "live/x") !== undefined, 3000, "relay from A");
    // A viewer that re-subscribes whenever the broadcast is re-announced, counting groups.
    let latest: BroadcastConsumer | undefined;
    let groups = 0;
    const follow = setInterval(() => {
      const now = relayedAt(b.origin, "live/x");
      if (!now || now === latest) return;
      latest = now;
      const track = now.subscribeTrack("video");
      void (async () => {
        for (;;) {
          const group = await track.nextGroup().catch(() => undefined);
          if (!group) return;
          groups += 1;
        }
      })();
    }, 5);
    cleanups.push(() => clearInterval(follow));
    await waitUntil(() => groups >= 3, 5000, "playback through the proxy");

    proxy!.blackhole(true);
    await waitUntil(
      () => logger.lines.filter((line) => line.message === "relay pull failed; retrying").length >= 3,
      10_000,
      "failures and retries during the partition",
    );
    const stalledAt = groups;
    await sleep(300);
    expect(groups - stalledAt).toBeLessThanOrEqual(1); // a stall, not a crash
    expect(relayedAt(b.origin, "live/x")).toBeDefined();
    expect(relay.status()[0]?.state).toBe("failed");

    proxy!.blackhole(false);
    const healedAt = performance.now();
    await waitUntil(() => groups >= stalledAt + 3, 10_000, "playback after the heal");
    expect(performance.now() - healedAt).toBeLessThan(5000);
    const delays = logger.lines
      .filter((line) => line.message === "relay pull failed; retrying")
      .map((line) => (line.fields as { retryInMs: number }).retryInMs);
    expect(Math.max(...delays)).toBeLessThanOrEqual(1000);
  }, 30_000);

  it("keeps a relayed broadcast through a short owner gap, ends it after, and lets local media win", async () => {
    const store = new MemoryStore();
    const a = await startNode(store, "node-a");
    const b = await startNode(store, "node-b");
    const { relay } = await startRelay(store, b);

    const claim = await a.claims.claim("live/x");
    const broadcast = publish(a.origin, "live/x", "A");
    await waitUntil(() => relayedAt(b.origin, "live/x") !== undefined, 3000, "relay from A");
    const relayed = relayedAt(b.origin, "live/x")!;
    await claim.release();
    broadcast.close();
    await sleep(150);
    expect(relayed.done).toBe(false); // within ownerGapMs
    await waitUntil(() => relayed.done, 3000, "the orphaned relay to end");
    expect(relay.status()).toEqual([]);

    await a.claims.claim("live/y");
    publish(a.origin, "live/y", "A");
    await waitUntil(() => relayedAt(b.origin, "live/y") !== undefined, 3000, "relay of live/y");
    const relayedY = relayedAt(b.origin, "live/y")!;
    publish(b.origin, "live/y", "B");
    await waitUntil(() => relayedY.done, 3000, "local media to replace the relay");
    expect(relay.isLocal("live/y")).toBe(true);
    expectFramesFrom("B", await readGroups(relayedAt(b.origin, "live/y")!.subscribeTrack("video"), 2));
  });
});
