import { defineProject } from "vitest/config";

export default defineProject({
  resolve: { conditions: ["@lvqr/source"] },
  test: { name: "ingest-rtmp", include: ["test/**/*.test.ts"] },
});
