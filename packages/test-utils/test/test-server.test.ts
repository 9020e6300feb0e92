import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test as base, describe, expect, it } from "vitest";
import {
  isTestUtilsError,
  TestServer,
  TestServerConfig,
  testServeConfig,
  testServerFixture,
  withTestServer,
} from "../src/index.ts";

function tcpConnects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe("TestServer", () => {
  it("binds every listener on 127.0.0.1 with distinct ephemeral ports and serves the admin API", async () => {
    const server = await TestServer.start({ dash: true });
    try {
      const ports = [
        server.rtmpAddress.port,
        server.moqAddress.port,
        server.adminAddress.port,
        server.hlsAddress.port,
        server.dashAddress.port,
      ];
      for (const port of ports) expect(port).toBeGreaterThan(0);
      expect(new Set(ports).size).toBe(5);
      expect(server.rtmpAddress.address).toBe("127.0.0.1");
      for (const port of ports) expect(await tcpConnects(port)).toBe(true);

      expect(server.rtmpUrl("live", "cam0")).toBe(`rtmp://127.0.0.1:${server.rtmpAddress.port}/live/cam0`);
      expect(server.rtmpUrl("live", "cam0", { key: "a b" })).toMatch(/\/live\/cam0\?key=a%20b$/);
      expect(server.hlsUrl("live/cam0")).toBe(
        `http://127.0.0.1:${server.hlsAddress.port}/hls/live/cam0/master.m3u8`,
      );
      expect(server.dashUrl("live/cam0", "init-video.m4s")).toBe(
        `http://127.0.0.1:${server.dashAddress.port}/dash/live/cam0/init-video.m4s`,
      );
      expect(server.moqUrl()).toBe(`http://127.0.0.1:${server.moqAddress.port}/`);
      expect(server.moqUrl("anon", { token: "t" })).toBe(
        `http://127.0.0.1:${server.moqAddress.port}/anon?token=t`,
      );
      expect(server.adminUrl("/healthz")).toBe(`http://127.0.0.1:${server.adminAddress.port}/healthz`);

      const health = await fetch(server.adminUrl("/healthz"));
      expect(health.status).toBe(200);
      const info = (await (await fetch(server.adminUrl("/api/v1/server-info"))).json()) as {
        bound: Record<string, string | null>;
      };
      expect(info.bound["rtmp"]).toBe(`127.0.0.1:${server.rtmpAddress.port}`);
      expect(info.bound["dash"]).toBe(`127.0.0.1:${server.dashAddress.port}`);
      expect(server.origin.consume().list()).toEqual([]);
      expect(server.slo.snapshot()).toEqual([]);
      expect(server.startupMs).toBeGreaterThan(0);
    } finally {
      await server.stop();
    }
    // Stopped: listeners are gone and the temporary data directory was removed.
    expect(await tcpConnects(server.rtmpAddress.port)).toBe(false);
    expect(existsSync(server.dataDir)).toBe(false);
    await server.stop(); // idempotent
  });

  it("has HLS on and DASH off by default, and says how to enable what is off", async () => {
    await using server = await TestServer.start();
    expect(server.hlsEnabled).toBe(true);
    expect(server.dashEnabled).toBe(false);
    expect(server.addresses.dash).toBeUndefined();
    let error: unknown;
    try {
      server.dashUrl("live/x");
    } catch (e) {
      error = e;
    }
    expect(isTestUtilsError(error, "TEST_UTILS_DISABLED")).toBe(true);
    expect((error as Error).message).toContain("dash: true");
    expect(() => server.dashAddress).toThrow(/DASH is disabled/);
  });

  it("turns HLS off, gates the admin API with a token, and keeps a given data directory", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "lvqr-test-utils-"));
    try {
      const config = new TestServerConfig()
        .withoutHls()
        .withAuth({ adminToken: "secret" })
        .withNoStreamKeys()
        .withDataDir(dataDir);
      await withTestServer(config, async (server) => {
        expect(server.hlsEnabled).toBe(false);
        expect(() => server.hlsUrl("live/x")).toThrow(/HLS is disabled/);
        expect(server.config.auth?.streamKeys).toBe(false);
        expect((await fetch(server.adminUrl("/api/v1/stats"))).status).toBe(401);
        const ok = await fetch(server.adminUrl("/api/v1/stats"), {
          headers: { authorization: "Bearer secret" },
        });
        expect(ok.status).toBe(200);
      });
      expect(existsSync(dataDir)).toBe(true);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("passes HLS tuning and the HMAC secret through to ServeConfig", async () => {
    await using server = await TestServer.start({
      hls: { targetDurationS: 1, partTargetMs: 100 },
      hmacPlaybackSecret: "hmac",
      livePlaybackAuth: false,
    });
    expect(server.config.hls).toEqual({ targetDurationS: 1, partTargetMs: 100 });
    expect(server.config.auth).toMatchObject({ hmacPlaybackSecret: "hmac", livePlaybackAuth: false });
    const info = (await (await fetch(server.adminUrl("/api/v1/server-info"))).json()) as {
      features: Record<string, unknown>;
    };
    expect(info.features["hmac_playback_secret_configured"]).toBe(true);
  });

  it("maps options onto a loopback, ephemeral ServeConfig (cluster settings go to ServeConfig.cluster)", () => {
    const config = testServeConfig(
      new TestServerConfig()
        .withDash()
        .withCluster({ redisUrl: "redis://127.0.0.1:6379", nodeId: "a" })
        .withServeConfig({ shutdownGraceMs: 250 }).options,
      "state",
    );
    expect(config).toMatchObject({
      host: "127.0.0.1",
      moqPort: 0,
      rtmpPort: 0,
      adminPort: 0,
      hlsPort: 0,
      dashPort: 0,
      dataDir: "state",
      shutdownGraceMs: 250,
      cluster: { redisUrl: "redis://127.0.0.1:6379", nodeId: "a" },
    });
    expect(testServeConfig({}, "d")).toMatchObject({ hlsPort: 0, dashPort: false, shutdownGraceMs: 0 });
  });

  it("rejects a config start() cannot use and leaves no data directory behind", async () => {
    await expect(TestServer.start({ hls: { partTargetMs: 10 } })).rejects.toThrow(/partTargetMs/);
  });

  it("starts ten servers in parallel in one process without a port clash", async () => {
    const servers = await Promise.all(Array.from({ length: 10 }, () => TestServer.start({ dash: true })));
    try {
      const ports = servers.flatMap((s) => [
        s.rtmpAddress.port,
        s.moqAddress.port,
        s.adminAddress.port,
        s.hlsAddress.port,
        s.dashAddress.port,
      ]);
      expect(new Set(ports).size).toBe(50);
      const healthy = await Promise.all(
        servers.map((s) => fetch(s.adminUrl("/healthz")).then((r) => r.status)),
      );
      expect(healthy).toEqual(Array(10).fill(200));
      const times = servers.map((s) => s.startupMs).sort((a, b) => a - b);
      const median = (times[4]! + times[5]!) / 2;
      // Reported, not asserted: start-to-ready of ten concurrent starts.
      console.log(
        `ten parallel TestServer starts: median ${median.toFixed(0)} ms, min ${times[0]!.toFixed(0)} ms, max ${times[9]!.toFixed(0)} ms`,
      );
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
    // And one at a time, which is what a test usually does.
    const sequential: number[] = [];
    for (let i = 0; i < 10; i++) {
      const server = await TestServer.start({ dash: true });
      sequential.push(server.startupMs);
      await server.stop();
    }
    sequential.sort((a, b) => a - b);
    console.log(
      `ten sequential TestServer starts: median ${((sequential[4]! + sequential[5]!) / 2).toFixed(0)} ms, max ${sequential[9]!.toFixed(0)} ms`,
    );
  });
});

const test = base.extend<{ server: TestServer }>({ server: testServerFixture({ dash: true }) });

describe("testServerFixture", () => {
  let previous: TestServer | undefined;
  test("gives each test a running server", async ({ server }) => {
    expect((await fetch(server.adminUrl("/healthz"))).status).toBe(200);
    expect(server.dashEnabled).toBe(true);
    previous = server;
  });
  test("and stops it after the test", async ({ server }) => {
    expect(server).not.toBe(previous);
    expect(await tcpConnects(previous!.adminAddress.port)).toBe(false);
  });
});

const fileTest = base.extend<{ shared: TestServer }>({ shared: [testServerFixture(), { scope: "file" }] });

describe("testServerFixture with file scope", () => {
  let first: TestServer | undefined;
  fileTest("shares one server across the tests of a file", async ({ shared }) => {
    first = shared;
    expect((await fetch(shared.adminUrl("/healthz"))).status).toBe(200);
  });
  fileTest("(the same one)", async ({ shared }) => {
    expect(shared).toBe(first);
  });
});
