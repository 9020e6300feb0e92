import { performance } from "node:perf_hooks";
import fc from "fast-check";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import {
  AuthError,
  authorizeMoqSession,
  constantTimeEqual,
  createAuthProvider,
  JwtAuth,
  moqSessionCredentials,
  NoopAuth,
  StaticTokenAuth,
  splitRtmpStreamName,
} from "../src/index.ts";

const SECRET = "a-jwt-secret-of-decent-length-0123456789";

async function jwt(
  claims: Record<string, unknown>,
  options: { secret?: string; expiresIn?: number | null; alg?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const builder = new SignJWT(claims).setProtectedHeader({ alg: options.alg ?? "HS256" }).setIssuedAt(now);
  if (options.expiresIn !== null) builder.setExpirationTime(now + (options.expiresIn ?? 300));
  return builder.sign(new TextEncoder().encode(options.secret ?? SECRET));
}

describe("constantTimeEqual", () => {
  it("is string equality", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        expect(constantTimeEqual(a, b)).toBe(a === b);
        expect(constantTimeEqual(a, a)).toBe(true);
      }),
    );
  });

  it("takes the same time whether inputs differ in the first or the last character", () => {
    // A short-circuiting compare of 1 MiB strings is ~1000x faster on a first-character difference.
    const secret = "s".repeat(1 << 20);
    const late = `${"s".repeat((1 << 20) - 1)}x`;
    const early = `x${"s".repeat((1 << 20) - 1)}`;
    const median = (candidate: string) => {
      const times: number[] = [];
      for (let i = 0; i < 31; i++) {
        const t0 = performance.now();
        constantTimeEqual(secret, candidate);
        times.push(performance.now() - t0);
      }
      return times.sort((a, b) => a - b)[15]!;
    };
    median(late); // warm up
    const ratio = median(late) / median(early);
    expect(ratio).toBeGreaterThan(0.33);
    expect(ratio).toBeLessThan(3);
  });
});

describe("splitRtmpStreamName", () => {
  it("keeps the query out of the name and finds the credential", () => {
    expect(splitRtmpStreamName("cam1")).toEqual({ stream: "cam1", key: undefined });
    expect(splitRtmpStreamName("cam1?key=abc")).toEqual({ stream: "cam1", key: "abc" });
    expect(splitRtmpStreamName("cam1?token=t&x=1")).toEqual({ stream: "cam1", key: "t" });
    expect(splitRtmpStreamName("cam1?key=&key=second")).toEqual({ stream: "cam1", key: "second" });
    expect(splitRtmpStreamName("cam1?key=a%2Bb")).toEqual({ stream: "cam1", key: "a+b" });
    expect(splitRtmpStreamName("cam1?")).toEqual({ stream: "cam1", key: undefined });
  });
});

describe("NoopAuth", () => {
  it("allows everything and names RTMP broadcasts <app>/<stream>", async () => {
    const auth = new NoopAuth();
    expect(auth.mode).toBe("noop");
    expect(await auth.checkPublish({ app: "live", stream: "cam" })).toMatchObject({
      allow: true,
      broadcast: "live/cam",
    });
    expect(await auth.checkSubscribe({ broadcast: "x" })).toMatchObject({ allow: true });
    expect(await auth.checkAdmin({})).toMatchObject({ allow: true });
    expect(await auth.sessionGrants({ root: "" })).toMatchObject({ allow: true, read: [""], publish: [""] });
  });

  it("still refuses names that are not valid broadcast names", async () => {
    const decision = await new NoopAuth().checkPublish({ app: "live", stream: "../etc" });
    expect(decision).toEqual({ allow: false, reason: '"live/../etc" is not a valid broadcast name' });
  });
});

describe("StaticTokenAuth", () => {
  const auth = new StaticTokenAuth({ adminToken: "adm", publishKey: "pub-key-1", subscribeToken: "sub" });

  it("leaves each gate open while its token is unset", async () => {
    const open = new StaticTokenAuth({});
    expect(await open.checkAdmin({})).toMatchObject({ allow: true });
    expect(await open.checkSubscribe({ broadcast: "b" })).toMatchObject({ allow: true });
    expect(await open.checkPublish({ app: "live", stream: "x" })).toMatchObject({
      allow: true,
      broadcast: "live/x",
    });
    const adminOnly = new StaticTokenAuth({ adminToken: "adm" });
    expect(await adminOnly.checkSubscribe({ broadcast: "b" })).toMatchObject({ allow: true });
    expect(await adminOnly.checkAdmin({})).toEqual({ allow: false, reason: "invalid admin token" });
  });

  it("answers the reference's deny reasons", async () => {
    expect(await auth.checkAdmin({ token: "nope" })).toEqual({ allow: false, reason: "invalid admin token" });
    expect(await auth.checkAdmin({ token: "" })).toEqual({ allow: false, reason: "invalid admin token" });
    expect(await auth.checkSubscribe({ broadcast: "b" })).toEqual({
      allow: false,
      reason: "invalid or missing subscribe token",
    });
    expect(await auth.checkPublish({ app: "live", stream: "wrong" })).toEqual({
      allow: false,
      reason: "invalid publish key",
    });
  });

  it("accepts the right tokens; the publish key never becomes the broadcast name", async () => {
    expect(await auth.checkAdmin({ token: "adm" })).toMatchObject({ allow: true, subject: "static" });
    expect(await auth.checkSubscribe({ token: "sub", broadcast: "b" })).toMatchObject({ allow: true });
    // Key as the stream name: the broadcast is <app>.
    expect(await auth.checkPublish({ app: "live", stream: "pub-key-1" })).toMatchObject({
      allow: true,
      broadcast: "live",
    });
    // Key in the query: the broadcast is <app>/<stream>.
    const split = splitRtmpStreamName("cam7?key=pub-key-1");
    expect(await auth.checkPublish({ app: "live", ...split })).toMatchObject({
      allow: true,
      broadcast: "live/cam7",
    });
    expect(await auth.checkPublish({ app: "live", ...splitRtmpStreamName("cam7?key=nope") })).toMatchObject({
      allow: false,
    });
  });

  it("does not let one gate's token open another", async () => {
    expect(await auth.checkAdmin({ token: "sub" })).toMatchObject({ allow: false });
    expect(await auth.checkSubscribe({ token: "adm", broadcast: "b" })).toMatchObject({ allow: false });
    expect(await auth.checkPublish({ app: "live", stream: "adm" })).toMatchObject({ allow: false });
  });

  it("grants MoQ sessions read with the subscribe token and publish with the publish key", async () => {
    expect(await authorizeMoqSession(auth, { path: "live", token: "sub" })).toMatchObject({
      allow: true,
      root: "live",
      read: [""],
      publish: [],
    });
    expect(await authorizeMoqSession(auth, { path: "live", token: "pub-key-1" })).toMatchObject({
      read: [],
      publish: [""],
    });
    expect(await authorizeMoqSession(auth, { path: "live" })).toEqual({
      allow: false,
      status: 401,
      reason: "invalid or missing token",
    });
    const readOpen = new StaticTokenAuth({ publishKey: "pub-key-1" });
    expect(await authorizeMoqSession(readOpen, { path: "" })).toMatchObject({
      allow: true,
      read: [""],
      publish: [],
    });
  });

  it("refuses absurdly long tokens without comparing them", async () => {
    expect(await auth.checkAdmin({ token: "a".repeat(100_000) })).toMatchObject({ allow: false });
    expect(() => new StaticTokenAuth({ adminToken: "a".repeat(9000) })).toThrow(AuthError);
  });
});

describe("JwtAuth", () => {
  const auth = new JwtAuth({ secret: SECRET });

  it("accepts an admin-scope token for admin, and the hierarchy below it", async () => {
    const admin = await jwt({ sub: "ops", scope: "admin" });
    expect(await auth.checkAdmin({ token: admin })).toMatchObject({ allow: true, subject: "ops" });
    expect(await auth.checkSubscribe({ token: admin, broadcast: "live/a" })).toMatchObject({ allow: true });
    expect(await auth.checkPublish({ app: "live", stream: "a", key: admin })).toMatchObject({
      allow: true,
      broadcast: "live/a",
    });
  });

  it("denies insufficient scope, wrong secret, expiry, missing exp and other algorithms", async () => {
    const cases: Array<[string, string]> = [
      [await jwt({ scope: "publish" }), 'JWT scope "publish" does not allow admin'],
      [await jwt({ scope: "subscribe" }), 'JWT scope "subscribe" does not allow admin'],
      [
        await jwt({ scope: "admin" }, { secret: "another-secret-entirely-0123456789" }),
        "JWT signature invalid",
      ],
      [await jwt({ scope: "admin" }, { expiresIn: -10 }), "JWT expired"],
      [await jwt({ scope: "admin" }, { expiresIn: null }), "JWT has no valid exp claim"],
      [await jwt({ scope: "admin" }, { alg: "HS512" }), "JWT algorithm not allowed (only HS256)"],
      [await jwt({ scope: "root" }), "JWT has no subscribe, publish or admin scope"],
      [await jwt({}), "JWT has no subscribe, publish or admin scope"],
      ["not.a.jwt", "JWT malformed"],
      ["", "admin token missing"],
    ];
    for (const [token, reason] of cases) {
      expect(await auth.checkAdmin({ token }), reason).toEqual({ allow: false, reason });
    }
    // alg "none" is never accepted.
    const header = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url");
    const body = Buffer.from(JSON.stringify({ scope: "admin", exp: 9_999_999_999 })).toString("base64url");
    expect(await auth.checkAdmin({ token: `${header}.${body}.` })).toMatchObject({ allow: false });
  });

  it("checks iss and aud when configured", async () => {
    const strict = new JwtAuth({ secret: SECRET, issuer: "https://idp.example", audience: "lvqr" });
    const good = await jwt({ scope: "subscribe", iss: "https://idp.example", aud: ["other", "lvqr"] });
    expect(await strict.checkSubscribe({ token: good, broadcast: "b" })).toMatchObject({ allow: true });
    const wrongIss = await jwt({ scope: "subscribe", iss: "https://evil.example", aud: "lvqr" });
    expect(await strict.checkSubscribe({ token: wrongIss, broadcast: "b" })).toEqual({
      allow: false,
      reason: "JWT issuer mismatch",
    });
    const wrongAud = await jwt({ scope: "subscribe", iss: "https://idp.example", aud: "someone-else" });
    expect(await strict.checkSubscribe({ token: wrongAud, broadcast: "b" })).toEqual({
      allow: false,
      reason: "JWT audience mismatch",
    });
    const none = await jwt({ scope: "subscribe" });
    expect(await strict.checkSubscribe({ token: none, broadcast: "b" })).toMatchObject({ allow: false });
  });

  it("subscribe needs a token and honours the broadcast claim", async () => {
    expect(await auth.checkSubscribe({ broadcast: "live/a" })).toEqual({
      allow: false,
      reason: "subscribe token missing",
    });
    const bound = await jwt({ scope: "subscribe", broadcast: "live/a" });
    expect(await auth.checkSubscribe({ token: bound, broadcast: "live/a" })).toMatchObject({ allow: true });
    expect(await auth.checkSubscribe({ token: bound, broadcast: "live/b" })).toEqual({
      allow: false,
      reason: 'JWT is bound to broadcast "live/a", not "live/b"',
    });
    const viewer = await jwt({ scope: "subscribe" });
    expect(await auth.checkPublish({ app: "live", stream: "a", key: viewer })).toEqual({
      allow: false,
      reason: 'JWT scope "subscribe" does not allow publish',
    });
  });

  it("enforces the broadcast claim on RTMP, where the reference could not", async () => {
    const token = await jwt({ scope: "publish", broadcast: "live/cam1" });
    // rtmp://host/live/cam1?key=<jwt>
    expect(
      await auth.checkPublish({ app: "live", ...splitRtmpStreamName(`cam1?key=${token}`) }),
    ).toMatchObject({
      allow: true,
      broadcast: "live/cam1",
    });
    // rtmp://host/live/cam2?key=<jwt bound to cam1>
    expect(await auth.checkPublish({ app: "live", ...splitRtmpStreamName(`cam2?key=${token}`) })).toEqual({
      allow: false,
      reason: 'JWT is bound to broadcast "live/cam1", not "live/cam2"',
    });
  });

  it("names the broadcast from the claims when the JWT is the RTMP stream name", async () => {
    const bound = await jwt({ scope: "publish", broadcast: "studio/main", sub: "alice" });
    expect(await auth.checkPublish({ app: "live", stream: bound })).toMatchObject({
      allow: true,
      broadcast: "studio/main",
    });
    const bySubject = await jwt({ scope: "publish", sub: "alice" });
    expect(await auth.checkPublish({ app: "live", stream: bySubject })).toMatchObject({
      allow: true,
      broadcast: "live/alice",
    });
    const unsafeSubject = await jwt({ scope: "publish", sub: "alice@example.com/../x" });
    expect(await auth.checkPublish({ app: "live", stream: unsafeSubject })).toMatchObject({ allow: false });
    expect(await auth.checkPublish({ app: "live", stream: "garbage" })).toMatchObject({ allow: false });
  });

  it("maps scopes and broadcast claims to MoQ read/publish prefixes under the session root", async () => {
    const viewer = await jwt({ scope: "subscribe" });
    expect(await authorizeMoqSession(auth, { path: "live", token: viewer })).toMatchObject({
      allow: true,
      read: [""],
      publish: [],
    });
    const publisher = await jwt({ scope: "subscribe publish", broadcast: "live/cam1" });
    const decision = await authorizeMoqSession(auth, { path: "live", token: publisher });
    expect(decision).toMatchObject({ allow: true, root: "live", read: ["cam1"], publish: ["cam1"] });
    expect(decision.allow && decision.expiresAtMs! > Date.now()).toBe(true);
    expect(await authorizeMoqSession(auth, { path: "", token: publisher })).toMatchObject({
      read: ["live/cam1"],
      publish: ["live/cam1"],
    });
    expect(await authorizeMoqSession(auth, { path: "live/cam1/hd", token: publisher })).toMatchObject({
      read: [""],
      publish: [""],
    });
    expect(await authorizeMoqSession(auth, { path: "other", token: publisher })).toMatchObject({
      allow: false,
      status: 403,
    });
    expect(await authorizeMoqSession(auth, { path: "live" })).toEqual({
      allow: false,
      status: 401,
      reason: "token missing",
    });
  });

  it("refuses an empty secret", () => {
    expect(() => new JwtAuth({ secret: "" })).toThrow(/JWT secret is empty/);
  });
});

describe("MoQ session requests", () => {
  it("reads the root and ?token= or ?jwt= from the session URL", () => {
    expect(moqSessionCredentials("/live/demo?token=abc")).toEqual({ path: "live/demo", token: "abc" });
    expect(moqSessionCredentials("/live?jwt=xyz")).toEqual({ path: "live", token: "xyz" });
    expect(moqSessionCredentials("https://relay.example:4443/?token=&jwt=j")).toEqual({
      path: "",
      token: "j",
    });
    expect(moqSessionCredentials(new URL("http://h/anon"))).toEqual({ path: "anon", token: undefined });
  });

  it("answers 400 for an invalid session path before asking the provider", async () => {
    for (const path of ["../x", "a//b", "a b", "x".repeat(256), "live/./x"]) {
      expect(await authorizeMoqSession(new NoopAuth(), { path })).toMatchObject({
        allow: false,
        status: 400,
      });
    }
  });
});

describe("createAuthProvider", () => {
  it("picks jwt, then static, then noop, and reports the mode", () => {
    expect(createAuthProvider({}).mode).toBe("noop");
    expect(createAuthProvider({ adminToken: "" }).mode).toBe("noop");
    expect(createAuthProvider({ subscribeToken: "s" }).mode).toBe("static");
    expect(createAuthProvider({ jwtSecret: SECRET, jwtIssuer: "i" }).mode).toBe("jwt");
    expect(createAuthProvider({ jwtSecret: SECRET }, { lookup: () => undefined }).mode).toBe("jwt");
  });

  it("refuses JWT mixed with static tokens, and JWT claims without a secret", () => {
    expect(() => createAuthProvider({ jwtSecret: SECRET, adminToken: "a", publishKey: "p" })).toThrow(
      "--jwt-secret cannot be combined with --admin-token, --publish-key",
    );
    expect(() => createAuthProvider({ jwtAudience: "x" })).toThrow(/need --jwt-secret/);
  });
});
