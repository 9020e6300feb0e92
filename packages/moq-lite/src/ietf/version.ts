/**
 * The IETF moq-transport drafts this package speaks (14 to 17), their wire codes, the
 * application protocols that select them, and the wire differences between them that the
 * codecs switch on. Draft-14 is negotiated by the SETUP exchange (it shares CLIENT_SETUP with
 * moq-lite-01/02) or selected by `moq-00`; drafts 15 to 17 are selected by the transport's
 * application protocol (`moqt-15`, `moqt-16`, `moqt-17`).
 */

/** Wire codes of the moq-transport drafts this package speaks (0xff000000 + draft number). */
export const IetfVersion: {
  readonly Draft14: 0xff00000e;
  readonly Draft15: 0xff00000f;
  readonly Draft16: 0xff000010;
  readonly Draft17: 0xff000011;
} = {
  Draft14: 0xff00000e,
  Draft15: 0xff00000f,
  Draft16: 0xff000010,
  Draft17: 0xff000011,
};

/** One of the moq-transport drafts this package speaks. */
export type IetfVersion = (typeof IetfVersion)[keyof typeof IetfVersion];

/** Application protocol strings (ALPN, WebTransport protocol, QMux subprotocol suffix). */
export const IetfProtocol: {
  /** draft-14 over native QUIC; the version is still chosen by CLIENT_SETUP. */
  readonly Draft14: "moq-00";
  readonly Draft15: "moqt-15";
  readonly Draft16: "moqt-16";
  readonly Draft17: "moqt-17";
} = {
  Draft14: "moq-00",
  Draft15: "moqt-15",
  Draft16: "moqt-16",
  Draft17: "moqt-17",
};

/** The drafts in the order a server prefers them. */
export const IETF_VERSIONS: readonly IetfVersion[] = [
  IetfVersion.Draft17,
  IetfVersion.Draft16,
  IetfVersion.Draft15,
  IetfVersion.Draft14,
];

/** True for the wire code of a draft this package speaks. */
export function isIetfVersion(code: number): code is IetfVersion {
  return code >= IetfVersion.Draft14 && code <= IetfVersion.Draft17;
}

/** The draft an application protocol selects, or undefined (`moq-00` selects draft-14 with SETUP). */
export function ietfVersionForProtocol(protocol: string): IetfVersion | undefined {
  switch (protocol) {
    case IetfProtocol.Draft17:
      return IetfVersion.Draft17;
    case IetfProtocol.Draft16:
      return IetfVersion.Draft16;
    case IetfProtocol.Draft15:
      return IetfVersion.Draft15;
    case IetfProtocol.Draft14:
      return IetfVersion.Draft14;
    default:
      return undefined;
  }
}

/** The application protocol that selects `version`. */
export function ietfProtocolForVersion(version: IetfVersion): string {
  switch (version) {
    case IetfVersion.Draft17:
      return IetfProtocol.Draft17;
    case IetfVersion.Draft16:
      return IetfProtocol.Draft16;
    case IetfVersion.Draft15:
      return IetfProtocol.Draft15;
    default:
      return IetfProtocol.Draft14;
  }
}

/** Human-readable name, e.g. "moq-transport-14". */
export function ietfVersionName(version: IetfVersion): string {
  return `moq-transport-${version - 0xff000000}`;
}

/** draft-17 writes every varint with the leading-ones encoding instead of QUIC's. */
export function usesLeadingOnes(version: IetfVersion): boolean {
  return version === IetfVersion.Draft17;
}

/**
 * drafts 14 to 16 multiplex requests on one bidirectional control stream, where responses carry
 * the Request ID; draft-17 gives every request its own bidirectional stream.
 */
export function usesControlStream(version: IetfVersion): boolean {
  return version !== IetfVersion.Draft17;
}

/** draft-14 has per-request error messages and carries most subscription options as fields. */
export function isDraft14(version: IetfVersion): boolean {
  return version === IetfVersion.Draft14;
}

/** drafts 14 and 15 key PUBLISH_NAMESPACE_DONE/CANCEL by namespace and answer namespace subscriptions with PUBLISH_NAMESPACE. */
export function usesNamespaceKeys(version: IetfVersion): boolean {
  return version === IetfVersion.Draft14 || version === IetfVersion.Draft15;
}

/** drafts 16 and 17 delta-encode parameter types and carry Track Extensions/Properties. */
export function usesDeltaTypes(version: IetfVersion): boolean {
  return version === IetfVersion.Draft16 || version === IetfVersion.Draft17;
}
