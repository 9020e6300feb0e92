/**
 * The built `lvqr` command as operators run it (`node apps/server/dist/cli.js serve`, what
 * `./lvqr serve` execs after building): every listener comes up, the "lvqr ready" JSON log line
 * names the bound ports, each port answers its protocol, bad flags fail with a message naming the
 * flag, and SIGTERM exits 0. The run on the default ports (1935, 4443, 8080, 8888, 8889) is
 * checked by hand, since fixed ports may be busy on a shared machine.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EPHEMERAL_FLAGS, ServerProcess } from "./support/server-process.ts";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "lvqr-e2e-cli-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function tcpConnects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

describe("the lvqr command", () => {
  it("`lvqr serve` on ephemeral ports: the ready line names the ports, each listener answers, SIGTERM exits 0", async () => {
    const dataDir = await tempDir();
    const { process: lvqr, ports } = await ServerProcess.serve([...EPHEMERAL_FLAGS, "--data-dir", dataDir]);
    cleanups.push(() => lvqr.kill());

    const all = [ports.moq, ports.rtmp, ports.admin, ports.hls, ports.dash];
    for (const port of all) expect(port).toBeGreaterThan(0);
    expect(new Set(all).size).toBe(5);
    const ready = lvqr.logs.find((line) => line.msg === "lvqr ready")!;
    expect(ready.auth).toBe("noop");

    const health = await fetch(`http://127.0.0.1:${ports.admin}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("ok");
    const info = (await (await fetch(`http://127.0.0.1:${ports.admin}/api/v1/server-info`)).json()) as {
      bound: Record<string, string | null>;
    };
    expect(info.bound).toMatchObject({
      rtmp: `127.0.0.1:${ports.rtmp}`,
      hls: `127.0.0.1:${ports.hls}`,
      dash: `127.0.0.1:${ports.dash}`,
      moq: `127.0.0.1:${ports.moq}`,
    });
    // Unknown broadcasts are 404 on the playback ports (after the unknown-broadcast wait).
    expect((await fetch(`http://127.0.0.1:${ports.hls}/hls/live/none/master.m3u8`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${ports.dash}/dash/live/none/manifest.mpd`)).status).toBe(404);
    // The MoQ port speaks HTTP (WebSocket upgrades); a plain GET of an unknown path is answered.
    const moq = await fetch(`http://127.0.0.1:${ports.moq}/certificate.sha256`);
    expect([200, 404]).toContain(moq.status);
    expect(await tcpConnects(ports.rtmp)).toBe(true);

    lvqr.signal("SIGTERM");
    const exit = await lvqr.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(lvqr.logs.some((line) => line.msg === "shutdown complete")).toBe(true);
    expect(await tcpConnects(ports.rtmp)).toBe(false);
  });

  it("LVQR_* environment variables configure it like flags", async () => {
    const dataDir = await tempDir();
    const { process: lvqr, ports } = await ServerProcess.serve(["--host", "127.0.0.1"], {
      env: {
        LVQR_PORT: "0",
        LVQR_RTMP_PORT: "0",
        LVQR_ADMIN_PORT: "0",
        LVQR_HLS_PORT: "0",
        LVQR_NO_DASH: "1",
        LVQR_DATA_DIR: dataDir,
        LVQR_ADMIN_TOKEN: "env-admin-token",
      },
    });
    cleanups.push(() => lvqr.kill());
    expect(ports.dash).toBeNull();
    expect(ports.hls).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${ports.admin}/api/v1/stats`)).status).toBe(401);
    const authorized = await fetch(`http://127.0.0.1:${ports.admin}/api/v1/stats`, {
      headers: { authorization: "Bearer env-admin-token" },
    });
    expect(authorized.status).toBe(200);
    lvqr.signal("SIGINT");
    expect((await lvqr.exited).code).toBe(0);
  });

  it("an invalid flag exits 2 naming the flag; --help lists every flag with its variable", async () => {
    const bad = ServerProcess.spawn(["serve", "--hls-part-target", "10"]);
    cleanups.push(() => bad.kill());
    expect((await bad.exited).code).toBe(2);
    expect(bad.output.join("\n")).toMatch(/--hls-part-target/);

    const unknown = ServerProcess.spawn(["serve", "--no-such-flag"]);
    cleanups.push(() => unknown.kill());
    expect((await unknown.exited).code).toBe(2);
    expect(unknown.output.join("\n")).toMatch(/--no-such-flag: unknown flag/);

    const help = ServerProcess.spawn(["serve", "--help"]);
    cleanups.push(() => help.kill());
    expect((await help.exited).code).toBe(0);
    const text = help.output.join("\n");
    for (const flag of [
      "--port",
      "--rtmp-port",
      "--admin-port",
      "--hls-port",
      "--dash-port",
      "--jwt-secret",
    ]) {
      expect(text).toContain(flag);
    }
    expect(text).toContain("[LVQR_RTMP_PORT]");
  });

  it("a port already in use fails the start with a message and exit code 1", async () => {
    const first = await ServerProcess.serve([...EPHEMERAL_FLAGS, "--data-dir", await tempDir()]);
    cleanups.push(() => first.process.kill());
    const clash = ServerProcess.spawn([
      "serve",
      ...EPHEMERAL_FLAGS.slice(0, 4),
      "--rtmp-port",
      String(first.ports.rtmp),
      "--admin-port",
      "0",
      "--hls-port",
      "0",
      "--dash-port",
      "0",
      "--data-dir",
      await tempDir(),
    ]);
    cleanups.push(() => clash.kill());
    expect((await clash.exited).code).toBe(1);
    expect(clash.output.join("\n")).toMatch(/could not start.*EADDRINUSE/s);
    first.process.signal("SIGTERM");
    expect((await first.process.exited).code).toBe(0);
  });
});
