import {
  BroadcastProducer,
  CancelledError,
  FrameProducer,
  GroupProducer,
  LaggedError,
  MoqError,
  NotFoundError,
  OriginProducer,
  TrackProducer,
} from "@lvqr/moq-lite";
import { describe, expect, it } from "vitest";

const bytes = (...values: number[]) => new Uint8Array(values);
const text = (value: string) => new TextEncoder().encode(value);

/** Reads every group's frames from the consumer until the track ends. */
async function drain(track: ReturnType<TrackProducer["consume"]>): Promise<Array<[number, string[]]>> {
  const out: Array<[number, string[]]> = [];
  for (;;) {
    const group = await track.nextGroup();
    if (!group) return out;
    const frames: string[] = [];
    for (;;) {
      const frame = await group.readFrame();
      if (!frame) break;
      frames.push(new TextDecoder().decode(frame));
    }
    out.push([group.sequence, frames]);
  }
}

describe("FrameProducer / FrameConsumer", () => {
  it("delivers chunks as they are written and completes at the declared size", async () => {
    const frame = new FrameProducer(5);
    const reader = frame.consume();
    const first = reader.readChunk();
    frame.write(bytes(1, 2));
    expect(await first).toEqual(bytes(1, 2));
    frame.write(bytes(3, 4, 5));
    expect(frame.done).toBe(true);
    expect(await reader.readChunk()).toEqual(bytes(3, 4, 5));
    expect(await reader.readChunk()).toBeUndefined();
    // A complete frame has let go of its waiter lists; readers that come later still get it all,
    // and a waiter registered now is never called (nothing changes any more).
    let called = 0;
    frame.consume().onNextChange(() => called++);
    expect(await frame.consume().readAll()).toEqual(bytes(1, 2, 3, 4, 5));
    expect(called).toBe(0);
  });

  it("returns a whole frame without copying", async () => {
    const data = bytes(9, 8, 7);
    expect(await FrameProducer.whole(data).consume().readAll()).toBe(data);
  });

  it("copies a small view of a much larger buffer, so the cache holds only what it counts", async () => {
    // A frame sliced out of a 64 KiB socket read: kept by reference it would pin the whole read.
    const read = new Uint8Array(64 * 1024).fill(7);
    const small = read.subarray(100, 9_500);
    const copied = await FrameProducer.whole(small).consume().readAll();
    expect(copied).toEqual(small);
    expect(copied.buffer.byteLength).toBe(small.byteLength);
    // A view that fills most of its buffer is not worth a copy.
    const large = read.subarray(0, 60 * 1024);
    expect(await FrameProducer.whole(large).consume().readAll()).toBe(large);
    // Nor is a small buffer's slack (an 8 KiB pool slab holding a 5 KiB chunk).
    const slab = new Uint8Array(8 * 1024);
    const chunk = slab.subarray(0, 5 * 1024);
    expect(await FrameProducer.whole(chunk).consume().readAll()).toBe(chunk);
  });

  it("rejects overflow and reports a short frame when the last handle closes early", async () => {
    const frame = new FrameProducer(2);
    expect(() => frame.write(bytes(1, 2, 3))).toThrowError(/frame overflow/);
    const short = new FrameProducer(4);
    const clone = short.clone();
    short.write(bytes(1));
    short.close();
    expect(short.done).toBe(false);
    clone.close();
    await expect(short.consume().readAll()).rejects.toThrowError(/ended after 1 of 4 bytes/);
  });

  it("gives independent cursors to clones of a consumer", async () => {
    const frame = new FrameProducer(2);
    frame.write(bytes(1));
    const a = frame.consume();
    expect(await a.readChunk()).toEqual(bytes(1));
    const b = a.clone();
    const c = frame.consume();
    frame.write(bytes(2));
    expect(await b.readChunk()).toEqual(bytes(2));
    expect(await c.readChunk()).toEqual(bytes(1));
  });
});

describe("GroupProducer / GroupConsumer", () => {
  it("reads frames in order and ends when the group is closed", async () => {
    const group = new GroupProducer(7);
    const reader = group.consume();
    group.writeFrame(text("a"));
    const pending = reader.readFrame();
    expect(new TextDecoder().decode(await pending)).toBe("a");
    const next = reader.readFrame();
    group.writeFrame(text("b"));
    expect(new TextDecoder().decode(await next)).toBe("b");
    group.close();
    expect(await reader.readFrame()).toBeUndefined();
    expect(reader.sequence).toBe(7);
  });

  it("streams a chunked frame to readers before it is complete", async () => {
    const group = new GroupProducer(0);
    const reader = group.consume();
    const frame = group.createFrame(4);
    frame.write(bytes(1, 2));
    const consumer = (await reader.nextFrame())!;
    expect(consumer.size).toBe(4);
    expect(await consumer.readChunk()).toEqual(bytes(1, 2));
    frame.write(bytes(3, 4));
    expect(await consumer.readChunk()).toEqual(bytes(3, 4));
  });

  it("evicts old frames past its limits and tells a lagging reader", async () => {
    const group = new GroupProducer(0, { maxFrames: 3, maxBytes: 1 << 20 });
    const slow = group.consume();
    for (let i = 0; i < 5; i++) group.writeFrame(bytes(i));
    expect(group.retainedBytes).toBe(3);
    await expect(slow.readFrame()).rejects.toBeInstanceOf(LaggedError);
    const fresh = group.consume();
    expect(await fresh.readFrame()).toEqual(bytes(2));
  });

  it("bounds retained bytes", () => {
    const group = new GroupProducer(0, { maxFrames: 100, maxBytes: 10 });
    for (let i = 0; i < 10; i++) group.writeFrame(new Uint8Array(4));
    expect(group.retainedBytes).toBeLessThanOrEqual(10);
    expect(group.frameCount).toBe(10);
  });

  it("propagates abort errors to readers", async () => {
    const group = new GroupProducer(0);
    const reader = group.consume();
    const pending = reader.readFrame();
    group.abort(new CancelledError("upstream reset"));
    await expect(pending).rejects.toThrowError("upstream reset");
    expect(() => group.writeFrame(bytes(1))).toThrowError(MoqError);
  });

  it("ends a frame still being written when the group is aborted or finished", async () => {
    const aborted = new GroupProducer(0);
    const partial = aborted.createFrame(10);
    partial.write(bytes(1, 2));
    const reader = (await aborted.consume().nextFrame())!;
    aborted.abort(new CancelledError("stream reset"));
    await expect(reader.readAll()).rejects.toThrowError("stream reset");

    const finished = new GroupProducer(1);
    finished.createFrame(4).write(bytes(1));
    finished.close();
    const frame = (await finished.consume().nextFrame())!;
    await expect(frame.readAll()).rejects.toThrowError(/incomplete \(1 written\)/);
  });

  it("finishes only when every producer handle is closed", async () => {
    const group = new GroupProducer(0);
    const other = group.clone();
    group.close();
    group.close();
    expect(group.done).toBe(false);
    other.writeFrame(bytes(1));
    other.close();
    expect(group.done).toBe(true);
    expect(await drainGroup(group.consume())).toEqual([bytes(1)]);
  });
});

async function drainGroup(group: ReturnType<GroupProducer["consume"]>): Promise<Uint8Array[]> {
  const frames: Uint8Array[] = [];
  for (;;) {
    const frame = await group.readFrame();
    if (!frame) return frames;
    frames.push(frame);
  }
}

describe("TrackProducer / TrackConsumer", () => {
  it("starts a new consumer at the newest group, from its first frame", async () => {
    const track = new TrackProducer("video");
    const g0 = track.appendGroup();
    g0.writeFrame(text("k0"));
    g0.close();
    const g1 = track.appendGroup();
    g1.writeFrame(text("k1"));
    g1.writeFrame(text("d1"));
    const late = track.consume();
    g1.close();
    track.close();
    expect(await drain(late)).toEqual([[1, ["k1", "d1"]]]);
  });

  it("waits for the first group when the track is empty", async () => {
    const track = new TrackProducer("t");
    const consumer = track.consume();
    const pending = consumer.nextGroup();
    track.writeFrame(text("x"));
    const group = (await pending)!;
    expect(group.sequence).toBe(0);
    expect(new TextDecoder().decode((await group.readFrame())!)).toBe("x");
  });

  it("skips groups that arrive older than the last one returned", async () => {
    const track = new TrackProducer("t");
    const consumer = track.consume();
    track.createGroup(5)!.close();
    expect((await consumer.nextGroup())!.sequence).toBe(5);
    track.createGroup(3)!.close();
    track.createGroup(6)!.close();
    expect((await consumer.nextGroup())!.sequence).toBe(6);
    expect(track.createGroup(6)).toBeUndefined();
    expect(track.appendGroup().sequence).toBe(7);
  });

  it("gives independent cursors to consumers and their clones", async () => {
    const track = new TrackProducer("t");
    const a = track.consume();
    for (let i = 0; i < 3; i++) track.writeFrame(text(`f${i}`));
    track.close();
    expect((await a.nextGroup())!.sequence).toBe(0);
    const b = a.clone();
    expect((await a.nextGroup())!.sequence).toBe(1);
    expect((await b.nextGroup())!.sequence).toBe(1);
    expect((await b.nextGroup())!.sequence).toBe(2);
    expect((await a.nextGroup())!.sequence).toBe(2);
    expect(await a.nextGroup()).toBeUndefined();
  });

  it("hands a lagging consumer a LaggedError and lets it resume at the newest group", async () => {
    const track = new TrackProducer("audio", {
      maxGroups: 4,
      maxBytes: 1 << 20,
      group: { maxFrames: 16, maxBytes: 1 << 20 },
    });
    const slow = track.consume();
    for (let i = 0; i < 20; i++) track.writeFrame(bytes(i));
    await expect(slow.nextGroup()).rejects.toBeInstanceOf(LaggedError);
    slow.skipToLatest();
    const group = (await slow.nextGroup())!;
    expect(group.sequence).toBe(19);
    expect(await group.readFrame()).toEqual(bytes(19));
  });

  it("bounds cached bytes across groups but always keeps the newest group", () => {
    const track = new TrackProducer("v", {
      maxGroups: 1000,
      maxBytes: 100,
      group: { maxFrames: 1000, maxBytes: 1000 },
    });
    for (let i = 0; i < 10; i++) {
      const group = track.appendGroup();
      group.writeFrame(new Uint8Array(40));
      group.close();
    }
    expect(track.cachedBytes).toBeLessThanOrEqual(100);
    const big = track.appendGroup();
    big.writeFrame(new Uint8Array(500));
    expect(track.cachedBytes).toBe(500);
  });

  it("never blocks the producer on a consumer that does not read", () => {
    const track = new TrackProducer("v");
    const idle = track.consume();
    const start = performance.now();
    for (let i = 0; i < 10_000; i++) track.writeFrame(new Uint8Array(1000));
    expect(performance.now() - start).toBeLessThan(2000);
    expect(track.cachedBytes).toBeLessThanOrEqual(16 * 1024 * 1024);
    idle.close();
  });

  it("ends consumers when the last producer handle closes, and finishes open groups", async () => {
    const track = new TrackProducer("t");
    const handle = track.clone();
    const consumer = track.consume();
    const group = track.appendGroup();
    group.writeFrame(text("a"));
    track.close();
    expect(track.done).toBe(false);
    handle.close();
    expect(track.done).toBe(true);
    expect(await drain(consumer)).toEqual([[0, ["a"]]]);
    expect(await track.closed).toBeUndefined();
  });

  it("rejects consumers with the abort error", async () => {
    const track = new TrackProducer("t");
    const consumer = track.consume();
    const pending = consumer.nextGroup();
    const error = new MoqError("MOQ_TRANSPORT", "publisher went away");
    track.abort(error);
    await expect(pending).rejects.toBe(error);
    expect(await consumer.closed).toBe(error);
  });

  it("counts consumers and reports when it becomes unused", async () => {
    const track = new TrackProducer("t");
    const a = track.consume();
    const b = a.clone();
    expect(track.consumerCount).toBe(2);
    let unused = false;
    const waiting = track.unused().then(() => {
      unused = true;
    });
    a.close();
    await Promise.resolve();
    expect(unused).toBe(false);
    b.close();
    b.close();
    await waiting;
    expect(unused).toBe(true);
    expect(track.consumerCount).toBe(0);
  });

  it("makes a closed consumer return undefined, including a pending call", async () => {
    const track = new TrackProducer("t");
    const consumer = track.consume();
    const pending = consumer.nextGroup();
    consumer.close();
    expect(await pending).toBeUndefined();
  });
});

describe("BroadcastProducer / BroadcastConsumer", () => {
  it("serves created tracks and reports unknown ones as NotFound", async () => {
    const broadcast = new BroadcastProducer();
    const video = broadcast.createTrack("video");
    video.writeFrame(text("v"));
    const consumer = broadcast.consume();
    const track = consumer.subscribeTrack("video");
    expect(new TextDecoder().decode((await (await track.nextGroup())!.readFrame())!)).toBe("v");
    await expect(consumer.subscribeTrack("nope").nextGroup()).rejects.toBeInstanceOf(NotFoundError);
    expect(() => broadcast.createTrack("video")).toThrowError(/already exists/);
    expect(consumer.trackNames()).toEqual(["video"]);
  });

  it("creates on-demand tracks, queues one request per track and re-requests after teardown", async () => {
    const broadcast = new BroadcastProducer({ onDemand: true });
    const consumer = broadcast.consume();
    const first = consumer.subscribeTrack("audio", { priority: 80 });
    const second = consumer.subscribeTrack("audio", { priority: 10 });
    const request = (await broadcast.requestedTrack())!;
    expect(request.name).toBe("audio");
    expect(request.priority).toBe(80);
    request.track.writeFrame(text("a0"));
    expect((await first.nextGroup())!.sequence).toBe(0);
    expect((await second.nextGroup())!.sequence).toBe(0);

    first.close();
    second.close();
    await request.track.unused();
    const third = consumer.subscribeTrack("audio");
    const again = (await broadcast.requestedTrack())!;
    expect(again.track).not.toBe(request.track);
    expect(request.track.done).toBe(true);
    again.track.writeFrame(text("a1"));
    expect((await third.nextGroup())!.sequence).toBe(0);
  });

  it("ends every track when the broadcast closes, and returns no more requests", async () => {
    const broadcast = new BroadcastProducer({ onDemand: true });
    const video = broadcast.createTrack("video");
    const consumer = broadcast.consume();
    const track = consumer.subscribeTrack("video");
    const requested = broadcast.requestedTrack();
    broadcast.close();
    expect(await requested).toBeUndefined();
    expect(video.done).toBe(true);
    expect(await track.nextGroup()).toBeUndefined();
    expect(await consumer.closed).toBeUndefined();
    await expect(consumer.subscribeTrack("video").nextGroup()).rejects.toThrowError(/broadcast has ended/);
  });

  it("propagates an abort to its tracks", async () => {
    const broadcast = new BroadcastProducer();
    broadcast.createTrack("video");
    const track = broadcast.consume().subscribeTrack("video");
    broadcast.abort(new MoqError("MOQ_TRANSPORT", "gone"));
    await expect(track.nextGroup()).rejects.toThrowError("gone");
  });

  it("drops a track from the broadcast when it ends", () => {
    const broadcast = new BroadcastProducer();
    const video = broadcast.createTrack("video");
    video.close();
    expect(broadcast.trackNames()).toEqual([]);
    expect(broadcast.createTrack("video").done).toBe(false);
  });
});

describe("OriginProducer / OriginConsumer", () => {
  it("announces existing and new broadcasts under a prefix, and their end", async () => {
    const origin = new OriginProducer();
    const a = origin.createBroadcast("live/a");
    origin.createBroadcast("other/x");
    const announced = origin.consume().announced("live");
    expect(await announced.next()).toMatchObject({ path: "live/a", active: true });
    const b = origin.createBroadcast("/live//b/");
    expect(await announced.next()).toMatchObject({ path: "live/b", active: true });
    origin.createBroadcast("livestream");
    a.close();
    expect(await announced.next()).toEqual({ path: "live/a", active: false });
    b.close();
    expect(await announced.next()).toEqual({ path: "live/b", active: false });
    announced.close();
    expect(await announced.next()).toBeUndefined();
  });

  it("announces an exact broadcast path as the empty suffix of itself", async () => {
    const origin = new OriginProducer();
    origin.createBroadcast("live/cam0");
    const view = origin.consume().withRoot("live/cam0");
    expect(await view.announced().next()).toMatchObject({ path: "", active: true });
  });

  it("lets a newer publisher take over a path and falls back when it ends", async () => {
    const origin = new OriginProducer();
    const consumer = origin.consume();
    const first = origin.createBroadcast("live/a");
    const watch = consumer.announced("");
    expect((await watch.next())!.active).toBe(true);
    const second = origin.createBroadcast("live/a");
    expect(await watch.next()).toEqual({ path: "live/a", active: false });
    const active = (await watch.next())!;
    expect(active.active).toBe(true);
    expect(active.broadcast!.sameAs(second.consume())).toBe(true);
    expect(consumer.consume("live/a")!.sameAs(second.consume())).toBe(true);
    second.close();
    await expect(watch.next()).resolves.toEqual({ path: "live/a", active: false });
    const back = (await watch.next())!;
    expect(back.broadcast!.sameAs(first.consume())).toBe(true);
  });

  it("coalesces updates for a watcher that does not read", async () => {
    const origin = new OriginProducer();
    const watch = origin.consume().announced();
    for (let i = 0; i < 1000; i++) origin.createBroadcast("flap").close();
    await new Promise((resolve) => setTimeout(resolve, 0));
    const keep = origin.createBroadcast("flap");
    const seen = [];
    seen.push(await watch.next());
    expect(seen).toEqual([{ path: "flap", active: true, broadcast: expect.anything() }]);
    keep.close();
  });

  it("scopes paths to a root and restricts reads and publishes to prefixes", async () => {
    const origin = new OriginProducer();
    const session = origin.withRoot("anon").restrict({ publish: ["mine"], read: ["mine", "shared"] });
    session.createBroadcast("mine/cam");
    expect(() => session.createBroadcast("yours/cam")).toThrowError(/not allowed/);
    origin.createBroadcast("anon/shared/x");
    origin.createBroadcast("anon/secret/y");
    origin.createBroadcast("elsewhere/z");
    const reader = session.consume();
    expect(reader.list()).toEqual(["mine/cam", "shared/x"]);
    expect(reader.consume("secret/y")).toBeUndefined();
    expect(reader.consume("shared/x")).toBeDefined();
    expect(origin.consume().list()).toEqual([
      "anon/mine/cam",
      "anon/secret/y",
      "anon/shared/x",
      "elsewhere/z",
    ]);
    const watch = reader.announced();
    const paths = [(await watch.next())!.path, (await watch.next())!.path].sort();
    expect(paths).toEqual(["mine/cam", "shared/x"]);
    // A narrower restriction cannot widen what the view could read.
    expect(reader.restrict(["secret"]).list()).toEqual([]);
  });

  it("waits for a broadcast to appear, or times out", async () => {
    const origin = new OriginProducer();
    const consumer = origin.consume();
    const waiting = consumer.waitForBroadcast("live/late", { timeoutMs: 2000 });
    setTimeout(() => origin.createBroadcast("live/late"), 10);
    expect((await waiting).done).toBe(false);
    await expect(consumer.waitForBroadcast("live/never", { timeoutMs: 20 })).rejects.toThrowError(
      /did not appear/,
    );
  });
});

describe("MoqError", () => {
  it("carries stable codes and wire codes, and brands across copies", () => {
    const lagged = new LaggedError("behind");
    expect(lagged.code).toBe("MOQ_LAGGED");
    expect(lagged.wireCode).toBe(24);
    expect(new NotFoundError("x").wireCode).toBe(13);
    expect(lagged).toBeInstanceOf(MoqError);
    expect(new MoqError("MOQ_CANCELLED", "c")).not.toBeInstanceOf(LaggedError);
    const foreign = Object.assign(new Error("other copy"), { [Symbol.for("@lvqr/moq-lite.MoqError")]: true });
    expect(foreign instanceof MoqError).toBe(true);
  });
});
