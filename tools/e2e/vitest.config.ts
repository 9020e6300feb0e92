import { defineProject } from "vitest/config";

export default defineProject({
  resolve: { conditions: ["@lvqr/source"] },
  test: { name: "e2e", include: ["test/**/*.test.ts"], testTimeout: 120_000, hookTimeout: 120_000 },
});
