import { defineProject } from "vitest/config";

export default defineProject({
  resolve: { conditions: ["@lvqr/source"] },
  test: { name: "admin", include: ["test/**/*.test.ts"] },
});
