import { defineProject } from "vitest/config";
import { resolveWorkspaceSources } from "../../vitest.shared.ts";

export default defineProject({
  ...resolveWorkspaceSources,
  test: { name: "cluster", include: ["test/**/*.test.ts"] },
});
