/** Shared helpers for the moq-lite network tests. */
import {
  type MoqServer,
  OriginProducer,
  type ServeMoqOptions,
  serveMoq,
  type TrackConsumer,
} from "@lvqr/moq-lite";

/** A relay on 127.0.0.1 with an ephemeral port. */
export async function startRelay(
  options: Partial<ServeMoqOptions> = {},
): Promise<{ server: MoqServer; origin: OriginProducer; url: (path?: string) => string }> {
  const origin = options.origin ?? new OriginProducer();
  const server = await serveMoq({ port: 0, host: "127.0.0.1", ...options, origin });
  const port = server.address!.port;
  return { server, origin, url: (path = "") => `http://127.0.0.1:${port}/${path}` };
}

/** Deterministic pseudo-random bytes. */
export function patternBytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Reads groups from `track` until `count` groups are complete; returns [sequence, frames][]. */
export async function readGroups(
  track: TrackConsumer,
  count: number,
): Promise<Array<[number, Uint8Array[]]>> {
  const out: Array<[number, Uint8Array[]]> = [];
  while (out.length < count) {
    const group = await track.nextGroup();
    if (!group) break;
    const frames: Uint8Array[] = [];
    for (;;) {
      const frame = await group.readFrame();
      if (!frame) break;
      frames.push(new Uint8Array(frame));
    }
    out.push([group.sequence, frames]);
  }
  return out;
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitUntil(check: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Reads `count` groups from `track` with `recvGroup()` (every group, whichever arrives first:
 * a relay sends newer groups first when several are ready) and returns them by sequence.
 */
export async function readAllGroups(
  track: TrackConsumer,
  count: number,
): Promise<Array<[number, Uint8Array[]]>> {
  const out: Array<[number, Uint8Array[]]> = [];
  while (out.length < count) {
    const group = await track.recvGroup();
    if (!group) break;
    const frames: Uint8Array[] = [];
    for (let frame = await group.readFrame(); frame; frame = await group.readFrame())
      frames.push(new Uint8Array(frame));
    out.push([group.sequence, frames]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}
