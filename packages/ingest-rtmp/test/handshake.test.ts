import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { HandshakeEntropy } from "../src/handshake.ts";
import { ClientHandshake, isRtmpError, RtmpServer, ServerHandshake } from "../src/index.ts";
import { toHex } from "./helpers/hex.ts";

// Deterministic entropy so the bytes are reproducible.
const entropy: HandshakeEntropy = {
  random: (n) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + 5) & 0xff),
  now: () => 0x01020304,
};

// An independent implementation of the digest layout, written from the description of the
// scheme rather than shared with the code under test.
const SUFFIX = Buffer.from("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae", "hex");
const FP = Buffer.concat([Buffer.from("Genuine Adobe Flash Player 001"), SUFFIX]);
const FMS = Buffer.concat([Buffer.from("Genuine Adobe Flash Media Server 001"), SUFFIX]);
function offset(packet: Uint8Array, scheme: 0 | 1): number {
  const base = scheme === 0 ? 8 : 772;
  return ((packet[base]! + packet[base + 1]! + packet[base + 2]! + packet[base + 3]!) % 728) + base + 4;
}
function digestAt(packet: Uint8Array, at: number, key: Uint8Array): Buffer {
  return createHmac("sha256", key)
    .update(packet.subarray(0, at))
    .update(packet.subarray(at + 32))
    .digest();
}
function makeDigestC1(scheme: 0 | 1): Uint8Array {
  const c1 = new Uint8Array(1536);
  for (let i = 8; i < 1536; i++) c1[i] = (i * 31 + 7) & 0xff;
  c1.set([9, 0, 124, 2], 4);
  const at = offset(c1, scheme);
  c1.set(digestAt(c1, at, FP.subarray(0, 30)), at);
  return c1;
}

describe("server handshake", () => {
  it("plain: S1 carries time, zero version and random bytes; S2 echoes C1", () => {
    const c1 = Uint8Array.from({ length: 1536 }, (_, i) => (i < 8 ? 0 : i & 0xff));
    const hs = new ServerHandshake(entropy);
    const step = hs.push(Uint8Array.of(3, ...c1));
    const reply = step.reply!;
    expect(reply.byteLength).toBe(3073);
    expect(reply[0]).toBe(3);
    expect(toHex(reply.subarray(1, 9))).toBe("0102030400000000");
    expect(toHex(reply.subarray(9, 1537))).toBe(toHex(entropy.random(1528)));
    expect(toHex(reply.subarray(1537))).toBe(toHex(c1));
    expect(hs.mode).toBe("plain");
    expect(step.done).toBe(false);
    const end = hs.push(Uint8Array.of(...new Uint8Array(1536), 0x02, 0x00));
    expect(end.done).toBe(true);
    expect(toHex(end.rest!)).toBe("0200");
  });

  for (const scheme of [0, 1] as const) {
    it(`digest (scheme ${scheme}): S1 is signed with the FMS key, S2 with a key derived from C1's digest`, () => {
      const c1 = makeDigestC1(scheme);
      const hs = new ServerHandshake(entropy);
      // Feed it in uneven pieces.
      const input = Uint8Array.of(3, ...c1);
      let reply: Uint8Array | undefined;
      for (let i = 0; i < input.byteLength; i += 500) reply ??= hs.push(input.subarray(i, i + 500)).reply;
      expect(hs.mode).toBe("digest");
      expect(hs.clientVersion).toBe("9.0.124.2");
      const s1 = reply!.subarray(1, 1537);
      const s2 = reply!.subarray(1537);
      expect(toHex(s1.subarray(0, 4))).toBe("01020304");
      expect(s1[4]).not.toBe(0);
      const at = offset(s1, scheme);
      expect(toHex(s1.subarray(at, at + 32))).toBe(toHex(digestAt(s1, at, FMS.subarray(0, 36))));
      const c1Digest = c1.subarray(offset(c1, scheme), offset(c1, scheme) + 32);
      const key = createHmac("sha256", FMS).update(c1Digest).digest();
      expect(toHex(s2.subarray(1504))).toBe(
        toHex(createHmac("sha256", key).update(s2.subarray(0, 1504)).digest()),
      );
    });
  }

  it("falls back to plain when C1 has a version but no valid digest", () => {
    const c1 = makeDigestC1(0);
    c1[100] = c1[100]! ^ 0xff;
    c1[900] = c1[900]! ^ 0xff;
    const hs = new ServerHandshake(entropy);
    const reply = hs.push(Uint8Array.of(3, ...c1)).reply!;
    expect(hs.mode).toBe("plain");
    expect(toHex(reply.subarray(1537))).toBe(toHex(c1));
  });

  it("refuses a bad version byte at once, with a hint", () => {
    const message = (byte: number): string => {
      try {
        new ServerHandshake().push(Uint8Array.of(byte));
      } catch (err) {
        if (isRtmpError(err, "RTMP_HANDSHAKE_INVALID")) return err.message;
      }
      return "accepted";
    };
    expect(message(6)).toMatch(/RTMPE/);
    expect(message(0x47)).toMatch(/HTTP/);
    expect(message(0x16)).toMatch(/TLS/);
    expect(message(0)).toMatch(/version byte 0/);
  });
});

describe("client handshake against the server handshake", () => {
  for (const mode of ["plain", "digest"] as const) {
    it(`${mode}: completes and (digest) verifies S1 and S2`, () => {
      const client = new ClientHandshake(mode);
      const server = new ServerHandshake();
      const s = server.push(client.start());
      const c = client.push(s.reply!);
      expect(c.done).toBe(true);
      const end = server.push(c.reply!);
      expect(end.done).toBe(true);
      expect(server.mode).toBe(mode);
      expect(client.result).toEqual(
        mode === "digest"
          ? { serverDigestValid: true, serverSignatureValid: true }
          : { serverDigestValid: false, serverSignatureValid: false },
      );
      if (mode === "digest") {
        // C2 must be signed with a key derived from S1's digest.
        const s1 = s.reply!.subarray(1, 1537);
        const at = offset(s1, 0);
        const key = createHmac("sha256", FP)
          .update(s1.subarray(at, at + 32))
          .digest();
        expect(toHex(c.reply!.subarray(1504))).toBe(
          toHex(createHmac("sha256", key).update(c.reply!.subarray(0, 1504)).digest()),
        );
      }
    });
  }
});

describe("digest handshake against a real peer", () => {
  it("ffmpeg as a player (which verifies S1 and S2) accepts the server's handshake", async () => {
    const events: string[] = [];
    const server = new RtmpServer({
      logger: {
        debug: (fields, msg) => events.push(`${msg} ${JSON.stringify(fields)}`),
        info: () => {},
        warn: () => {},
        error: () => {},
      },
    });
    const { port } = await server.listen(0, "127.0.0.1");
    try {
      const stderr = await new Promise<string>((resolve, reject) => {
        const ff = spawn("ffmpeg", [
          "-hide_banner",
          "-loglevel",
          "debug",
          "-rw_timeout",
          "5000000",
          "-i",
          `rtmp://127.0.0.1:${port}/live/probe`,
          "-f",
          "null",
          "-",
        ]);
        let err = "";
        ff.stderr.on("data", (d) => {
          err += d;
        });
        ff.on("error", reject);
        ff.on("exit", () => resolve(err));
      });
      expect(stderr).not.toMatch(/validating failed|Signature mismatch|Handshaking failed/);
      expect(
        events.some((e) => e.startsWith("RTMP handshake complete") && e.includes('"mode":"digest"')),
      ).toBe(true);
      // After the handshake ffmpeg sent connect, and the server answered play with an error.
      expect(events.some((e) => e.startsWith("RTMP connect"))).toBe(true);
      expect(stderr).toMatch(/NetStream\.Play\.Failed|accepts publishing only/);
    } finally {
      await server.close();
    }
  }, 20_000);
});
