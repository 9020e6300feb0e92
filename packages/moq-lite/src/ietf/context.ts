/**
 * What the parts of a moq-transport session share: the transport, the negotiated draft, this
 * side's role, limits, logging and failure handling. The same shape as the moq-lite session
 * context, with the draft in place of the moq-lite version.
 */
import type { MoqError } from "../error.ts";
import type { FrameSentEvent, SessionLimits } from "../session/context.ts";
import type { MoqLogger } from "../session/logger.ts";
import type { TransportSession } from "../transport.ts";
import type { IetfVersion } from "./version.ts";

/** Options of the moq-transport side of a session (see `SessionOptions.ietf`). */
export interface IetfOptions {
  /**
   * Speak moq-transport at all: select draft-14 over SETUP when it is the only common version,
   * and drafts 15 to 17 when the transport negotiated `moqt-15/16/17`. Default true.
   */
  readonly enabled?: boolean;
  /**
   * Select draft-14 over SETUP even when the client also offers moq-lite-01/02 (for testing
   * moq-transport with clients that offer both). Default false: moq-lite wins.
   */
  readonly preferDraft14?: boolean;
  /**
   * Concurrent requests the peer may have open (subscriptions, namespace subscriptions,
   * published namespaces, fetches); drafts 14 to 16 enforce it with MAX_REQUEST_ID, raised as
   * requests finish. Default 256.
   */
  readonly maxRequests?: number;
}

/** Defaults of {@link IetfOptions}. */
export const DEFAULT_IETF_MAX_REQUESTS = 256;

/** @internal State shared by the parts of one moq-transport session. */
export interface IetfContext {
  readonly transport: TransportSession;
  readonly version: IetfVersion;
  readonly role: "client" | "server";
  readonly limits: SessionLimits;
  readonly logger: MoqLogger;
  /** Fields added to every log line. */
  readonly logFields: Readonly<Record<string, unknown>>;
  readonly onFrameSent: ((event: FrameSentEvent) => void) | undefined;
  /** Closes the session because of `error` (logged once). */
  fail(error: MoqError): void;
  /** True once the session is closing. */
  readonly closing: boolean;
}
