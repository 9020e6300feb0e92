import type { ViteUserConfig } from "vitest/config";

/**
 * Resolve workspace packages to their sources (the `@lvqr/source` export condition) in tests, so a
 * test never runs against a stale `dist/`. Vitest runs tests in Vite's SSR environment, which reads
 * its conditions from `ssr.resolve`.
 */
export const resolveWorkspaceSources: Pick<ViteUserConfig, "resolve" | "ssr"> = {
  resolve: { conditions: ["@lvqr/source"] },
  ssr: { resolve: { conditions: ["@lvqr/source"], externalConditions: ["@lvqr/source"] } },
};
