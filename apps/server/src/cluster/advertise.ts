/**
 * The base URLs a node advertises in the cluster registry: where peers pull MoQ from and where
 * HLS/DASH viewers are redirected to. Each `--cluster-advertise-*` flag wins; a missing one is
 * filled from the address the listener actually bound, so nodes started with `--port 0` (tests,
 * containers) need no flags. A wildcard bind (`0.0.0.0`, `::`) is advertised as the machine's first
 * non-internal IPv4 address, which is right on a flat network; behind NAT or a load balancer, set
 * the flags.
 */

import type { AddressInfo } from "node:net";
import { networkInterfaces } from "node:os";
import type { NodeEndpoints } from "@lvqr/cluster";

/** What {@link advertisedEndpoints} needs to know about the running listeners. */
export interface BoundListeners {
  readonly moq: AddressInfo;
  readonly hls: AddressInfo | undefined;
  readonly dash: AddressInfo | undefined;
  /** True when the MoQ listener speaks TLS (https/wss). */
  readonly moqTls: boolean;
}

/** The advertised endpoints, and which of them were derived rather than configured. */
export interface AdvertisedEndpoints {
  readonly endpoints: NodeEndpoints;
  readonly derived: ReadonlyArray<keyof NodeEndpoints>;
}

/** Endpoints from the flags, with the bound addresses filling the gaps. */
export function advertisedEndpoints(
  configured: { readonly moq?: string; readonly hls?: string; readonly dash?: string } | undefined,
  bound: BoundListeners,
): AdvertisedEndpoints {
  const derived: Array<keyof NodeEndpoints> = [];
  const pick = (
    name: keyof NodeEndpoints,
    address: AddressInfo | undefined,
    scheme: string,
  ): string | null => {
    const flag = configured?.[name];
    if (flag !== undefined && flag !== "") return trimTrailingSlash(flag);
    if (address === undefined) return null;
    derived.push(name);
    return `${scheme}://${hostOf(address)}:${address.port}`;
  };
  return {
    endpoints: {
      moq: pick("moq", bound.moq, bound.moqTls ? "https" : "http"),
      hls: pick("hls", bound.hls, "http"),
      dash: pick("dash", bound.dash, "http"),
    },
    derived,
  };
}

function trimTrailingSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/** A host peers can dial for a bound address (a wildcard becomes this machine's first external IPv4). */
function hostOf(address: AddressInfo): string {
  let ip = address.address;
  if (ip === "0.0.0.0" || ip === "::") ip = firstExternalIpv4() ?? "127.0.0.1";
  return ip.includes(":") ? `[${ip}]` : ip;
}

function firstExternalIpv4(): string | undefined {
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (entry.family === "IPv4" && !entry.internal) return entry.address;
    }
  }
  return undefined;
}
