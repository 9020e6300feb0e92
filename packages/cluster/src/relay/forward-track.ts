/**
 * `forwardTrack`: copies one track from a consumer (the upstream copy a relay session imported) into
 * a producer (the on-demand track a local subscriber asked for), group by group and frame by frame,
 * keeping group sequence numbers and passing payload chunks by reference. It stops as soon as the
 * target has no consumer left, which closes the source and so lets the upstream subscription go.
 *
 * Memory stays bounded by the two tracks' own caches: a source that falls behind its cache skips to
 * the newest group (`LaggedError`), and groups still being copied when the source ends are drained
 * before the target is closed, so a finished track never truncates a group mid-copy.
 */

import {
  type GroupConsumer,
  type GroupProducer,
  isMoqError,
  type TrackConsumer,
  type TrackProducer,
  toMoqError,
} from "@lvqr/moq-lite";

/** How a forward ended. */
export type ForwardEnd =
  /** The source track ended normally; the target was closed. */
  | "ended"
  /** The target lost its last consumer; the source was closed. */
  | "unused";

/** Options of {@link forwardTrack}. */
export interface ForwardOptions {
  /**
   * End the target when the source ends (close) or fails (abort with its error). Default true.
   * False leaves the target open in both cases, so the caller can resume it from a new source
   * (groups already forwarded are not repeated: their sequences are still cached). A target
   * nobody reads is closed either way.
   */
  readonly finishTarget?: boolean;
}

/**
 * Copies `source` into `target` until the source ends or nobody reads the target any more. Resolves
 * with how it ended; rejects with the source's abort error (after aborting the target with it,
 * unless `finishTarget` is false). Always closes `source`.
 */
export async function forwardTrack(
  source: TrackConsumer,
  target: TrackProducer,
  options: ForwardOptions = {},
): Promise<ForwardEnd> {
  const inFlight = new Set<Promise<void>>();
  let unused = false;
  void target.unused().then(() => {
    unused = true;
    // Wakes a pending recvGroup() with undefined.
    source.close();
  });
  try {
    for (;;) {
      let group: GroupConsumer | undefined;
      try {
        group = await source.recvGroup();
      } catch (err) {
        if (!isMoqError(err, "MOQ_LAGGED")) throw err;
        source.skipToLatest();
        continue;
      }
      if (group === undefined) break;
      if (target.done) break;
      const copy = target.createGroup(group.sequence);
      // A sequence still cached means the group was already forwarded (a duplicate delivery).
      if (copy === undefined) continue;
      const task = forwardGroup(group, copy);
      inFlight.add(task);
      void task.finally(() => inFlight.delete(task));
    }
    await Promise.all(inFlight);
    // Closing an unused on-demand track also removes it from its broadcast.
    if (unused || (options.finishTarget ?? true)) target.close();
    return unused ? "unused" : "ended";
  } catch (err) {
    const error = toMoqError(err);
    if (options.finishTarget ?? true) target.abort(error);
    throw error;
  } finally {
    source.close();
  }
}

/** Copies one group's frames; never rejects (a failed source group aborts the copy). */
async function forwardGroup(source: GroupConsumer, target: GroupProducer): Promise<void> {
  try {
    for (;;) {
      const frame = await source.nextFrame();
      if (frame === undefined) break;
      const copy = target.createFrame(frame.size, frame.meta);
      for (;;) {
        const chunk = await frame.readChunk();
        if (chunk === undefined) break;
        copy.write(chunk);
      }
    }
    target.close();
  } catch (err) {
    if (!target.done) target.abort(toMoqError(err));
  }
}
