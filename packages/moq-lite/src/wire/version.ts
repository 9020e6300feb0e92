/**
 * moq-lite versions, their wire codes and the application protocol strings that select them.
 * lite-01 and lite-02 are negotiated by the SETUP exchange (application protocol `moql` or none);
 * lite-03 and lite-04 are selected by the transport's negotiated protocol and have no SETUP.
 */

/** Wire codes of the moq-lite versions this package speaks. */
export const Version: {
  readonly Lite01: 0xff0dad01;
  readonly Lite02: 0xff0dad02;
  readonly Lite03: 0xff0dad03;
  readonly Lite04: 0xff0dad04;
} = {
  Lite01: 0xff0dad01,
  Lite02: 0xff0dad02,
  Lite03: 0xff0dad03,
  Lite04: 0xff0dad04,
};

/** One of the moq-lite versions this package speaks. */
export type Version = (typeof Version)[keyof typeof Version];

/** Application protocol (WebTransport `WT-Protocol`, QMux subprotocol suffix) strings. */
export const AppProtocol: {
  /** moq-lite with the version chosen by SETUP (lite-01/02). */
  readonly Moql: "moql";
  readonly Lite03: "moq-lite-03";
  readonly Lite04: "moq-lite-04";
} = {
  Moql: "moql",
  Lite03: "moq-lite-03",
  Lite04: "moq-lite-04",
};

/** Versions a server accepts over SETUP, best first. lite-03/04 are never chosen over SETUP. */
export const SETUP_VERSIONS: readonly Version[] = [Version.Lite02, Version.Lite01];

/** The version an application protocol selects directly, or undefined when SETUP decides. */
export function versionForProtocol(protocol: string): Version | undefined {
  switch (protocol) {
    case AppProtocol.Lite04:
      return Version.Lite04;
    case AppProtocol.Lite03:
      return Version.Lite03;
    default:
      return undefined;
  }
}

/** True when `protocol` leads to the SETUP exchange (`moql`, or no protocol at all). */
export function usesSetup(protocol: string): boolean {
  return protocol === "" || protocol === AppProtocol.Moql;
}

/** True for a wire code of a version this package speaks. */
export function isVersion(code: number): code is Version {
  return (
    code === Version.Lite01 || code === Version.Lite02 || code === Version.Lite03 || code === Version.Lite04
  );
}

/** Human-readable name, e.g. "moq-lite-02" (or "moq-transport-14" for the IETF drafts). */
export function versionName(version: number): string {
  switch (version) {
    case Version.Lite01:
      return "moq-lite-01";
    case Version.Lite02:
      return "moq-lite-02";
    case Version.Lite03:
      return "moq-lite-03";
    case Version.Lite04:
      return "moq-lite-04";
    default:
      if (version >= 0xff00000e && version <= 0xff000011) return `moq-transport-${version - 0xff000000}`;
      return `unknown(0x${version.toString(16)})`;
  }
}

/** True for versions that have the SETUP-era session stream, ANNOUNCE_INIT and untyped SUBSCRIBE_OK. */
export function isSetupEra(version: Version): boolean {
  return version === Version.Lite01 || version === Version.Lite02;
}

/** Stream types: the first varint on a bidi stream. */
export const StreamType: {
  readonly Session: 0x00;
  readonly Announce: 0x01;
  readonly Subscribe: 0x02;
  readonly Fetch: 0x03;
  readonly Probe: 0x04;
  readonly Goaway: 0x05;
  readonly ClientSetup: 0x20;
  readonly ServerSetup: 0x21;
} = {
  Session: 0x00,
  Announce: 0x01,
  Subscribe: 0x02,
  Fetch: 0x03,
  Probe: 0x04,
  Goaway: 0x05,
  ClientSetup: 0x20,
  ServerSetup: 0x21,
};

/** The single type byte of a uni stream carrying a group. */
export const GROUP_STREAM_TYPE = 0x00;
