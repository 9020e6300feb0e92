/**
 * Runtime stream keys (`lvqr_sk_…`), persisted in one JSON file under the server's data directory
 * so a restart loses none.
 *
 * - A key is `{id, token, label, broadcast, created_at, expires_at}` (Unix seconds). The id is
 *   base64url of 16 random bytes; the token `lvqr_sk_` + base64url of 32 random bytes.
 * - Every change is written before it takes effect: the whole file goes to a temp file (mode 0600),
 *   is fsynced and renamed over the old one, then the directory is fsynced. A failed write leaves
 *   the old file and the old keys in force. Changes are serialized, so concurrent API calls cannot
 *   lose each other's writes.
 * - Expired keys never authorize; a sweep (on open, then on a timer) deletes them.
 * - Tokens are never logged: logs carry key ids only.
 */

import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import {
  isValidBroadcastName,
  MAX_LABEL_LENGTH,
  MAX_TTL_SECONDS,
  type StreamKey,
  type StreamKeyApi,
  type StreamKeySpec,
} from "@lvqr/admin";
import { constantTimeEqual } from "./constant-time.ts";
import { AuthError } from "./errors.ts";
import type { AuthLogger } from "./logger.ts";
import { silentAuthLogger } from "./logger.ts";

/** Prefix of every stream-key token; lets secret scanners recognise a leaked key. */
export const STREAM_KEY_TOKEN_PREFIX = "lvqr_sk_";

/** Default file name inside the data directory. */
export const STREAM_KEY_FILE_NAME = "stream-keys.json";

const FILE_VERSION = 1;
const TOKEN_PATTERN = /^lvqr_sk_[A-Za-z0-9_-]{43}$/;
const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;
// Printable labels only: control characters would corrupt logs and terminals.
const LABEL_FORBIDDEN = /[\u0000-\u001f\u007f]/;

/** Reads a key by its token; what the auth layer needs from a store. */
export interface StreamKeyLookup {
  /** The live key whose token is `token`, or undefined (unknown, revoked or expired). */
  lookup(token: string): StreamKey | undefined;
}

/** Options of {@link StreamKeyStore.open}. */
export interface StreamKeyStoreOptions {
  /** Directory holding the key file; created (mode 0700) when missing. */
  readonly dataDir: string;
  /** File name inside `dataDir` (default {@link STREAM_KEY_FILE_NAME}). */
  readonly fileName?: string;
  /** How often expired keys are deleted, in ms (default 60 000; 0 sweeps only on open). */
  readonly sweepIntervalMs?: number;
  /** Most keys held (default 10 000); minting beyond answers 409. */
  readonly maxKeys?: number;
  /** Called with the ids of keys the sweep deleted (for `lvqr_streamkeys_changed_total{op="expire"}`). */
  readonly onExpired?: (ids: readonly string[]) => void;
  readonly logger?: AuthLogger;
  /** Wall clock in Unix ms (tests inject one). */
  readonly now?: () => number;
}

/** Stream keys in memory, backed by a file. Implements the admin API's `StreamKeyApi`. */
export class StreamKeyStore implements StreamKeyApi, StreamKeyLookup {
  /** The key file. */
  readonly file: string;
  readonly #dir: string;
  readonly #maxKeys: number;
  readonly #onExpired: ((ids: readonly string[]) => void) | undefined;
  readonly #log: AuthLogger;
  readonly #now: () => number;
  #byId = new Map<string, StreamKey>();
  // sha256(token) -> id: the lookup never hashes or compares the raw token in a data-dependent way.
  #byTokenHash = new Map<string, string>();
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(options: StreamKeyStoreOptions, file: string) {
    this.file = file;
    this.#dir = path.dirname(file);
    this.#maxKeys = options.maxKeys ?? 10_000;
    this.#onExpired = options.onExpired;
    this.#log = options.logger ?? silentAuthLogger;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Loads (or creates) the store under `options.dataDir`. Fails with `AUTH_STORE_CORRUPT` when the
   * file exists but is not a valid key file, rather than starting with no keys.
   */
  static async open(options: StreamKeyStoreOptions): Promise<StreamKeyStore> {
    const fileName = options.fileName ?? STREAM_KEY_FILE_NAME;
    if (fileName.includes("/") || fileName.includes("\\") || fileName.startsWith(".")) {
      throw new AuthError(
        "AUTH_INVALID_CONFIG",
        `stream-key file name ${JSON.stringify(fileName)} must be a plain name`,
      );
    }
    const maxKeys = options.maxKeys ?? 10_000;
    if (!Number.isInteger(maxKeys) || maxKeys < 1) {
      throw new AuthError(
        "AUTH_INVALID_CONFIG",
        `stream-key maxKeys must be a positive integer, got ${maxKeys}`,
      );
    }
    const interval = options.sweepIntervalMs ?? 60_000;
    if (!Number.isInteger(interval) || interval < 0) {
      throw new AuthError(
        "AUTH_INVALID_CONFIG",
        `stream-key sweepIntervalMs must be an integer >= 0, got ${interval}`,
      );
    }
    const dir = path.resolve(options.dataDir);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new AuthError(
        "AUTH_STORE_IO",
        `cannot create the data directory ${dir}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const store = new StreamKeyStore(options, path.join(dir, fileName));
    await store.#load(fileName);
    await store.sweep();
    if (interval > 0) {
      store.#timer = setInterval(() => {
        store.sweep().catch((err: unknown) => {
          store.#log.warn({ err: (err as Error).message }, "stream-key expiry sweep failed; will retry");
        });
      }, interval);
      store.#timer.unref();
    }
    return store;
  }

  /** Number of keys held (expired ones not yet swept included). */
  get size(): number {
    return this.#byId.size;
  }

  /** The live key whose token is `token`; undefined for unknown, revoked and expired tokens. */
  lookup(token: string): StreamKey | undefined {
    if (!token.startsWith(STREAM_KEY_TOKEN_PREFIX) || token.length > 128) return undefined;
    const id = this.#byTokenHash.get(hashToken(token));
    if (id === undefined) return undefined;
    const key = this.#byId.get(id);
    if (key === undefined || !constantTimeEqual(key.token, token) || this.#expired(key)) return undefined;
    return { ...key };
  }

  /** Every live key, oldest first. */
  async list(): Promise<StreamKey[]> {
    return [...this.#byId.values()]
      .filter((key) => !this.#expired(key))
      .sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((key) => ({ ...key }));
  }

  /** Creates and persists a key. */
  async mint(spec: StreamKeySpec): Promise<StreamKey> {
    const fields = validateSpec(spec);
    return this.#change(async (next) => {
      if (next.size >= this.#maxKeys) {
        throw new AuthError(
          "AUTH_STORE_LIMIT",
          `too many stream keys (limit ${this.#maxKeys}); revoke unused keys before minting more`,
        );
      }
      const now = this.#nowSeconds();
      const key: StreamKey = {
        id: randomBytes(16).toString("base64url"),
        token: STREAM_KEY_TOKEN_PREFIX + randomBytes(32).toString("base64url"),
        label: fields.label,
        broadcast: fields.broadcast,
        created_at: now,
        expires_at: expiry(now, fields.ttl),
      };
      next.set(key.id, key);
      return { result: { ...key }, log: { msg: "stream key minted", id: key.id } };
    });
  }

  /** Deletes a key; false when the id is unknown. */
  async revoke(id: string): Promise<boolean> {
    return this.#change(async (next) => {
      if (!next.delete(id)) return { result: false, unchanged: true };
      return { result: true, log: { msg: "stream key revoked", id } };
    });
  }

  /**
   * Gives the key a new token (the old one stops working when this resolves) and resets
   * `created_at`. Without `spec` the label, broadcast and expiry are kept; with one all three are
   * replaced. Undefined when the id is unknown.
   */
  async rotate(id: string, spec?: StreamKeySpec): Promise<StreamKey | undefined> {
    const fields = spec === undefined ? undefined : validateSpec(spec);
    return this.#change(async (next) => {
      const old = next.get(id);
      if (old === undefined) return { result: undefined, unchanged: true };
      const now = this.#nowSeconds();
      const key: StreamKey = {
        id,
        token: STREAM_KEY_TOKEN_PREFIX + randomBytes(32).toString("base64url"),
        label: fields === undefined ? old.label : fields.label,
        broadcast: fields === undefined ? old.broadcast : fields.broadcast,
        created_at: now,
        expires_at: fields === undefined ? old.expires_at : expiry(now, fields.ttl),
      };
      next.set(id, key);
      return { result: { ...key }, log: { msg: "stream key rotated", id } };
    });
  }

  /** Deletes expired keys now; returns their ids. */
  async sweep(): Promise<string[]> {
    const ids = await this.#change(async (next) => {
      const expired = [...next.values()].filter((key) => this.#expired(key)).map((key) => key.id);
      if (expired.length === 0) return { result: expired, unchanged: true };
      for (const id of expired) next.delete(id);
      return { result: expired };
    });
    if (ids.length > 0) {
      this.#log.info({ streamKeyIds: ids }, "expired stream keys deleted");
      this.#onExpired?.(ids);
    }
    return ids;
  }

  /** Stops the sweep timer and waits for pending writes. Idempotent; lookups keep working. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#queue.catch(() => {});
  }

  // Runs one change against a copy of the keys, persists the copy, then makes it current. The
  // queue serializes changes so each one starts from the previous one's result.
  #change<T>(
    apply: (next: Map<string, StreamKey>) => Promise<{
      result: T;
      unchanged?: boolean;
      log?: { msg: string; id: string };
    }>,
  ): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.#closed) throw new AuthError("AUTH_STORE_CLOSED", "the stream-key store is closed");
      const next = new Map(this.#byId);
      const outcome = await apply(next);
      if (outcome.unchanged) return outcome.result;
      await this.#persist(next);
      this.#commit(next);
      if (outcome.log !== undefined) this.#log.info({ streamKeyId: outcome.log.id }, outcome.log.msg);
      return outcome.result;
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }

  #commit(keys: Map<string, StreamKey>): void {
    const byTokenHash = new Map<string, string>();
    for (const key of keys.values()) byTokenHash.set(hashToken(key.token), key.id);
    this.#byId = keys;
    this.#byTokenHash = byTokenHash;
  }

  async #persist(keys: Map<string, StreamKey>): Promise<void> {
    const body = `${JSON.stringify({ version: FILE_VERSION, keys: [...keys.values()] }, null, 2)}\n`;
    const tmp = path.join(
      this.#dir,
      `.${path.basename(this.file)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`,
    );
    try {
      const handle = await open(tmp, "wx", 0o600);
      try {
        await handle.writeFile(body, "utf8");
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, this.file);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw new AuthError(
        "AUTH_STORE_IO",
        `could not save stream keys to ${this.file}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    // Make the rename itself durable; some filesystems refuse to fsync a directory, which is fine.
    try {
      const dir = await open(this.#dir, "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch {}
  }

  async #load(fileName: string): Promise<void> {
    // Temp files left by a crash mid-write are incomplete by definition.
    for (const entry of await readdir(this.#dir).catch(() => [] as string[])) {
      if (entry.startsWith(`.${fileName}.`) && entry.endsWith(".tmp")) {
        await unlink(path.join(this.#dir, entry)).catch(() => {});
      }
    }
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw new AuthError("AUTH_STORE_IO", `cannot read ${this.file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const keys = parseKeyFile(text, this.file);
    this.#commit(keys);
    const mode = (await stat(this.file)).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      await chmod(this.file, 0o600);
      this.#log.warn(
        { file: this.file, mode: mode.toString(8) },
        "stream-key file was readable by others; set to 0600",
      );
    }
    this.#log.info({ file: this.file, keys: keys.size }, "stream keys loaded");
  }

  #expired(key: StreamKey): boolean {
    return key.expires_at !== null && this.#now() / 1000 >= key.expires_at;
  }

  #nowSeconds(): number {
    return Math.floor(this.#now() / 1000);
  }
}

function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("base64url");
}

function expiry(now: number, ttl: number | null): number | null {
  return ttl === null || ttl === 0 ? null : now + ttl;
}

/** Checks a spec the way the admin route's schema does (the store is also used directly). */
function validateSpec(spec: StreamKeySpec): {
  label: string | null;
  broadcast: string | null;
  ttl: number | null;
} {
  const label = spec.label ?? null;
  const broadcast = spec.broadcast ?? null;
  const ttl = spec.ttl_seconds ?? null;
  if (
    label !== null &&
    (typeof label !== "string" || label.length > MAX_LABEL_LENGTH || LABEL_FORBIDDEN.test(label))
  ) {
    throw new AuthError(
      "AUTH_INVALID_ARGUMENT",
      `stream-key label must be printable text of at most ${MAX_LABEL_LENGTH} characters`,
    );
  }
  if (broadcast !== null && (typeof broadcast !== "string" || !isValidBroadcastName(broadcast))) {
    throw new AuthError(
      "AUTH_INVALID_ARGUMENT",
      `${JSON.stringify(broadcast)} is not a valid broadcast name`,
    );
  }
  if (ttl !== null && (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_TTL_SECONDS)) {
    throw new AuthError(
      "AUTH_INVALID_ARGUMENT",
      `ttl_seconds must be an integer from 0 to ${MAX_TTL_SECONDS}`,
    );
  }
  return { label, broadcast, ttl };
}

function parseKeyFile(text: string, file: string): Map<string, StreamKey> {
  const corrupt = (why: string) =>
    new AuthError(
      "AUTH_STORE_CORRUPT",
      `stream-key file ${file} is not valid (${why}); restore it from a backup or move it away to start with no keys`,
    );
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw corrupt(`not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null || (doc as { version?: unknown }).version !== FILE_VERSION) {
    throw corrupt(`expected {"version": ${FILE_VERSION}, "keys": [...]}`);
  }
  const list = (doc as { keys?: unknown }).keys;
  if (!Array.isArray(list)) throw corrupt('"keys" is not an array');
  const keys = new Map<string, StreamKey>();
  const tokens = new Set<string>();
  list.forEach((entry: unknown, i) => {
    const k = entry as Record<string, unknown>;
    const ok =
      typeof k === "object" &&
      k !== null &&
      typeof k.id === "string" &&
      ID_PATTERN.test(k.id) &&
      typeof k.token === "string" &&
      TOKEN_PATTERN.test(k.token) &&
      (k.label === null || (typeof k.label === "string" && k.label.length <= MAX_LABEL_LENGTH)) &&
      (k.broadcast === null || (typeof k.broadcast === "string" && isValidBroadcastName(k.broadcast))) &&
      Number.isSafeInteger(k.created_at) &&
      (k.expires_at === null || Number.isSafeInteger(k.expires_at));
    // Only the index is reported: the entry holds a token.
    if (!ok) throw corrupt(`entry ${i} is malformed`);
    if (keys.has(k.id as string) || tokens.has(k.token as string))
      throw corrupt(`entry ${i} duplicates another key`);
    tokens.add(k.token as string);
    keys.set(k.id as string, {
      id: k.id as string,
      token: k.token as string,
      label: k.label as string | null,
      broadcast: k.broadcast as string | null,
      created_at: k.created_at as number,
      expires_at: k.expires_at as number | null,
    });
  });
  return keys;
}
