/// <reference lib="dom" />
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
import QmuxSession from "@moq/qmux";
import { expect } from "vitest";
import { patternBytes, sleep, waitUntil } from "./helpers.ts";

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

/**
 * Connects @moq/lite 0.2.2. With `appProtocol` (e.g. "moq-lite-04") it brings its own qmux 0.0.6
 * session offering `qmux-00.<app>`, which is how the client reaches lite-03/04 over WebSocket.
 */
async function liteConnect(url: string, appProtocol?: string): Promise<Lite.Connection.Established> {
  if (!appProtocol) return Lite.Connection.connect(new URL(url));
  const transport = new QmuxSession(new URL(url), { protocols: [appProtocol] });
  await transport.ready;
  return Lite.Connection.connect(new URL(url), { transport: transport as unknown as WebTransport });
}

async function litePublisher(url: string, appProtocol?: string): Promise<PublisherPeer> {
  const conn = await liteConnect(url, appProtocol);
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

async function liteSubscriber(url: string, appProtocol?: string): Promise<SubscriberPeer> {
  const conn = await liteConnect(url, appProtocol);
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

async function lvqrPublisher(
  url: string,
  framings?: readonly Framing[],
  appProtocol?: string,
): Promise<PublisherPeer> {
  const appProtocols = appProtocol ? [appProtocol] : [];
  const client: MoqClient = await connectMoq(url, { framings, appProtocols, announceInterest: [] });
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

async function lvqrSubscriber(
  url: string,
  framings?: readonly Framing[],
  appProtocol?: string,
): Promise<SubscriberPeer> {
  const client = await connectMoq(url, { framings, appProtocols: appProtocol ? [appProtocol] : [] });
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

/** How to connect: `framings` steers our own client; `appProtocol` asks for lite-03/04 (@moq/lite and ours). */
export interface PeerOptions {
  readonly framings?: readonly Framing[];
  readonly appProtocol?: string;
}

/** Connects a publishing client of `kind`. */
export function connectPublisher(
  kind: PeerKind,
  url: string,
  options: PeerOptions = {},
): Promise<PublisherPeer> {
  switch (kind) {
    case "lite-0.2.2":
      return litePublisher(url, options.appProtocol);
    case "net-0.2.8":
      return netPublisher(url);
    case "lvqr":
      return lvqrPublisher(url, options.framings, options.appProtocol);
  }
}

/** Connects a subscribing client of `kind`. */
export function connectSubscriber(
  kind: PeerKind,
  url: string,
  options: PeerOptions = {},
): Promise<SubscriberPeer> {
  switch (kind) {
    case "lite-0.2.2":
      return liteSubscriber(url, options.appProtocol);
    case "net-0.2.8":
      return netSubscriber(url);
    case "lvqr":
      return lvqrSubscriber(url, options.framings, options.appProtocol);
  }
}

const VIDEO_GROUPS = 30;
const AUDIO_GROUPS = 60;

function videoGroup(index: number): Uint8Array[] {
  if (index === 0) return [patternBytes(650_000, 1), patternBytes(1000, 2), patternBytes(5000, 3)];
  return [0, 1, 2].map((f) => patternBytes(100 + ((index * 7919 + f * 104729) % 20_000), index * 10 + f));
}

function audioGroup(index: number): Uint8Array[] {
  return [patternBytes(200 + (index % 200), 100_000 + index)];
}

/**
 * The interop scenario: `publisherKind` publishes "bbb" with a video track (30 groups, one of
 * them holding a 650 kB frame) and an audio track (60 one-frame groups); `subscriberKind` finds
 * it with announced(""), subscribes to both, and must receive every group byte-exact.
 */
export async function relayScenario(
  url: string,
  publisherKind: PeerKind,
  subscriberKind: PeerKind,
  options: PeerOptions,
  cleanups: Array<() => unknown>,
): Promise<void> {
  const publisher = await connectPublisher(publisherKind, url, options);
  cleanups.push(() => publisher.close());
  const writers = publisher.publish("bbb", ["video", "audio"]);

  const subscriber = await connectSubscriber(subscriberKind, url, options);
  cleanups.push(() => subscriber.close());
  await subscriber.waitAnnounced("bbb");
  const video = subscriber.subscribe("bbb", "video", 60);
  const audio = subscriber.subscribe("bbb", "audio", 80);
  await writers.video!.waitSubscribed();
  await writers.audio!.waitSubscribed();

  // Paced like a live source.
  for (let i = 0; i < AUDIO_GROUPS; i++) {
    if (i < VIDEO_GROUPS) writers.video!.writeGroup(videoGroup(i));
    writers.audio!.writeGroup(audioGroup(i));
    await sleep(3);
  }
  await video.waitFor(VIDEO_GROUPS);
  await audio.waitFor(AUDIO_GROUPS);

  expect([...video.groups.keys()].sort((a, b) => a - b)).toEqual([...Array(VIDEO_GROUPS).keys()]);
  for (let i = 0; i < VIDEO_GROUPS; i++)
    expect(video.groups.get(i), `video group ${i}`).toEqual(videoGroup(i));
  expect([...audio.groups.keys()].sort((a, b) => a - b)).toEqual([...Array(AUDIO_GROUPS).keys()]);
  for (let i = 0; i < AUDIO_GROUPS; i++)
    expect(audio.groups.get(i), `audio group ${i}`).toEqual(audioGroup(i));
}
