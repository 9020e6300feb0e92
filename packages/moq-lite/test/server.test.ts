/**
 * The relay endpoint's HTTP side: authorization before the upgrade (401), path validation (400),
 * subprotocol negotiation, /certificate.sha256, plain requests, mounting on an existing server,
 * permissions, and shutdown.
 */
import http from "node:http";
import {
  type AuthorizeRequest,
  connectMoq,
  encodeAnnouncePlease,
  encodeSubscribe,
  isMoqError,
  MoqServer,
  OriginProducer,
  parseSessionRoot,
  serveMoq,
  Version,
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
  const r = await startRelay(options);
  cleanups.push(() => r.server.close());
  return r;
}

/** The HTTP status a WebSocket upgrade gets (101 on success). */
function upgradeStatus(url: string, protocols: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, "ws"), protocols);
    ws.once("open", () => {
      ws.terminate();
      resolve(101);
    });
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once("error", (err) => {
      if (!String(err.message).includes("Unexpected server response")) reject(err);
    });
  });
}

/** The status of an upgrade request for a raw (unnormalized) path. */
function rawUpgradeStatus(base: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(base);
    const req = http.request({
      hostname,
      port,
      path,
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-protocol": "qmux-00",
      },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("authorization", () => {
  it("passes path, token (?token= or ?jwt=), URL and remote address to authorize, and refuses with 401", async () => {
    const requests: AuthorizeRequest[] = [];
    const { url } = await relay({
      authorize: async (request) => {
        requests.push(request);
        if (request.token !== "good") throw new Error("bad token");
        return undefined;
      },
    });
    await expect(connectMoq(`${url("live/room")}?token=bad`)).rejects.toSatisfy((err) =>
      isMoqError(err, "MOQ_UNAUTHORIZED"),
    );
    const ok = await connectMoq(`${url("live/room")}?jwt=good`);
    ok.close();
    expect(requests.map((r) => [r.path, r.token, r.remoteAddress])).toEqual([
      ["live/room", "bad", "127.0.0.1"],
      ["live/room", "good", "127.0.0.1"],
    ]);
    expect(requests[1]!.url.searchParams.get("jwt")).toBe("good");
  });

  it("refuses invalid session paths with 400", async () => {
    const { url } = await relay();
    expect(await rawUpgradeStatus(url(), "/a/../b")).toBe(400);
    expect(await rawUpgradeStatus(url(), "/ok")).toBe(101);
    expect(await upgradeStatus(url("has%20space"), ["qmux-00"])).toBe(400);
    expect(await upgradeStatus(url(`${"x".repeat(256)}`), ["qmux-00"])).toBe(400);
    expect(await upgradeStatus(url("ok/path-1.2_3"), ["qmux-00"])).toBe(101);
    expect(parseSessionRoot("//a//b/")).toBe("a/b");
    expect(parseSessionRoot("/%zz")).toBeUndefined();
  });

  it("serves only readable broadcasts and imports only publishable ones", async () => {
    const { url, origin } = await relay({
      authorize: () => ({ read: ["public"], publish: ["live"] }),
    });
    origin.createBroadcast("room/public/a");
    origin.createBroadcast("room/secret/b");
    const peer = await RawPeer.connect(url("room"));
    cleanups.push(() => peer.close());
    await peer.setup();
    // The relay asks this peer only about what it may publish.
    await peer.waitFor(() => peer.streamData(1).data.byteLength > 0, "ANNOUNCE_PLEASE");
    expect(peer.streamData(1).data).toEqual(
      Uint8Array.of(0x01, ...encodeAnnouncePlease({ prefix: "live" }, Version.Lite02)),
    );
    // It is told only about what it may read.
    peer.stream(4, Uint8Array.of(0x01, ...encodeAnnouncePlease({ prefix: "" }, Version.Lite02)));
    await peer.waitFor(() => peer.streamData(4).data.byteLength > 0, "ANNOUNCE_INIT");
    expect(peer.streamData(4).data).toEqual(
      Uint8Array.of(0x0a, 0x01, 0x08, ...new TextEncoder().encode("public/a")),
    );
    // A SUBSCRIBE outside the read prefixes is reset with Unauthorized.
    peer.stream(
      8,
      Uint8Array.of(
        0x02,
        ...encodeSubscribe({ id: 0, broadcast: "secret/b", track: "t", priority: 0 }, Version.Lite02),
      ),
    );
    await peer.waitFor(() => peer.frames("reset_stream").some((f) => f.id === 8), "reset");
    expect(peer.frames("reset_stream").find((f) => f.id === 8)!.code).toBe(WireErrorCode.Unauthorized);

    const publisher = await connectMoq(url("room"));
    cleanups.push(() => publisher.close());
    publisher.createBroadcast("live/ok");
    publisher.createBroadcast("elsewhere");
    await origin.consume().waitForBroadcast("room/live/ok", { timeoutMs: 2000 });
    await sleep(100);
    expect(origin.consume().list("room")).toEqual(["room/live/ok", "room/public/a", "room/secret/b"]);
  });
});

describe("HTTP and subprotocols", () => {
  it("answers /certificate.sha256 as bare hex with CORS, 404 without one, and 426 to other requests", async () => {
    // Without WebTransport (and without tls) no certificate is generated: the configured value is served.
    const withCert = await relay({ certificateSha256: "AB:CD:ef:01", webTransport: false });
    const response = await fetch(withCert.url("certificate.sha256"));
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(await response.text()).toBe("abcdef01");
    const without = await relay({ webTransport: false });
    expect((await fetch(without.url("certificate.sha256"))).status).toBe(404);
    const plain = await fetch(without.url("anything"));
    expect(plain.status).toBe(426);
    await plain.text();
  });

  it("selects qmux-00 over webtransport, honours a configured preference, and refuses unknown subprotocols", async () => {
    const { url } = await relay();
    const both = await RawPeer.connect(url(), ["webtransport", "qmux-00"]);
    expect(both.ws.protocol).toBe("qmux-00");
    both.close();
    const legacyOnly = await relay({ framings: ["webtransport"] });
    const forced = await RawPeer.connect(legacyOnly.url(), ["qmux-00", "webtransport"]);
    expect(forced.ws.protocol).toBe("webtransport");
    forced.close();
    expect(await upgradeStatus(url(), ["qmux-02", "something"])).toBe(400);
  });

  it("mounts on an existing HTTP server with attach() and handleRequest()", async () => {
    const origin = new OriginProducer();
    const moq = new MoqServer({ origin, certificateSha256: "00ff" });
    const server = http.createServer((req, res) => {
      if (moq.handleRequest(req, res)) return;
      res.writeHead(200).end("app");
    });
    moq.attach(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    cleanups.push(() => moq.close());
    const base = `http://127.0.0.1:${moq.address!.port}`;
    expect(await (await fetch(`${base}/certificate.sha256`)).text()).toBe("00ff");
    expect(await (await fetch(`${base}/other`)).text()).toBe("app");
    const client = await connectMoq(`${base}/x`);
    client.createBroadcast("b");
    await origin.consume().waitForBroadcast("x/b", { timeoutMs: 2000 });
    client.close();
  });
});

describe("connection limit", () => {
  it("refuses upgrades beyond maxConnections with 503", async () => {
    const { url } = await relay({ maxConnections: 1 });
    const first = await RawPeer.connect(url());
    cleanups.push(() => first.close());
    await sleep(20);
    expect(await upgradeStatus(url(), ["qmux-00"])).toBe(503);
  });
});

describe("shutdown", () => {
  it("closes every session with CONNECTION_CLOSE and resolves once the sockets are closed", async () => {
    const origin = new OriginProducer();
    const server = await serveMoq({ port: 0, host: "127.0.0.1", origin });
    const url = `http://127.0.0.1:${server.address!.port}/`;
    const client = await connectMoq(url);
    const peer = await RawPeer.connect(url);
    await peer.setup();
    await waitUntil(() => server.stats().sessionsOpen === 2, 2000, "sessions");
    await server.close();
    expect(server.stats().sessionsOpen).toBe(0);
    await peer.waitFor(() => peer.closed, "peer closed");
    expect(peer.frames("connection_close")[0]!.reason).toBe("server shutting down");
    const info = await client.closed;
    expect(info.remote).toBe(true);
    await server.close();
  });
});
