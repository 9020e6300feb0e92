import { createHmac } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AuthError,
  LivePlaybackGate,
  LiveScheme,
  NoopAuth,
  StaticTokenAuth,
  signLiveUrl,
  signPlaybackUrl,
  verifyLiveSignature,
  verifyPlaybackSignature,
} from "../src/index.ts";

/** The signature computed independently: HMAC-SHA256, standard base64, then made URL-safe by hand. */
function handRolled(secret: string, input: string): string {
  const b64 = createHmac("sha256", secret).update(input).digest("base64");
  return b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const NOW = 1_700_000_000;

describe("signLiveUrl / signPlaybackUrl", () => {
  it("match golden values computed by an independent implementation", () => {
    // Computed with Python's hmac + base64.urlsafe_b64encode, padding stripped.
    expect(signLiveUrl("s3cret", LiveScheme.Hls, "live/demo", 1_700_000_000)).toBe(
      "exp=1700000000&sig=4AezztPPMTalJzdl8S73QKl5YxoBswQ6GN1lyn7jR_k",
    );
    expect(signLiveUrl("s3cret", "dash", "live/demo", 1_700_000_000)).toBe(
      "exp=1700000000&sig=d6YLyfdRgluvOhD7uSZCgfYMyzp4dgbS3iNQKugaqXM",
    );
    expect(signPlaybackUrl("s3cret", "/playback/live/demo", 1_700_000_000)).toBe(
      "exp=1700000000&sig=NA8ZIjAxdfRznEw11yRXOMYLlodn5aK8ItE05QlkMoc",
    );
    // The key is the UTF-8 bytes of the secret; exp goes up to u64::MAX.
    expect(signLiveUrl("ünïcode-sêcret", "hls", "live/cam_1.x", 18446744073709551615n)).toBe(
      "exp=18446744073709551615&sig=OkKh3cs7HHIppOkvu3QGZ_DHzFtShp0C5O6ow7_kAUc",
    );
  });

  it("equal a hand-rolled HMAC for any secret, broadcast, path and expiry", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.string(),
        fc.constantFrom<LiveScheme>("hls", "dash"),
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        (secret, name, scheme, exp) => {
          expect(signLiveUrl(secret, scheme, name, exp)).toBe(
            `exp=${exp}&sig=${handRolled(secret, `${scheme}:${name}?exp=${exp}`)}`,
          );
          expect(signPlaybackUrl(secret, name, exp)).toBe(
            `exp=${exp}&sig=${handRolled(secret, `${name}?exp=${exp}`)}`,
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it("never pad and use only URL-safe characters", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string(), (secret, name) => {
        const sig = signLiveUrl(secret, "hls", name, 1).split("&sig=")[1]!;
        expect(sig).toMatch(/^[A-Za-z0-9_-]{43}$/);
      }),
    );
  });

  it("refuse an empty secret, a bad scheme and impossible expiries", () => {
    expect(() => signLiveUrl("", "hls", "b", 1)).toThrow(AuthError);
    expect(() => signLiveUrl("s", "rtmp" as LiveScheme, "b", 1)).toThrow(/hls" or "dash/);
    expect(() => signLiveUrl("s", "hls", "b", -1)).toThrow(/Unix seconds/);
    expect(() => signLiveUrl("s", "hls", "b", 1.5)).toThrow(/Unix seconds/);
    expect(() => signPlaybackUrl("s", "/p", 2n ** 64n)).toThrow(/Unix seconds/);
  });
});

describe("verifyLiveSignature", () => {
  const secret = "s3cret";
  const signed = (exp: number, scheme: LiveScheme = "hls", name = "live/demo") =>
    signLiveUrl(secret, scheme, name, exp);

  it("accepts a valid signature until exp, and exp itself is already expired", () => {
    expect(verifyLiveSignature(secret, "hls", "live/demo", signed(NOW + 1), NOW)).toEqual({
      status: "valid",
      expUnix: BigInt(NOW + 1),
    });
    expect(verifyLiveSignature(secret, "hls", "live/demo", signed(NOW + 1), NOW + 0.999)).toMatchObject({
      status: "valid",
    });
    expect(verifyLiveSignature(secret, "hls", "live/demo", signed(NOW + 1), NOW + 1)).toEqual({
      status: "invalid",
      reason: "signed URL expired",
    });
  });

  it("checks expiry before the signature", () => {
    const tampered = signed(NOW - 10).replace(/sig=./, "sig=A");
    expect(verifyLiveSignature(secret, "hls", "live/demo", tampered, NOW)).toEqual({
      status: "invalid",
      reason: "signed URL expired",
    });
  });

  it("rejects another scheme, another broadcast, another secret and a changed exp", () => {
    const q = signed(NOW + 60);
    const invalid = { status: "invalid", reason: "signed URL signature invalid" };
    expect(verifyLiveSignature(secret, "dash", "live/demo", q, NOW)).toEqual(invalid);
    expect(verifyLiveSignature(secret, "hls", "live/other", q, NOW)).toEqual(invalid);
    expect(verifyLiveSignature(secret, "hls", "live/demo/sub", q, NOW)).toEqual(invalid);
    expect(verifyLiveSignature("other", "hls", "live/demo", q, NOW)).toEqual(invalid);
    expect(
      verifyLiveSignature(secret, "hls", "live/demo", q.replace(`exp=${NOW + 60}`, `exp=${NOW + 61}`), NOW),
    ).toEqual(invalid);
  });

  it("rejects every single-bit flip of the signature", () => {
    const q = signed(NOW + 60);
    const sig = Buffer.from(q.split("&sig=")[1]!, "base64url");
    for (let bit = 0; bit < sig.length * 8; bit++) {
      const flipped = Buffer.from(sig);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      const check = verifyLiveSignature(
        secret,
        "hls",
        "live/demo",
        `exp=${NOW + 60}&sig=${flipped.toString("base64url")}`,
        NOW,
      );
      expect(check).toEqual({ status: "invalid", reason: "signed URL signature invalid" });
    }
  });

  it("calls non-canonical base64url malformed, and a short signature invalid", () => {
    const sig = signed(NOW + 60).split("&sig=")[1]!;
    const at = (s: string) =>
      verifyLiveSignature(
        secret,
        "hls",
        "live/demo",
        new URLSearchParams({ exp: `${NOW + 60}`, sig: s }),
        NOW,
      );
    const malformed = { status: "invalid", reason: "signed URL malformed" };
    expect(at(`${sig}=`)).toEqual(malformed);
    expect(at(sig.replace(/^./, "+"))).toEqual(malformed);
    expect(at(`${sig.slice(0, 10)}.${sig.slice(11)}`)).toEqual(malformed);
    expect(at(`${sig}A`)).toEqual({ status: "invalid", reason: "signed URL signature invalid" }); // 33 bytes
    expect(at(`${sig.slice(0, 42)}l`)).toEqual(malformed); // non-zero trailing bits in the last char
    expect(at(sig.slice(0, 20))).toEqual({ status: "invalid", reason: "signed URL signature invalid" });
  });

  it("leaves the decision to the token gate when the signature is absent or unusable", () => {
    const absent = { status: "absent" };
    const q = signed(NOW + 60);
    expect(verifyLiveSignature(undefined, "hls", "live/demo", q, NOW)).toEqual(absent);
    expect(verifyLiveSignature("", "hls", "live/demo", q, NOW)).toEqual(absent);
    expect(verifyLiveSignature(secret, "hls", "live/demo", "", NOW)).toEqual(absent);
    expect(verifyLiveSignature(secret, "hls", "live/demo", `exp=${NOW + 60}`, NOW)).toEqual(absent);
    expect(verifyLiveSignature(secret, "hls", "live/demo", "sig=abc", NOW)).toEqual(absent);
    expect(verifyLiveSignature(secret, "hls", "live/demo", `exp=${NOW + 60}&sig=`, NOW)).toEqual(absent);
    expect(verifyLiveSignature(secret, "hls", "live/demo", "exp=soon&sig=abc", NOW)).toEqual(absent);
    expect(verifyLiveSignature(secret, "hls", "live/demo", "exp=-5&sig=abc", NOW)).toEqual(absent);
    expect(verifyLiveSignature(secret, "hls", "live/demo", "exp=18446744073709551616&sig=abc", NOW)).toEqual(
      absent,
    );
  });

  it("reads the canonical decimal of exp, as the reference's u64 parse does", () => {
    const q = signed(NOW + 60).replace("exp=", "exp=000");
    expect(verifyLiveSignature(secret, "hls", "live/demo", q, NOW)).toMatchObject({ status: "valid" });
  });

  it("ignores other query parameters", () => {
    const q = `token=x&${signed(NOW + 60)}&_HLS_msn=4&_HLS_part=1`;
    expect(verifyLiveSignature(secret, "hls", "live/demo", q, NOW)).toMatchObject({ status: "valid" });
  });

  it("never validates a random broadcast, exp and signature", () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.nat(),
        fc.oneof(
          fc.string(),
          fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("base64url")),
        ),
        (name, exp, sig) => {
          const check = verifyLiveSignature(
            secret,
            "hls",
            name,
            new URLSearchParams({ exp: `${NOW + 1 + exp}`, sig }),
            NOW,
          );
          expect(check.status).not.toBe("valid");
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("never validates a random path, exp and signature (playback)", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (path, exp, sig) => {
        expect(verifyPlaybackSignature(secret, path, new URLSearchParams({ exp, sig }), NOW).status).not.toBe(
          "valid",
        );
      }),
      { numRuns: 5000 },
    );
  });

  it("validates playback signatures for their path only", () => {
    const q = signPlaybackUrl(secret, "/playback/live/demo", NOW + 60);
    expect(verifyPlaybackSignature(secret, "/playback/live/demo", q, NOW)).toMatchObject({ status: "valid" });
    expect(verifyPlaybackSignature(secret, "/playback/latest/live/demo", q, NOW)).toEqual({
      status: "invalid",
      reason: "signed URL signature invalid",
    });
  });
});

describe("LivePlaybackGate", () => {
  const secret = "gate-secret";
  const auth = new StaticTokenAuth({ subscribeToken: "viewer" });
  const failures: string[] = [];
  const gate = new LivePlaybackGate({
    auth,
    signingSecret: secret,
    metrics: { authFailure: (entry) => failures.push(entry) },
    now: () => NOW * 1000,
  });
  const req = (url: string, headers: Record<string, string> = {}) => ({ url, headers });
  const playlist = "/hls/live/demo/playlist.m3u8";

  it("answers 401 without credentials and with a wrong token", async () => {
    failures.length = 0;
    expect(await gate.check(req(playlist), "hls", "live/demo")).toEqual({
      status: 401,
      reason: "invalid or missing subscribe token",
    });
    expect(await gate.check(req(`${playlist}?token=nope`), "hls", "live/demo")).toMatchObject({
      status: 401,
    });
    expect(
      await gate.check(req(playlist, { authorization: "Bearer nope" }), "dash", "live/demo"),
    ).toMatchObject({
      status: 401,
    });
    expect(failures).toEqual(["hls_live", "hls_live", "dash_live"]);
  });

  it("accepts the token as a bearer header or as the first non-empty ?token=", async () => {
    expect(await gate.check(req(playlist, { authorization: "Bearer viewer" }), "hls", "live/demo")).toEqual({
      status: 200,
      via: "token",
    });
    expect(await gate.check(req(`${playlist}?token=&token=viewer`), "hls", "live/demo")).toEqual({
      status: 200,
      via: "token",
    });
    // As on MoQ, ?jwt= carries a token too; ?token= wins over it.
    expect(await gate.check(req(`${playlist}?jwt=viewer`), "hls", "live/demo")).toEqual({
      status: 200,
      via: "token",
    });
    expect(await gate.check(req(`${playlist}?token=nope&jwt=viewer`), "hls", "live/demo")).toMatchObject({
      status: 401,
    });
    // The header wins over the query.
    expect(
      await gate.check(req(`${playlist}?token=viewer`, { authorization: "Bearer nope" }), "hls", "live/demo"),
    ).toMatchObject({ status: 401 });
  });

  it("lets a valid signed URL through without a token", async () => {
    const url = `${playlist}?${signLiveUrl(secret, "hls", "live/demo", NOW + 30)}`;
    expect(await gate.check(req(url), "hls", "live/demo")).toEqual({
      status: 200,
      via: "signed-url",
      expiresAtMs: (NOW + 30) * 1000,
    });
  });

  it("answers 403 for tampered, expired, other-scheme and other-broadcast signatures", async () => {
    failures.length = 0;
    const good = signLiveUrl(secret, "hls", "live/demo", NOW + 30);
    const tampered = good.replace(/sig=(.)/, (_m, c: string) => `sig=${c === "A" ? "B" : "A"}`);
    const cases: Array<[string, "hls" | "dash", string, string]> = [
      [tampered, "hls", "live/demo", "signed URL signature invalid"],
      [signLiveUrl(secret, "hls", "live/demo", NOW - 1), "hls", "live/demo", "signed URL expired"],
      [good, "dash", "live/demo", "signed URL signature invalid"],
      [good, "hls", "live/other", "signed URL signature invalid"],
      // A valid token does not rescue a bad signature.
      [`${tampered}&token=viewer`, "hls", "live/demo", "signed URL signature invalid"],
    ];
    for (const [query, scheme, broadcast, reason] of cases) {
      expect(await gate.check(req(`/x?${query}`), scheme, broadcast)).toEqual({ status: 403, reason });
    }
    expect(failures).toEqual([
      "hls_signed_url",
      "hls_signed_url",
      "dash_signed_url",
      "hls_signed_url",
      "hls_signed_url",
    ]);
  });

  it("falls through to the token gate when there is no signature", async () => {
    expect(await gate.check(req(`${playlist}?exp=${NOW + 30}`), "hls", "live/demo")).toMatchObject({
      status: 401,
    });
  });

  it("is open when disabled (--no-auth-live-playback) and with the noop provider", async () => {
    const off = new LivePlaybackGate({ auth, enabled: false });
    expect(await off.check(req(`${playlist}?exp=1&sig=bad`), "hls", "live/demo")).toEqual({
      status: 200,
      via: "open",
    });
    const noop = new LivePlaybackGate({ auth: new NoopAuth() });
    expect(await noop.check(req(playlist), "dash", "live/demo")).toEqual({ status: 200, via: "open" });
  });

  it("reads a hot-swapped secret on every request", async () => {
    let current: string | undefined = "one";
    const swapping = new LivePlaybackGate({ auth, signingSecret: () => current, now: () => NOW * 1000 });
    const q = `/x?${signLiveUrl("one", "hls", "b", NOW + 5)}`;
    expect(await swapping.check(req(q), "hls", "b")).toMatchObject({ status: 200 });
    current = "two";
    expect(await swapping.check(req(q), "hls", "b")).toMatchObject({ status: 403 });
    current = undefined;
    expect(await swapping.check(req(q), "hls", "b")).toMatchObject({ status: 401 });
  });
});
