/**
 * The official clients on the moq-transport path: @moq/lite 0.2.2 and @moq/net 0.2.8, made to
 * negotiate a draft with the relay. Draft-14 is reached over SETUP (the client's default
 * WebSocket connection offers lite-02, lite-01 and draft-14; the relay must prefer draft-14);
 * drafts 15 to 17 by the `qmux-00.moqt-1X` subprotocol, which @moq/net offers by itself and
 * @moq/lite offers when given its own QMux session (`{ protocols: ["moqt-17"] }`).
 */
import * as Lite from "@moq/lite";
import * as Net from "@moq/net";
import QmuxSession from "@moq/qmux";
import { waitUntil } from "./helpers.ts";
import type { GroupCollector, PublisherPeer, SubscriberPeer, TrackWriter } from "./peers.ts";

/** Which official client, and how it reaches moq-transport. */
export type IetfPeerKind = "lite-0.2.2" | "net-0.2.8";

function collector(): GroupCollector & { add(sequence: number, frames: Uint8Array[]): void } {
  const groups = new Map<number, Uint8Array[]>();
  return {
    groups,
    add: (sequence, frames) => groups.set(sequence, frames),
    waitFor: (count, timeoutMs = 20_000) =>
      waitUntil(() => groups.size >= count, timeoutMs, `${count} groups`),
  };
}

function background(task: () => Promise<void>): void {
  task().catch(() => {});
}

/** @moq/lite 0.2.2: default connection (SETUP path) or its own QMux session offering `protocol`. */
async function liteConnect(url: string, protocol?: string): Promise<Lite.Connection.Established> {
  if (!protocol) return Lite.Connection.connect(new URL(url));
  const transport = new QmuxSession(new URL(url), { protocols: [protocol] });
  await transport.ready;
  return Lite.Connection.connect(new URL(url), { transport: transport as unknown as WebTransport });
}

/** The moq-transport version string the connection reports (e.g. "moq-transport-17"). */
export function connectionVersion(conn: { readonly version: unknown }): string {
  return String(conn.version);
}

/** A publishing official client on the moq-transport path. */
export async function ietfPublisher(
  kind: IetfPeerKind,
  url: string,
  protocol?: string,
): Promise<PublisherPeer & { version: string }> {
  if (kind === "lite-0.2.2") {
    const conn = await liteConnect(url, protocol);
    const broadcasts: Lite.Broadcast[] = [];
    return {
      version: connectionVersion(conn),
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
  const conn = await Net.Connection.connect(new URL(url));
  const broadcasts: Net.Broadcast.Producer[] = [];
  return {
    version: connectionVersion(conn),
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

/** A subscribing official client on the moq-transport path. */
export async function ietfSubscriber(
  kind: IetfPeerKind,
  url: string,
  protocol?: string,
): Promise<SubscriberPeer & { version: string }> {
  const seen = new Set<string>();
  if (kind === "lite-0.2.2") {
    const conn = await liteConnect(url, protocol);
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
      version: connectionVersion(conn),
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
                frames.push(new Uint8Array(frame));
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
  const conn = await Net.Connection.connect(new URL(url));
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
    version: connectionVersion(conn),
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
              frames.push(new Uint8Array(frame.payload));
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
