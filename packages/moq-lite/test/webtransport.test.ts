/**
 * WebTransport over HTTP/2 against the relay, with the `@fails-components/webtransport` Node
 * client as the peer (through connectMoq's WebTransport transport): SETUP and lite-04 sessions,
 * subscribe and publish in both directions, uploads far beyond the library's 16 KiB initial
 * window (the stall this package works around), the development certificate flow, and the
 * HTTP statuses an authorizer chooses.
 */
import { execFile } from "node:child_process";
import type { X509Certificate } from "node:crypto";
import http2 from "node:http2";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  checkServerCertificateHashRules,
  connectMoq,
  decodeFrame,
  encodeClientSetup,
  encodeStreamFrame,
  encodeTransportParameters,
  MoqAuthorizationError,
  type MoqClient,
  MoqError,
  Version,
} from "@lvqr/moq-lite";
import { afterEach, describe, expect, it } from "vitest";
import { patternBytes, readAllGroups, startRelay, waitUntil } from "./helpers.ts";
import { CLIENT_DEFAULT_PARAMS } from "./raw-peer.ts";

const run = promisify(execFile);
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function relay(options: Parameters<typeof startRelay>[0] = {}) {
  const started = await startRelay(options);
  cleanups.push(() => started.server.close());
  return started;
}

function track(client: MoqClient): MoqClient {
  cleanups.push(() => client.close());
  return client;
}

/** The certificate the TLS side of `port` presents. */
function presentedCertificate(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port, rejectUnauthorized: false, ALPNProtocols: ["h2"] },
      () => {
        const raw = socket.getPeerX509Certificate();
        socket.destroy();
        if (raw) resolve(raw);
        else reject(new Error("no certificate"));
      },
    );
    socket.on("error", reject);
  });
}

describe("WebTransport over HTTP/2", () => {
  it("serves a development certificate that browsers accept by hash, on the same port as WebSocket", async () => {
    const { server, url } = await relay();
    expect(server.transports).toEqual(expect.arrayContaining(["ws", "wss", "webtransport-h2"]));
    expect(server.transports).not.toContain("webtransport-h3");
    expect(server.http3Unavailable).toMatch(/webtransport-transport-http3-quiche/);
    const served = await (await fetch(url("certificate.sha256"))).text();
    expect(served).toMatch(/^[0-9a-f]{64}$/);
    expect(served).toBe(server.certificateSha256);
    const cert = await presentedCertificate(server.address!.port);
    expect(cert.fingerprint256.replaceAll(":", "").toLowerCase()).toBe(served);
    expect(checkServerCertificateHashRules(cert.raw)).toEqual([]);
    expect(cert.checkHost("localhost")).toBe("localhost");
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(cert.checkIP("::1")).toBe("::1");
  });

  it("loads the WebTransport library at the first TLS connection, not at startup or for WebSocket", async () => {
    const script = fileURLToPath(new URL("./lazy-webtransport-relay.ts", import.meta.url));
    const { stdout } = await run(process.execPath, ["--conditions=@lvqr/source", script], {
      timeout: 60_000,
    });
    const steps = stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { step: string; imported: boolean; [key: string]: unknown });
    expect(steps).toEqual([
      { step: "listening", imported: false, transports: ["ws", "wss", "webtransport-h2"] },
      { step: "websocket session", imported: false },
      { step: "tls connection", imported: true, sha256Matches: true },
      { step: "webtransport session", imported: true, transport: "webtransport-h2" },
      { step: "closed", imported: true },
    ]);
  }, 70_000);

  it("refuses to start with an unusable TLS key or certificate, though its servers start later", async () => {
    await expect(relay({ tls: { key: "not a key", cert: "not a certificate" } })).rejects.toThrow();
    await expect(
      relay({ tls: { key: "not a key", cert: "not a certificate" }, webTransport: false }),
    ).rejects.toThrow();
  });

  for (const protocols of [["moql"], undefined]) {
    const name = protocols ? "SETUP (moql, lite-02)" : "WT-Protocol moq-lite-04";
    it(`a fails-components client completes ${name} and subscribes to a WebSocket publisher`, async () => {
      const { url } = await relay();
      const publisher = track(await connectMoq(url("room")));
      const broadcast = publisher.createBroadcast("cam");
      const video = broadcast.createTrack("video");
      const viewer = track(
        await connectMoq(url("room"), {
          transport: "webtransport",
          ...(protocols ? { webTransportProtocols: protocols } : {}),
        }),
      );
      expect(viewer.transport).toBe("webtransport-h2");
      expect(viewer.version).toBe(protocols ? Version.Lite02 : Version.Lite04);
      const remote = await viewer.waitForBroadcast("cam", { timeoutMs: 5000 });
      const consumer = remote.subscribeTrack("video");
      const sent: Array<[number, Uint8Array[]]> = [];
      const received = readAllGroups(consumer, 3);
      // Publish once the subscription reached the publisher, then three groups of mixed sizes.
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (let g = 0; g < 3; g++) {
        const group = video.appendGroup();
        const frames = [patternBytes(40_000, g), patternBytes(300, g + 10), patternBytes(70_000, g + 20)];
        for (const frame of frames) group.writeFrame(frame);
        group.close();
        sent.push([group.sequence, frames]);
      }
      expect(await received).toEqual(sent);
    });
  }

  it("publishes far more than 16 KiB upstream over HTTP/2 without stalling", {
    timeout: 20_000,
  }, async () => {
    const { url, origin } = await relay();
    const publisher = track(await connectMoq(url("up"), { transport: "webtransport" }));
    const broadcast = publisher.createBroadcast("big");
    const video = broadcast.createTrack("video");
    const relayed = await origin.consume().waitForBroadcast("up/big", { timeoutMs: 5000 });
    const consumer = relayed.subscribeTrack("video");
    const received = readAllGroups(consumer, 4);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const sent: Array<[number, Uint8Array[]]> = [];
    for (let g = 0; g < 4; g++) {
      const group = video.appendGroup();
      // 4 x 3 x 256 KiB = 3 MiB, two hundred times the library's initial session window.
      const frames = [0, 1, 2].map((i) => patternBytes(256 * 1024, g * 3 + i));
      for (const frame of frames) group.writeFrame(frame);
      group.close();
      sent.push([group.sequence, frames]);
    }
    expect(await received).toEqual(sent);
  });

  it("answers the authorizer's status to the extended CONNECT before the session exists", async () => {
    const { server, url } = await relay({
      authorize: ({ token }) => {
        if (token === "forbidden") throw new MoqAuthorizationError(403, "not for you");
        if (token === "bad") throw new MoqAuthorizationError(400, "malformed token");
        if (token !== "ok") throw new Error("no token");
        return undefined;
      },
    });
    // A raw HTTP/2 extended CONNECT shows the status (the library's client only reports a failed handshake).
    const session = http2.connect(`https://127.0.0.1:${server.address!.port}`, { rejectUnauthorized: false });
    cleanups.push(() => session.destroy());
    await new Promise<void>((resolve) => session.once("remoteSettings", () => resolve()));
    const connectStatus = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const stream = session.request({
          ":method": "CONNECT",
          ":protocol": "webtransport",
          ":scheme": "https",
          ":path": path,
          ":authority": "127.0.0.1",
          "wt-available-protocols": '"moq-lite-04"',
        });
        stream.on("response", (headers) => {
          resolve(Number(headers[":status"]));
          stream.close();
        });
        stream.on("error", reject);
      });
    expect(await connectStatus("/x?token=forbidden")).toBe(403);
    expect(await connectStatus("/x?token=bad")).toBe(400);
    expect(await connectStatus("/x")).toBe(401);
    expect(await connectStatus("/x/../y?token=ok")).toBe(400);
    const refused = await connectMoq(url("x?token=forbidden"), {
      transport: "webtransport",
      timeoutMs: 5000,
    }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(MoqError);
    const ok = track(await connectMoq(url("x?token=ok"), { transport: "webtransport" }));
    expect(ok.version).toBe(Version.Lite04);
    expect(server.stats().sessionsOpen).toBe(1);
  });
});

/** A masked (client-to-server) binary WebSocket frame. */
function maskedFrame(payload: Uint8Array): Uint8Array {
  const mask = Uint8Array.of(1, 2, 3, 4);
  const header =
    payload.byteLength < 126
      ? Uint8Array.of(0x82, 0x80 | payload.byteLength)
      : Uint8Array.of(0x82, 0x80 | 126, payload.byteLength >> 8, payload.byteLength & 0xff);
  const out = new Uint8Array(header.byteLength + 4 + payload.byteLength);
  out.set(header);
  out.set(mask, header.byteLength);
  payload.forEach((byte, i) => {
    out[header.byteLength + 4 + i] = byte ^ mask[i % 4]!;
  });
  return out;
}

/** Splits unmasked server WebSocket frames (binary, unfragmented) out of `buf`; returns the rest. */
function takeFrames(buf: Uint8Array, out: Uint8Array[]): Uint8Array {
  let offset = 0;
  for (;;) {
    if (buf.byteLength - offset < 2) break;
    let length = buf[offset + 1]! & 0x7f;
    let header = 2;
    if (length === 126) {
      if (buf.byteLength - offset < 4) break;
      length = (buf[offset + 2]! << 8) | buf[offset + 3]!;
      header = 4;
    }
    if (buf.byteLength - offset < header + length) break;
    out.push(buf.subarray(offset + header, offset + header + length));
    offset += header + length;
  }
  return buf.subarray(offset);
}

describe("WebSocket over HTTP/2 (RFC 8441) on the TLS port", () => {
  it("runs QMux over an extended CONNECT stream through SETUP", async () => {
    const { server } = await relay({
      authorize: ({ token }) => (token === "ok" ? undefined : Promise.reject(new Error("no"))),
    });
    const session = http2.connect(`https://127.0.0.1:${server.address!.port}`, { rejectUnauthorized: false });
    cleanups.push(() => session.destroy());
    const settings = await new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
    expect(settings.enableConnectProtocol).toBe(true);
    const open = (path: string) =>
      session.request({
        ":method": "CONNECT",
        ":protocol": "websocket",
        ":scheme": "https",
        ":path": path,
        ":authority": "127.0.0.1",
        "sec-websocket-version": "13",
        "sec-websocket-protocol": "qmux-00",
      });
    const refused = open("/ws?token=bad");
    const refusedStatus = await new Promise<number>((resolve) =>
      refused.once("response", (h) => resolve(Number(h[":status"]))),
    );
    expect(refusedStatus).toBe(401);

    const stream = open("/ws?token=ok");
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) =>
      stream.once("response", resolve),
    );
    expect(headers[":status"]).toBe(200);
    expect(headers["sec-websocket-protocol"]).toBe("qmux-00");
    const messages: Uint8Array[] = [];
    let pending: Uint8Array = new Uint8Array(0);
    stream.on("data", (data: Buffer) => {
      const joined = new Uint8Array(pending.byteLength + data.byteLength);
      joined.set(pending);
      joined.set(data, pending.byteLength);
      pending = takeFrames(joined, messages);
    });
    stream.write(maskedFrame(encodeTransportParameters(CLIENT_DEFAULT_PARAMS)));
    stream.write(
      maskedFrame(
        encodeStreamFrame(
          "qmux-00",
          0,
          encodeClientSetup({ versions: [Version.Lite02], parameters: new Map() }),
          false,
        ),
      ),
    );
    await waitUntil(
      () =>
        messages
          .map((m) => decodeFrame(m, "qmux-00"))
          .some((f) => f.type === "stream" && f.id === 0 && f.data.byteLength > 0),
      5000,
      "SERVER_SETUP",
    );
    const frames = messages.map((m) => decodeFrame(m, "qmux-00"));
    expect(frames[0]!.type).toBe("transport_parameters");
    const setup = frames.find((f) => f.type === "stream" && f.id === 0) as { data: Uint8Array };
    expect(setup.data[0]).toBe(0x21); // SERVER_SETUP
    await waitUntil(() => server.stats().sessionsOpen === 1, 2000, "session");
    stream.close();
  });
});
