import { defineProject } from "vitest/config";
import { resolveWorkspaceSources } from "../../vitest.shared.ts";

export default defineProject({
  ...resolveWorkspaceSources,
  test: { name: "ingest-rtmp", include: ["test/**/*.test.ts"] },
});
