// The admin plugin wired to the real auth providers and the file-backed stream-key store, over a
// real HTTP listener: what the server will do, minus media.
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import {
  type AdminPluginOptions,
  adminPlugin,
  LatencyTracker,
  LvqrMetrics,
  type StreamKey,
} from "@lvqr/admin";
import Fastify, { type FastifyInstance } from "fastify";
import { SignJWT } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AuthConfig,
  type AuthProvider,
  adminAuthorizers,
  createAuthProvider,
  StreamKeyStore,
  splitRtmpStreamName,
} from "../src/index.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Server {
  base: string;
  provider: AuthProvider;
  store: StreamKeyStore | undefined;
  logs: string[];
  close(): Promise<void>;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lvqr-admin-api-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function startServer(
  config: AuthConfig,
  options: { dataDir?: string; metricsRequireAuth?: boolean } = {},
): Promise<Server> {
  const store =
    options.dataDir === undefined ? undefined : await StreamKeyStore.open({ dataDir: options.dataDir });
  const provider = createAuthProvider(config, store);
  const metrics = new LvqrMetrics({ processMetrics: false });
  const tracker = new LatencyTracker({ metrics });
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const app: FastifyInstance = Fastify({ logger: { level: "info", stream } });
  const plugin: AdminPluginOptions = {
    ...adminAuthorizers(provider),
    stats: () => ({
      publishers: 0,
      subscribers: 0,
      tracks: 0,
      bytes_received: 0,
      bytes_sent: 0,
      uptime_secs: 1,
      subscribers_by_protocol: {},
    }),
    streams: () => [],
    serverInfo: () => ({
      version: "0.1.0",
      uptime_secs: 1,
      bound: { admin: null, rtmp: null, hls: null, dash: null, moq: null },
      auth_mode: provider.mode,
      hmac_playback_secret_configured: false,
    }),
    tracker,
    metrics,
    ...(store === undefined ? {} : { streamKeys: store }),
    ...(options.metricsRequireAuth ? { metricsRequireAuth: true } : {}),
  };
  await app.register(adminPlugin, plugin);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const { port } = app.server.address() as AddressInfo;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await app.close();
    await store?.close();
  };
  cleanups.push(close);
  return { base: `http://127.0.0.1:${port}`, provider, store, logs, close };
}

async function call(
  server: Server,
  method: string,
  url: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(server.base + url, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === "" ? undefined : JSON.parse(text) };
}

const SIDE_CHANNELS: Array<[string, string]> = [
  ["GET", "/api/v1/stats"],
  ["GET", "/api/v1/streams"],
  ["GET", "/api/v1/slo"],
  ["GET", "/api/v1/streamkeys"],
  ["POST", "/api/v1/streamkeys"],
  ["DELETE", "/api/v1/streamkeys/x"],
  ["POST", "/api/v1/streamkeys/x/rotate"],
  ["GET", "/api/v1/server-info"],
  ["GET", "/api/v1/cluster/nodes"],
  ["GET", "/api/v1/cluster/broadcasts"],
  ["GET", "/metrics"],
];

describe("admin API with static tokens and persisted stream keys", () => {
  it("answers 401 on every admin, cluster and metrics route without credentials", async () => {
    const server = await startServer(
      { adminToken: "adm" },
      { dataDir: await tempDir(), metricsRequireAuth: true },
    );
    for (const [method, url] of SIDE_CHANNELS) {
      expect((await call(server, method, url)).status, `${method} ${url}`).toBe(401);
      expect((await call(server, method, url, "wrong")).status, `${method} ${url}`).toBe(401);
    }
    expect((await fetch(`${server.base}/healthz`)).status).toBe(200);
    const metrics = await fetch(`${server.base}/metrics`, { headers: { authorization: "Bearer adm" } });
    expect(await metrics.text()).toContain(
      `lvqr_auth_failures_total{entry="admin"} ${2 * (SIDE_CHANNELS.length - 1)}`,
    );
  });

  it("mints, lists, revokes and rotates keys that gate RTMP publishing, and keeps them across a restart", async () => {
    const dataDir = await tempDir();
    // The fallback provider denies every publish that is not a stream key (a static key is set).
    const config = { adminToken: "adm", publishKey: "unused-static-key" };
    const server = await startServer(config, { dataDir });
    const publish = (stream: string) =>
      server.provider.checkPublish({ app: "live", ...splitRtmpStreamName(stream) });

    expect((await publish("random-guess")).allow).toBe(false);
    const minted = await call(server, "POST", "/api/v1/streamkeys", "adm", {
      label: "cam",
      broadcast: "live/cam",
    });
    expect(minted.status).toBe(201);
    const key = minted.json as StreamKey;
    expect(key.token.startsWith("lvqr_sk_")).toBe(true);
    expect((await call(server, "GET", "/api/v1/streamkeys", "adm")).json).toEqual({ keys: [key] });
    expect(await publish(key.token)).toMatchObject({ allow: true, broadcast: "live/cam" });
    expect(await publish(`cam?key=${key.token}`)).toMatchObject({ allow: true, broadcast: "live/cam" });

    const rotated = await call(server, "POST", `/api/v1/streamkeys/${key.id}/rotate`, "adm");
    expect(rotated.status).toBe(200);
    const newKey = rotated.json as StreamKey;
    expect(newKey).toMatchObject({ id: key.id, label: "cam", broadcast: "live/cam" });
    expect((await publish(key.token)).allow).toBe(false);
    expect((await publish(newKey.token)).allow).toBe(true);

    const spare = (await call(server, "POST", "/api/v1/streamkeys", "adm", {})).json as StreamKey;
    expect((await call(server, "DELETE", `/api/v1/streamkeys/${spare.id}`, "adm")).status).toBe(204);
    expect((await publish(spare.token)).allow).toBe(false);
    expect((await call(server, "DELETE", `/api/v1/streamkeys/${spare.id}`, "adm")).status).toBe(404);

    // Bad JSON on rotate is a 400 and changes nothing.
    const bad = await fetch(`${server.base}/api/v1/streamkeys/${key.id}/rotate`, {
      method: "POST",
      headers: { authorization: "Bearer adm", "content-type": "application/json" },
      body: "{oops",
    });
    expect(bad.status).toBe(400);
    expect((await publish(newKey.token)).allow).toBe(true);

    // Restart: a new store and a new server on the same data directory.
    const logs = server.logs.join("");
    await server.close();
    const restarted = await startServer(config, { dataDir });
    expect((await call(restarted, "GET", "/api/v1/streamkeys", "adm")).json).toEqual({ keys: [newKey] });
    expect(
      await restarted.provider.checkPublish({ app: "live", ...splitRtmpStreamName(newKey.token) }),
    ).toMatchObject({ allow: true, broadcast: "live/cam" });

    // The request logs name key ids, never tokens.
    expect(logs).toContain(key.id);
    for (const token of [key.token, newKey.token, spare.token]) expect(logs).not.toContain(token);
  });

  it("answers 404 on the stream-key routes with --no-streamkeys", async () => {
    const server = await startServer({ adminToken: "adm" });
    const res = await call(server, "GET", "/api/v1/streamkeys", "adm");
    expect(res).toEqual({ status: 404, json: { error: "stream keys are disabled (--no-streamkeys)" } });
    const info = (await call(server, "GET", "/api/v1/server-info", "adm")).json as {
      features: Record<string, unknown>;
    };
    expect(info.features).toMatchObject({ auth_mode: "static", stream_keys_enabled: false });
  });
});

describe("admin API with JWT auth", () => {
  const secret = "jwt-secret-for-the-admin-api-tests-0123456789";
  const sign = (claims: Record<string, unknown>, key = secret, exp = Math.floor(Date.now() / 1000) + 300) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(key));

  it("accepts admin-scope tokens and rejects wrong secret, lower scope and expired ones", async () => {
    const server = await startServer({ jwtSecret: secret });
    expect((await call(server, "GET", "/api/v1/stats", await sign({ scope: "admin" }))).status).toBe(200);
    const rejected = [
      await sign({ scope: "admin" }, "some-other-secret-entirely-0123456789"),
      await sign({ scope: "publish" }),
      await sign({ scope: "admin" }, secret, Math.floor(Date.now() / 1000) - 5),
    ];
    for (const token of rejected)
      expect((await call(server, "GET", "/api/v1/stats", token)).status).toBe(401);
    const info = (await call(server, "GET", "/api/v1/server-info", await sign({ scope: "admin" }))).json as {
      features: Record<string, unknown>;
    };
    expect(info.features.auth_mode).toBe("jwt");
  });

  it("lets a viewer push client samples only for the broadcast its token is bound to", async () => {
    const server = await startServer({ jwtSecret: secret });
    const sample = { broadcast: "live/a", transport: "moq", ingest_ts_ms: 1000, render_ts_ms: 1400 };
    const bound = await sign({ scope: "subscribe", broadcast: "live/a" });
    expect((await call(server, "POST", "/api/v1/slo/client-sample", bound, sample)).status).toBe(204);
    const other = await call(server, "POST", "/api/v1/slo/client-sample", bound, {
      ...sample,
      broadcast: "live/b",
    });
    expect(other).toEqual({
      status: 401,
      json: { error: 'JWT is bound to broadcast "live/a", not "live/b"' },
    });
    expect((await call(server, "POST", "/api/v1/slo/client-sample", undefined, sample)).status).toBe(401);
    const slo = (await call(server, "GET", "/api/v1/slo", await sign({ scope: "admin" }))).json;
    expect(slo).toEqual({
      broadcasts: [
        {
          broadcast: "live/a",
          transport: "moq",
          p50_ms: 400,
          p95_ms: 400,
          p99_ms: 400,
          max_ms: 400,
          sample_count: 1,
          total_observed: 1,
        },
      ],
    });
  });
});
