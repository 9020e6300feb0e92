/** ClusterError codes and the name checks that protect keys and values. */

import { describe, expect, it } from "vitest";
import {
  BroadcastBusyError,
  ClusterError,
  isClusterError,
  validateBroadcastName,
  validateKeyPrefix,
  validateNodeId,
} from "../src/index.ts";

describe("ClusterError", () => {
  it("carries a stable code and is recognised across copies of the package", () => {
    const busy = new BroadcastBusyError(
      "live/x",
      { nodeId: "a", epoch: 7, lastMediaMs: 1 },
      "takeover-if-stale",
    );
    expect(busy).toBeInstanceOf(ClusterError);
    expect(busy.code).toBe("CLUSTER_BUSY");
    expect(busy.message).toBe(
      'broadcast "live/x" is owned by node "a" (epoch 7) and policy "takeover-if-stale" does not allow taking it over',
    );
    expect(isClusterError(busy, "CLUSTER_BUSY")).toBe(true);
    expect(isClusterError(busy, "CLUSTER_CLOSED")).toBe(false);
    // An error from another copy: same brand symbol, different class object.
    const foreign = Object.create(Object.prototype, {
      [Symbol.for("@lvqr/cluster.ClusterError")]: { value: true },
      code: { value: "CLUSTER_BUSY" },
    });
    expect(foreign instanceof ClusterError).toBe(true);
    expect(new Error("x") instanceof ClusterError).toBe(false);
    expect(isClusterError("CLUSTER_BUSY")).toBe(false);
  });
});

describe("name checks", () => {
  it("accepts what servers use and refuses what would corrupt keys, values or logs", () => {
    for (const ok of ["live/cam0", "app/stream-1", "a{b}c", "名前", "x".repeat(1024)]) {
      expect(() => validateBroadcastName(ok)).not.toThrow();
    }
    for (const bad of ["", "x".repeat(1025), "a\r\nb", "tab\tname", "\u007f", "\ud800"]) {
      expect(() => validateBroadcastName(bad)).toThrow(
        expect.objectContaining({ code: "CLUSTER_INVALID_NAME" }),
      );
    }
    for (const ok of ["node-a", "lvqr-AbC123", "10.0.0.1:4443", "n@host"])
      expect(() => validateNodeId(ok)).not.toThrow();
    for (const bad of ["", "a|b", "a b", "x".repeat(129), "ü"]) {
      expect(() => validateNodeId(bad)).toThrow(expect.objectContaining({ code: "CLUSTER_INVALID_NAME" }));
    }
    for (const ok of ["", "lv:", "prod/eu-1:"]) expect(() => validateKeyPrefix(ok)).not.toThrow();
  });
});
