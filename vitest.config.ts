import { defineConfig } from "vitest/config";

// One vitest project per workspace package (each has its own vitest.config.ts). The JSON report
// is what `.ci/run` reads to print the totals.
export default defineConfig({
  test: {
    projects: ["packages/*", "apps/*", "tools/*"],
    reporters: ["default", ["json", { outputFile: ".vitest-report.json" }]],
  },
});
