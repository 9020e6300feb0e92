import { defineProject } from "vitest/config";

export default defineProject({
  resolve: { conditions: ["@lvqr/source"] },
  test: { name: "test-utils", include: ["test/**/*.test.ts"] },
});
