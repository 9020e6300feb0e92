/**
 * The official moq-lite client (`@moq/lite` 0.2.2, the library `@moq/watch` is built on) as a test
 * viewer: it discovers broadcasts the way a player does (`announced(prefix)`, waiting for an active
 * announcement), subscribes to a track, and keeps every complete group it receives, byte for byte,
 * so tests can compare what two nodes delivered. Used by the server's multi-process cluster tests.
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

/** One official client connection. */
export interface OfficialMoqViewer {
  /** Resolves once `path` is announced active under `prefix` (as `@moq/watch` waits for it). */
  waitAnnounced(prefix: string, path: string, timeoutMs: number): Promise<void>;
  /** Paths currently announced active (under the prefixes watched so far). */
  readonly active: ReadonlySet<string>;
  subscribe(path: string, track: string): ReceivedGroups;
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
          track.close();
        },
      };
    },
    close: () => connection.close(),
  };
}
