/**
 * Authorization outcomes on the relay: the HTTP status an authorizer picks (400/401/403, 401 by
 * default), credentials that expire while a session is open (closed with CONNECTION_CLOSE
 * Unauthorized within a second, on WebSocket and WebTransport), reconnecting with fresh ones, and
 * the development certificate (Chromium's serverCertificateHashes rules, renewal before expiry).
 */
import { X509Certificate } from "node:crypto";
import {
  checkServerCertificateHashRules,
  connectMoq,
  generateDevCertificate,
  MAX_DEV_CERTIFICATE_VALIDITY_MS,
  MoqAuthorizationError,
  WireErrorCode,
} from "@lvqr/moq-lite";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { sleep, startRelay, waitUntil } from "./helpers.ts";
import { RawPeer } from "./raw-peer.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function relay(options: Parameters<typeof startRelay>[0] = {}) {
  const started = await startRelay(options);
  cleanups.push(() => started.server.close());
  return started;
}

/** The status and body an upgrade request gets (101 on success). */
function upgrade(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, "ws"), ["qmux-00"]);
    ws.once("open", () => {
      ws.terminate();
      resolve({ status: 101, body: "" });
    });
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      ws.on("error", () => {});
    });
    ws.once("error", (err) => {
      if (!String(err.message).includes("Unexpected server response")) reject(err);
    });
  });
}

/** An authorizer keyed by token: "exp:<ms>" expires that many ms from now. */
function tokenAuthorizer({ token }: { token: string | undefined }) {
  if (token === "forbidden") throw new MoqAuthorizationError(403, "not allowed here");
  if (token === "garbled") throw new MoqAuthorizationError(400, "token is not base64url");
  if (token?.startsWith("exp:")) return { expiresAtMs: Date.now() + Number(token.slice(4)) };
  if (token === "ok") return undefined;
  throw new Error("no valid token");
}

describe("authorizer statuses", () => {
  it("answers 400, 401 and 403 before the WebSocket upgrade, 401 for any other error", async () => {
    const { url } = await relay({ authorize: tokenAuthorizer, webTransport: false });
    expect(await upgrade(url("a?token=forbidden"))).toEqual({ status: 403, body: "forbidden" });
    const garbled = await upgrade(url("a?token=garbled"));
    expect(garbled.status).toBe(400);
    expect(garbled.body).toContain("token is not base64url");
    expect((await upgrade(url("a"))).status).toBe(401);
    expect((await upgrade(url("a?token=exp:-5"))).status).toBe(401);
    expect((await upgrade(url("a?token=ok"))).status).toBe(101);
    expect(() => new MoqAuthorizationError(500 as never, "x")).toThrow(RangeError);
  });
});

describe("session expiry", () => {
  it("closes a WebSocket session with Unauthorized within a second after expiry; a fresh token reconnects", async () => {
    const { url, server } = await relay({ authorize: tokenAuthorizer });
    const peer = await RawPeer.connect(url("room?token=exp:800"));
    cleanups.push(() => peer.close());
    await peer.setup();
    const opened = Date.now();
    await peer.waitFor(() => peer.frames("connection_close").length > 0, "CONNECTION_CLOSE", 5000);
    const elapsed = Date.now() - opened;
    const close = peer.frames("connection_close")[0]!;
    expect(close.code).toBe(WireErrorCode.Unauthorized);
    expect(close.reason).toMatch(/authorization expired/);
    expect(elapsed).toBeGreaterThanOrEqual(700);
    expect(elapsed).toBeLessThan(800 + 1000);
    await waitUntil(() => server.stats().sessionsOpen === 0, 2000, "session gone");
    const fresh = await connectMoq(url("room?token=exp:60000"));
    cleanups.push(() => fresh.close());
    await sleep(50);
    expect(server.stats().sessionsOpen).toBe(1);
  });

  it("closes a WebTransport session the same way", async () => {
    const { url } = await relay({ authorize: tokenAuthorizer });
    const client = await connectMoq(url("room?token=exp:700"), { transport: "webtransport" });
    cleanups.push(() => client.close());
    const opened = Date.now();
    const info = await client.closed;
    expect(Date.now() - opened).toBeLessThan(700 + 1000);
    expect(info.code).toBe(WireErrorCode.Unauthorized);
    expect(info.reason).toMatch(/authorization expired/);
  });
});

describe("development certificate", () => {
  it("is ECDSA P-256, at most 14 days, with the loopback names and extra ones", () => {
    const dev = generateDevCertificate({ names: ["relay.test", "192.0.2.7"] });
    const cert = new X509Certificate(dev.certPem);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(Date.parse(cert.validTo) - Date.parse(cert.validFrom)).toBeLessThanOrEqual(
      MAX_DEV_CERTIFICATE_VALIDITY_MS,
    );
    for (const host of ["localhost", "relay.test"]) expect(cert.checkHost(host)).toBe(host);
    for (const ip of ["127.0.0.1", "::1", "192.0.2.7"]) expect(cert.checkIP(ip)).toBe(ip);
    expect(cert.checkHost("example.com")).toBeUndefined();
    expect(cert.fingerprint256.replaceAll(":", "").toLowerCase()).toBe(dev.sha256);
    expect(checkServerCertificateHashRules(dev.der)).toEqual([]);
    expect(() => generateDevCertificate({ validityMs: 15 * 86_400_000 })).toThrow(/14 days/);
    expect(() => generateDevCertificate({ names: ["bad name"] })).toThrow(RangeError);
  });

  it("reports what breaks the serverCertificateHashes rules", () => {
    const dev = generateDevCertificate({ validityMs: 3_600_000 });
    expect(checkServerCertificateHashRules(dev.certPem, dev.notAfter.getTime() + 1000)).toEqual([
      expect.stringMatching(/not valid now/),
    ]);
    expect(checkServerCertificateHashRules("not a certificate")[0]).toMatch(/not a parsable/);
  });

  it("is renewed before it expires, and /certificate.sha256 follows", async () => {
    const { server, url } = await relay({ devCertificate: { validityMs: 4000 } });
    const first = await (await fetch(url("certificate.sha256"))).text();
    await waitUntil(() => server.certificateSha256 !== first, 6000, "renewal");
    const second = await (await fetch(url("certificate.sha256"))).text();
    expect(second).toBe(server.certificateSha256);
    expect(second).not.toBe(first);
    // New TLS connections get the new certificate; WebTransport trusts it by its hash.
    const client = await connectMoq(url("x"), { transport: "webtransport" });
    cleanups.push(() => client.close());
    expect(client.transport).toBe("webtransport-h2");
  });
});
