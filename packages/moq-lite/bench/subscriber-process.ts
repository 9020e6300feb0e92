/**
 * Lightweight moq-lite subscribers for the fan-out benchmark: raw QMux (`qmux-00`) WebSocket
 * clients that do SETUP (lite-02), subscribe to one track and parse group streams just enough to
 * find frame boundaries and the send time the publisher wrote into each frame. Many of them run
 * in one process so the machine's cores go to the relay, not to client overhead.
 *
 * A subscriber may read at a fixed rate (`rateBytesPerSec`), pausing its socket like a slow
 * network so the relay sees real TCP backpressure.
 */
import WebSocket from "ws";
import {
  decodeFrame,
  encodeClientSetup,
  encodeStreamFrame,
  encodeSubscribe,
  encodeTransportParameters,
  readVarintAt,
  Version,
  varintLength,
} from "../src/index.ts";

interface Spec {
  readonly url: string;
  readonly count: number;
  readonly broadcast: string;
  readonly track: string;
  /** Per-subscriber read rate; 0 = as fast as possible. */
  readonly rateBytesPerSec: number;
}

/** Parses one group stream incrementally: type byte, GROUP header, then `varint size` + payload frames. */
class GroupStreamParser {
  #header = new Uint8Array(64);
  #headerLength = 0;
  #headerDone = false;
  #remaining = -1;
  #stamp = new Uint8Array(8);
  #stampLength = 0;
  readonly #onFrame: (sentAtMs: number) => void;

  constructor(onFrame: (sentAtMs: number) => void) {
    this.#onFrame = onFrame;
  }

  push(data: Uint8Array): void {
    let offset = 0;
    while (offset < data.byteLength) {
      if (this.#remaining < 0) {
        // Accumulate header bytes (stream header once, then each frame's size varint).
        this.#header[this.#headerLength++] = data[offset++]!;
        const buf = this.#header.subarray(0, this.#headerLength);
        if (!this.#headerDone) {
          if (buf.byteLength < 2) continue;
          const sizeLength = varintLength(buf[1]!);
          if (buf.byteLength < 1 + sizeLength) continue;
          const size = readVarintAt(buf, 1);
          if (buf.byteLength < 1 + sizeLength + size) continue;
          this.#headerDone = true;
          this.#headerLength = 0;
          continue;
        }
        const length = varintLength(buf[0]!);
        if (buf.byteLength < length) continue;
        this.#remaining = readVarintAt(buf, 0);
        this.#headerLength = 0;
        this.#stampLength = 0;
        if (this.#remaining === 0) this.#remaining = -1;
        continue;
      }
      const take = Math.min(this.#remaining, data.byteLength - offset);
      if (this.#stampLength < 8) {
        const copy = Math.min(8 - this.#stampLength, take);
        this.#stamp.set(data.subarray(offset, offset + copy), this.#stampLength);
        this.#stampLength += copy;
      }
      offset += take;
      this.#remaining -= take;
      if (this.#remaining === 0) {
        this.#remaining = -1;
        this.#onFrame(new DataView(this.#stamp.buffer).getFloat64(0));
      }
    }
  }
}

class Subscriber {
  frames = 0;
  bytes = 0;
  readonly delays: number[] = [];
  subscribed = false;
  failed: string | undefined;
  readonly #ws: WebSocket;
  readonly #streams = new Map<number, GroupStreamParser>();
  readonly #rate: number;
  #startedAt = 0;
  #paused = false;

  constructor(spec: Spec, collect: boolean) {
    this.#rate = spec.rateBytesPerSec;
    this.#ws = new WebSocket(spec.url, ["qmux-00"], { perMessageDeflate: false, maxPayload: 64 * 1024 });
    this.#ws.binaryType = "nodebuffer";
    this.#ws.on("open", () => {
      const huge = 2 ** 50;
      this.#ws.send(
        encodeTransportParameters({
          maxData: huge,
          maxStreamDataBidiLocal: huge,
          maxStreamDataBidiRemote: huge,
          maxStreamDataUni: huge,
          maxStreamsBidi: 16,
          maxStreamsUni: huge,
        }),
      );
      this.#ws.send(
        encodeStreamFrame(
          "qmux-00",
          0,
          encodeClientSetup({ versions: [Version.Lite02], parameters: new Map() }),
          false,
        ),
      );
      const subscribe = encodeSubscribe(
        { id: 0, broadcast: spec.broadcast, track: spec.track, priority: 0 },
        Version.Lite02,
      );
      this.#ws.send(encodeStreamFrame("qmux-00", 4, Uint8Array.of(0x02, ...subscribe), false));
      this.#startedAt = performance.now();
    });
    this.#ws.on("message", (data: Buffer) => {
      this.bytes += data.byteLength;
      const frame = decodeFrame(data, "qmux-00");
      if (frame.type === "stream") {
        if (frame.id === 4) this.subscribed = true;
        else if ((frame.id & 3) === 3) {
          let parser = this.#streams.get(frame.id);
          if (!parser) {
            parser = new GroupStreamParser((sentAtMs) => {
              this.frames++;
              if (collect) this.delays.push(performance.timeOrigin + performance.now() - sentAtMs);
            });
            this.#streams.set(frame.id, parser);
          }
          parser.push(frame.data);
          if (frame.fin) this.#streams.delete(frame.id);
        }
      } else if (frame.type === "reset_stream") {
        if (frame.id === 4) this.failed = `subscription reset (${frame.code})`;
        this.#streams.delete(frame.id);
      } else if (frame.type === "connection_close") {
        this.failed = `connection closed (${frame.code} ${frame.reason})`;
      }
      if (this.#rate > 0) this.#throttle();
    });
    this.#ws.on("error", (err) => {
      this.failed = err.message;
    });
  }

  /** Reads no faster than the rate: pause the socket until the budget catches up. */
  #throttle(): void {
    if (this.#paused) return;
    const allowed = ((performance.now() - this.#startedAt) / 1000) * this.#rate;
    if (this.bytes <= allowed) return;
    this.#paused = true;
    this.#ws.pause();
    setTimeout(
      () => {
        this.#paused = false;
        this.#ws.resume();
      },
      Math.max(5, ((this.bytes - allowed) / this.#rate) * 1000),
    );
  }

  close(): void {
    this.#ws.terminate();
  }
}

let subscribers: Subscriber[] = [];
process.on("message", (message: { type: string; spec?: Spec; collect?: boolean }) => {
  if (message.type === "start" && message.spec) {
    const spec = message.spec;
    subscribers = Array.from({ length: spec.count }, () => new Subscriber(spec, message.collect !== false));
    const check = setInterval(() => {
      const failed = subscribers.find((s) => s.failed);
      if (failed) {
        clearInterval(check);
        process.send?.({ type: "error", error: failed.failed });
      } else if (subscribers.every((s) => s.subscribed)) {
        clearInterval(check);
        process.send?.({ type: "subscribed" });
      }
    }, 20);
  } else if (message.type === "report") {
    const cpu = process.cpuUsage();
    process.send?.({
      type: "report",
      frames: subscribers.map((s) => s.frames),
      delays: subscribers.flatMap((s) => s.delays),
      failures: subscribers.filter((s) => s.failed).map((s) => s.failed),
      cpuMicros: cpu.user + cpu.system,
    });
  } else if (message.type === "cpu") {
    const cpu = process.cpuUsage();
    process.send?.({ type: "cpu", cpuMicros: cpu.user + cpu.system });
  } else if (message.type === "close") {
    for (const s of subscribers) s.close();
    setTimeout(() => process.exit(0), 100);
  }
});
process.send?.({ type: "ready" });
