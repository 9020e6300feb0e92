import { MoqError } from "../error.ts";
import { hasPathPrefix, joinPath, normalizePath, stripPathPrefix } from "../path.ts";
import { type BroadcastConsumer, type BroadcastOptions, BroadcastProducer } from "./broadcast.ts";
import { ChangeNotifier } from "./notifier.ts";

/** A change in the set of live broadcasts, as seen by an announcement consumer. */
export interface Announcement {
  /** Broadcast path, relative to the root of the origin view that was watched. */
  readonly path: string;
  /** True when the broadcast became available, false when it ended. */
  readonly active: boolean;
  /** The broadcast, for active announcements. */
  readonly broadcast?: BroadcastConsumer;
}

class AnnouncementWatcher {
  readonly prefix: string;
  readonly readable: readonly string[] | undefined;
  /** What this watcher has been told is active, per absolute path. */
  readonly delivered: Map<string, BroadcastConsumer> = new Map();
  /** Absolute paths whose state may differ from what was delivered. */
  readonly dirty: Set<string> = new Set();
  readonly notifier: ChangeNotifier = new ChangeNotifier();
  closed = false;

  constructor(prefix: string, readable: readonly string[] | undefined) {
    this.prefix = prefix;
    this.readable = readable;
  }

  wants(path: string): boolean {
    return hasPathPrefix(path, this.prefix) && allowedBy(this.readable, path);
  }
}

class OriginState {
  /** Publishers per absolute path; the last one is the active broadcast, earlier ones are fallbacks. */
  readonly entries: Map<string, BroadcastConsumer[]> = new Map();
  readonly watchers: Set<AnnouncementWatcher> = new Set();

  active(path: string): BroadcastConsumer | undefined {
    const stack = this.entries.get(path);
    return stack?.[stack.length - 1];
  }

  publish(path: string, broadcast: BroadcastConsumer): void {
    let stack = this.entries.get(path);
    if (!stack) {
      stack = [];
      this.entries.set(path, stack);
    }
    stack.push(broadcast);
    this.changed(path);
    void broadcast.closed.then(() => this.remove(path, broadcast));
  }

  remove(path: string, broadcast: BroadcastConsumer): void {
    const stack = this.entries.get(path);
    if (!stack) return;
    const index = stack.findIndex((entry) => entry.sameAs(broadcast));
    if (index < 0) return;
    const wasActive = index === stack.length - 1;
    stack.splice(index, 1);
    if (stack.length === 0) this.entries.delete(path);
    if (wasActive) this.changed(path);
  }

  changed(path: string): void {
    for (const watcher of this.watchers) {
      if (!watcher.wants(path)) continue;
      watcher.dirty.add(path);
      watcher.notifier.notify();
    }
  }
}

function allowedBy(prefixes: readonly string[] | undefined, path: string): boolean {
  return prefixes === undefined || prefixes.some((prefix) => hasPathPrefix(path, prefix));
}

function narrow(current: readonly string[] | undefined, next: readonly string[]): string[] {
  if (current === undefined) return [...next];
  // Keep each requested prefix that lies inside an existing grant, and each grant inside a request.
  const out = new Set<string>();
  for (const want of next) {
    for (const have of current) {
      if (hasPathPrefix(want, have)) out.add(want);
      else if (hasPathPrefix(have, want)) out.add(have);
    }
  }
  return [...out];
}

// The private state of origin views, shared by the view classes.
interface OriginView {
  readonly state: OriginState;
  readonly root: string;
  readonly readable: readonly string[] | undefined;
}

let producerViewOf: (origin: OriginProducer) => OriginView;
let originViewOf: (origin: OriginConsumer) => OriginView;

/**
 * Follows announcements under a prefix: first every broadcast that is live now, then changes.
 * Updates are coalesced per path, so a slow reader costs memory bounded by the number of paths.
 * A replaced broadcast is reported as ended, then active again.
 */
export class AnnouncedConsumer implements AsyncIterable<Announcement> {
  readonly #state: OriginState;
  readonly #watcher: AnnouncementWatcher;
  readonly #root: string;

  /** Follows broadcasts under `prefix` (relative to the view's root); same as `origin.announced(prefix)`. */
  constructor(origin: OriginConsumer, prefix = "") {
    const view = originViewOf(origin);
    const absolutePrefix = joinPath(view.root, normalizePath(prefix));
    const watcher = new AnnouncementWatcher(absolutePrefix, view.readable);
    for (const path of view.state.entries.keys()) {
      if (watcher.wants(path)) watcher.dirty.add(path);
    }
    view.state.watchers.add(watcher);
    this.#state = view.state;
    this.#watcher = watcher;
    this.#root = view.root;
  }

  /** The next announcement, or undefined once closed. */
  async next(): Promise<Announcement | undefined> {
    const watcher = this.#watcher;
    for (;;) {
      if (watcher.closed) return undefined;
      for (const path of watcher.dirty) {
        const current = this.#state.active(path);
        const delivered = watcher.delivered.get(path);
        if (delivered !== undefined && current !== undefined && delivered.sameAs(current)) {
          watcher.dirty.delete(path);
          continue;
        }
        const relative = stripPathPrefix(path, this.#root) ?? path;
        if (delivered !== undefined) {
          watcher.delivered.delete(path);
          if (current === undefined) watcher.dirty.delete(path);
          return { path: relative, active: false };
        }
        watcher.dirty.delete(path);
        if (current === undefined) continue;
        watcher.delivered.set(path, current);
        return { path: relative, active: true, broadcast: current };
      }
      await watcher.notifier.changed();
    }
  }

  /** Stops watching; a pending `next()` resolves to undefined. Idempotent. */
  close(): void {
    const watcher = this.#watcher;
    if (watcher.closed) return;
    watcher.closed = true;
    this.#state.watchers.delete(watcher);
    watcher.notifier.notify();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Announcement> {
    try {
      for (;;) {
        const next = await this.next();
        if (next === undefined) return;
        yield next;
      }
    } finally {
      this.close();
    }
  }
}

/**
 * The write side of an origin: the registry of live broadcasts. Publishing a broadcast announces
 * it; it is unannounced when it ends. Publishing a path that is already live replaces the active
 * broadcast (a reconnecting publisher takes over); if the newer one ends first, the older one is
 * active again. Views made with `withRoot()` and `restrict()` share the same registry.
 */
export class OriginProducer {
  #state: OriginState;
  #root = "";
  #publishable: readonly string[] | undefined;
  #readable: readonly string[] | undefined;

  /** A new, empty origin. */
  constructor() {
    this.#state = new OriginState();
  }

  /** The absolute root of this view (`""` for the whole origin). */
  get root(): string {
    return this.#root;
  }

  /** Announces `broadcast` at `path` (relative to this view's root) until it ends. */
  publish(path: string, broadcast: BroadcastConsumer): void {
    const absolute = joinPath(this.#root, normalizePath(path));
    if (!allowedBy(this.#publishable, absolute)) {
      throw new MoqError("MOQ_UNAUTHORIZED", `publishing ${JSON.stringify(absolute)} is not allowed`);
    }
    this.#state.publish(absolute, broadcast);
  }

  /** Creates a broadcast and publishes it at `path`; closing the producer unpublishes it. */
  createBroadcast(path: string, options?: BroadcastOptions): BroadcastProducer {
    const producer = new BroadcastProducer(options);
    this.publish(path, producer.consume());
    return producer;
  }

  /** True when this view may publish at `path`. */
  canPublish(path: string): boolean {
    return allowedBy(this.#publishable, joinPath(this.#root, normalizePath(path)));
  }

  /** A read view with the same root and read permissions. */
  consume(): OriginConsumer {
    return new OriginConsumer(this);
  }

  /** A view whose paths are relative to `root` (joined to this view's root). */
  withRoot(root: string): OriginProducer {
    const view = this.#copy();
    view.#root = joinPath(this.#root, normalizePath(root));
    return view;
  }

  /**
   * A view that may only publish under `publish` and read under `read` (paths relative to this
   * view's root). Omitting a list keeps the current permission for it.
   */
  restrict(permissions: {
    readonly publish?: readonly string[];
    readonly read?: readonly string[];
  }): OriginProducer {
    const view = this.#copy();
    const absolute = (list: readonly string[]) => list.map((p) => joinPath(this.#root, normalizePath(p)));
    if (permissions.publish) view.#publishable = narrow(this.#publishable, absolute(permissions.publish));
    if (permissions.read) view.#readable = narrow(this.#readable, absolute(permissions.read));
    return view;
  }

  #copy(): OriginProducer {
    const view = new OriginProducer();
    view.#state = this.#state;
    view.#root = this.#root;
    view.#publishable = this.#publishable;
    view.#readable = this.#readable;
    return view;
  }

  static {
    producerViewOf = (origin) => ({ state: origin.#state, root: origin.#root, readable: origin.#readable });
  }
}

/** The read side of an origin: look up live broadcasts and follow announcements. */
export class OriginConsumer {
  readonly #state: OriginState;
  #root: string;
  #readable: readonly string[] | undefined;

  /** A read view of `origin`, with the same root and read permissions. */
  constructor(origin: OriginProducer | OriginConsumer) {
    const view = origin instanceof OriginConsumer ? originViewOf(origin) : producerViewOf(origin);
    this.#state = view.state;
    this.#root = view.root;
    this.#readable = view.readable;
  }

  static {
    originViewOf = (origin) => ({ state: origin.#state, root: origin.#root, readable: origin.#readable });
  }

  /** The absolute root of this view. */
  get root(): string {
    return this.#root;
  }

  /** The live broadcast at `path` (relative to the root), if any and if readable. */
  consume(path: string): BroadcastConsumer | undefined {
    const absolute = joinPath(this.#root, normalizePath(path));
    if (!allowedBy(this.#readable, absolute)) return undefined;
    return this.#state.active(absolute);
  }

  /** True when this view may read `path`. */
  canRead(path: string): boolean {
    return allowedBy(this.#readable, joinPath(this.#root, normalizePath(path)));
  }

  /** Paths (relative to the root) of the live, readable broadcasts under `prefix`, sorted. */
  list(prefix = ""): string[] {
    const absolutePrefix = joinPath(this.#root, normalizePath(prefix));
    const out: string[] = [];
    for (const path of this.#state.entries.keys()) {
      if (!hasPathPrefix(path, absolutePrefix) || !allowedBy(this.#readable, path)) continue;
      out.push(stripPathPrefix(path, this.#root) ?? path);
    }
    return out.sort();
  }

  /** Follows broadcasts under `prefix` (relative to the root). Close the result when done. */
  announced(prefix = ""): AnnouncedConsumer {
    return new AnnouncedConsumer(this, prefix);
  }

  /**
   * Waits until a broadcast is live at `path`. Rejects with a MOQ_TIMEOUT error after
   * `timeoutMs`, or with the signal's reason when aborted.
   */
  async waitForBroadcast(
    path: string,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<BroadcastConsumer> {
    const existing = this.consume(path);
    if (existing) return existing;
    const normalized = normalizePath(path);
    const watch = this.announced(normalized);
    const { promise, resolve, reject } = Promise.withResolvers<BroadcastConsumer>();
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(
            () =>
              reject(
                new MoqError(
                  "MOQ_TIMEOUT",
                  `broadcast ${normalized} did not appear within ${options.timeoutMs} ms`,
                ),
              ),
            options.timeoutMs,
          );
    const onAbort = () => reject(options.signal?.reason ?? new MoqError("MOQ_CANCELLED", "wait aborted"));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    void (async () => {
      for (;;) {
        const next = await watch.next();
        if (next === undefined) return;
        if (next.active && next.broadcast && next.path === normalized) return resolve(next.broadcast);
      }
    })();
    try {
      return await promise;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      watch.close();
    }
  }

  /** A view whose paths are relative to `root` (joined to this view's root). */
  withRoot(root: string): OriginConsumer {
    const view = new OriginConsumer(this);
    view.#root = joinPath(this.#root, normalizePath(root));
    return view;
  }

  /** A view that may only read under `prefixes` (relative to this view's root). */
  restrict(prefixes: readonly string[]): OriginConsumer {
    const view = new OriginConsumer(this);
    view.#readable = narrow(
      this.#readable,
      prefixes.map((p) => joinPath(this.#root, normalizePath(p))),
    );
    return view;
  }
}
