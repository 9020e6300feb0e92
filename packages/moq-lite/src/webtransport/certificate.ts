/**
 * Self-signed development certificates for WebTransport: ECDSA P-256, at most 14 days of
 * validity, with subject alternative names for the loopback names — exactly what browsers accept
 * through `serverCertificateHashes` (and what `/certificate.sha256` advertises). The X.509 DER
 * is built here with `node:crypto` keys and signatures; nothing is written to disk.
 *
 * ```ts
 * const dev = generateDevCertificate({ names: ["relay.local"] });
 * https.createServer({ key: dev.keyPem, cert: dev.certPem });
 * console.log(dev.sha256); // what http://host:port/certificate.sha256 serves
 * ```
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { MoqError } from "../error.ts";

/** The longest validity that `serverCertificateHashes` accepts (Chromium and the W3C spec). */
export const MAX_DEV_CERTIFICATE_VALIDITY_MS: number = 14 * 24 * 60 * 60 * 1000;

/** Names every development certificate covers. */
export const DEFAULT_DEV_CERTIFICATE_NAMES: readonly string[] = ["localhost", "127.0.0.1", "::1"];

/** Options of {@link generateDevCertificate}. */
export interface DevCertificateOptions {
  /** Extra DNS names or IP addresses (added to localhost, 127.0.0.1 and ::1). */
  readonly names?: readonly string[];
  /** Validity from `notBefore`; default 10 days, at most 14 days. */
  readonly validityMs?: number;
  /** Issue time (Unix ms); default now. `notBefore` is up to a minute earlier to absorb clock skew. */
  readonly nowMs?: number;
}

/** A generated certificate and its key. */
export interface DevCertificate {
  /** PKCS#8 private key, PEM. */
  readonly keyPem: string;
  /** The certificate, PEM. */
  readonly certPem: string;
  /** The certificate, DER. */
  readonly der: Uint8Array;
  /** Lowercase hex SHA-256 of the DER certificate (what `serverCertificateHashes` compares). */
  readonly sha256: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The DNS names and IP addresses in its subject alternative name. */
  readonly names: readonly string[];
}

// ---- a minimal DER writer (only the shapes a certificate needs) ----

function derLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

function tlv(tag: number, ...contents: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const part of contents) size += part.byteLength;
  const length = derLength(size);
  const out = new Uint8Array(1 + length.byteLength + size);
  out[0] = tag;
  out.set(length, 1);
  let offset = 1 + length.byteLength;
  for (const part of contents) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

const sequence = (...contents: Uint8Array[]): Uint8Array => tlv(0x30, ...contents);
const set = (...contents: Uint8Array[]): Uint8Array => tlv(0x31, ...contents);
const octetString = (contents: Uint8Array): Uint8Array => tlv(0x04, contents);
const utf8String = (text: string): Uint8Array => tlv(0x0c, new TextEncoder().encode(text));
const explicit = (tagNumber: number, contents: Uint8Array): Uint8Array => tlv(0xa0 | tagNumber, contents);

function oid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map(Number);
  const bytes: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const base128: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) base128.unshift(0x80 | (n & 0x7f));
    bytes.push(...base128);
  }
  return tlv(0x06, Uint8Array.from(bytes));
}

function positiveInteger(bytes: Uint8Array): Uint8Array {
  return tlv(0x02, bytes[0]! & 0x80 ? Uint8Array.of(0, ...bytes) : bytes);
}

function time(date: Date): Uint8Array {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "");
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  return date.getUTCFullYear() < 2050
    ? tlv(0x17, new TextEncoder().encode(`${digits.slice(2)}Z`))
    : tlv(0x18, new TextEncoder().encode(`${digits}Z`));
}

function ipBytes(address: string): Uint8Array {
  if (isIP(address) === 4) return Uint8Array.from(address.split(".").map(Number));
  // Expand "::" and write eight 16-bit groups.
  const [head = "", tail] = address.split("::");
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const groups =
    tail === undefined
      ? headGroups
      : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups];
  const out = new Uint8Array(16);
  groups.forEach((group, i) => {
    const value = Number.parseInt(group, 16);
    out[i * 2] = value >> 8;
    out[i * 2 + 1] = value & 0xff;
  });
  return out;
}

const ECDSA_WITH_SHA256 = sequence(oid("1.2.840.10045.4.3.2"));

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical
    ? sequence(oid(id), tlv(0x01, Uint8Array.of(0xff)), octetString(value))
    : sequence(oid(id), octetString(value));
}

/** Validates and de-duplicates SAN entries: DNS names (letters, digits, `-`, `.`, `*`) or IP literals. */
function sanNames(extra: readonly string[]): string[] {
  const names = [...new Set([...DEFAULT_DEV_CERTIFICATE_NAMES, ...extra])];
  for (const name of names) {
    if (isIP(name) === 0 && !/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(name)) {
      throw new RangeError(
        `certificate name ${JSON.stringify(name)} is neither a DNS name nor an IP address`,
      );
    }
  }
  return names;
}

/**
 * Generates a self-signed ECDSA P-256 certificate valid for `validityMs` (≤ 14 days), for
 * localhost, 127.0.0.1, ::1 and `names`. Throws a RangeError for a longer validity or a bad name.
 */
export function generateDevCertificate(options: DevCertificateOptions = {}): DevCertificate {
  const validityMs = options.validityMs ?? 10 * 24 * 60 * 60 * 1000;
  if (!(validityMs > 0 && validityMs <= MAX_DEV_CERTIFICATE_VALIDITY_MS)) {
    throw new RangeError(
      `development certificate validity ${validityMs} ms is invalid (1 ms .. 14 days; browsers refuse longer ones)`,
    );
  }
  const names = sanNames(options.names ?? []);
  // Backdated (a minute, or a quarter of a short validity) to absorb clock skew; whole seconds,
  // since X.509 times have no fractions and the span must stay within the limit.
  const nowMs = options.nowMs ?? Date.now();
  const notBefore = new Date(Math.floor((nowMs - Math.min(60_000, validityMs / 4)) / 1000) * 1000);
  const notAfter = new Date(notBefore.getTime() + Math.floor(validityMs / 1000) * 1000);

  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
  const serial = new Uint8Array(randomBytes(16));
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, and minimal (no leading zero byte)
  const name = sequence(set(sequence(oid("2.5.4.3"), utf8String("lvqr development certificate"))));
  const san = sequence(
    ...names.map(
      (entry) =>
        isIP(entry) === 0
          ? tlv(0x82, new TextEncoder().encode(entry)) // dNSName [2] IA5String
          : tlv(0x87, ipBytes(entry)), // iPAddress [7] OCTET STRING
    ),
  );
  const extensions = sequence(
    extension("2.5.29.19", true, sequence()), // basicConstraints: not a CA
    extension("2.5.29.15", true, tlv(0x03, Uint8Array.of(0x07, 0x80))), // keyUsage: digitalSignature
    extension("2.5.29.37", false, sequence(oid("1.3.6.1.5.5.7.3.1"))), // extKeyUsage: serverAuth
    extension("2.5.29.17", false, san),
    extension("2.5.29.14", false, octetString(createHash("sha1").update(spki).digest())), // subjectKeyIdentifier
  );
  const tbs = sequence(
    explicit(0, tlv(0x02, Uint8Array.of(2))), // version v3
    positiveInteger(serial),
    ECDSA_WITH_SHA256,
    name,
    sequence(time(notBefore), time(notAfter)),
    name,
    spki,
    explicit(3, extensions),
  );
  const signature = sign("sha256", tbs, { key: privateKey, dsaEncoding: "der" });
  const der = sequence(tbs, ECDSA_WITH_SHA256, tlv(0x03, Uint8Array.of(0), signature));

  const certPem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .replace(/\n$/, "")}\n-----END CERTIFICATE-----\n`;
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const dev: DevCertificate = {
    keyPem,
    certPem,
    der,
    sha256: createHash("sha256").update(der).digest("hex"),
    notBefore,
    notAfter,
    names,
  };
  // Parse it back, so a broken encoder fails here rather than in a TLS handshake.
  const problems = checkServerCertificateHashRules(certPem, nowMs);
  if (problems.length > 0) {
    throw new MoqError("MOQ_TRANSPORT", `generated certificate is unusable: ${problems.join("; ")}`);
  }
  return dev;
}

/**
 * The reasons a certificate cannot be used with WebTransport `serverCertificateHashes` at
 * `nowMs` (empty when it can): it must be X.509 v3, ECDSA P-256, currently valid, and valid for
 * at most 14 days in total.
 */
export function checkServerCertificateHashRules(
  certificate: string | Uint8Array,
  nowMs: number = Date.now(),
): string[] {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certificate);
  } catch (err) {
    return [`not a parsable X.509 certificate (${(err as Error).message})`];
  }
  const problems: string[] = [];
  const key = cert.publicKey;
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    problems.push(
      `key is ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ""}, not ECDSA P-256`,
    );
  }
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (to - from > MAX_DEV_CERTIFICATE_VALIDITY_MS) {
    problems.push(`valid for ${((to - from) / 86_400_000).toFixed(1)} days (at most 14)`);
  }
  if (nowMs < from || nowMs > to) problems.push(`not valid now (${cert.validFrom} .. ${cert.validTo})`);
  if (!cert.verify(key)) problems.push("self-signature does not verify");
  return problems;
}

/** Lowercase hex SHA-256 of a PEM or DER certificate (the first one in a PEM chain). */
export function certificateSha256(certificate: string | Uint8Array): string {
  return createHash("sha256").update(new X509Certificate(certificate).raw).digest("hex");
}
