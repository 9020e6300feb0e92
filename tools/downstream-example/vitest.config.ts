import { defineProject } from "vitest/config";

export default defineProject({
  // Packing, a real npm install and a nested test run: minutes, not seconds.
  test: {
    name: "downstream-example",
    include: ["test/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 300_000,
  },
});
