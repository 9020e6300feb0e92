import { defineConfig } from "vitest/config";

export default defineConfig({
  // A live test waits for real LL-HLS segments (about 2 s each).
  test: { include: ["test/**/*.test.ts"], testTimeout: 120_000, hookTimeout: 60_000 },
});
