import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AuthLogger,
  type AuthProvider,
  authorizeMoqSession,
  isAuthError,
  NoopAuth,
  StaticTokenAuth,
  StreamKeyAuth,
  StreamKeyStore,
  type StreamKeyStoreOptions,
  splitRtmpStreamName,
} from "../src/index.ts";

const dirs: string[] = [];
const stores: StreamKeyStore[] = [];

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lvqr-streamkeys-"));
  dirs.push(dir);
  return dir;
}

/** Records every log call as JSON text, to prove no token is ever logged. */
function recordingLogger(): AuthLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (fields, msg) => lines.push(JSON.stringify({ ...fields, msg })),
    warn: (fields, msg) => lines.push(JSON.stringify({ ...fields, msg })),
  };
}

async function openStore(
  options: Partial<StreamKeyStoreOptions> & { dataDir: string },
): Promise<StreamKeyStore> {
  const store = await StreamKeyStore.open({ sweepIntervalMs: 0, ...options });
  stores.push(store);
  return store;
}

describe("StreamKeyStore", () => {
  it("mints keys in the documented format", async () => {
    const store = await openStore({ dataDir: await tempDir(), now: () => 1_700_000_000_500 });
    const key = await store.mint({ label: "cam A", broadcast: "live/cam-a", ttl_seconds: 3600 });
    expect(key).toEqual({
      id: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      token: expect.stringMatching(/^lvqr_sk_[A-Za-z0-9_-]{43}$/),
      label: "cam A",
      broadcast: "live/cam-a",
      created_at: 1_700_000_000,
      expires_at: 1_700_003_600,
    });
    const open = await store.mint({ ttl_seconds: 0 });
    expect(open).toMatchObject({ label: null, broadcast: null, expires_at: null });
    expect((await store.list()).map((k) => k.id)).toEqual([key.id, open.id].sort((a, b) => (a < b ? -1 : 1)));
  });

  it("persists every change and loses nothing across a reopen", async () => {
    const dataDir = await tempDir();
    const store = await openStore({ dataDir });
    const kept = await store.mint({ label: "kept", broadcast: "live/kept" });
    const revoked = await store.mint({ label: "revoked" });
    const rotated = await store.mint({ label: "rotated", ttl_seconds: 600 });
    expect(await store.revoke(revoked.id)).toBe(true);
    const newer = (await store.rotate(rotated.id))!;
    await store.close();

    const reopened = await openStore({ dataDir });
    const list = await reopened.list();
    expect(list).toHaveLength(2);
    expect(list).toContainEqual(kept);
    expect(list).toContainEqual(newer);
    expect(reopened.lookup(kept.token)).toEqual(kept);
    expect(reopened.lookup(newer.token)).toEqual(newer);
    expect(reopened.lookup(rotated.token)).toBeUndefined();
    expect(reopened.lookup(revoked.token)).toBeUndefined();
  });

  it("writes the file atomically with mode 0600 in a 0700 directory, leaving no temp files", async () => {
    const parent = await tempDir();
    const dataDir = path.join(parent, "data", "nested");
    const store = await openStore({ dataDir });
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.mint({ label: `k${i}` })));
    expect((await stat(store.file)).mode & 0o777).toBe(0o600);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect(await readdir(dataDir)).toEqual(["stream-keys.json"]);
    const doc = JSON.parse(await readFile(store.file, "utf8"));
    expect(doc.version).toBe(1);
    expect(doc.keys).toHaveLength(50);
    // Concurrent mints were serialized: every one of them is on disk.
    expect(new Set(doc.keys.map((k: { label: string }) => k.label)).size).toBe(50);
  });

  it("tightens a key file that others can read, and removes temp files a crash left", async () => {
    const dataDir = await tempDir();
    const first = await openStore({ dataDir });
    const key = await first.mint({});
    await first.close();
    await chmod(first.file, 0o644);
    await writeFile(path.join(dataDir, ".stream-keys.json.123.abc.tmp"), "half a fi");
    const logger = recordingLogger();
    const store = await openStore({ dataDir, logger });
    expect((await stat(store.file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dataDir)).toEqual(["stream-keys.json"]);
    expect(store.lookup(key.token)).toBeDefined();
    expect(logger.lines.some((l) => l.includes("readable by others"))).toBe(true);
  });

  it("rotate without a spec keeps the fields; with one it replaces all three", async () => {
    let now = 1_700_000_000_000;
    const store = await openStore({ dataDir: await tempDir(), now: () => now });
    const key = await store.mint({ label: "l", broadcast: "live/x", ttl_seconds: 100 });
    now += 10_000;
    const kept = (await store.rotate(key.id))!;
    expect(kept).toMatchObject({ id: key.id, label: "l", broadcast: "live/x", expires_at: key.expires_at });
    expect(kept.created_at).toBe(key.created_at + 10);
    expect(kept.token).not.toBe(key.token);
    expect(store.lookup(key.token)).toBeUndefined();
    expect(store.lookup(kept.token)?.id).toBe(key.id);
    const replaced = (await store.rotate(key.id, { label: "new", ttl_seconds: 5 }))!;
    expect(replaced).toMatchObject({ label: "new", broadcast: null, expires_at: kept.created_at + 5 });
    expect(await store.rotate("unknown-id")).toBeUndefined();
    expect(await store.revoke("unknown-id")).toBe(false);
  });

  it("never authorizes an expired key, hides it from the list, and the sweep deletes it", async () => {
    let now = 1_700_000_000_000;
    const expired: string[][] = [];
    const dataDir = await tempDir();
    const store = await openStore({ dataDir, now: () => now, onExpired: (ids) => expired.push([...ids]) });
    const shortLived = await store.mint({ ttl_seconds: 60 });
    const forever = await store.mint({});
    now += 59_999;
    expect(store.lookup(shortLived.token)).toBeDefined();
    now += 1;
    expect(store.lookup(shortLived.token)).toBeUndefined();
    expect((await store.list()).map((k) => k.id)).toEqual([forever.id]);
    expect(store.size).toBe(2);
    expect(await store.sweep()).toEqual([shortLived.id]);
    expect(expired).toEqual([[shortLived.id]]);
    expect(store.size).toBe(1);
    const onDisk = JSON.parse(await readFile(store.file, "utf8"));
    expect(onDisk.keys.map((k: { id: string }) => k.id)).toEqual([forever.id]);
  });

  it("sweeps expired keys on open and on its timer", async () => {
    let now = 1_700_000_000_000;
    const dataDir = await tempDir();
    const first = await openStore({ dataDir, now: () => now });
    const a = await first.mint({ ttl_seconds: 1 });
    await first.close();
    now += 5_000;
    const reopened = await openStore({ dataDir, now: () => now });
    expect(reopened.size).toBe(0);
    await reopened.close();

    const timed = await openStore({ dataDir, now: () => now, sweepIntervalMs: 20 });
    await timed.mint({ ttl_seconds: 1 });
    now += 5_000;
    const deadline = Date.now() + 5_000;
    while (timed.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(timed.size).toBe(0);
    expect(timed.lookup(a.token)).toBeUndefined();
  });

  it("refuses to start from a corrupt file and leaves it untouched", async () => {
    const dataDir = await tempDir();
    const file = path.join(dataDir, "stream-keys.json");
    const token = `lvqr_sk_${randomBytes(32).toString("base64url")}`;
    const bodies = [
      "{ not json",
      JSON.stringify({ version: 2, keys: [] }),
      JSON.stringify({ version: 1, keys: {} }),
      JSON.stringify({
        version: 1,
        keys: [{ id: "short", token, label: null, broadcast: null, created_at: 1, expires_at: null }],
      }),
      JSON.stringify({
        version: 1,
        keys: [
          { id: "a".repeat(22), token, label: null, broadcast: null, created_at: 1, expires_at: null },
          { id: "b".repeat(22), token, label: null, broadcast: null, created_at: 1, expires_at: null },
        ],
      }),
    ];
    for (const body of bodies) {
      await writeFile(file, body, { mode: 0o600 });
      const err = await StreamKeyStore.open({ dataDir }).catch((e: unknown) => e);
      expect(isAuthError(err, "AUTH_STORE_CORRUPT"), body).toBe(true);
      expect((err as Error).message).not.toContain(token);
      expect(await readFile(file, "utf8")).toBe(body);
    }
  });

  it("keeps the old keys in force when a write fails", async () => {
    const dataDir = await tempDir();
    const store = await openStore({ dataDir });
    const key = await store.mint({});
    // Replace the directory with a file: the next temp-file open fails.
    await rm(dataDir, { recursive: true });
    await writeFile(dataDir, "not a directory");
    const err = await store.mint({}).catch((e: unknown) => e);
    expect(isAuthError(err, "AUTH_STORE_IO")).toBe(true);
    expect((err as { statusCode: number }).statusCode).toBe(500);
    const revoked = await store.revoke(key.id).catch((e: unknown) => e);
    expect(isAuthError(revoked, "AUTH_STORE_IO")).toBe(true);
    expect(store.size).toBe(1);
    expect(store.lookup(key.token)).toBeDefined();
    await rm(dataDir);
  });

  it("caps the number of keys with a 409", async () => {
    const store = await openStore({ dataDir: await tempDir(), maxKeys: 2 });
    await store.mint({});
    await store.mint({});
    const err = await store.mint({}).catch((e: unknown) => e);
    expect(isAuthError(err, "AUTH_STORE_LIMIT")).toBe(true);
    expect((err as { statusCode: number }).statusCode).toBe(409);
  });

  it("validates specs passed directly", async () => {
    const store = await openStore({ dataDir: await tempDir() });
    for (const spec of [
      { broadcast: "../x" },
      { label: "a\nb" },
      { ttl_seconds: -1 },
      { ttl_seconds: 1.5 },
    ]) {
      const err = await store.mint(spec).catch((e: unknown) => e);
      expect(isAuthError(err, "AUTH_INVALID_ARGUMENT"), JSON.stringify(spec)).toBe(true);
    }
    expect(store.size).toBe(0);
  });

  it("rejects changes after close, while lookups keep working", async () => {
    const store = await openStore({ dataDir: await tempDir() });
    const key = await store.mint({});
    await store.close();
    await store.close();
    expect(isAuthError(await store.mint({}).catch((e: unknown) => e), "AUTH_STORE_CLOSED")).toBe(true);
    expect(store.lookup(key.token)?.id).toBe(key.id);
  });

  it("never logs a token, only ids", async () => {
    let now = 1_700_000_000_000;
    const logger = recordingLogger();
    const dataDir = await tempDir();
    const store = await openStore({ dataDir, logger, now: () => now });
    const tokens: string[] = [];
    const a = await store.mint({ label: "a", ttl_seconds: 10 });
    const b = await store.mint({});
    tokens.push(a.token, b.token);
    tokens.push((await store.rotate(b.id))!.token);
    await store.revoke(b.id);
    now += 20_000;
    await store.sweep();
    await store.close();
    const again = await openStore({ dataDir, logger });
    await again.close();
    const text = logger.lines.join("\n");
    expect(logger.lines.length).toBeGreaterThanOrEqual(5);
    for (const token of tokens) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(token.slice(8));
    }
    expect(text).toContain(a.id);
    expect(text).toContain(b.id);
  });

  it("accepts none of 10 000 random keys", async () => {
    const store = await openStore({ dataDir: await tempDir() });
    for (let i = 0; i < 20; i++) await store.mint({});
    const auth = new StreamKeyAuth(store, new StaticTokenAuth({ publishKey: "the-real-static-key" }));
    let accepted = 0;
    for (let i = 0; i < 10_000; i++) {
      const token =
        i % 2 === 0
          ? `lvqr_sk_${randomBytes(32).toString("base64url")}`
          : randomBytes(24).toString("base64url");
      if (store.lookup(token) !== undefined) accepted++;
      if ((await auth.checkPublish({ app: "live", stream: token })).allow) accepted++;
    }
    expect(accepted).toBe(0);
  });

  it("accepts no random string as a key (fast-check)", async () => {
    const store = await openStore({ dataDir: await tempDir() });
    await store.mint({});
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `lvqr_sk_${s}`),
        ),
        (token) => {
          expect(store.lookup(token)).toBeUndefined();
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("StreamKeyAuth", () => {
  async function setup(inner: AuthProvider = new StaticTokenAuth({ publishKey: "static-publish-key" })) {
    let now = 1_700_000_000_000;
    const store = await openStore({ dataDir: await tempDir(), now: () => now });
    return { store, auth: new StreamKeyAuth(store, inner), advance: (ms: number) => (now += ms) };
  }

  it("lets a broadcast-scoped key publish over RTMP with the key as the stream name", async () => {
    const { store, auth } = await setup();
    const key = await store.mint({ broadcast: "live/cam1" });
    // rtmp://host/live/<token>: the broadcast is the key's scope, not the token.
    expect(await auth.checkPublish({ app: "live", stream: key.token })).toEqual({
      allow: true,
      broadcast: "live/cam1",
      subject: `stream-key:${key.id}`,
    });
    // Even under another app: the scope decides the name.
    expect(await auth.checkPublish({ app: "other", stream: key.token })).toMatchObject({
      broadcast: "live/cam1",
    });
  });

  it("checks a scoped key against the name when the key travels in the query", async () => {
    const { store, auth } = await setup();
    const key = await store.mint({ broadcast: "live/cam1" });
    expect(
      await auth.checkPublish({ app: "live", ...splitRtmpStreamName(`cam1?key=${key.token}`) }),
    ).toMatchObject({
      allow: true,
      broadcast: "live/cam1",
    });
    expect(await auth.checkPublish({ app: "live", ...splitRtmpStreamName(`cam2?key=${key.token}`) })).toEqual(
      {
        allow: false,
        reason: 'stream key is scoped to broadcast "live/cam1", not "live/cam2"',
      },
    );
    expect(await auth.checkPublish({ broadcast: "live/cam2", key: key.token })).toMatchObject({
      allow: false,
    });
  });

  it("names an unscoped key's broadcast from its label, else its id", async () => {
    const { store, auth } = await setup();
    const labelled = await store.mint({ label: "studio-b" });
    expect(await auth.checkPublish({ app: "live", stream: labelled.token })).toMatchObject({
      broadcast: "live/studio-b",
    });
    const spaced = await store.mint({ label: "Studio B (backup)" });
    expect(await auth.checkPublish({ app: "live", stream: spaced.token })).toMatchObject({
      broadcast: `live/${spaced.id}`,
    });
    expect(
      await auth.checkPublish({ app: "live", ...splitRtmpStreamName(`show?key=${spaced.token}`) }),
    ).toMatchObject({
      broadcast: "live/show",
    });
  });

  it("refuses revoked, rotated-away and expired keys even when the inner gate is open", async () => {
    const { store, auth, advance } = await setup(new NoopAuth());
    const revoked = await store.mint({});
    await store.revoke(revoked.id);
    const rotated = await store.mint({});
    const fresh = (await store.rotate(rotated.id))!;
    const expiring = await store.mint({ ttl_seconds: 30 });
    advance(30_000);
    for (const token of [revoked.token, rotated.token, expiring.token]) {
      expect(await auth.checkPublish({ app: "live", stream: token })).toEqual({
        allow: false,
        reason: "unknown, revoked or expired stream key",
      });
    }
    expect(await auth.checkPublish({ app: "live", stream: fresh.token })).toMatchObject({ allow: true });
    // Not a stream key: the (open) inner provider decides.
    expect(await auth.checkPublish({ app: "live", stream: "cam" })).toMatchObject({
      allow: true,
      broadcast: "live/cam",
    });
  });

  it("falls back to the inner provider for other credentials, and delegates subscribe and admin", async () => {
    const { auth } = await setup();
    expect(auth.mode).toBe("static");
    expect(await auth.checkPublish({ app: "live", stream: "static-publish-key" })).toMatchObject({
      allow: true,
      broadcast: "live",
    });
    expect(await auth.checkPublish({ app: "live", stream: "guess" })).toEqual({
      allow: false,
      reason: "invalid publish key",
    });
    expect(await auth.checkSubscribe({ broadcast: "b" })).toMatchObject({ allow: true });
    expect(await auth.checkAdmin({})).toMatchObject({ allow: true });
  });

  it("never puts a key's token in the broadcast name, whatever its label and scope", async () => {
    const { store, auth } = await setup();
    const label = fc.option(
      fc.string({ maxLength: 40 }).filter((l) => !/[\u0000-\u001f\u007f]/.test(l)),
      { nil: null },
    );
    const broadcast = fc.option(fc.stringMatching(/^[a-z]{1,8}\/[a-z0-9_-]{1,12}$/), { nil: null });
    await fc.assert(
      fc.asyncProperty(label, broadcast, fc.stringMatching(/^[a-z]{1,8}$/), async (l, b, app) => {
        const key = await store.mint({ label: l, broadcast: b });
        const decision = await auth.checkPublish({ app, stream: key.token });
        expect(decision.allow).toBe(true);
        if (decision.allow) {
          expect(decision.broadcast).not.toContain(key.token);
          expect(decision.broadcast).not.toContain(key.token.slice(8, 20));
        }
        await store.revoke(key.id);
      }),
      { numRuns: 100 },
    );
  });

  it("reports the key's expiry with the decision", async () => {
    const { store, auth } = await setup();
    const key = await store.mint({ ttl_seconds: 60 });
    expect(await auth.checkPublish({ app: "live", stream: key.token })).toMatchObject({
      expiresAtMs: (key.expires_at as number) * 1000,
    });
  });

  it("grants MoQ sessions publish on the key's scope and anonymous reads only", async () => {
    const { store, auth } = await setup(new StaticTokenAuth({ subscribeToken: "viewer" }));
    const key = await store.mint({ broadcast: "live/cam1" });
    expect(await authorizeMoqSession(auth, { path: "live", token: key.token })).toMatchObject({
      allow: true,
      read: [],
      publish: ["cam1"],
    });
    expect(await authorizeMoqSession(auth, { path: "other", token: key.token })).toMatchObject({
      allow: false,
      status: 403,
    });
    const anyKey = await store.mint({});
    expect(await authorizeMoqSession(auth, { path: "", token: anyKey.token })).toMatchObject({
      publish: [""],
    });
    expect(await authorizeMoqSession(auth, { path: "", token: "lvqr_sk_nope" })).toMatchObject({
      allow: false,
      status: 401,
    });
    expect(await authorizeMoqSession(auth, { path: "", token: "viewer" })).toMatchObject({
      read: [""],
      publish: [""],
    });
  });
});
