/**
 * WebSocket subprotocol negotiation for QMux. Clients offer bare framings (`qmux-00`,
 * `webtransport`) and, in newer versions, `<framing>.<application protocol>` forms such as
 * `qmux-00.moq-lite-04`. The server must select exactly one offered value; the framing decides
 * the frame layout and the suffix (if any) becomes the session's application protocol.
 */
import type { Framing } from "./frame.ts";

/** The framings this package implements, in the default order of preference. */
export const DEFAULT_FRAMINGS: readonly Framing[] = ["qmux-00", "webtransport"];

/** A negotiated subprotocol. */
export interface SubprotocolSelection {
  /** The exact value to put in `Sec-WebSocket-Protocol`. */
  readonly subprotocol: string;
  readonly framing: Framing;
  /** The application protocol after the dot, or "" for a bare framing. */
  readonly protocol: string;
}

/** Splits an offered or selected value into framing and application protocol, or undefined if unknown. */
export function parseSubprotocol(value: string): SubprotocolSelection | undefined {
  const dot = value.indexOf(".");
  const framing = dot < 0 ? value : value.slice(0, dot);
  if (framing !== "qmux-00" && framing !== "webtransport") return undefined;
  return { subprotocol: value, framing, protocol: dot < 0 ? "" : value.slice(dot + 1) };
}

/**
 * Picks one of `offered`. Framings are tried in the server's order of preference; within a
 * framing, `<framing>.<app>` is chosen for the first of `appProtocols` the client offered, else
 * the bare framing (which leads to the SETUP exchange), else `<framing>.moql` (same exchange).
 * Returns undefined when nothing offered is supported.
 */
export function selectSubprotocol(
  offered: Iterable<string>,
  framings: readonly Framing[] = DEFAULT_FRAMINGS,
  appProtocols: readonly string[] = [],
): SubprotocolSelection | undefined {
  const set = new Set([...offered].map((value) => value.trim()));
  for (const framing of framings) {
    for (const app of appProtocols) {
      const value = `${framing}.${app}`;
      if (set.has(value)) return { subprotocol: value, framing, protocol: app };
    }
    if (set.has(framing)) return { subprotocol: framing, framing, protocol: "" };
    const moql = `${framing}.moql`;
    if (set.has(moql)) return { subprotocol: moql, framing, protocol: "moql" };
  }
  return undefined;
}

/** What a client offers: for each framing, `<framing>.<app>` per application protocol, then the bare framing. */
export function offeredSubprotocols(
  framings: readonly Framing[],
  appProtocols: readonly string[] = [],
): string[] {
  const out: string[] = [];
  for (const framing of framings) {
    for (const app of appProtocols) out.push(`${framing}.${app}`);
    out.push(framing);
  }
  return out;
}
