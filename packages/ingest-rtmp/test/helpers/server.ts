import { once } from "node:events";
import {
  type MediaConfig,
  type MediaSample,
  type PublishEndReason,
  type PublishSession,
  type RtmpError,
  RtmpServer,
  type RtmpServerOptions,
} from "../../src/index.ts";

/** A server on an ephemeral loopback port. */
export async function startServer(
  options?: RtmpServerOptions,
): Promise<{ server: RtmpServer; port: number; url: (path: string) => string }> {
  const server = new RtmpServer(options);
  const { port } = await server.listen(0, "127.0.0.1");
  return { server, port, url: (path) => `rtmp://127.0.0.1:${port}/${path}` };
}

/** Everything one session emitted. */
export interface Recording {
  readonly session: PublishSession;
  readonly configs: MediaConfig[];
  readonly samples: MediaSample[];
  readonly metadata: Record<string, unknown>[];
  readonly ends: [PublishEndReason, RtmpError | undefined][];
  readonly ended: Promise<[PublishEndReason, RtmpError | undefined]>;
}

/** Records a session's events from the moment it is published. */
export function record(session: PublishSession): Recording {
  const rec: Recording = {
    session,
    configs: [],
    samples: [],
    metadata: [],
    ends: [],
    ended: new Promise((resolve) => session.once("end", (reason, error) => resolve([reason, error]))),
  };
  session.on("config", (c) => rec.configs.push(c));
  session.on("sample", (s) => rec.samples.push(s));
  session.on("metadata", (m) => rec.metadata.push(m));
  session.on("end", (reason, error) => rec.ends.push([reason, error]));
  return rec;
}

/** Records every session the server publishes, in order. */
export function recordAll(server: RtmpServer): Recording[] {
  const all: Recording[] = [];
  server.on("publish", (session) => all.push(record(session)));
  return all;
}

/** The next session the server publishes, already recorded. */
export async function nextPublish(server: RtmpServer): Promise<Recording> {
  const [session] = (await once(server, "publish")) as [PublishSession];
  return record(session);
}

/** Polls until `check` is true (or fails after `timeoutMs`). */
export async function waitFor(check: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
