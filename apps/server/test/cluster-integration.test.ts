/**
 * The server's cluster integration in-process: advertised endpoints from bound ports, node
 * credentials for pulls, lease settings the flags allow, and a server whose Redis is down at boot:
 * it starts, serves as a single node, answers 503 on the cluster routes, and claims its live
 * broadcast once Redis comes up.
 */

import type { AddressInfo } from "node:net";
import { BroadcastClaims, MemoryStore } from "@lvqr/cluster";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisServer, startRedisServer } from "../../../packages/cluster/test/support/redis-server.ts";
import { JwtAuth } from "../src/auth/index.ts";
import { advertisedEndpoints, peerTokenSource } from "../src/cluster/index.ts";
import { stepdownMarginFor } from "../src/cluster/server-cluster.ts";
import { loopbackEphemeralConfig } from "../src/config.ts";
import { start } from "../src/start.ts";
import { type BroadcastRow, waitUntil } from "./cluster-support/cluster.ts";
import { FlvLoopPublisher, testClip } from "./cluster-support/flv-loop-publisher.ts";

const address = (ip: string, port: number): AddressInfo => ({
  address: ip,
  port,
  family: ip.includes(":") ? "IPv6" : "IPv4",
});

describe("advertised endpoints", () => {
  it("fill what the flags leave out from the bound addresses", () => {
    const result = advertisedEndpoints(
      { hls: "https://cdn.example.com/edge-1/" },
      { moq: address("127.0.0.1", 4443), hls: address("127.0.0.1", 8888), dash: undefined, moqTls: true },
    );
    expect(result.endpoints).toEqual({
      moq: "https://127.0.0.1:4443",
      hls: "https://cdn.example.com/edge-1",
      dash: null,
    });
    expect(result.derived).toEqual(["moq"]);
  });

  it("advertise a dialable address for a wildcard bind, and brackets for IPv6", () => {
    const wildcard = advertisedEndpoints(undefined, {
      moq: address("0.0.0.0", 4443),
      hls: address("::1", 8888),
      dash: address("::", 8889),
      moqTls: false,
    });
    expect(wildcard.endpoints.moq).toMatch(/^http:\/\/\d+\.\d+\.\d+\.\d+:4443$/);
    expect(wildcard.endpoints.moq).not.toContain("0.0.0.0");
    expect(wildcard.endpoints.hls).toBe("http://[::1]:8888");
    expect(wildcard.endpoints.dash).not.toContain("[::]");
  });
});

describe("node credentials for relay pulls", () => {
  it("sign a short-lived subscribe JWT bound to the pulled broadcast, which the owner accepts", async () => {
    const jwt = { secret: "s3cret-for-the-cluster-0123456789", issuer: "lvqr", audience: "viewers" };
    const tokens = peerTokenSource({ jwt }, "node-b")!;
    const token = (await tokens("live/x"))!;
    expect(await tokens("live/x")).toBe(token); // reused while fresh
    const verified = await new JwtAuth(jwt).verify(token);
    expect(verified.ok).toBe(true);
    if (!verified.ok) return;
    expect(verified.token).toMatchObject({
      scope: "subscribe",
      broadcast: "live/x",
      subject: "cluster-node:node-b",
    });
    expect(verified.token.expiresAtMs - Date.now()).toBeLessThanOrEqual(600_000);
    const grants = await new JwtAuth(jwt).sessionGrants({ root: "", token });
    expect(grants).toMatchObject({ allow: true, read: ["live/x"], publish: [] });
  });

  it("use the subscribe token, or nothing when MoQ reads are open", async () => {
    expect(await peerTokenSource({ subscribeToken: "viewer-token" }, "n")!("live/x")).toBe("viewer-token");
    expect(peerTokenSource({ publishKey: "k" }, "n")).toBeUndefined();
  });
});

describe("lease settings", () => {
  it("keep the package defaults and make every lease the flags accept work", () => {
    expect(stepdownMarginFor(6000, 2000)).toBe(1500);
    expect(stepdownMarginFor(3000, 1000)).toBe(1000);
    for (const [lease, renew] of [
      [500, 250],
      [2000, 1000],
      [600_000, 300_000],
      [6000, 50],
    ] as const) {
      const claims = new BroadcastClaims({
        store: new MemoryStore(),
        nodeId: "n",
        leaseMs: lease,
        renewIntervalMs: renew,
        stepdownMarginMs: stepdownMarginFor(lease, renew),
      });
      expect(claims.leaseMs - claims.stepdownMarginMs).toBeGreaterThan(claims.renewIntervalMs);
      void claims.close();
    }
  });
});

describe("a server whose Redis is down at boot", () => {
  let redis: RedisServer;

  beforeAll(async () => {
    [redis] = await Promise.all([startRedisServer(), testClip()]);
    await redis.kill(); // the port stays reserved for the restart below
  }, 60_000);

  afterAll(async () => {
    await redis?.stop();
  });

  it("starts, serves as a single node, and claims its broadcast when Redis comes up", async () => {
    const server = await start(
      loopbackEphemeralConfig({
        cluster: { redisUrl: redis.url, nodeId: "lonely", leaseMs: 3000, renewMs: 1000 },
        shutdownGraceMs: 100,
      }),
    );
    try {
      const broadcasts = await fetch(server.adminUrl("/api/v1/cluster/broadcasts"));
      expect(broadcasts.status).toBe(503);
      expect(broadcasts.headers.get("retry-after")).toBe("1");

      const publisher = await FlvLoopPublisher.start(server.rtmpUrl("live", "solo"));
      try {
        const playlist = await waitUntil(
          async () => {
            const response = await fetch(server.hlsUrl("live/solo", "playlist.m3u8"));
            return response.status === 200 ? response.text() : undefined;
          },
          15_000,
          "local HLS without Redis",
        );
        expect(playlist).toContain("#EXT-X-PART");

        await redis.restart();
        const row = await waitUntil(
          async () => {
            const response = await fetch(server.adminUrl("/api/v1/cluster/broadcasts"));
            if (response.status !== 200) return undefined;
            return ((await response.json()) as BroadcastRow[]).find((entry) => entry.name === "live/solo");
          },
          10_000,
          "the claim once Redis is up",
        );
        expect(row.owner).toBe("lonely");
        expect(publisher.closed).toBe(false);
        const nodes = (await (await fetch(server.adminUrl("/api/v1/cluster/nodes"))).json()) as Array<{
          id: string;
          endpoints: Record<string, string | null>;
        }>;
        expect(nodes.map((node) => node.id)).toEqual(["lonely"]);
        expect(nodes[0]!.endpoints["hls"]).toBe(`http://127.0.0.1:${server.addresses.hls!.port}`);
      } finally {
        await publisher.stop();
      }
    } finally {
      await server.shutdown();
    }
  }, 60_000);
});
