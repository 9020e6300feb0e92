import { defineProject } from "vitest/config";

export default defineProject({
  resolve: { conditions: ["@lvqr/source"] },
  test: { name: "cluster", include: ["test/**/*.test.ts"] },
});
