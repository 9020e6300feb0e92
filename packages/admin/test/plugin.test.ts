import { randomBytes } from "node:crypto";
import Fastify, { type FastifyInstance, type InjectOptions } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AdminPluginOptions,
  adminPlugin,
  type ClusterApi,
  LatencyTracker,
  LvqrMetrics,
  type StreamKey,
  type StreamKeyApi,
  type StreamKeySpec,
} from "../src/index.ts";

const ADMIN = "admin-secret";
const VIEWER = "viewer-secret";

/**
 * An in-memory StreamKeyApi with the documented semantics. The file-backed store lives in the
 * server package (which depends on this one); its own tests run this plugin against it.
 */
class MemoryStreamKeys implements StreamKeyApi {
  readonly keys = new Map<string, StreamKey>();
  now = 1_700_000_000;

  list(): StreamKey[] {
    return [...this.keys.values()];
  }

  mint(spec: StreamKeySpec): StreamKey {
    const key: StreamKey = {
      id: randomBytes(16).toString("base64url"),
      token: `lvqr_sk_${randomBytes(32).toString("base64url")}`,
      ...this.#fields(spec),
      created_at: this.now,
    };
    this.keys.set(key.id, key);
    return key;
  }

  revoke(id: string): boolean {
    return this.keys.delete(id);
  }

  rotate(id: string, spec?: StreamKeySpec): StreamKey | undefined {
    const old = this.keys.get(id);
    if (old === undefined) return undefined;
    const key: StreamKey = {
      ...old,
      ...(spec === undefined ? {} : this.#fields(spec)),
      token: `lvqr_sk_${randomBytes(32).toString("base64url")}`,
      created_at: this.now + 1,
    };
    this.keys.set(id, key);
    return key;
  }

  #fields(spec: StreamKeySpec): Pick<StreamKey, "label" | "broadcast" | "expires_at"> {
    return {
      label: spec.label ?? null,
      broadcast: spec.broadcast ?? null,
      expires_at: spec.ttl_seconds ? this.now + spec.ttl_seconds : null,
    };
  }
}

interface Harness {
  app: FastifyInstance;
  metrics: LvqrMetrics;
  tracker: LatencyTracker;
  keys: MemoryStreamKeys;
  subscribeCalls: Array<[string | undefined, string]>;
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function harness(
  overrides: Partial<AdminPluginOptions> & { withTracker?: boolean; prefix?: string } = {},
): Promise<Harness> {
  const metrics = new LvqrMetrics({ processMetrics: false });
  const tracker = new LatencyTracker({ metrics });
  const keys = new MemoryStreamKeys();
  const subscribeCalls: Array<[string | undefined, string]> = [];
  const app = Fastify();
  apps.push(app);
  const { withTracker = true, prefix, ...rest } = overrides;
  const options: AdminPluginOptions = {
    authorizeAdmin: async (token) =>
      token === ADMIN ? { allow: true } : { allow: false, reason: "invalid admin token" },
    authorizeSubscribe: async (token, broadcast) => {
      subscribeCalls.push([token, broadcast]);
      return token === VIEWER
        ? { allow: true }
        : { allow: false, reason: "invalid or missing subscribe token" };
    },
    stats: () => ({
      publishers: 2,
      subscribers: 7,
      tracks: 4,
      bytes_received: 123_456,
      bytes_sent: 987_654,
      uptime_secs: 42,
      subscribers_by_protocol: { moq: 3, hls: 4, dash: 0 },
      // Not in the schema: the serializer must drop it.
      internal_secret: "do-not-leak",
    }),
    streams: () => [
      { name: "live/zeta", subscribers: 1 },
      { name: "live/alpha", subscribers: 6, subscribers_by_protocol: { hls: 6 }, bytes_received: 10 },
    ],
    serverInfo: () => ({
      version: "0.1.0",
      uptime_secs: 42,
      bound: {
        admin: "127.0.0.1:8080",
        rtmp: "0.0.0.0:1935",
        hls: "0.0.0.0:8888",
        dash: null,
        moq: "0.0.0.0:4443",
      },
      auth_mode: "static",
      hmac_playback_secret_configured: true,
    }),
    metrics,
    streamKeys: keys,
    ...(withTracker ? { tracker } : {}),
    ...rest,
  };
  await app.register(adminPlugin, { ...options, ...(prefix === undefined ? {} : { prefix }) });
  await app.ready();
  return { app, metrics, tracker, keys, subscribeCalls };
}

const admin = { authorization: `Bearer ${ADMIN}` };

function json(res: { body: string }): unknown {
  return JSON.parse(res.body);
}

const validSample = { broadcast: "live/a", transport: "moq", ingest_ts_ms: 1_000, render_ts_ms: 1_250 };

describe("adminPlugin: open routes", () => {
  it("/healthz answers ok without credentials", async () => {
    const { app } = await harness();
    const res = await app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe("ok");
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
  });

  it("/metrics is open by default and serves Prometheus text", async () => {
    const { app, metrics } = await harness();
    metrics.authFailure("rtmp");
    const res = await app.inject({ method: "GET", url: "/metrics" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(res.body).toContain('lvqr_auth_failures_total{entry="rtmp"} 1');
  });

  it("/metrics needs admin credentials with metricsRequireAuth, and counts the denial", async () => {
    const { app, metrics } = await harness({ metricsRequireAuth: true });
    const denied = await app.inject({ method: "GET", url: "/metrics" });
    expect(denied.statusCode).toBe(401);
    expect(json(denied)).toEqual({ error: "invalid admin token" });
    const ok = await app.inject({ method: "GET", url: "/metrics", headers: admin });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('lvqr_auth_failures_total{entry="metrics"} 1');
    expect(await metrics.render()).not.toContain('entry="admin"');
  });

  it("/metrics is empty without a registry", async () => {
    const { app } = await harness({ metrics: undefined });
    const res = await app.inject({ method: "GET", url: "/metrics" });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe("");
  });
});

const ADMIN_ROUTES: InjectOptions[] = [
  { method: "GET", url: "/api/v1/stats" },
  { method: "GET", url: "/api/v1/streams" },
  { method: "GET", url: "/api/v1/slo" },
  { method: "GET", url: "/api/v1/streamkeys" },
  { method: "POST", url: "/api/v1/streamkeys", payload: { label: "x" } },
  { method: "DELETE", url: "/api/v1/streamkeys/abc" },
  { method: "POST", url: "/api/v1/streamkeys/abc/rotate", payload: "{bad json" },
  { method: "GET", url: "/api/v1/server-info" },
  { method: "GET", url: "/api/v1/cluster/nodes" },
  { method: "GET", url: "/api/v1/cluster/broadcasts" },
];

describe("adminPlugin: admin auth", () => {
  it("every admin route answers 401 without a token, before parsing the body", async () => {
    const { app, metrics, keys } = await harness();
    for (const route of ADMIN_ROUTES) {
      const res = await app.inject({ ...route, headers: { "content-type": "application/json" } });
      expect(res.statusCode, `${route.method} ${route.url}`).toBe(401);
      expect(json(res)).toEqual({ error: "invalid admin token" });
      expect(res.headers["www-authenticate"]).toBe('Bearer realm="lvqr-admin"');
      expect(res.headers["access-control-allow-origin"]).toBe("*");
    }
    expect(keys.keys.size).toBe(0);
    expect(await metrics.render()).toContain(
      `lvqr_auth_failures_total{entry="admin"} ${ADMIN_ROUTES.length}`,
    );
  });

  it("every admin route answers 401 with a wrong token or a non-bearer scheme", async () => {
    const { app } = await harness();
    for (const authorization of ["Bearer nope", `Basic ${ADMIN}`, ADMIN, `Bearer ${ADMIN} extra`]) {
      for (const route of ADMIN_ROUTES) {
        const res = await app.inject({ ...route, headers: { authorization } });
        expect(res.statusCode, `${authorization}: ${route.method} ${route.url}`).toBe(401);
      }
    }
  });

  it("accepts the bearer scheme in any case", async () => {
    const { app } = await harness();
    const res = await app.inject({
      method: "GET",
      url: "/api/v1/stats",
      headers: { authorization: `bearer ${ADMIN}` },
    });
    expect(res.statusCode).toBe(200);
  });

  it("passes an empty token when there is no Authorization header", async () => {
    const seen: string[] = [];
    const { app } = await harness({
      authorizeAdmin: (token) => {
        seen.push(token);
        return { allow: true };
      },
    });
    const res = await app.inject({ method: "GET", url: "/api/v1/stats" });
    expect(res.statusCode).toBe(200);
    expect(seen).toEqual([""]);
  });
});

describe("adminPlugin: read routes", () => {
  it("/api/v1/stats serves the reported values and nothing else", async () => {
    const { app } = await harness();
    const res = await app.inject({ method: "GET", url: "/api/v1/stats", headers: admin });
    expect(res.statusCode).toBe(200);
    expect(json(res)).toEqual({
      publishers: 2,
      subscribers: 7,
      tracks: 4,
      bytes_received: 123_456,
      bytes_sent: 987_654,
      uptime_secs: 42,
      subscribers_by_protocol: { moq: 3, hls: 4, dash: 0 },
    });
    expect(res.headers["cache-control"]).toBe("no-store");
  });

  it("/api/v1/streams is sorted by name", async () => {
    const { app } = await harness();
    const res = await app.inject({ method: "GET", url: "/api/v1/streams", headers: admin });
    expect(json(res)).toEqual([
      { name: "live/alpha", subscribers: 6, subscribers_by_protocol: { hls: 6 }, bytes_received: 10 },
      { name: "live/zeta", subscribers: 1 },
    ]);
  });

  it("/api/v1/slo lists the tracker's entries, or none without a tracker", async () => {
    const { app, tracker } = await harness();
    for (let i = 1; i <= 100; i++) tracker.record("live/a", "hls", i);
    const res = await app.inject({ method: "GET", url: "/api/v1/slo", headers: admin });
    expect(json(res)).toEqual({
      broadcasts: [
        {
          broadcast: "live/a",
          transport: "hls",
          p50_ms: 51,
          p95_ms: 96,
          p99_ms: 100,
          max_ms: 100,
          sample_count: 100,
          total_observed: 100,
        },
      ],
    });
    const bare = await harness({ withTracker: false });
    const empty = await bare.app.inject({ method: "GET", url: "/api/v1/slo", headers: admin });
    expect(json(empty)).toEqual({ broadcasts: [] });
  });

  it("/api/v1/server-info has the reference shape with honest modes", async () => {
    const { app } = await harness();
    const res = await app.inject({ method: "GET", url: "/api/v1/server-info", headers: admin });
    expect(json(res)).toEqual({
      version: "0.1.0",
      build_features: [],
      uptime_secs: 42,
      bound: {
        admin: "127.0.0.1:8080",
        rtmp: "0.0.0.0:1935",
        whip: null,
        whep: null,
        hls: "0.0.0.0:8888",
        dash: null,
        srt: null,
        rtsp: null,
        moq: "0.0.0.0:4443",
        signal: null,
      },
      features: {
        mesh_enabled: false,
        cluster_enabled: false,
        archive_dir: null,
        record_dir: null,
        wasm_filter_chain_length: 0,
        auth_mode: "static",
        hmac_playback_secret_configured: true,
        stream_keys_enabled: true,
      },
      config_path: null,
      wasm_filter_paths: [],
    });
    const bare = await harness({ streamKeys: undefined, cluster: { nodes: () => [], broadcasts: () => [] } });
    const info = json(
      await bare.app.inject({ method: "GET", url: "/api/v1/server-info", headers: admin }),
    ) as {
      features: Record<string, unknown>;
    };
    expect(info.features.stream_keys_enabled).toBe(false);
    expect(info.features.cluster_enabled).toBe(true);
  });

  it("a failing callback is a 500 that does not leak the error", async () => {
    const { app } = await harness({
      stats: () => {
        throw new Error("database password is hunter2");
      },
    });
    const res = await app.inject({ method: "GET", url: "/api/v1/stats", headers: admin });
    expect(res.statusCode).toBe(500);
    expect(json(res)).toEqual({ error: "internal server error" });
  });
});

describe("adminPlugin: cluster routes", () => {
  it("answer 503 when no cluster is configured (after auth)", async () => {
    const { app } = await harness();
    for (const url of ["/api/v1/cluster/nodes", "/api/v1/cluster/broadcasts"]) {
      const res = await app.inject({ method: "GET", url, headers: admin });
      expect(res.statusCode).toBe(503);
      expect(json(res)).toEqual({ error: "cluster is not configured" });
    }
  });

  it("serve sorted nodes and broadcasts", async () => {
    const cluster: ClusterApi = {
      nodes: async () => [
        {
          id: "node-b",
          generation: 2,
          gossip_addr: null,
          capacity: { cpu_pct: 12.5, rss_bytes: 1_000_000, bytes_out_per_sec: 5000 },
          endpoints: { hls: "http://b:8888" },
        },
        { id: "node-a", generation: 1, gossip_addr: null, capacity: null },
      ],
      broadcasts: () => [
        { name: "live/z", owner: "node-a", expires_at_ms: 2000, epoch: 7 },
        { name: "live/a", owner: "node-b", expires_at_ms: 1000 },
      ],
    };
    const { app } = await harness({ cluster });
    const nodes = await app.inject({ method: "GET", url: "/api/v1/cluster/nodes", headers: admin });
    expect(json(nodes)).toEqual([
      { id: "node-a", generation: 1, gossip_addr: null, capacity: null },
      {
        id: "node-b",
        generation: 2,
        gossip_addr: null,
        capacity: { cpu_pct: 12.5, rss_bytes: 1_000_000, bytes_out_per_sec: 5000 },
        endpoints: { hls: "http://b:8888" },
      },
    ]);
    const broadcasts = await app.inject({ method: "GET", url: "/api/v1/cluster/broadcasts", headers: admin });
    expect(json(broadcasts)).toEqual([
      { name: "live/a", owner: "node-b", expires_at_ms: 1000 },
      { name: "live/z", owner: "node-a", expires_at_ms: 2000, epoch: 7 },
    ]);
  });

  it("serve every field of the cluster package's node and broadcast records", async () => {
    // The shapes @lvqr/cluster renders (clusterNodesJson / clusterBroadcastsJson).
    const node = {
      id: "n1",
      generation: 1_700_000_000,
      gossip_addr: null,
      endpoints: { moq: "https://n1:4443", hls: "http://n1:8888", dash: null },
      capacity: { cpu_pct: 3.5, rss_bytes: 50_000_000, bytes_out_per_sec: 1_250_000, subscribers: 12 },
      version: "0.1.0",
      started_at_ms: 1_700_000_000_123,
      last_seen_ms: 1_700_000_100_000,
      expires_at_ms: 1_700_000_106_000,
    };
    const broadcast = {
      name: "live/a",
      owner: "n1",
      expires_at_ms: 1_700_000_106_000,
      epoch: 42,
      last_media_ms: 1_700_000_099_000,
    };
    const { app } = await harness({ cluster: { nodes: () => [node], broadcasts: () => [broadcast] } });
    expect(json(await app.inject({ method: "GET", url: "/api/v1/cluster/nodes", headers: admin }))).toEqual([
      node,
    ]);
    expect(
      json(await app.inject({ method: "GET", url: "/api/v1/cluster/broadcasts", headers: admin })),
    ).toEqual([broadcast]);
  });

  it("answer 503 with Retry-After when the cluster store cannot be reached", async () => {
    const storeDown = Object.assign(new Error("Redis at 127.0.0.1:6390 is unreachable"), {
      code: "CLUSTER_STORE_UNAVAILABLE",
    });
    const { app } = await harness({
      cluster: {
        nodes: () => Promise.reject(storeDown),
        broadcasts: () =>
          Promise.reject(Object.assign(new Error("timed out"), { code: "CLUSTER_STORE_TIMEOUT" })),
      },
    });
    const nodes = await app.inject({ method: "GET", url: "/api/v1/cluster/nodes", headers: admin });
    expect(nodes.statusCode).toBe(503);
    expect(nodes.headers["retry-after"]).toBe("1");
    expect(json(nodes)).toEqual({ error: "Redis at 127.0.0.1:6390 is unreachable" });
    const broadcasts = await app.inject({ method: "GET", url: "/api/v1/cluster/broadcasts", headers: admin });
    expect(broadcasts.statusCode).toBe(503);
  });

  it("pass through an error's own status, such as an unreachable store", async () => {
    const cluster: ClusterApi = {
      nodes: () => {
        throw Object.assign(new Error("cluster store unreachable; retry shortly"), { statusCode: 503 });
      },
      broadcasts: () => [],
    };
    const { app } = await harness({ cluster });
    const res = await app.inject({ method: "GET", url: "/api/v1/cluster/nodes", headers: admin });
    expect(res.statusCode).toBe(503);
    expect(json(res)).toEqual({ error: "cluster store unreachable; retry shortly" });
  });
});

describe("adminPlugin: POST /api/v1/slo/client-sample", () => {
  const post = (app: FastifyInstance, payload: unknown, headers: Record<string, string> = {}) =>
    app.inject({
      method: "POST",
      url: "/api/v1/slo/client-sample",
      headers: { "content-type": "application/json", ...headers },
      payload: typeof payload === "string" ? payload : JSON.stringify(payload),
    });

  it("answers 503 without a tracker, before looking at the body or credentials", async () => {
    const { app } = await harness({ withTracker: false });
    for (const payload of ["{not json", validSample]) {
      const res = await post(app, payload);
      expect(res.statusCode).toBe(503);
      expect(json(res)).toEqual({ error: "latency tracking is not enabled" });
    }
  });

  it("validates before authenticating: every 400 case comes before 401", async () => {
    const { app, tracker, subscribeCalls } = await harness();
    const cases: Array<[unknown, RegExp]> = [
      ["{not json", /not valid JSON/],
      ["", /body must be object/],
      ["[]", /body must be object/],
      [{ ...validSample, broadcast: undefined }, /must have required property 'broadcast'/],
      [{ ...validSample, transport: 5 }, /body\/transport must be string/],
      [{ ...validSample, ingest_ts_ms: "1000" }, /body\/ingest_ts_ms must be integer/],
      [{ ...validSample, render_ts_ms: -1 }, /body\/render_ts_ms must be >= 0/],
      [{ ...validSample, broadcast: "   " }, /broadcast must be 1 to 256 characters/],
      [{ ...validSample, broadcast: "b".repeat(257) }, /broadcast must be 1 to 256 characters/],
      [{ ...validSample, transport: " " }, /transport must be 1 to 32 characters/],
      [{ ...validSample, transport: "t".repeat(33) }, /transport must be 1 to 32 characters/],
      [{ ...validSample, render_ts_ms: 999 }, /render_ts_ms must not be earlier than ingest_ts_ms/],
      [{ ...validSample, render_ts_ms: 301_001 }, /latency of 300001 ms is over the 300000 ms limit/],
    ];
    for (const [payload, message] of cases) {
      const res = await post(app, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect((json(res) as { error: string }).error).toMatch(message);
    }
    expect(subscribeCalls).toEqual([]);
    expect(tracker.size).toBe(0);
  });

  it("answers 401 for valid samples without acceptable credentials, and counts it", async () => {
    const { app, tracker, metrics } = await harness();
    expect((await post(app, validSample)).statusCode).toBe(401);
    const wrong = await post(app, validSample, { authorization: "Bearer wrong" });
    expect(wrong.statusCode).toBe(401);
    expect(json(wrong)).toEqual({ error: "invalid or missing subscribe token" });
    expect(tracker.size).toBe(0);
    expect(await metrics.render()).toContain('lvqr_auth_failures_total{entry="slo_client_sample"} 2');
  });

  it("records with a subscribe token (checked against the trimmed broadcast) and answers 204", async () => {
    const { app, tracker, metrics, subscribeCalls } = await harness();
    const res = await post(
      app,
      { broadcast: "  live/a ", transport: " moq ", ingest_ts_ms: 5_000, render_ts_ms: 305_000 },
      { authorization: `Bearer ${VIEWER}` },
    );
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe("");
    expect(subscribeCalls).toEqual([[VIEWER, "live/a"]]);
    expect(tracker.snapshot()).toEqual([
      {
        broadcast: "live/a",
        transport: "moq",
        p50_ms: 300_000,
        p95_ms: 300_000,
        p99_ms: 300_000,
        max_ms: 300_000,
        sample_count: 1,
        total_observed: 1,
      },
    ]);
    expect(await metrics.render()).toContain('lvqr_slo_client_samples_total{transport="moq"} 1');
  });

  it("accepts an admin token without asking the subscribe check", async () => {
    const { app, tracker, subscribeCalls } = await harness();
    const res = await post(app, validSample, admin);
    expect(res.statusCode).toBe(204);
    expect(subscribeCalls).toEqual([]);
    expect(tracker.snapshot()[0]).toMatchObject({ broadcast: "live/a", transport: "moq", max_ms: 250 });
  });

  it("passes an undefined token to the subscribe check when none was sent", async () => {
    const { app, subscribeCalls } = await harness();
    await post(app, validSample);
    expect(subscribeCalls).toEqual([[undefined, "live/a"]]);
  });
});

describe("adminPlugin: stream keys", () => {
  const call = (app: FastifyInstance, method: "GET" | "POST" | "DELETE", url: string, payload?: unknown) =>
    app.inject({
      method,
      url,
      headers: { ...admin, ...(payload === undefined ? {} : { "content-type": "application/json" }) },
      ...(payload === undefined
        ? {}
        : { payload: typeof payload === "string" ? payload : JSON.stringify(payload) }),
    });

  it("answer 404 with the documented message when stream keys are disabled", async () => {
    const { app } = await harness({ streamKeys: undefined });
    for (const [method, url, payload] of [
      ["GET", "/api/v1/streamkeys", undefined],
      ["POST", "/api/v1/streamkeys", { label: "x" }],
      ["DELETE", "/api/v1/streamkeys/abc", undefined],
      ["POST", "/api/v1/streamkeys/abc/rotate", "{broken"],
    ] as const) {
      const res = await call(app, method, url, payload);
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(json(res)).toEqual({ error: "stream keys are disabled (--no-streamkeys)" });
    }
  });

  it("mint answers 201 with the key, a Location and no caching; list shows it", async () => {
    const { app, metrics } = await harness();
    const res = await call(app, "POST", "/api/v1/streamkeys", {
      label: "cam A",
      broadcast: "live/cam-a",
      ttl_seconds: 60,
    });
    expect(res.statusCode).toBe(201);
    const key = json(res) as StreamKey;
    expect(key).toEqual({
      id: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      token: expect.stringMatching(/^lvqr_sk_[A-Za-z0-9_-]{43}$/),
      label: "cam A",
      broadcast: "live/cam-a",
      created_at: 1_700_000_000,
      expires_at: 1_700_000_060,
    });
    expect(res.headers.location).toBe(`/api/v1/streamkeys/${encodeURIComponent(key.id)}`);
    expect(res.headers["cache-control"]).toBe("no-store");
    const list = await call(app, "GET", "/api/v1/streamkeys");
    expect(json(list)).toEqual({ keys: [key] });
    expect(await metrics.render()).toContain('lvqr_streamkeys_changed_total{op="mint"} 1');
  });

  it("mint with an empty body (or none) makes an unscoped key with null fields", async () => {
    const { app } = await harness();
    for (const payload of [undefined, "", "  \n", "{}", "null"]) {
      const res = await call(app, "POST", "/api/v1/streamkeys", payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(201);
      expect(json(res)).toMatchObject({ label: null, broadcast: null, expires_at: null });
    }
  });

  it("mint rejects bad bodies with 400 and non-JSON with 415", async () => {
    const { app, keys } = await harness();
    const cases: Array<[unknown, RegExp]> = [
      ["{bad", /not valid JSON/],
      [{ label: "x", expires_in_secs: 60 }, /unknown field "expires_in_secs"/],
      [{ broadcasts: ["live/a"] }, /unknown field "broadcasts"/],
      [{ broadcast: "../etc" }, /not a valid broadcast name/],
      [{ broadcast: "live//a" }, /not a valid broadcast name/],
      [{ broadcast: "" }, /body\/broadcast/],
      [{ ttl_seconds: -1 }, /body\/ttl_seconds must be >= 0/],
      [{ ttl_seconds: "60" }, /body\/ttl_seconds must be integer/],
      [{ ttl_seconds: 1.5 }, /body\/ttl_seconds must be integer/],
      [{ label: 5 }, /body\/label must be string/],
      [{ label: "x".repeat(257) }, /body\/label must NOT have more than 256 characters/],
      [{ label: "bad\u0007bell" }, /body\/label must match pattern/],
      ["[1]", /body must be object/],
    ];
    for (const [payload, message] of cases) {
      const res = await call(app, "POST", "/api/v1/streamkeys", payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect((json(res) as { error: string }).error).toMatch(message);
    }
    const text = await app.inject({
      method: "POST",
      url: "/api/v1/streamkeys",
      headers: { ...admin, "content-type": "text/plain" },
      payload: "{}",
    });
    expect(text.statusCode).toBe(415);
    expect(json(text)).toHaveProperty("error");
    const huge = await call(app, "POST", "/api/v1/streamkeys", { label: "x".repeat(70_000) });
    expect(huge.statusCode).toBe(413);
    expect(json(huge)).toHaveProperty("error");
    expect(keys.keys.size).toBe(0);
  });

  it("delete answers 204, then 404 with the id in the message", async () => {
    const { app, keys, metrics } = await harness();
    const key = keys.mint({});
    const res = await call(app, "DELETE", `/api/v1/streamkeys/${key.id}`);
    expect(res.statusCode).toBe(204);
    expect(keys.keys.size).toBe(0);
    const again = await call(app, "DELETE", `/api/v1/streamkeys/${key.id}`);
    expect(again.statusCode).toBe(404);
    expect(json(again)).toEqual({ error: `stream-key id "${key.id}" not found` });
    expect(await metrics.render()).toContain('lvqr_streamkeys_changed_total{op="revoke"} 1');
  });

  it("rotate with an empty body keeps label, broadcast and expiry", async () => {
    const { app, keys } = await harness();
    for (const payload of [undefined, "", " \t\n"]) {
      const original = keys.mint({ label: "keep", broadcast: "live/keep", ttl_seconds: 600 });
      const res = await call(app, "POST", `/api/v1/streamkeys/${original.id}/rotate`, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(200);
      const rotated = json(res) as StreamKey;
      expect(rotated.id).toBe(original.id);
      expect(rotated.token).not.toBe(original.token);
      expect(rotated).toMatchObject({
        label: "keep",
        broadcast: "live/keep",
        expires_at: original.expires_at,
      });
    }
  });

  it("rotate with a spec replaces all three fields (missing or null clears)", async () => {
    const { app, keys, metrics } = await harness();
    const original = keys.mint({ label: "old", broadcast: "live/old", ttl_seconds: 600 });
    const res = await call(app, "POST", `/api/v1/streamkeys/${original.id}/rotate`, { label: "new" });
    expect(res.statusCode).toBe(200);
    expect(json(res)).toMatchObject({ id: original.id, label: "new", broadcast: null, expires_at: null });
    const cleared = await call(app, "POST", `/api/v1/streamkeys/${original.id}/rotate`, {});
    expect(json(cleared)).toMatchObject({ label: null, broadcast: null, expires_at: null });
    expect(await metrics.render()).toContain('lvqr_streamkeys_changed_total{op="rotate"} 2');
  });

  it("rotate answers 400 for bad JSON (not 500) and 404 for an unknown id", async () => {
    const { app, keys } = await harness();
    const original = keys.mint({ label: "keep" });
    const bad = await call(app, "POST", `/api/v1/streamkeys/${original.id}/rotate`, "{label:");
    expect(bad.statusCode).toBe(400);
    expect(keys.keys.get(original.id)!.token).toBe(original.token);
    const unknown = await call(app, "POST", "/api/v1/streamkeys/nope/rotate");
    expect(unknown.statusCode).toBe(404);
    expect(json(unknown)).toEqual({ error: 'stream-key id "nope" not found' });
  });

  it("surfaces a store error's own 4xx status", async () => {
    const keys = new MemoryStreamKeys();
    keys.mint = () => {
      throw Object.assign(new Error("too many stream keys (limit 1); revoke unused keys first"), {
        statusCode: 409,
      });
    };
    const { app } = await harness({ streamKeys: keys });
    const res = await call(app, "POST", "/api/v1/streamkeys", {});
    expect(res.statusCode).toBe(409);
    expect(json(res)).toEqual({ error: "too many stream keys (limit 1); revoke unused keys first" });
  });

  it("builds the Location from the plugin prefix", async () => {
    const { app } = await harness({ prefix: "/admin" });
    const res = await call(app, "POST", "/admin/api/v1/streamkeys", {});
    expect(res.statusCode).toBe(201);
    expect(res.headers.location).toBe(`/admin/api/v1/streamkeys/${(json(res) as StreamKey).id}`);
  });
});

describe("adminPlugin: CORS", () => {
  it("answers preflights without a token and mirrors the requested headers", async () => {
    const { app } = await harness();
    const res = await app.inject({
      method: "OPTIONS",
      url: "/api/v1/streamkeys",
      headers: {
        origin: "https://console.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    expect(res.statusCode).toBe(204);
    expect(res.headers["access-control-allow-origin"]).toBe("*");
    expect(res.headers["access-control-allow-headers"]).toBe("authorization, content-type");
    expect(res.headers["access-control-allow-methods"]).toContain("POST");
  });

  it("exposes Location, Content-Type and ETag on responses", async () => {
    const { app } = await harness();
    const res = await app.inject({
      method: "GET",
      url: "/api/v1/stats",
      headers: { ...admin, origin: "https://x" },
    });
    expect(res.headers["access-control-allow-origin"]).toBe("*");
    expect(res.headers["access-control-expose-headers"]).toBe("Location, Content-Type, ETag");
  });
});

describe("adminPlugin: encapsulation", () => {
  it("leaves the host's parsers, hooks and error handling alone", async () => {
    const app = Fastify();
    apps.push(app);
    app.post("/host/echo", async (request) => ({ got: request.body }));
    app.get("/host/fail", async () => {
      throw Object.assign(new Error("host error"), { statusCode: 418 });
    });
    await app.register(adminPlugin, {
      authorizeAdmin: () => ({ allow: false, reason: "no" }),
      authorizeSubscribe: () => ({ allow: false, reason: "no" }),
      stats: () => {
        throw new Error("unused");
      },
      streams: () => [],
      serverInfo: () => {
        throw new Error("unused");
      },
    });
    const text = await app.inject({
      method: "POST",
      url: "/host/echo",
      headers: { "content-type": "text/plain" },
      payload: "plain",
    });
    expect(json(text)).toEqual({ got: "plain" });
    expect(text.headers["access-control-allow-origin"]).toBeUndefined();
    const failed = await app.inject({ method: "GET", url: "/host/fail" });
    expect(failed.statusCode).toBe(418);
    expect(json(failed)).toMatchObject({ message: "host error" });
    const empty = await app.inject({
      method: "POST",
      url: "/host/echo",
      headers: { "content-type": "application/json" },
      payload: "",
    });
    expect(empty.statusCode).toBe(400);
  });
});

describe("adminPlugin: options", () => {
  it("refuses to register without the required callbacks", async () => {
    const app = Fastify();
    apps.push(app);
    await expect(
      app.register(adminPlugin, { authorizeAdmin: () => ({ allow: true }) } as unknown as AdminPluginOptions),
    ).rejects.toThrow(/adminPlugin needs the authorizeSubscribe\(\) option/);
  });
});
