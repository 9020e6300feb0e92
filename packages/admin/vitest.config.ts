import { defineProject } from "vitest/config";
import { resolveWorkspaceSources } from "../../vitest.shared.ts";

export default defineProject({
  ...resolveWorkspaceSources,
  test: { name: "admin", include: ["test/**/*.test.ts"] },
});
