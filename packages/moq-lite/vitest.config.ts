import { defineProject } from "vitest/config";
import { resolveWorkspaceSources } from "../../vitest.shared.ts";

export default defineProject({
  ...resolveWorkspaceSources,
  test: { name: "moq-lite", include: ["test/**/*.test.ts"] },
});
