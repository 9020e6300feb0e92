import { defineProject } from "vitest/config";
import { resolveWorkspaceSources } from "../../vitest.shared.ts";

export default defineProject({
  ...resolveWorkspaceSources,
  // Live media tests wait for real segments (about 2 s each), so the defaults are too short.
  test: { name: "test-utils", include: ["test/**/*.test.ts"], testTimeout: 60_000, hookTimeout: 60_000 },
});
