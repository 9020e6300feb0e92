/**
 * The official moq-lite client (`@moq/lite` 0.2.2, the library `@moq/watch` is built on) as a test
 * viewer: it discovers broadcasts the way a player does (`announced(prefix)`, waiting for an active
 * announcement), subscribes to a track, and keeps every complete group it receives, byte for byte,
 * so tests can compare what two nodes delivered. Used by the server's multi-process cluster tests.
 *
 * Subscriptions are never cancelled one by one: `@moq/qmux` 0.0.6 (the transport @moq/lite 0.2.2
 * uses over WebSocket) throws an uncaught `ERR_INVALID_STATE` when data for a stream it cancelled is
 * still in flight, which is a normal race. Closing stops recording; closing the connection ends all.
 */

import * as Lite from "@moq/lite";

/** Complete groups received on one subscription: sequence → frames, plus arrival times. */
export interface ReceivedGroups {
  readonly groups: Map<number, Uint8Array[]>;
  /** `performance.now()` when each group completed, by sequence. */
  readonly completedAt: Map<number, number>;
  /** Resolves once `count` groups have completed (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs: number): Promise<void>;
  /** Stops reading. */
  close(): void;
}

/** A track followed across republishes: a new subscription each time the broadcast is announced again. */
export interface FollowedTrack {
  /**
   * Every completed group: which announcement (1, 2, ...) it came through, its sequence, when its
   * first frame arrived (`firstFrameAt`) and when it completed (`at`).
   */
  readonly groups: Array<{
    readonly instance: number;
    readonly sequence: number;
    readonly firstFrameAt: number;
    readonly at: number;
  }>;
  /** Announcements of the path seen so far (the current instance number). */
  readonly instances: number;
  close(): void;
}

/** One official client connection. */
export interface OfficialMoqViewer {
  /** Resolves once `path` is announced active under `prefix` (as `@moq/watch` waits for it). */
  waitAnnounced(prefix: string, path: string, timeoutMs: number): Promise<void>;
  /** Paths currently announced active (under the prefixes watched so far). */
  readonly active: ReadonlySet<string>;
  subscribe(path: string, track: string): ReceivedGroups;
  /**
   * Watches `prefix` and (re)subscribes to `track` of `path` whenever it is announced active, as a
   * player does after the broadcast moved: the way a viewer resumes after a failover.
   */
  follow(prefix: string, path: string, track: string): FollowedTrack;
  close(): void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`official moq client: timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Connects the official client to `url` (an `http://host:port/<root>` MoQ URL). */
export async function connectOfficialViewer(url: string): Promise<OfficialMoqViewer> {
  const connection = await Lite.Connection.connect(new URL(url));
  const active = new Set<string>();
  const watching = new Set<string>();
  const watch = (prefix: string) => {
    if (watching.has(prefix)) return;
    watching.add(prefix);
    const announced = connection.announced(Lite.Path.from(prefix));
    void (async () => {
      for (;;) {
        const next = await announced.next();
        if (!next) return;
        if (next.active) active.add(next.path);
        else active.delete(next.path);
      }
    })().catch(() => {});
  };
  return {
    active,
    async waitAnnounced(prefix, path, timeoutMs) {
      watch(prefix);
      await until(() => active.has(path), timeoutMs, `the announcement of ${path}`);
    },
    subscribe(path, name) {
      const groups = new Map<number, Uint8Array[]>();
      const completedAt = new Map<number, number>();
      let closed = false;
      const track = connection.consume(Lite.Path.from(path)).subscribe(name, 0);
      void (async () => {
        for (;;) {
          const group = await track.recvGroup();
          if (!group || closed) return;
          void (async () => {
            const frames: Uint8Array[] = [];
            for (;;) {
              const frame = await group.readFrame();
              if (!frame) break;
              frames.push(new Uint8Array(frame));
            }
            if (!closed) {
              groups.set(group.sequence, frames);
              completedAt.set(group.sequence, performance.now());
            }
          })().catch(() => {});
        }
      })().catch(() => {});
      return {
        groups,
        completedAt,
        waitFor: (count, timeoutMs) =>
          until(() => groups.size >= count, timeoutMs, `${count} groups of ${name}`),
        close: () => {
          closed = true;
        },
      };
    },
    follow(prefix, path, name) {
      const groups: Array<{ instance: number; sequence: number; firstFrameAt: number; at: number }> = [];
      let instances = 0;
      let closed = false;
      const announced = connection.announced(Lite.Path.from(prefix));
      void (async () => {
        for (;;) {
          const next = await announced.next();
          if (!next || closed) return;
          if (!next.active || next.path !== path) continue;
          instances += 1;
          const instance = instances;
          // The previous instance ended with its announcement; its track needs no cancel.
          const track = connection.consume(Lite.Path.from(path)).subscribe(name, 0);
          void (async () => {
            for (;;) {
              const group = await track.recvGroup();
              if (!group || closed) return;
              void (async () => {
                let firstFrameAt = Number.NaN;
                for (;;) {
                  if (!(await group.readFrame())) break;
                  if (Number.isNaN(firstFrameAt)) firstFrameAt = performance.now();
                }
                if (!closed)
                  groups.push({ instance, sequence: group.sequence, firstFrameAt, at: performance.now() });
              })().catch(() => {});
            }
          })().catch(() => {});
        }
      })().catch(() => {});
      return {
        groups,
        get instances() {
          return instances;
        },
        close: () => {
          closed = true;
        },
      };
    },
    close: () => connection.close(),
  };
}
