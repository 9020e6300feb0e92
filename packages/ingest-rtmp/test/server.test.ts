import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AmfObject,
  buildEnhancedVideoTag,
  ChunkStreamWriter,
  encodeAmf0,
  MessageType,
  PublishRejectedError,
  RtmpPublisher,
  RtmpServer,
  VideoPacketType,
} from "../src/index.ts";
import { fixture } from "./helpers/fixtures.ts";
import { LibrtmpLikeClient } from "./helpers/librtmp-client.ts";
import { aacSequenceHeader, audioFrame, avcSequenceHeader, sendMedia, videoFrame } from "./helpers/media.ts";
import { nextPublish, recordAll, startServer, waitFor } from "./helpers/server.ts";

const servers: RtmpServer[] = [];
async function server(options?: Parameters<typeof startServer>[0]) {
  const s = await startServer(options);
  servers.push(s.server);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("the FMLE/OBS publish flow", () => {
  it("accepts OBS's librtmp byte sequence (FP9 digest handshake, FMLE/3.0, releaseStream/FCPublish, channel-4 media)", async () => {
    const { server: srv, port } = await server();
    const sessions = recordAll(srv);
    const client = await LibrtmpLikeClient.connect(port);
    expect(client.serverDigestVerified).toBe(true);

    client.invoke(
      "connect",
      {
        app: "live",
        type: "nonprivate",
        flashVer: "FMLE/3.0 (compatible; FMSc/1.0)",
        swfUrl: `rtmp://127.0.0.1:${port}/live`,
        tcUrl: `rtmp://127.0.0.1:${port}/live`,
      },
      [],
    );
    await client.waitFor(() => client.commands().some((c) => c.name === "_result" && c.transactionId === 1));
    // The server announced its window, bandwidth and chunk size before answering connect.
    expect(client.received.slice(0, 3).map((m) => m.typeId)).toEqual([
      MessageType.WindowAckSize,
      MessageType.SetPeerBandwidth,
      MessageType.SetChunkSize,
    ]);
    const connectResult = client.commands().find((c) => c.transactionId === 1)!;
    expect(connectResult.args[0]).toMatchObject({ level: "status", code: "NetConnection.Connect.Success" });

    client.setChunkSize(4096);
    client.invoke("releaseStream", null, ["obs-key"]);
    client.invoke("FCPublish", null, ["obs-key"]);
    const createTxn = client.invoke("createStream", null, []);
    await client.waitFor(() =>
      client.commands().some((c) => c.name === "_result" && c.transactionId === createTxn),
    );
    const cmds = client.commands();
    expect(cmds.filter((c) => c.name === "_result").map((c) => c.transactionId)).toEqual([1, 2, 3, 4]);
    const streamId = cmds.find((c) => c.transactionId === createTxn)!.args[0] as number;
    expect(streamId).toBe(1);

    client.invoke("publish", null, ["obs-key", "live"], 4, streamId);
    await client.waitFor(() => client.commands().some((c) => c.name === "onStatus"));
    const status = client.commands().find((c) => c.name === "onStatus")!;
    expect(status.args[0]).toMatchObject({ level: "status", code: "NetStream.Publish.Start" });
    expect(status.streamId).toBe(streamId);
    // Stream Begin for the publishing stream came first.
    expect(
      client.received.some(
        (m) => m.typeId === MessageType.UserControl && m.payload[1] === 0 && m.payload[5] === streamId,
      ),
    ).toBe(true);

    client.metadata(streamId, {
      width: 320,
      height: 240,
      videocodecid: 7,
      audiocodecid: 10,
      encoder: "obs-output module (libobs version 30.0.0)",
    });
    client.write(9, 0, avcSequenceHeader, streamId);
    client.write(8, 0, aacSequenceHeader, streamId);
    for (let i = 0; i < 60; i++) {
      client.write(9, i * 33, videoFrame(i, i % 30 === 0, 5000), streamId);
      client.write(8, i * 33 + 10, audioFrame(i), streamId);
    }
    client.invoke("FCUnpublish", null, ["obs-key"]);
    client.invoke("deleteStream", null, [streamId]);
    await waitFor(() => sessions[0]?.ends.length === 1);
    const rec = sessions[0]!;
    expect(rec.session.name).toBe("live/obs-key");
    expect(rec.session.handshake).toBe("digest");
    expect(rec.metadata[0]).toMatchObject({ encoder: "obs-output module (libobs version 30.0.0)" });
    expect(rec.configs.map((c) => c.codecString)).toEqual(["avc1.42c00d", "mp4a.40.2"]);
    const video = rec.samples.filter((s) => s.kind === "video");
    const audio = rec.samples.filter((s) => s.kind === "audio");
    expect(video.map((s) => s.dts)).toEqual(Array.from({ length: 60 }, (_, i) => i * 33));
    expect(audio.map((s) => s.dts)).toEqual(Array.from({ length: 60 }, (_, i) => i * 33 + 10));
    expect(video.filter((s) => s.keyframe).length).toBe(2);
    expect(video[7]!.data.byteLength).toBe(5004);
    expect(rec.ends).toEqual([["unpublish", undefined]]);
    client.close();
  });

  for (const digest of [true, false]) {
    it(`RtmpPublisher publishes with the ${digest ? "digest" : "plain"} handshake and FMLE flashVer`, async () => {
      const { server: srv, url } = await server();
      const published = nextPublish(srv);
      const pub = await RtmpPublisher.connect(url("live/cam?key=abc"), { digestHandshake: digest });
      const rec = await published;
      expect(rec.session.handshake).toBe(digest ? "digest" : "plain");
      if (digest) expect(pub.handshake).toEqual({ serverDigestValid: true, serverSignatureValid: true });
      expect(pub.statuses.map((s) => s["code"])).toEqual(["NetStream.Publish.Start"]);
      expect(rec.session.name).toBe("live/cam");
      await sendMedia(pub, { frames: 10 });
      await pub.close();
      await rec.ended;
      expect(rec.samples.length).toBe(20);
      expect(rec.ends).toEqual([["unpublish", undefined]]);
    });
  }
});

describe("admission", () => {
  it("awaits authorize before Publish.Start, with the query outside the name", async () => {
    const requests: unknown[] = [];
    const { server: srv, url } = await server({
      authorize: async (req) => {
        requests.push({
          app: req.app,
          stream: req.stream,
          key: req.query.get("key"),
          token: req.query.get("token"),
          flashVer: req.flashVer,
        });
        await new Promise((r) => setTimeout(r, 50));
        return { allow: true };
      },
    });
    const published = nextPublish(srv);
    // A query on the app (some encoders put the key there) is merged under the stream's own query.
    const pub = await RtmpPublisher.connect(url("live/show"), {
      app: "live?token=t1",
      stream: "show?key=s3cret",
    });
    const rec = await published;
    expect(requests).toEqual([
      {
        app: "live",
        stream: "show",
        key: "s3cret",
        token: "t1",
        flashVer: "FMLE/3.0 (compatible; FMSc/1.0)",
      },
    ]);
    expect(rec.session.name).toBe("live/show");
    expect(rec.session.stream).toBe("show");
    await pub.close();
  });

  for (const status of ["NetStream.Publish.Unauthorized", "NetStream.Publish.BadName"] as const) {
    it(`a deny sends onStatus ${status} and then closes`, async () => {
      const { server: srv, url } = await server({
        authorize: () => ({ allow: false, status, description: "no such key" }),
      });
      const rejections: unknown[] = [];
      srv.on("reject", (r) => rejections.push(r));
      let publishes = 0;
      srv.on("publish", () => publishes++);
      const err = await RtmpPublisher.connect(url("live/cam?key=wrong")).catch((e) => e);
      expect(err).toBeInstanceOf(PublishRejectedError);
      expect(err).toMatchObject({ status, description: "no such key" });
      expect(publishes).toBe(0);
      expect(rejections).toMatchObject([{ app: "live", stream: "cam", status, description: "no such key" }]);
      await waitFor(() => srv.stats.connections === 0);
      expect(srv.stats.publishesRejected).toBe(1);
    });
  }

  it("a thrown or slow authorize denies with Unauthorized", async () => {
    const { url } = await server({ authorize: () => Promise.reject(new Error("database down")) });
    await expect(RtmpPublisher.connect(url("live/a"))).rejects.toMatchObject({
      status: "NetStream.Publish.Unauthorized",
      description: "authorization failed",
    });
    const slow = await server({ authorize: () => new Promise(() => {}), authorizeTimeoutMs: 100 });
    await expect(RtmpPublisher.connect(slow.url("live/a"))).rejects.toMatchObject({
      status: "NetStream.Publish.Unauthorized",
      description: "authorization timed out",
    });
  });

  it("uses the name authorize returns, and validates names", async () => {
    const { server: srv, url } = await server({
      authorize: (req) =>
        req.stream === "key123" ? { allow: true, name: "shows/evening" } : { allow: true },
    });
    const published = nextPublish(srv);
    const pub = await RtmpPublisher.connect(url("live/key123"));
    expect((await published).session.name).toBe("shows/evening");
    await pub.close();
    for (const bad of ["live/a%20b", `live/${"x".repeat(300)}`, "live/bad$name"]) {
      await expect(RtmpPublisher.connect(url(bad))).rejects.toMatchObject({
        status: "NetStream.Publish.BadName",
      });
    }
    await expect(RtmpPublisher.connect(url("live/x"), { stream: ".." })).rejects.toMatchObject({
      status: "NetStream.Publish.BadName",
      description: expect.stringContaining('".." path segment'),
    });
    await expect(RtmpPublisher.connect(url("live/x"), { stream: "?key=1" })).rejects.toMatchObject({
      status: "NetStream.Publish.BadName",
      description: "the stream name is empty",
    });
  });
});

describe("duplicate names", () => {
  it("takes over a stale session (no media for staleAfterMs): old ends 'takeover', new continues", async () => {
    const { server: srv, url } = await server({ staleAfterMs: 300 });
    const first = nextPublish(srv);
    const old = await RtmpPublisher.connect(url("live/dup"));
    const oldRec = await first;
    await sendMedia(old, { frames: 3 });
    await waitFor(() => oldRec.samples.length === 6);
    await new Promise((r) => setTimeout(r, 400)); // the old publisher goes quiet (a network blip)
    const second = nextPublish(srv);
    const oldClosed = once(old, "close");
    const started = performance.now();
    const pub = await RtmpPublisher.connect(url("live/dup"));
    const newRec = await second;
    expect(performance.now() - started).toBeLessThan(1000);
    expect(oldRec.ends).toEqual([["takeover", undefined]]);
    await oldClosed;
    expect(old.statuses.map((s) => s["code"])).toEqual([
      "NetStream.Publish.Start",
      "NetStream.Unpublish.Success",
    ]);
    expect(srv.session("live/dup")).toBe(newRec.session);
    await sendMedia(pub, { frames: 3 });
    await waitFor(() => newRec.samples.length === 6);
    await pub.close();
  });

  it("refuses a second publisher while the first one is active, with a clear onStatus", async () => {
    const { server: srv, url } = await server({ staleAfterMs: 1500 });
    const first = nextPublish(srv);
    const old = await RtmpPublisher.connect(url("live/busy"));
    const oldRec = await first;
    let sending = true;
    const feeding = (async () => {
      for (let i = 0; sending; i++) {
        await old.sendVideo(i * 33, i === 0 ? avcSequenceHeader : videoFrame(i, false));
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    await expect(RtmpPublisher.connect(url("live/busy"))).rejects.toMatchObject({
      status: "NetStream.Publish.BadName",
      description: "stream live/busy is already being published",
    });
    expect(oldRec.ends).toEqual([]);
    sending = false;
    await feeding;
    await old.close();
  });

  it("a dead socket is stale at once; 'takeover' always takes over; 'reject' never does", async () => {
    const a = await server();
    const first = nextPublish(a.server);
    const dead = await RtmpPublisher.connect(a.url("live/x"));
    const deadRec = await first;
    dead.destroy();
    await deadRec.ended;
    expect(deadRec.ends).toEqual([["disconnect", undefined]]);
    const again = await RtmpPublisher.connect(a.url("live/x"));
    await again.close();

    const b = await server({ duplicatePublisher: "takeover" });
    const p1 = await RtmpPublisher.connect(b.url("live/y"));
    await sendMedia(p1, { frames: 1 });
    const p2 = await RtmpPublisher.connect(b.url("live/y"));
    await once(p1, "close");
    await p2.close();

    const c = await server({ duplicatePublisher: "reject", staleAfterMs: 1 });
    const q1 = await RtmpPublisher.connect(c.url("live/z"));
    await new Promise((r) => setTimeout(r, 20));
    await expect(RtmpPublisher.connect(c.url("live/z"))).rejects.toMatchObject({
      status: "NetStream.Publish.BadName",
    });
    await q1.close();
  });

  it("only valid credentials may take over", async () => {
    const { server: srv, url } = await server({
      staleAfterMs: 1,
      authorize: (req) =>
        req.query.get("key") === "good"
          ? { allow: true }
          : { allow: false, status: "NetStream.Publish.Unauthorized", description: "bad key" },
    });
    const first = nextPublish(srv);
    const owner = await RtmpPublisher.connect(url("live/k?key=good"));
    const rec = await first;
    await new Promise((r) => setTimeout(r, 20));
    await expect(RtmpPublisher.connect(url("live/k?key=bad"))).rejects.toMatchObject({
      status: "NetStream.Publish.Unauthorized",
    });
    expect(rec.ends).toEqual([]);
    await owner.close();
  });

  it("publish, stop, publish again under the same name", async () => {
    const { server: srv, url } = await server();
    const sessions = recordAll(srv);
    for (let round = 0; round < 3; round++) {
      const pub = await RtmpPublisher.connect(url("live/again"));
      await sendMedia(pub, { frames: 5 });
      await pub.close();
      await waitFor(() => sessions[round]?.ends.length === 1);
      expect(sessions[round]!.samples.length).toBe(10);
      expect(sessions[round]!.ends).toEqual([["unpublish", undefined]]);
    }
    expect(srv.stats.publishing).toBe(0);
  });
});

describe("media and protocol details", () => {
  it("rejects a publish whose metadata declares a codec it cannot carry", async () => {
    const { server: srv, url } = await server();
    const published = nextPublish(srv);
    const pub = await RtmpPublisher.connect(url("live/vp6"));
    const rec = await published;
    const closed = once(pub, "close");
    await pub.sendMetadata({ videocodecid: 4, audiocodecid: 10 });
    await closed;
    expect(pub.statuses.at(-1)).toMatchObject({
      level: "error",
      code: "NetStream.Publish.Rejected",
      description: expect.stringContaining("video codec 4 (On2 VP6)"),
    });
    const [reason, error] = await rec.ended;
    expect(reason).toBe("error");
    expect(error?.code).toBe("RTMP_UNSUPPORTED_CODEC");
    expect(srv.stats.protocolErrors["RTMP_UNSUPPORTED_CODEC"]).toBe(1);
  });

  it("closes with a clear error at the first unsupported tag", async () => {
    const { server: srv, url } = await server();
    const published = nextPublish(srv);
    const pub = await RtmpPublisher.connect(url("live/mp3"));
    const rec = await published;
    await pub.sendAudio(0, Uint8Array.of(0x2f, 0xff, 0xfb));
    const [, error] = await rec.ended;
    expect(error?.message).toBe("audio format 2 (MP3) is not supported; publish AAC (format 10)");
    await once(pub, "close").catch(() => {});
  });

  it("carries Enhanced RTMP HEVC (real x265 configuration) and AV1", async () => {
    const { server: srv, url } = await server();
    const published = nextPublish(srv);
    const pub = await RtmpPublisher.connect(url("live/hevc"), { fourCcList: ["hvc1", "av01"] });
    const rec = await published;
    const hvcC = fixture("hevc-main-640x360.hvcC");
    await pub.sendMetadata({ videocodecid: 0x68766331, audiocodecid: 10 });
    await pub.sendVideo(
      0,
      buildEnhancedVideoTag({
        fourCc: "hvc1",
        packetType: VideoPacketType.SequenceStart,
        keyframe: true,
        data: hvcC,
      }),
    );
    const frame = Uint8Array.of(0, 0, 0, 3, 0x26, 0x01, 0xaf);
    await pub.sendVideo(
      0,
      buildEnhancedVideoTag({
        fourCc: "hvc1",
        packetType: VideoPacketType.CodedFrames,
        keyframe: true,
        compositionTimeMs: 66,
        data: frame,
      }),
    );
    await pub.sendVideo(
      33,
      buildEnhancedVideoTag({
        fourCc: "hvc1",
        packetType: VideoPacketType.CodedFramesX,
        keyframe: false,
        data: frame,
      }),
    );
    await waitFor(() => rec.samples.length === 2);
    expect(rec.configs[0]).toMatchObject({
      codec: "h265",
      codecString: "hvc1.1.6.L63.90",
      width: 640,
      height: 360,
    });
    expect(Buffer.from(rec.configs[0]!.description).equals(hvcC)).toBe(true);
    expect(rec.samples.map((s) => [s.dts, s.pts, s.keyframe])).toEqual([
      [0, 66, true],
      [33, 33, false],
    ]);
    expect(Buffer.from(rec.samples[0]!.data).equals(frame)).toBe(true);
    await pub.sendVideo(
      66,
      buildEnhancedVideoTag({
        fourCc: "av01",
        packetType: VideoPacketType.SequenceStart,
        keyframe: true,
        data: fixture("av1-main-320x240.av1C"),
      }),
    );
    await waitFor(() => rec.configs.length === 2);
    expect(rec.configs[1]).toMatchObject({
      codec: "av1",
      codecString: "av01.0.00M.08",
      width: 320,
      height: 240,
    });
    await pub.close();
  });

  it("converts Annex B frames from sloppy encoders and refuses non-NAL garbage", async () => {
    const { server: srv, url } = await server();
    const published = nextPublish(srv);
    const pub = await RtmpPublisher.connect(url("live/annexb"));
    const rec = await published;
    await pub.sendVideo(0, avcSequenceHeader);
    await pub.sendVideo(0, Uint8Array.of(0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65, 0xaa, 0, 0, 1, 0x06, 0xbb));
    await waitFor(() => rec.samples.length === 1);
    expect(Buffer.from(rec.samples[0]!.data).toString("hex")).toBe("0000000265aa0000000206bb");
    await pub.sendVideo(33, Uint8Array.of(0x27, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1));
    const [, error] = await rec.ended;
    expect(error?.code).toBe("FLV_INVALID");
  });

  it("handles AMF3-wrapped commands (type 17) and aggregate messages (type 22)", async () => {
    const { server: srv, url } = await server();
    const published = nextPublish(srv);
    const pub = await RtmpPublisher.connect(url("live/agg"));
    const rec = await published;
    await pub.sendVideo(1000, avcSequenceHeader);
    // Aggregate of two FLV video tags at (relative) 500 and 533.
    const tag = (ts: number, body: Uint8Array): Uint8Array => {
      const h = Buffer.alloc(11);
      h[0] = 9;
      h.writeUIntBE(body.byteLength, 1, 3);
      h.writeUIntBE(ts & 0xffffff, 4, 3);
      h[7] = ts >>> 24;
      const back = Buffer.alloc(4);
      back.writeUInt32BE(11 + body.byteLength);
      return Buffer.concat([h, body, back]);
    };
    const aggregate = Buffer.concat([tag(500, videoFrame(1, true)), tag(533, videoFrame(2, false))]);
    await pub.sendMessage({
      chunkStreamId: 6,
      typeId: MessageType.Aggregate,
      streamId: pub.streamId,
      timestamp: 1000,
      payload: aggregate,
    });
    await waitFor(() => rec.samples.length === 2);
    expect(rec.samples.map((s) => s.dts)).toEqual([1000, 1033]);
    const amf3 = Buffer.concat([Buffer.of(0), encodeAmf0(["deleteStream", 0, null, pub.streamId])]);
    await pub.sendMessage({
      chunkStreamId: 3,
      typeId: MessageType.CommandAmf3,
      streamId: 0,
      timestamp: 0,
      payload: amf3,
    });
    expect(await rec.ended).toEqual(["unpublish", undefined]);
    await pub.close();
  });

  it("answers ping requests and acknowledges received bytes at the window size", async () => {
    const { server: srv, url } = await server();
    const published = nextPublish(srv);
    const pub = await RtmpPublisher.connect(url("live/ack"));
    await published;
    const received: { typeId: number; payload: Uint8Array }[] = [];
    pub.on("message", (m) => received.push(m));
    await pub.sendMessage({
      chunkStreamId: 2,
      typeId: MessageType.UserControl,
      streamId: 0,
      timestamp: 0,
      payload: Uint8Array.of(0, 6, 0, 0, 0x12, 0x34),
    });
    await waitFor(() => received.some((m) => m.typeId === MessageType.UserControl));
    expect(
      Buffer.from(received.find((m) => m.typeId === MessageType.UserControl)!.payload).toString("hex"),
    ).toBe("000700001234");
    await pub.sendMessage({
      chunkStreamId: 2,
      typeId: MessageType.WindowAckSize,
      streamId: 0,
      timestamp: 0,
      payload: Uint8Array.of(0, 0x10, 0, 0),
    });
    await sendMedia(pub, { frames: 40, videoSize: 30_000 });
    await waitFor(() => received.some((m) => m.typeId === MessageType.Acknowledgement));
    const ack = received.find((m) => m.typeId === MessageType.Acknowledgement)!;
    expect(Buffer.from(ack.payload).readUInt32BE(0)).toBeGreaterThanOrEqual(0x100000);
    await pub.close();
  });

  it("answers play with an error and closes", async () => {
    const { port } = await server();
    const client = await LibrtmpLikeClient.connect(port);
    client.invoke("connect", { app: "live" }, []);
    client.invoke("createStream", null, []);
    await client.waitFor(() => client.commands().filter((c) => c.name === "_result").length === 2);
    client.invoke("play", null, ["x"], 8, 1);
    await client.waitFor(() => client.closed, 3000).catch(() => {});
    expect(client.commands().find((c) => c.name === "onStatus")?.args[0]).toMatchObject({
      level: "error",
      code: "NetStream.Play.Failed",
    });
  });

  it("ignores media before Publish.Start and commands it does not know", async () => {
    const { server: srv, port } = await server();
    const sessions = recordAll(srv);
    const client = await LibrtmpLikeClient.connect(port);
    client.invoke("connect", { app: "live" }, []);
    client.write(9, 0, avcSequenceHeader, 1);
    client.invoke("someVendorCommand", null, [{ a: 1 }]);
    client.send({
      channel: 9,
      headerType: 0,
      type: 0x7f,
      timestamp: 0,
      streamId: 0,
      body: Uint8Array.of(1, 2, 3),
    });
    client.invoke("createStream", null, []);
    await client.waitFor(() => client.commands().filter((c) => c.name === "_result").length === 2);
    client.invoke("publish", null, ["late"], 4, 1);
    await client.waitFor(() => client.commands().some((c) => c.name === "onStatus"));
    client.write(9, 40, videoFrame(1, true), 1);
    client.write(9, 80, avcSequenceHeader, 1);
    client.write(9, 120, videoFrame(2, true), 1);
    await waitFor(() => sessions[0]?.samples.length === 1);
    expect(sessions[0]!.session.droppedBeforeConfig).toBe(1);
    client.close();
  });
});

describe("session lifecycle", () => {
  it("session.close() kicks the publisher with an onStatus and ends 'kicked' once", async () => {
    const { server: srv, url } = await server();
    const published = nextPublish(srv);
    const pub = await RtmpPublisher.connect(url("live/kick"));
    const rec = await published;
    const closed = once(pub, "close");
    rec.session.close();
    rec.session.close();
    await closed;
    expect(pub.statuses.at(-1)).toMatchObject({ code: "NetStream.Unpublish.Success" });
    expect(rec.ends).toEqual([["kicked", undefined]]);
  });

  it("server.close() ends every session with 'shutdown' and resolves when sockets are closed", async () => {
    const { server: srv, url } = await startServer();
    const sessions = recordAll(srv);
    const pubs = await Promise.all([
      RtmpPublisher.connect(url("live/a")),
      RtmpPublisher.connect(url("live/b")),
    ]);
    await srv.close();
    expect(sessions.map((r) => r.ends)).toEqual([[["shutdown", undefined]], [["shutdown", undefined]]]);
    expect(srv.stats.connections).toBe(0);
    await Promise.all(pubs.map((p) => p.whenClosed));
  });

  it("ends 'timeout' once when a publisher goes silent past idleTimeoutMs", async () => {
    const { server: srv, url } = await server({ idleTimeoutMs: 300 });
    const published = nextPublish(srv);
    const pub = await RtmpPublisher.connect(url("live/silent"));
    const rec = await published;
    const started = performance.now();
    const [reason, error] = await rec.ended;
    expect(reason).toBe("timeout");
    expect(error?.code).toBe("RTMP_IDLE_TIMEOUT");
    expect(performance.now() - started).toBeLessThan(1500);
    await pub.whenClosed;
    expect(rec.ends.length).toBe(1);
  });

  it("ends 'error' once on garbage after publish, and counts it", async () => {
    const { server: srv, url } = await server();
    const published = nextPublish(srv);
    const pub = await RtmpPublisher.connect(url("live/garbage"));
    const rec = await published;
    await pub.sendRaw(Uint8Array.of(0xc9, 1, 2, 3)); // type 3 chunk on a chunk stream never used
    const [reason, error] = await rec.ended;
    expect([reason, error?.code]).toEqual(["error", "RTMP_CHUNK_STREAM_INVALID"]);
    expect(srv.stats.protocolErrors).toMatchObject({ RTMP_CHUNK_STREAM_INVALID: 1 });
    await pub.whenClosed;
  });

  it("honours a client that sets a large chunk size and sends big frames", async () => {
    const { server: srv, url } = await server();
    const published = nextPublish(srv);
    const pub = await RtmpPublisher.connect(url("live/big"), { chunkSize: 1 << 20 });
    const rec = await published;
    await pub.sendVideo(0, avcSequenceHeader);
    await pub.sendVideo(0, videoFrame(0, true, 3_000_000));
    await waitFor(() => rec.samples.length === 1);
    expect(rec.samples[0]!.data.byteLength).toBe(3_000_004);
    await pub.close();
  });

  it("writes with a non-compressing chunk writer too (every header type 0)", async () => {
    const { server: srv, url } = await server();
    const published = nextPublish(srv);
    const pub = await RtmpPublisher.connect(url("live/plainhdr"));
    const rec = await published;
    const writer = new ChunkStreamWriter({ compress: false });
    const frames = [avcSequenceHeader, videoFrame(0, true), videoFrame(1, false)];
    for (const [i, body] of frames.entries()) {
      await pub.sendRaw(
        writer.encode({
          chunkStreamId: 7,
          typeId: 9,
          streamId: pub.streamId,
          timestamp: i * 40,
          payload: body,
        }),
      );
    }
    await waitFor(() => rec.samples.length === 2);
    expect(rec.samples.map((s) => s.dts)).toEqual([40, 80]);
    await pub.close();
  });
});

describe("metadata", () => {
  it("emits @setDataFrame onMetaData", async () => {
    const { server: srv, url } = await server();
    const published = nextPublish(srv);
    const pub = await RtmpPublisher.connect(url("live/meta"));
    const rec = await published;
    const meta: AmfObject = { width: 1280, height: 720, videocodecid: 7, audiocodecid: 10, encoder: "test" };
    await pub.sendMetadata(meta);
    await waitFor(() => rec.metadata.length === 1);
    expect(rec.metadata[0]).toEqual(meta);
    expect(rec.session.metadata).toEqual(meta);
    await pub.close();
  });
});

describe("RTMPS", () => {
  it("serves TLS sockets handed to attach()", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ingest-rtmp-tls-"));
    try {
      try {
        execFileSync(
          "openssl",
          [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            join(dir, "key.pem"),
            "-out",
            join(dir, "cert.pem"),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
          ],
          { stdio: "ignore" },
        );
      } catch {
        throw new Error("openssl is needed to make a test certificate (apt install openssl)");
      }
      const rtmp = new RtmpServer();
      servers.push(rtmp);
      const secure = tls.createServer(
        { key: await readFile(join(dir, "key.pem")), cert: await readFile(join(dir, "cert.pem")) },
        (socket) => rtmp.attach(socket),
      );
      await new Promise<void>((resolve) => secure.listen(0, "127.0.0.1", resolve));
      const port = (secure.address() as { port: number }).port;
      const published = nextPublish(rtmp);
      const pub = await RtmpPublisher.connect(`rtmps://127.0.0.1:${port}/live/secure`, {
        tls: { rejectUnauthorized: false },
      });
      const rec = await published;
      await sendMedia(pub, { frames: 5 });
      await pub.close();
      await rec.ended;
      expect(rec.samples.length).toBe(10);
      expect(rec.session.name).toBe("live/secure");
      await new Promise((resolve) => secure.close(resolve));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
