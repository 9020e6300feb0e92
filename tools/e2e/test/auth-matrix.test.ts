/**
 * The auth matrix: every protocol (RTMP publish, MoQ session, live HLS, live DASH, admin API) ×
 * {no credential, wrong, expired, right}, against two servers: one in JWT mode (HS256, scopes) and
 * one with static tokens, stream keys and an HMAC secret for signed URLs. Each cell asserts the
 * documented answer: the RTMP `onStatus` code (read by a real RTMP client, with ffmpeg as a second
 * publisher that must be refused or admitted the same way), the HTTP status of the MoQ WebSocket
 * upgrade (and the official @moq/lite client failing or reading the catalog), and the HTTP status of
 * HLS, DASH and admin requests. The table is in this package's README.
 *
 * Then signed URLs (scheme and broadcast binding, expiry, tampering; ffprobe following a signed
 * master playlist) and stream keys that survive a restart of the server.
 */
import { createHmac } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { publishRtmp, TestServer, waitFor } from "@lvqr/test-utils";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FfmpegPublisher, ffprobe, requireTool } from "./support/ffmpeg.ts";
import { mediaUris, newestSegments } from "./support/http-viewers.ts";
import { LiteViewer, moqUpgradeStatus } from "./support/moq-viewer.ts";

type Column = "none" | "wrong" | "expired" | "right";
type Protocol = "rtmp" | "moq" | "hls" | "dash" | "admin";
const COLUMNS: readonly Column[] = ["none", "wrong", "expired", "right"];

const PUBLISH_OK = "NetStream.Publish.Start";
const PUBLISH_DENIED = "NetStream.Publish.Unauthorized";
const BROADCAST = "live/cam";

/** What each cell must answer; `null` where the mode has no such credential. */
const EXPECTED: Record<"jwt" | "static", Record<Protocol, Record<Column, string | number | null>>> = {
  jwt: {
    rtmp: { none: PUBLISH_DENIED, wrong: PUBLISH_DENIED, expired: PUBLISH_DENIED, right: PUBLISH_OK },
    moq: { none: 401, wrong: 401, expired: 401, right: 101 },
    hls: { none: 401, wrong: 401, expired: 401, right: 200 },
    dash: { none: 401, wrong: 401, expired: 401, right: 200 },
    admin: { none: 401, wrong: 401, expired: 401, right: 200 },
  },
  static: {
    rtmp: { none: PUBLISH_DENIED, wrong: PUBLISH_DENIED, expired: PUBLISH_DENIED, right: PUBLISH_OK },
    moq: { none: 401, wrong: 401, expired: 401, right: 101 },
    hls: { none: 401, wrong: 401, expired: 403, right: 200 },
    dash: { none: 401, wrong: 401, expired: 403, right: 200 },
    admin: { none: 401, wrong: 401, expired: null, right: 200 },
  },
};

const JWT_SECRET = "e2e-jwt-secret-0123456789abcdef0123456789";
const ADMIN_TOKEN = "e2e-admin-token";
const PUBLISH_KEY = "e2e-publish-key";
const SUBSCRIBE_TOKEN = "e2e-subscribe-token";
const HMAC_SECRET = "e2e-hmac-secret";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
const observed: Record<string, Record<string, Record<string, string | number | null>>> = {};

function record(mode: string, protocol: Protocol, column: Column, outcome: string | number | null): void {
  observed[mode] ??= {};
  const byProtocol = observed[mode];
  byProtocol[protocol] ??= {};
  byProtocol[protocol][column] = outcome;
}

async function jwt(
  claims: { scope: string; broadcast?: string },
  options: { secret?: string; expiresIn?: number } = {},
) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("e2e")
    .setIssuedAt(now - 120)
    .setExpirationTime(now + (options.expiresIn ?? 3600))
    .sign(new TextEncoder().encode(options.secret ?? JWT_SECRET));
}

/** The RTMP onStatus answer to a publish of `url`, read by the TypeScript RTMP client. */
async function rtmpOutcome(url: string): Promise<string> {
  try {
    const publish = await publishRtmp(url, "fixture", { loop: true, rtmp: { timeoutMs: 10_000 } });
    await publish.stop();
    return PUBLISH_OK;
  } catch (error) {
    const status = (error as { status?: unknown }).status;
    if (typeof status === "string") return status;
    throw error;
  }
}

/** ffmpeg publishing `url` must be refused: it exits non-zero, printing the server's reason. */
async function expectFfmpegRefused(url: string, reason: RegExp): Promise<void> {
  const ffmpeg = FfmpegPublisher.start(url, { durationSeconds: 30 });
  cleanups.push(() => ffmpeg.stop());
  const exit = await Promise.race([
    ffmpeg.exited,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`ffmpeg was not refused: ${url}`)), 15_000),
    ),
  ]);
  expect(exit.code, exit.stderr).not.toBe(0);
  // ffmpeg prints the onStatus description: "Server error: <reason>".
  expect(exit.stderr).toMatch(new RegExp(`Server error: ${reason.source}`));
}

/** The MoQ upgrade status, and for 101 the official client reading the catalog (else failing to connect). */
async function moqOutcome(url: string): Promise<number> {
  const status = await moqUpgradeStatus(url);
  if (status === 101) {
    const viewer = await LiteViewer.connect(url);
    try {
      await viewer.waitAnnounced(BROADCAST);
      const catalog = await viewer.readCatalog(BROADCAST);
      expect(Object.keys(catalog.video?.renditions ?? {}).length).toBeGreaterThan(0);
    } finally {
      viewer.close();
    }
  } else {
    const attempt = LiteViewer.connect(url).then((viewer) => {
      viewer.close();
      return "connected";
    });
    // @moq/lite 0.2.2 does not always reject when the upgrade is refused; it must just never
    // get a session.
    const outcome = await Promise.race([
      attempt.catch(() => "refused"),
      new Promise((resolve) => setTimeout(() => resolve("no session"), 3000)),
    ]);
    expect(outcome, `@moq/lite connecting to ${url}`).not.toBe("connected");
  }
  return status;
}

async function httpStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  return response.status;
}

/** Starts `server` publishing BROADCAST with ffmpeg (credential in `query`), and waits for HLS. */
async function publishWithFfmpeg(server: TestServer, query: string): Promise<FfmpegPublisher> {
  const ffmpeg = FfmpegPublisher.start(`${server.rtmpUrl("live", "cam")}?${query}`);
  cleanups.push(() => ffmpeg.stop());
  await waitFor(() => server.origin.consume().list().includes(BROADCAST) || (!ffmpeg.running && "exited"), {
    timeoutMs: 20_000,
    message: `ffmpeg publishing ${BROADCAST}`,
  }).then((value) => {
    if (value === "exited") throw new Error(`ffmpeg was refused:\n${ffmpeg.stderr}`);
  });
  return ffmpeg;
}

beforeAll(() => {
  requireTool("ffmpeg");
  requireTool("ffprobe");
  vi.spyOn(console, "debug").mockImplementation(() => {});
  vi.spyOn(console, "warn").mockImplementation(() => {});
  const error = console.error.bind(console);
  vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => {
    if (/^(fatal error running connection|subscribe error)/.test(String(args[0]))) return;
    error(...args);
  });
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  console.log(`[e2e auth matrix] observed\n${JSON.stringify(observed, null, 1)}`);
});

describe("JWT mode (--jwt-secret): scopes subscribe < publish < admin", () => {
  let server: TestServer;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    server = await TestServer.start({ dash: true, auth: { jwt: { secret: JWT_SECRET } } });
    cleanups.push(() => server.stop());
    for (const scope of ["subscribe", "publish", "admin"]) {
      tokens[`${scope}:right`] = await jwt({ scope });
      tokens[`${scope}:wrong`] = await jwt({ scope }, { secret: "not-the-server-secret-0123456789abcdef" });
      tokens[`${scope}:expired`] = await jwt({ scope }, { expiresIn: -60 });
    }
    await publishWithFfmpeg(server, `key=${tokens["publish:right"]}`);
  });

  const credential = (scope: string, column: Column) =>
    column === "none" ? undefined : tokens[`${scope}:${column}`];

  it("RTMP publish answers NetStream.Publish.Start only to a valid publish-scope JWT", async () => {
    for (const column of COLUMNS) {
      const key = credential("publish", column);
      const url = server.rtmpUrl("live", `rtmp-${column}`) + (key ? `?key=${key}` : "");
      const outcome = await rtmpOutcome(url);
      record("jwt", "rtmp", column, outcome);
      expect(outcome, column).toBe(EXPECTED.jwt.rtmp[column]);
      // Without ?key= the stream name itself is taken as the credential (OBS-style).
      const reasons = {
        none: /publishing needs a JWT with publish scope/,
        wrong: /JWT signature invalid/,
        expired: /JWT expired/,
      };
      if (column !== "right") await expectFfmpegRefused(url, reasons[column]);
    }
    // A subscribe-scope token is not enough to publish.
    expect(
      await rtmpOutcome(`${server.rtmpUrl("live", "rtmp-scope")}?key=${tokens["subscribe:right"]}`),
    ).toBe(PUBLISH_DENIED);
  });

  it("MoQ sessions are upgraded only with a valid JWT (?jwt=)", async () => {
    for (const column of COLUMNS) {
      const token = credential("subscribe", column);
      const status = await moqOutcome(server.moqUrl() + (token ? `?jwt=${token}` : ""));
      record("jwt", "moq", column, status);
      expect(status, column).toBe(EXPECTED.jwt.moq[column]);
    }
  });

  it("live HLS and DASH answer 200 only to a valid subscribe-scope JWT (query or bearer)", async () => {
    for (const protocol of ["hls", "dash"] as const) {
      const base = protocol === "hls" ? server.hlsUrl(BROADCAST) : server.dashUrl(BROADCAST);
      for (const column of COLUMNS) {
        const token = credential("subscribe", column);
        const status = await httpStatus(base + (token ? `?token=${token}` : ""));
        record("jwt", protocol, column, status);
        expect(status, `${protocol} ${column}`).toBe(EXPECTED.jwt[protocol][column]);
      }
      expect(await httpStatus(base, { authorization: `Bearer ${tokens["subscribe:right"]}` })).toBe(200);
      // A token bound to another broadcast is refused.
      const elsewhere = await jwt({ scope: "subscribe", broadcast: "live/other" });
      expect(await httpStatus(`${base}?token=${elsewhere}`)).toBe(401);
    }
  });

  // The relay closes a MoQ session within a second of its credential expiring.
  it("a MoQ session is closed when its JWT expires", async () => {
    const token = await jwt({ scope: "subscribe" }, { expiresIn: 3 });
    const viewer = await LiteViewer.connect(`${server.moqUrl()}?jwt=${token}`);
    cleanups.push(() => viewer.close());
    await viewer.waitAnnounced(BROADCAST);
    const expiresAtMs = (Math.floor(Date.now() / 1000) + 3) * 1000;
    const closed = await Promise.race([
      viewer.connection.closed.then(
        () => Date.now(),
        () => Date.now(),
      ),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 8000)),
    ]);
    expect(closed, "the session was still open 8 s after its token was issued").toBeDefined();
    expect(closed!).toBeGreaterThanOrEqual(expiresAtMs - 1000);
    expect(closed!).toBeLessThanOrEqual(expiresAtMs + 2000);
  }, 20_000);

  it("the admin API answers 200 only to a valid admin-scope JWT; /healthz and /metrics stay open", async () => {
    for (const column of COLUMNS) {
      const token = credential("admin", column);
      const status = await httpStatus(
        server.adminUrl("/api/v1/streams"),
        token ? { authorization: `Bearer ${token}` } : {},
      );
      record("jwt", "admin", column, status);
      expect(status, column).toBe(EXPECTED.jwt.admin[column]);
    }
    expect(
      await httpStatus(server.adminUrl("/api/v1/streams"), {
        authorization: `Bearer ${tokens["subscribe:right"]}`,
      }),
    ).toBe(401);
    expect(await httpStatus(server.adminUrl("/healthz"))).toBe(200);

    // Every refusal above was counted per entry point.
    const metrics = await (await fetch(server.adminUrl("/metrics"))).text();
    for (const entry of ["rtmp", "moq", "hls_live", "dash_live", "admin"]) {
      const line = new RegExp(`^lvqr_auth_failures_total\\{entry="${entry}"\\} (\\d+)`, "m").exec(metrics);
      expect(line, `lvqr_auth_failures_total{entry="${entry}"} in /metrics`).not.toBeNull();
      expect(Number(line![1])).toBeGreaterThanOrEqual(3);
    }
  });
});

describe("static tokens, stream keys and signed URLs", () => {
  let server: TestServer;
  let expiredKey: string;
  let liveKey: string;

  const signLive = (scheme: "hls" | "dash", broadcast: string, exp: number) =>
    `exp=${exp}&sig=${createHmac("sha256", Buffer.from(HMAC_SECRET, "utf8")).update(`${scheme}:${broadcast}?exp=${exp}`, "utf8").digest("base64url")}`;
  const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
  const admin = (route: string, init: RequestInit = {}) =>
    fetch(server.adminUrl(route), {
      ...init,
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        "content-type": "application/json",
        ...init.headers,
      },
    });

  beforeAll(async () => {
    server = await TestServer.start({
      dash: true,
      auth: { adminToken: ADMIN_TOKEN, publishKey: PUBLISH_KEY, subscribeToken: SUBSCRIBE_TOKEN },
      hmacPlaybackSecret: HMAC_SECRET,
    });
    cleanups.push(() => server.stop());
    const mint = async (body: object) => {
      const response = await admin("/api/v1/streamkeys", { method: "POST", body: JSON.stringify(body) });
      expect(response.status).toBe(201);
      return (await response.json()) as { id: string; token: string; expires_at: number | null };
    };
    const shortLived = await mint({ label: "short", ttl_seconds: 1 });
    liveKey = (await mint({ label: "cam2" })).token;
    expiredKey = shortLived.token;
    await publishWithFfmpeg(server, `key=${PUBLISH_KEY}`);
    // Expired keys disappear from the list.
    await waitFor(
      async () => {
        const list = (await (await admin("/api/v1/streamkeys")).json()) as { keys: Array<{ id: string }> };
        return !list.keys.some((key) => key.id === shortLived.id);
      },
      { timeoutMs: 10_000, intervalMs: 200, message: "the 1 s stream key to expire" },
    );
  });

  it("RTMP publish: the publish key or a live stream key is admitted; nothing, a wrong or an expired key is refused", async () => {
    const keys: Record<Column, string | undefined> = {
      none: undefined,
      wrong: "not-the-key",
      expired: expiredKey,
      right: PUBLISH_KEY,
    };
    for (const column of COLUMNS) {
      const url = server.rtmpUrl("live", `rtmp-${column}`) + (keys[column] ? `?key=${keys[column]}` : "");
      const outcome = await rtmpOutcome(url);
      record("static", "rtmp", column, outcome);
      expect(outcome, column).toBe(EXPECTED.static.rtmp[column]);
      const reasons = {
        none: /invalid publish key/,
        wrong: /invalid publish key/,
        expired: /unknown, revoked or expired stream key/,
      };
      if (column !== "right") await expectFfmpegRefused(url, reasons[column]);
    }
    expect(await rtmpOutcome(`${server.rtmpUrl("live", "keyed")}?key=${liveKey}`)).toBe(PUBLISH_OK);
  });

  it("MoQ sessions need the subscribe token (or a live stream key to publish)", async () => {
    const tokens: Record<Column, string | undefined> = {
      none: undefined,
      wrong: "not-the-token",
      expired: expiredKey,
      right: SUBSCRIBE_TOKEN,
    };
    for (const column of COLUMNS) {
      const status = await moqOutcome(server.moqUrl() + (tokens[column] ? `?token=${tokens[column]}` : ""));
      record("static", "moq", column, status);
      expect(status, column).toBe(EXPECTED.static.moq[column]);
    }
  });

  it("live HLS and DASH: 401 without or with a wrong token, 403 for an expired signed URL, 200 with the token", async () => {
    for (const protocol of ["hls", "dash"] as const) {
      const base = protocol === "hls" ? server.hlsUrl(BROADCAST) : server.dashUrl(BROADCAST);
      const queries: Record<Column, string> = {
        none: "",
        wrong: "?token=not-the-token",
        expired: `?${signLive(protocol, BROADCAST, Math.floor(Date.now() / 1000) - 10)}`,
        right: `?token=${SUBSCRIBE_TOKEN}`,
      };
      for (const column of COLUMNS) {
        const status = await httpStatus(base + queries[column]);
        record("static", protocol, column, status);
        expect(status, `${protocol} ${column}`).toBe(EXPECTED.static[protocol][column]);
      }
    }
  });

  it("the admin API needs the admin token", async () => {
    const tokens: Record<Column, string | undefined> = {
      none: undefined,
      wrong: "not-the-token",
      expired: undefined,
      right: ADMIN_TOKEN,
    };
    for (const column of COLUMNS) {
      if (EXPECTED.static.admin[column] === null) {
        record("static", "admin", column, null);
        continue;
      }
      const headers: Record<string, string> = tokens[column]
        ? { authorization: `Bearer ${tokens[column]}` }
        : {};
      const status = await httpStatus(server.adminUrl("/api/v1/stats"), headers);
      record("static", "admin", column, status);
      expect(status, column).toBe(EXPECTED.static.admin[column]);
    }
    // The subscribe token and the publish key are not admin credentials.
    expect(
      await httpStatus(server.adminUrl("/api/v1/stats"), { authorization: `Bearer ${SUBSCRIBE_TOKEN}` }),
    ).toBe(401);
    expect(
      await httpStatus(server.adminUrl("/api/v1/streamkeys"), { authorization: `Bearer ${PUBLISH_KEY}` }),
    ).toBe(401);
  });

  it("signed URLs: a signature covers one scheme and one broadcast until it expires", async () => {
    const exp = inAnHour();
    const hls = (file: string, query: string) => httpStatus(`${server.hlsUrl(BROADCAST, file)}?${query}`);
    const dash = (file: string, query: string) => httpStatus(`${server.dashUrl(BROADCAST, file)}?${query}`);
    const hlsSig = signLive("hls", BROADCAST, exp);
    const dashSig = signLive("dash", BROADCAST, exp);

    // One live signature opens every file of the broadcast on its scheme, without a token.
    expect(await hls("master.m3u8", hlsSig)).toBe(200);
    expect(await hls("playlist.m3u8", hlsSig)).toBe(200);
    expect(await hls("init.mp4", hlsSig)).toBe(200);
    expect(await dash("manifest.mpd", dashSig)).toBe(200);
    expect(await dash("init-video.m4s", dashSig)).toBe(200);

    // Tampered, replayed on the other scheme, for another broadcast, or expired: 403.
    const tampered = hlsSig.replace(/sig=(.)/, (_, c: string) => `sig=${c === "A" ? "B" : "A"}`);
    expect(await hls("master.m3u8", tampered)).toBe(403);
    expect(await dash("manifest.mpd", hlsSig)).toBe(403);
    expect(await hls("master.m3u8", signLive("hls", "live/other", exp))).toBe(403);
    expect(await hls("master.m3u8", signLive("hls", BROADCAST, Math.floor(Date.now() / 1000) - 1))).toBe(403);
    // Changing exp invalidates the signature.
    expect(await hls("master.m3u8", hlsSig.replace(`exp=${exp}`, `exp=${exp + 1}`))).toBe(403);
    // No signature and no token: the token gate answers 401.
    expect(await httpStatus(server.hlsUrl(BROADCAST))).toBe(401);

    // The signature is carried into every URI of the playlists and the MPD, so a client holding
    // only the signed URL reaches the media: ffprobe demuxes the HLS stream, and every URI the MPD
    // names (initialization and the newest segments) is served.
    const probe = await ffprobe(`${server.hlsUrl(BROADCAST)}?${hlsSig}`, { packets: 200 });
    expect(probe.streams.map((stream) => stream.codec_type).sort()).toEqual(["audio", "video"]);
    expect(probe.packets?.video?.count ?? 0).toBeGreaterThan(20);
    const manifestUrl = `${server.dashUrl(BROADCAST)}?${dashSig}`;
    const mpd = await (await fetch(manifestUrl)).text();
    const uris = [...mediaUris(mpd, manifestUrl), ...newestSegments(mpd, manifestUrl)];
    expect(uris.length).toBeGreaterThanOrEqual(4);
    for (const uri of uris) {
      expect(new URL(uri).searchParams.get("sig"), uri).not.toBeNull();
      expect(await httpStatus(uri), uri).toBe(200);
    }
  }, 60_000);
});

describe("stream keys persist across a restart", () => {
  it("a key minted before a restart still publishes after it; revoking it then refuses the next publish", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "lvqr-e2e-keys-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const options = { dataDir, auth: { adminToken: ADMIN_TOKEN, publishKey: PUBLISH_KEY } };
    const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };

    const first = await TestServer.start(options);
    const minted = (await (
      await fetch(first.adminUrl("/api/v1/streamkeys"), {
        method: "POST",
        headers: { ...bearer, "content-type": "application/json" },
        body: JSON.stringify({ label: "studio", broadcast: "live/studio" }),
      })
    ).json()) as { id: string; token: string };
    expect(minted.token).toMatch(/^lvqr_sk_/);
    expect(await rtmpOutcome(`${first.rtmpUrl("live", "studio")}?key=${minted.token}`)).toBe(PUBLISH_OK);
    await first.stop();

    const second = await TestServer.start(options);
    cleanups.push(() => second.stop());
    const list = (await (await fetch(second.adminUrl("/api/v1/streamkeys"), { headers: bearer })).json()) as {
      keys: Array<{ id: string; token: string; broadcast: string | null }>;
    };
    expect(list.keys).toEqual([
      expect.objectContaining({ id: minted.id, token: minted.token, broadcast: "live/studio" }),
    ]);

    // ffmpeg publishes with the key as its stream name (what OBS users paste): the broadcast comes
    // from the key's scope, never from the secret.
    const ffmpeg = FfmpegPublisher.start(second.rtmpUrl("live", minted.token));
    cleanups.push(() => ffmpeg.stop());
    await waitFor(
      () => second.origin.consume().list().includes("live/studio") || (!ffmpeg.running && "exited"),
      {
        timeoutMs: 20_000,
        message: "ffmpeg publishing live/studio with the persisted key",
      },
    ).then((value) => expect(value, ffmpeg.stderr).toBe(true));
    expect(
      second.origin
        .consume()
        .list()
        .some((name) => name.includes("lvqr_sk_")),
    ).toBe(false);
    await ffmpeg.stop();

    const revoke = await fetch(second.adminUrl(`/api/v1/streamkeys/${minted.id}`), {
      method: "DELETE",
      headers: bearer,
    });
    expect(revoke.status).toBe(204);
    expect(await rtmpOutcome(`${second.rtmpUrl("live", "studio")}?key=${minted.token}`)).toBe(PUBLISH_DENIED);
  }, 60_000);
});
