/**
 * A runnable admin API: fastify with `adminPlugin`, a `LatencyTracker` and the metrics registry.
 * A timer stands in for an egress and records an HLS latency sample every 500 ms.
 *
 *   ./lvqr build && node packages/admin/examples/basic-server.ts 8080 my-admin-token
 *   (or without building: node --conditions=@lvqr/source packages/admin/examples/basic-server.ts)
 *
 * then `curl -H 'Authorization: Bearer my-admin-token' http://127.0.0.1:8080/api/v1/slo`.
 */

import { type AuthDecision, adminPlugin, LatencyTracker, LvqrMetrics } from "@lvqr/admin";
import Fastify, { type FastifyInstance } from "fastify";

/** Builds (but does not start) the example server. */
export async function buildExampleServer(adminToken: string): Promise<FastifyInstance> {
  const startedAt = Date.now();
  const metrics = new LvqrMetrics();
  const tracker = new LatencyTracker({ metrics });
  const app = Fastify();

  // A real server compares in constant time (see the server's auth module); this is a demo.
  const authorizeAdmin = (token: string): AuthDecision =>
    token === adminToken ? { allow: true } : { allow: false, reason: "invalid admin token" };

  await app.register(adminPlugin, {
    authorizeAdmin,
    // Anyone may push client latency samples in this demo.
    authorizeSubscribe: () => ({ allow: true }),
    stats: () => ({
      publishers: 1,
      subscribers: 0,
      tracks: 2,
      bytes_received: 0,
      bytes_sent: 0,
      uptime_secs: Math.floor((Date.now() - startedAt) / 1000),
      subscribers_by_protocol: { moq: 0, hls: 0, dash: 0 },
    }),
    streams: () => [{ name: "live/demo", subscribers: 0 }],
    serverInfo: () => ({
      version: "example",
      uptime_secs: Math.floor((Date.now() - startedAt) / 1000),
      bound: { admin: null, rtmp: null, hls: null, dash: null, moq: null },
      auth_mode: "static",
      hmac_playback_secret_configured: false,
    }),
    tracker,
    metrics,
  });

  // Stand-in for the HLS egress: "a part became available 150..250 ms after ingest".
  const timer = setInterval(() => tracker.record("live/demo", "hls", 150 + Math.random() * 100), 500);
  timer.unref();
  app.addHook("onClose", async () => clearInterval(timer));
  return app;
}

if (import.meta.main) {
  const port = Number(process.argv[2] ?? 8080);
  const token = process.argv[3] ?? "my-admin-token";
  const app = await buildExampleServer(token);
  const address = await app.listen({ host: "127.0.0.1", port });
  console.log(`admin API on ${address}; try:`);
  console.log(`  curl ${address}/healthz`);
  console.log(`  curl -H 'Authorization: Bearer ${token}' ${address}/api/v1/slo`);
  console.log(`  curl ${address}/metrics`);
}
