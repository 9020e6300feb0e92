/**
 * Negotiating moq-transport. A server reaches it three ways:
 *
 * - the SETUP path (application protocol none, `moql` or `moq-00`): the CLIENT_SETUP offers
 *   versions, and draft-14 is selected when it is the only common one (or when the server
 *   prefers it); SERVER_SETUP then follows in draft-14 layout on the same stream, which stays
 *   open as the control stream;
 * - `moqt-15` / `moqt-16`: CLIENT_SETUP and SERVER_SETUP without versions, on the client's first
 *   bidirectional stream;
 * - `moqt-17`: each side opens a unidirectional stream with SETUP (0x2F00) and keeps it as its
 *   control stream.
 *
 * The client side mirrors each. Both sides grant the peer MAX_REQUEST_ID in their setup
 * (drafts 14 to 16) and learn the peer's.
 */
import { MoqError, ProtocolViolationError } from "../error.ts";
import { CONTROL_PRIORITY } from "../session/context.ts";
import type { BidiStream, TransportSession } from "../transport.ts";
import type { ClientSetup } from "../wire/setup.ts";
import { StreamReader } from "../wire/stream-reader.ts";
import { SETUP_VERSIONS, type Version } from "../wire/version.ts";
import { DEFAULT_IETF_MAX_REQUESTS, type IetfOptions } from "./context.ts";
import type { IetfControlStreams } from "./control.ts";
import { IetfProtocolError, IetfSessionCode } from "./errors.ts";
import { IetfStreamType, readStreamVarint } from "./objects.ts";
import { RequestIdFlow } from "./request-ids.ts";
import {
  decodeIetfClientSetup,
  decodeIetfServerSetup,
  decodeIetfSetup,
  encodeIetfClientSetup,
  encodeIetfServerSetup,
  encodeIetfSetup,
  IetfSetupMessageType,
  implementationOption,
  maxRequestIdOption,
  setupOptions,
} from "./setup.ts";
import { IetfVersion } from "./version.ts";

/** The implementation name sent in SETUP. */
export const IETF_IMPLEMENTATION = "lvqr-moq-lite";

/** What a completed moq-transport handshake hands to the session. */
export interface IetfHandshake {
  readonly version: IetfVersion;
  readonly streams: IetfControlStreams;
  readonly flow: RequestIdFlow;
  /** The peer's implementation name, if it sent one. */
  readonly peerImplementation: string | undefined;
}

function newFlow(
  role: "client" | "server",
  version: IetfVersion,
  options: IetfOptions | undefined,
  peerMax: number,
): RequestIdFlow {
  return new RequestIdFlow({
    role,
    flowControlled: version !== IetfVersion.Draft17,
    window: options?.maxRequests ?? DEFAULT_IETF_MAX_REQUESTS,
    peerMax,
  });
}

/**
 * The version a server selects from a CLIENT_SETUP's offer: moq-lite-02/01 first, then
 * draft-14 (draft-14 first with `preferDraft14`); undefined when nothing offered is spoken.
 */
export function selectSetupVersion(
  offered: readonly number[],
  options: IetfOptions | undefined,
): Version | IetfVersion | undefined {
  const ietf = options?.enabled !== false && offered.includes(IetfVersion.Draft14);
  if (ietf && options?.preferDraft14) return IetfVersion.Draft14;
  const lite = SETUP_VERSIONS.find((candidate) => offered.includes(candidate));
  if (lite !== undefined) return lite;
  return ietf ? IetfVersion.Draft14 : undefined;
}

/**
 * Server, SETUP path: answers a CLIENT_SETUP that selected draft-14 with SERVER_SETUP on its
 * stream, which becomes the control stream.
 */
export function answerDraft14Setup(
  stream: BidiStream,
  reader: StreamReader,
  setup: ClientSetup,
  options: IetfOptions | undefined,
): IetfHandshake {
  const version = IetfVersion.Draft14;
  const flow = newFlow("server", version, options, maxRequestIdOption(setup.parameters));
  stream.send.setPriority(CONTROL_PRIORITY);
  stream.send.write(
    encodeIetfServerSetup(
      { version, options: setupOptions(version, flow.initialMax, IETF_IMPLEMENTATION) },
      version,
    ),
  );
  return {
    version,
    streams: { control: { stream, reader } },
    flow,
    peerImplementation: implementationOption(setup.parameters),
  };
}

/** Server: the handshake of a transport that negotiated `moqt-15`, `moqt-16` or `moqt-17`. */
export async function acceptIetfTransport(
  transport: TransportSession,
  version: IetfVersion,
  options: IetfOptions | undefined,
): Promise<IetfHandshake> {
  if (version === IetfVersion.Draft17) return exchangeSetup17(transport, "server", options);
  const stream = await transport.acceptBidi();
  if (!stream) throw new MoqError("MOQ_CLOSED", "connection closed before CLIENT_SETUP");
  const reader = new StreamReader(stream.recv, "control stream");
  const type = await reader.varint("message type");
  if (type !== IetfSetupMessageType.ClientSetup) {
    throw new ProtocolViolationError(
      `the first stream must carry CLIENT_SETUP (0x20), got type 0x${type.toString(16)}`,
    );
  }
  const length = await reader.u16("CLIENT_SETUP length");
  const setup = decodeIetfClientSetup(await reader.bytes(length, "CLIENT_SETUP"), version);
  const flow = newFlow("server", version, options, maxRequestIdOption(setup.options));
  stream.send.setPriority(CONTROL_PRIORITY);
  stream.send.write(
    encodeIetfServerSetup({ options: setupOptions(version, flow.initialMax, IETF_IMPLEMENTATION) }, version),
  );
  return {
    version,
    streams: { control: { stream, reader } },
    flow,
    peerImplementation: implementationOption(setup.options),
  };
}

/**
 * Client: the handshake of a moq-transport session. `version` is the draft the transport
 * negotiated (15 to 17), or draft-14 for the SETUP path, where CLIENT_SETUP offers only draft-14.
 */
export async function connectIetfTransport(
  transport: TransportSession,
  version: IetfVersion,
  options: IetfOptions | undefined,
): Promise<IetfHandshake> {
  if (version === IetfVersion.Draft17) return exchangeSetup17(transport, "client", options);
  const offer = [IetfVersion.Draft14];
  const provisional = newFlow("client", version, options, 0);
  const stream = await transport.openBidi();
  stream.send.setPriority(CONTROL_PRIORITY);
  stream.send.write(
    encodeIetfClientSetup(
      { versions: offer, options: setupOptions(version, provisional.initialMax, IETF_IMPLEMENTATION) },
      version,
    ),
  );
  const reader = new StreamReader(stream.recv, "control stream");
  const type = await reader.varint("message type");
  if (type !== IetfSetupMessageType.ServerSetup) {
    throw new ProtocolViolationError(`expected SERVER_SETUP (0x21), got type 0x${type.toString(16)}`);
  }
  const length = await reader.u16("SERVER_SETUP length");
  const setup = decodeIetfServerSetup(await reader.bytes(length, "SERVER_SETUP"), version);
  if (version === IetfVersion.Draft14 && setup.version !== IetfVersion.Draft14) {
    throw new MoqError(
      "MOQ_VERSION",
      `server selected 0x${(setup.version ?? 0).toString(16)}, which was not offered`,
    );
  }
  const flow = newFlow("client", version, options, maxRequestIdOption(setup.options));
  return {
    version,
    streams: { control: { stream, reader } },
    flow,
    peerImplementation: implementationOption(setup.options),
  };
}

/** Draft-17: send SETUP on a new unidirectional stream and read the peer's from its first one. */
async function exchangeSetup17(
  transport: TransportSession,
  role: "client" | "server",
  options: IetfOptions | undefined,
): Promise<IetfHandshake> {
  const version = IetfVersion.Draft17;
  const setupSend = await transport.openUni();
  setupSend.setPriority(CONTROL_PRIORITY);
  setupSend.write(encodeIetfSetup(setupOptions(version, undefined, IETF_IMPLEMENTATION)));
  const recv = await transport.acceptUni();
  if (!recv) throw new MoqError("MOQ_CLOSED", "connection closed before SETUP");
  const setupRecv = new StreamReader(recv, "control stream");
  const type = await readStreamVarint(setupRecv, version, "stream type");
  if (type !== IetfStreamType.Setup) {
    throw new IetfProtocolError(
      IetfSessionCode.ProtocolViolation,
      `the peer's first unidirectional stream must carry SETUP (0x2F00), got type 0x${type.toString(16)}`,
    );
  }
  const length = await setupRecv.u16("SETUP length");
  const peer = decodeIetfSetup(await setupRecv.bytes(length, "SETUP"));
  return {
    version,
    streams: { setupSend, setupRecv },
    flow: newFlow(role, version, options, 0),
    peerImplementation: implementationOption(peer),
  };
}
