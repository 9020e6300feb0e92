/**
 * A hand-driven QMux peer for transport tests: a plain `ws` client that sends frames we build
 * byte by byte and records every frame the server sends, one per WebSocket message.
 */
import {
  decodeFrame,
  encodeClientSetup,
  encodeStreamFrame,
  encodeSubscribe,
  encodeTransportParameters,
  type Framing,
  type QmuxFrame,
  type TransportParameters,
  Version,
} from "@lvqr/moq-lite";
import WebSocket from "ws";
import { waitUntil } from "./helpers.ts";

/** The @moq/qmux 0.0.6 client defaults. */
export const CLIENT_DEFAULT_PARAMS: TransportParameters = {
  maxData: 1_048_576,
  maxStreamDataBidiLocal: 262_144,
  maxStreamDataBidiRemote: 262_144,
  maxStreamDataUni: 262_144,
  maxStreamsBidi: 100,
  maxStreamsUni: 100,
};

/** Every frame a raw peer received, with the size of the WebSocket message that carried it. */
export interface ReceivedFrame {
  readonly frame: QmuxFrame;
  readonly messageBytes: number;
}

/** A QMux client we drive by hand. */
export class RawPeer {
  readonly ws: WebSocket;
  readonly framing: Framing;
  readonly received: ReceivedFrame[] = [];
  closed = false;
  closeCode: number | undefined;

  private constructor(ws: WebSocket, framing: Framing) {
    this.ws = ws;
    this.framing = framing;
    ws.on("message", (data: Buffer) => {
      this.received.push({
        frame: decodeFrame(new Uint8Array(data), framing),
        messageBytes: data.byteLength,
      });
    });
    ws.on("close", (code) => {
      this.closed = true;
      this.closeCode = code;
    });
  }

  /** Connects offering exactly `subprotocols`; sends `params` first for qmux-00 unless null. */
  static async connect(
    url: string,
    subprotocols: string[] = ["qmux-00"],
    params: TransportParameters | null = CLIENT_DEFAULT_PARAMS,
  ): Promise<RawPeer> {
    const ws = new WebSocket(url.replace(/^http/, "ws"), subprotocols, { perMessageDeflate: false });
    let peer: RawPeer | undefined;
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => {
        peer = new RawPeer(ws, ws.protocol.startsWith("qmux-00") ? "qmux-00" : "webtransport");
        if (peer.framing === "qmux-00" && params) ws.send(encodeTransportParameters(params));
        resolve();
      });
      ws.once("error", reject);
    });
    return peer!;
  }

  send(bytes: Uint8Array): void {
    this.ws.send(bytes);
  }

  /** Sends one STREAM frame. */
  stream(id: number, data: Uint8Array, fin = false): void {
    this.send(encodeStreamFrame(this.framing, id, data, fin));
  }

  /** Frames of one type. */
  frames<T extends QmuxFrame["type"]>(type: T): Array<Extract<QmuxFrame, { type: T }>> {
    return this.received
      .map((r) => r.frame)
      .filter((f): f is Extract<QmuxFrame, { type: T }> => f.type === type);
  }

  /** Bytes received so far on stream `id`, and whether FIN arrived. */
  streamData(id: number): { data: Uint8Array; fin: boolean } {
    const parts = this.frames("stream").filter((f) => f.id === id);
    const size = parts.reduce((n, f) => n + f.data.byteLength, 0);
    const data = new Uint8Array(size);
    let offset = 0;
    for (const part of parts) {
      data.set(part.data, offset);
      offset += part.data.byteLength;
    }
    return { data, fin: parts.some((f) => f.fin) };
  }

  async waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    await waitUntil(check, timeoutMs, what);
  }

  /** Performs SETUP on bidi stream 0 (lite-02) and waits for SERVER_SETUP. */
  async setup(): Promise<void> {
    this.stream(0, encodeClientSetup({ versions: [Version.Lite02], parameters: new Map() }));
    await this.waitFor(() => this.streamData(0).data.byteLength >= 12, "SERVER_SETUP");
  }

  /** Opens a subscription on client bidi stream `streamId` and waits for SUBSCRIBE_OK. */
  async subscribe(
    streamId: number,
    id: number,
    broadcast: string,
    track: string,
    priority = 0,
  ): Promise<void> {
    this.stream(
      streamId,
      Uint8Array.of(0x02, ...encodeSubscribe({ id, broadcast, track, priority }, Version.Lite02)),
    );
    await this.waitFor(() => this.streamData(streamId).data.byteLength >= 1, "SUBSCRIBE_OK");
  }

  close(): void {
    this.ws.terminate();
  }
}
