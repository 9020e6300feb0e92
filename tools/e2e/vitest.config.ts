import { defineProject } from "vitest/config";
import { resolveWorkspaceSources } from "../../vitest.shared.ts";

// The end-to-end files drive real encoders, browsers and whole servers, and several measure
// playback smoothness and CPU: they run after every other project (groupOrder) and one file at a
// time, so they neither disturb nor get disturbed by the unit tests.
export default defineProject({
  ...resolveWorkspaceSources,
  test: {
    name: "e2e",
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    sequence: { groupOrder: 1 },
  },
});
