/**
 * Hand-framed hostile input for every moq-transport decoder: bytes no encoder would produce,
 * each rejected with a typed MoqError (and the reason in the message) rather than a crash,
 * a silent misread, or unbounded work.
 */
import {
  decodeIetfClientSetup,
  decodeIetfMessage,
  decodeIetfServerSetup,
  decodeIetfSetup,
  IetfReader,
  IetfVersion,
  MoqError,
  type RecvStream,
  readMessageParameters,
  readSubgroupHeader,
  StreamReader,
} from "@lvqr/moq-lite";
import { describe, expect, it } from "vitest";

const { Draft14: D14, Draft15: D15, Draft16: D16, Draft17: D17 } = IetfVersion;

function hex(value: string): Uint8Array {
  const clean = value.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g) ?? [], (byte) => Number.parseInt(byte, 16));
}

/** Asserts that decoding throws a MoqError whose message matches `pattern`. */
function rejects(run: () => unknown, pattern: RegExp): void {
  let thrown: unknown;
  try {
    run();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, "expected a MoqError").toBeInstanceOf(MoqError);
  expect((thrown as Error).message).toMatch(pattern);
}

const decode = (version: IetfVersion, type: number, body: string) => () =>
  decodeIetfMessage(type, hex(body), version);

describe("control message payloads", () => {
  it("refuses trailing bytes after the last field", () => {
    rejects(decode(D14, 0x0a, "04 00"), /trailing byte/);
    rejects(decode(D17, 0x07, "00 ff"), /trailing byte/);
  });

  it("refuses a payload cut short", () => {
    rejects(decode(D14, 0x03, "04 02 04 64 65"), /truncated/);
    rejects(decode(D16, 0x05, "04 10"), /truncated/);
  });

  it("refuses message types the draft does not have", () => {
    rejects(decode(D17, 0x0a, "04"), /0xa does not exist in draft-17/); // UNSUBSCRIBE
    rejects(decode(D17, 0x15, "04"), /does not exist in draft-17/); // MAX_REQUEST_ID
    rejects(decode(D15, 0x08, "01 03 62 62 62"), /does not exist in draft-15/); // NAMESPACE
    rejects(decode(D16, 0x14, "06"), /does not exist in draft-16/); // UNSUBSCRIBE_NAMESPACE
    rejects(decode(D15, 0x12, "06"), /does not exist in draft-15/); // SUBSCRIBE_NAMESPACE_OK
    rejects(decode(D14, 0x3f, ""), /does not exist/);
  });

  it("bounds namespaces: at most 32 fields, none empty, at most 4096 bytes with the track name", () => {
    rejects(decode(D14, 0x06, `02 21 ${"01 61 ".repeat(33)} 00`), /exceeds the limit 32/);
    rejects(decode(D16, 0x06, "02 02 04 6c 69 76 65 00 00"), /empty field/);
    const field = `${"61".repeat(2000)}`;
    rejects(
      decode(D14, 0x03, `04 03 47 d0 ${field} 47 d0 ${field} 40 c8 ${"61".repeat(200)} 80 02 01 02 00`),
      /longer than 4096/,
    );
    // The track name gets what the namespace left: 4000 + 97 = 4097 bytes.
    rejects(
      decode(D15, 0x03, `04 01 4f a0 ${"61".repeat(4000)} 40 61 ${"62".repeat(97)} 00`),
      /exceeds the limit 96/,
    );
  });

  it("refuses invalid UTF-8 in names, and a huge length before reading it", () => {
    rejects(decode(D14, 0x06, "02 01 02 c3 28 00"), /not valid UTF-8/);
    rejects(decode(D14, 0x03, "04 01 03 62 62 62 9f ff ff ff"), /exceeds the limit/);
  });

  it("refuses a reason phrase over 1024 bytes", () => {
    rejects(decode(D14, 0x05, `04 04 44 01 ${"61".repeat(1025)}`), /exceeds the limit 1024/);
  });

  it("refuses draft-14 field values out of range", () => {
    // forward = 2
    rejects(decode(D14, 0x03, "04 01 03 62 62 62 05 76 69 64 65 6f 64 02 02 02 00"), /must be 0 or 1/);
    // group order 3
    rejects(decode(D14, 0x03, "04 01 03 62 62 62 05 76 69 64 65 6f 64 03 01 02 00"), /group order 3/);
    // filter type 5
    rejects(decode(D14, 0x03, "04 01 03 62 62 62 05 76 69 64 65 6f 64 02 01 05 00"), /filter type 5/);
    // AbsoluteRange ending before its start (start group 9, end group 3)
    rejects(
      decode(D14, 0x03, "04 01 03 62 62 62 05 76 69 64 65 6f 64 02 01 04 09 00 03 00"),
      /before its start/,
    );
    // content exists = 7
    rejects(decode(D14, 0x04, "04 04 00 02 07 00"), /must be 0 or 1/);
  });

  it("refuses parameters out of range, repeated, too many or too long", () => {
    // SUBSCRIBER_PRIORITY 256
    rejects(decode(D15, 0x03, "04 01 03 62 62 62 01 76 01 20 41 00"), /priority 256/);
    // FORWARD 2
    rejects(decode(D15, 0x03, "04 01 03 62 62 62 01 76 01 10 02"), /must be 0 or 1/);
    // GROUP_ORDER twice
    rejects(decode(D15, 0x04, "04 04 02 22 02 22 01"), /appears twice/);
    // 65 parameters
    rejects(decode(D15, 0x07, `02 40 41 ${"02 00 ".repeat(65)}`), /exceeds the limit 64/);
    // an odd-typed value of 65 536 bytes
    rejects(decode(D15, 0x07, "02 01 03 80 01 00 00"), /exceeds the limit 65535/);
    // a filter parameter whose filter does not fill it
    rejects(decode(D16, 0x03, "04 01 03 62 62 62 01 76 01 21 02 02 00"), /trailing byte/);
    // draft-16 delta types that overflow past 2^53 are skipped, but the value must still be there
    rejects(decode(D16, 0x07, "02 02 01 00 c0 ff ff ff ff ff ff ff"), /truncated/);
  });

  it("refuses a Required Request ID Delta reaching before request 0 (draft-17)", () => {
    rejects(decode(D17, 0x06, "02 02 01 03 62 62 62 00"), /reaches before request id 0/);
  });

  it("refuses subscribe options, fetch types and namespace entries the drafts do not define", () => {
    rejects(decode(D16, 0x11, "06 00 03 00"), /subscribe options 3/);
    rejects(decode(D15, 0x16, "0e 04 00"), /unknown fetch type 4/);
    rejects(decode(D17, 0x08, "01 00"), /empty field/);
  });

  it("refuses the reserved leading-ones prefix and a value over 2^53 (draft-17)", () => {
    rejects(decode(D17, 0x0b, "fc 00 00 00 00 00 00 00 00 00"), /reserved varint prefix/);
    rejects(decode(D17, 0x07, "ff ff ff ff ff ff ff ff ff 00"), /exceeds 2\^53-1/);
  });

  it("refuses a GOAWAY URI over 8192 bytes", () => {
    rejects(decode(D14, 0x10, `60 01 ${"61".repeat(8193)}`), /exceeds the limit 8192/);
  });

  it("falls back to the typed draft-17 layout only when it fits exactly", () => {
    // Typed: FORWARD 01, then SUBSCRIBER_PRIORITY 9b as one raw byte (as a varint it would need two).
    expect(decodeIetfMessage(0x03, hex("04 00 01 03 62 62 62 01 76 02 10 01 10 9b"), D17)).toMatchObject({
      priority: 155,
      forward: true,
    });
    // Neither layout fits: an unknown typed parameter after a pairs-layout failure.
    rejects(() => decodeIetfMessage(0x03, hex("04 00 01 03 62 62 62 01 76 01 7f 9b"), D17), /.+/);
  });
});

describe("setup", () => {
  it("draft-14 CLIENT_SETUP: too many versions, a truncated parameter, a repeated known parameter", () => {
    rejects(() => decodeIetfClientSetup(hex(`41 00 ${"01 ".repeat(256)} 00`), D14), /exceeds the limit 64/);
    rejects(() => decodeIetfClientSetup(hex("01 c0 00 00 00 ff 00 00 0e 01 07 05 61"), D14), /truncated/);
    rejects(() => decodeIetfClientSetup(hex("01 0e 02 02 01 02 02"), D14), /duplicate parameter/);
  });

  it("drafts 15 and 16: a repeated MAX_REQUEST_ID; unknown options may repeat", () => {
    rejects(() => decodeIetfClientSetup(hex("02 02 01 02 02"), D15), /appears twice/);
    rejects(() => decodeIetfClientSetup(hex("02 02 01 00 02"), D16), /appears twice/); // delta 0: the same type again
    // 0x9d (a GREASE type of draft-17), odd so a byte string, repeated: the first is kept.
    expect(decodeIetfClientSetup(hex("02 40 9d 01 61 40 9d 01 62"), D15).options.get(0x9d)).toEqual(
      hex("61"),
    );
    rejects(() => decodeIetfServerSetup(hex("01 02"), D16), /truncated/);
  });

  it("draft-17 SETUP: options run to the end; a half option is refused", () => {
    expect(decodeIetfSetup(hex("07 01 61")).get(0x07)).toEqual(hex("61"));
    rejects(() => decodeIetfSetup(hex("07 05 61")), /truncated/);
    rejects(() => decodeIetfSetup(hex("fd")), /reserved varint prefix/);
  });

  it("message parameters: the typed layout refuses unknown types it cannot skip", () => {
    rejects(
      () => readMessageParameters(new IetfReader(hex("01 7f 01"), "p", D17), "p", "typed"),
      /unknown message parameter 0x7f/,
    );
  });
});

function stream(parts: string[]): RecvStream {
  let i = 0;
  return { id: 3, read: async () => (i < parts.length ? hex(parts[i++]!) : undefined), stop() {} };
}

async function rejectsAsync(run: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  let thrown: unknown;
  try {
    await run();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, "expected a MoqError").toBeInstanceOf(MoqError);
  expect((thrown as Error).message).toMatch(pattern);
}

describe("subgroup headers", () => {
  const read =
    (type: number, version: IetfVersion, ...parts: string[]) =>
    () =>
      readSubgroupHeader(new StreamReader(stream(parts), "data stream"), type, version);

  it("refuses reserved and undefined types", async () => {
    for (const type of [0x16, 0x17, 0x1e, 0x1f, 0x36, 0x3f, 0x0f, 0x20, 0x40]) {
      await rejectsAsync(read(type, D17, "04 00 00"), /is not defined/);
    }
    // The priority-less types arrived with draft-15.
    await rejectsAsync(read(0x30, D14, "04 00"), /is not defined/);
  });

  it("refuses a header cut short by FIN", async () => {
    await rejectsAsync(read(0x18, D16, "04"), /stream ended inside group id/);
    await rejectsAsync(read(0x14, D16, "04 05"), /stream ended inside subgroup id/);
    await rejectsAsync(read(0x18, D16, "04 05"), /stream ended inside publisher priority/);
  });

  it("reads every header shape", async () => {
    await expect(read(0x1c, D16, "04", "05 07 80")()).resolves.toMatchObject({
      trackAlias: 4,
      group: 5,
      subgroup: 7,
      priority: 128,
      endOfGroup: true,
    });
    await expect(read(0x33, D17, "04 05")()).resolves.toMatchObject({
      subgroup: "first-object",
      properties: true,
      endOfGroup: false,
    });
    await expect(read(0x10, D17, "04 81 2c 00")()).resolves.toMatchObject({
      group: 300,
      subgroup: 0,
      priority: 0,
    });
  });
});
