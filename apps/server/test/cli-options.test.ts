import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { envNameOf, parseServeCommand, serveHelp } from "../src/cli-options.ts";
import { ConfigError, validateServeConfig } from "../src/config.ts";

const serve = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const command = parseServeCommand(argv, env);
  if (command.kind !== "serve") throw new Error("expected serve");
  return command.config;
};

describe("lvqr serve flags", () => {
  it("uses the reference's environment variable names", () => {
    expect(envNameOf("port")).toBe("LVQR_PORT");
    expect(envNameOf("hls-part-target")).toBe("LVQR_HLS_PART_TARGET");
  });

  it("parses ports, HLS tuning and auth from flags, with a flag beating its variable", () => {
    const config = serve(
      ["--port", "4000", "--rtmp-port=1936", "--hls-part-target", "300", "--admin-token", "t0p", "--no-dash"],
      { LVQR_PORT: "5000", LVQR_HLS_DVR_WINDOW: "30", LVQR_NO_AUTH_LIVE_PLAYBACK: "true" },
    );
    expect(config.moqPort).toBe(4000);
    expect(config.rtmpPort).toBe(1936);
    expect(config.dashPort).toBe(false);
    expect(config.hls).toEqual({ targetDurationS: undefined, partTargetMs: 300, dvrWindowS: 30 });
    expect(serve(["--hls-dvr-memory", "20"]).hls?.dvrMemoryS).toBe(20);
    expect(config.auth?.adminToken).toBe("t0p");
    expect(config.auth?.livePlaybackAuth).toBe(false);
    expect(config.auth?.streamKeys).toBe(true);
    validateServeConfig(config);
  });

  it("rejects invalid values with a message naming the flag", () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [["--port", "70000"], {}, /^--port: 70000 is outside 0\.\.65535/],
      [["--hls-part-target", "abc"], {}, /^--hls-part-target: "abc" is not a whole number/],
      [["--hls-part-target", "2500"], {}, /^--hls-part-target: must be shorter than --hls-target-duration/],
      [["--bogus"], {}, /^--bogus: unknown flag/],
      [["--admin-token"], {}, /^--admin-token: needs a value/],
      [["--cluster-egress", "relay"], {}, /^--cluster-egress: only applies with --cluster-redis-url/],
      [
        ["--cluster-redis-url", "redis://x", "--cluster-egress", "teleport"],
        {},
        /^--cluster-egress: "teleport" is not one of/,
      ],
      [["--tls-cert", "/definitely/missing.pem"], {}, /^--tls-cert: cannot read/],
      [[], { LVQR_NO_HLS: "maybe" }, /^LVQR_NO_HLS: "maybe" is not a boolean/],
      [[], { LVQR_RTMP_PORT: "-1" }, /^--rtmp-port: "-1" is not a whole number/],
    ];
    for (const [argv, env, message] of cases) {
      let caught: unknown;
      try {
        parseServeCommand(argv, env);
      } catch (error) {
        caught = error;
      }
      expect(caught, argv.join(" ")).toBeInstanceOf(ConfigError);
      expect((caught as Error).message).toMatch(message);
    }
  });

  it("reads TLS material from PEM files and requires both halves", () => {
    const dir = mkdtempSync(join(tmpdir(), "lvqr-cli-"));
    writeFileSync(join(dir, "cert.pem"), "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n");
    writeFileSync(join(dir, "key.pem"), "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n");
    const config = serve(["--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")]);
    expect(String(config.tls?.cert)).toContain("BEGIN CERTIFICATE");
    expect(() => serve(["--tls-cert", join(dir, "cert.pem")])).toThrowError(/go together/);
    writeFileSync(join(dir, "junk.pem"), "nope");
    expect(() =>
      serve(["--tls-cert", join(dir, "junk.pem"), "--tls-key", join(dir, "key.pem")]),
    ).toThrowError(/not a PEM file/);
  });

  it("builds cluster settings only with a Redis URL", () => {
    const config = serve([
      "--cluster-redis-url",
      "redis://127.0.0.1:6379",
      "--cluster-node-id",
      "a",
      "--cluster-advertise-hls",
      "http://a:8888",
    ]);
    expect(config.cluster).toMatchObject({
      redisUrl: "redis://127.0.0.1:6379",
      nodeId: "a",
      advertise: { hls: "http://a:8888" },
    });
    expect(serve([]).cluster).toBeUndefined();
  });

  it("prints help listing every flag with its variable", () => {
    expect(parseServeCommand(["--port", "1", "--help"]).kind).toBe("help");
    const help = serveHelp();
    expect(help).toContain("--hls-part-target <n>");
    expect(help).toContain("[LVQR_HLS_PART_TARGET]");
    expect(help).toContain("--no-streamkeys");
  });
});

describe("validateServeConfig", () => {
  it("names the field at fault", () => {
    expect(() => validateServeConfig({ hlsPort: 1.5 })).toThrowError(/^hlsPort:/);
    expect(() => validateServeConfig({ cluster: { redisUrl: "http://x" } })).toThrowError(
      /^cluster.redisUrl:/,
    );
    expect(() =>
      validateServeConfig({ cluster: { redisUrl: "redis://x", leaseMs: 1000, renewMs: 900 } }),
    ).toThrowError(/^cluster.renewMs:/);
  });
});
