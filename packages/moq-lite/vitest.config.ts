import { defineProject } from "vitest/config";

export default defineProject({
  resolve: { conditions: ["@lvqr/source"] },
  test: { name: "moq-lite", include: ["test/**/*.test.ts"] },
});
