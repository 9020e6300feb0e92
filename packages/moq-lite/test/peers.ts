/**
 * Adapters that drive three moq-lite client stacks through the same publish/subscribe scenario:
 * the official @moq/lite 0.2.2 (qmux 0.0.6), the official @moq/net 0.2.8 (qmux 0.3.3, what
 * @moq/watch uses) and this package's connectMoq.
 */
import {
  type BroadcastProducer,
  connectMoq,
  type Framing,
  type MoqClient,
  type TrackProducer,
} from "@lvqr/moq-lite";
import * as Lite from "@moq/lite";
import * as Net from "@moq/net";
import { waitUntil } from "./helpers.ts";

/** Writes groups to one published track once someone subscribes. */
export interface TrackWriter {
  waitSubscribed(timeoutMs?: number): Promise<void>;
  writeGroup(frames: readonly Uint8Array[]): void;
  close(): void;
}

/** A client that publishes one broadcast. */
export interface PublisherPeer {
  publish(path: string, tracks: readonly string[]): Record<string, TrackWriter>;
  close(): void;
}

/** A client that discovers and subscribes. */
export interface SubscriberPeer {
  /** Resolves once `announced("")` reports `path` as active. */
  waitAnnounced(path: string, timeoutMs?: number): Promise<void>;
  /** Subscribes and collects complete groups: sequence → frames. */
  subscribe(path: string, track: string, priority: number): GroupCollector;
  close(): void;
}

/** Complete groups received on one subscription. */
export interface GroupCollector {
  readonly groups: Map<number, Uint8Array[]>;
  waitFor(count: number, timeoutMs?: number): Promise<void>;
}

export type PeerKind = "lite-0.2.2" | "net-0.2.8" | "lvqr";

function collector(): GroupCollector & { add(sequence: number, frames: Uint8Array[]): void } {
  const groups = new Map<number, Uint8Array[]>();
  return {
    groups,
    add: (sequence, frames) => groups.set(sequence, frames),
    waitFor: (count, timeoutMs = 20_000) =>
      waitUntil(() => groups.size >= count, timeoutMs, `${count} groups`),
  };
}

const copy = (data: Uint8Array) => new Uint8Array(data);

/** Runs a reader loop; once a connection closes its pending reads reject, which is expected. */
function background(task: () => Promise<void>): void {
  task().catch(() => {});
}

// ---- @moq/lite 0.2.2 ----

async function litePublisher(url: string): Promise<PublisherPeer> {
  const conn = await Lite.Connection.connect(new URL(url));
  const broadcasts: Lite.Broadcast[] = [];
  return {
    publish(path, names) {
      const broadcast = new Lite.Broadcast();
      broadcasts.push(broadcast);
      conn.publish(Lite.Path.from(path), broadcast);
      const requested = new Map<string, Lite.Track>();
      background(async () => {
        for (;;) {
          const request = await broadcast.requested();
          if (!request) return;
          requested.set(request.track.name, request.track);
        }
      });
      return Object.fromEntries(
        names.map((name) => [
          name,
          {
            waitSubscribed: (timeoutMs = 10_000) =>
              waitUntil(() => requested.has(name), timeoutMs, `request for ${name}`),
            writeGroup(frames) {
              const group = requested.get(name)!.appendGroup();
              for (const frame of frames) group.writeFrame(frame);
              group.close();
            },
            close: () => requested.get(name)?.close(),
          } satisfies TrackWriter,
        ]),
      );
    },
    close() {
      for (const broadcast of broadcasts) broadcast.close();
      conn.close();
    },
  };
}

async function liteSubscriber(url: string): Promise<SubscriberPeer> {
  const conn = await Lite.Connection.connect(new URL(url));
  const seen = new Set<string>();
  const announced = conn.announced(Lite.Path.empty());
  background(async () => {
    for (;;) {
      const next = await announced.next();
      if (!next) return;
      if (next.active) seen.add(next.path);
      else seen.delete(next.path);
    }
  });
  return {
    waitAnnounced: (path, timeoutMs = 10_000) =>
      waitUntil(() => seen.has(path), timeoutMs, `announce of ${path}`),
    subscribe(path, name, priority) {
      const out = collector();
      const track = conn.consume(Lite.Path.from(path)).subscribe(name, priority);
      background(async () => {
        for (;;) {
          const group = await track.recvGroup();
          if (!group) return;
          background(async () => {
            const frames: Uint8Array[] = [];
            for (;;) {
              const frame = await group.readFrame();
              if (!frame) break;
              frames.push(copy(frame));
            }
            out.add(group.sequence, frames);
          });
        }
      });
      return out;
    },
    close: () => conn.close(),
  };
}

// ---- @moq/net 0.2.8 ----

async function netPublisher(url: string): Promise<PublisherPeer> {
  const conn = await Net.Connection.connect(new URL(url));
  const broadcasts: Net.Broadcast.Producer[] = [];
  return {
    publish(path, names) {
      const broadcast = new Net.Broadcast.Producer();
      broadcasts.push(broadcast);
      conn.publish(Net.Path.from(path), broadcast);
      return Object.fromEntries(
        names.map((name) => {
          const track = broadcast.createTrack(name);
          return [
            name,
            {
              waitSubscribed: (timeoutMs = 10_000) =>
                waitUntil(() => track.used.peek(), timeoutMs, `subscription to ${name}`),
              writeGroup(frames) {
                const group = track.appendGroup();
                for (const payload of frames)
                  group.writeFrame({ payload, timestamp: Net.Time.Timestamp.fromMicros(0) });
                group.close();
              },
              close: () => track.close(),
            } satisfies TrackWriter,
          ];
        }),
      );
    },
    close() {
      for (const broadcast of broadcasts) broadcast.close();
      conn.close();
    },
  };
}

async function netSubscriber(url: string): Promise<SubscriberPeer> {
  const conn = await Net.Connection.connect(new URL(url));
  const seen = new Set<string>();
  const announced = conn.announced(Net.Path.empty());
  background(async () => {
    for (;;) {
      const next = await announced.next();
      if (!next) return;
      if (next.active) seen.add(next.path);
      else seen.delete(next.path);
    }
  });
  return {
    waitAnnounced: (path, timeoutMs = 10_000) =>
      waitUntil(() => seen.has(path), timeoutMs, `announce of ${path}`),
    subscribe(path, name, priority) {
      const out = collector();
      const track = conn.consume(Net.Path.from(path)).subscribe(name, { priority });
      background(async () => {
        for (;;) {
          const group = await track.recvGroup();
          if (!group) return;
          background(async () => {
            const frames: Uint8Array[] = [];
            for (;;) {
              const frame = await group.readFrame();
              if (!frame) break;
              frames.push(copy(frame.payload));
            }
            out.add(group.sequence, frames);
          });
        }
      });
      return out;
    },
    close: () => conn.close(),
  };
}

// ---- this package ----

async function lvqrPublisher(url: string, framings?: readonly Framing[]): Promise<PublisherPeer> {
  const client: MoqClient = await connectMoq(url, { framings, announceInterest: [] });
  const broadcasts: BroadcastProducer[] = [];
  return {
    publish(path, names) {
      const broadcast = client.createBroadcast(path);
      broadcasts.push(broadcast);
      return Object.fromEntries(
        names.map((name) => {
          const track: TrackProducer = broadcast.createTrack(name);
          return [
            name,
            {
              waitSubscribed: (timeoutMs = 10_000) =>
                waitUntil(() => track.consumerCount > 0, timeoutMs, `subscription to ${name}`),
              writeGroup(frames) {
                const group = track.appendGroup();
                for (const frame of frames) group.writeFrame(frame);
                group.close();
              },
              close: () => track.close(),
            } satisfies TrackWriter,
          ];
        }),
      );
    },
    close() {
      for (const broadcast of broadcasts) broadcast.close();
      client.close();
    },
  };
}

async function lvqrSubscriber(url: string, framings?: readonly Framing[]): Promise<SubscriberPeer> {
  const client = await connectMoq(url, { framings });
  return {
    waitAnnounced: async (path, timeoutMs = 10_000) => {
      await client.waitForBroadcast(path, { timeoutMs });
    },
    subscribe(path, name, priority) {
      const out = collector();
      const track = client.consume(path)!.subscribeTrack(name, { priority });
      background(async () => {
        for (;;) {
          const group = await track.recvGroup();
          if (!group) return;
          background(async () => {
            const frames: Uint8Array[] = [];
            for (;;) {
              const frame = await group.readFrame();
              if (!frame) break;
              frames.push(copy(frame));
            }
            out.add(group.sequence, frames);
          });
        }
      });
      return out;
    },
    close: () => client.close(),
  };
}

/** Connects a publishing client of `kind`. `framings` only steers our own client. */
export function connectPublisher(
  kind: PeerKind,
  url: string,
  framings?: readonly Framing[],
): Promise<PublisherPeer> {
  switch (kind) {
    case "lite-0.2.2":
      return litePublisher(url);
    case "net-0.2.8":
      return netPublisher(url);
    case "lvqr":
      return lvqrPublisher(url, framings);
  }
}

/** Connects a subscribing client of `kind`. */
export function connectSubscriber(
  kind: PeerKind,
  url: string,
  framings?: readonly Framing[],
): Promise<SubscriberPeer> {
  switch (kind) {
    case "lite-0.2.2":
      return liteSubscriber(url);
    case "net-0.2.8":
      return netSubscriber(url);
    case "lvqr":
      return lvqrSubscriber(url, framings);
  }
}
