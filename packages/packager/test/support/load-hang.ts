/**
 * Test support: loads the official `@moq/hang` (catalog schema and CMAF decoder) in Node. Its
 * published ESM uses extension-less relative imports (`./audio`), which Node's resolver rejects,
 * so a synchronous resolve hook retries such specifiers with `.js` and `/index.js`.
 */

import { registerHooks } from "node:module";

let registered = false;

function registerExtensionlessResolve(): void {
  if (registered) return;
  registered = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const fromMoq = context.parentURL?.includes("/@moq/") ?? false;
      if (!fromMoq || !specifier.startsWith(".") || /\.[cm]?js$/.test(specifier)) {
        return nextResolve(specifier, context);
      }
      for (const candidate of [`${specifier}.js`, `${specifier}/index.js`]) {
        try {
          return nextResolve(candidate, context);
        } catch {
          // try the next form
        }
      }
      return nextResolve(specifier, context);
    },
  });
}

/** The part of the official catalog schema the tests use (its published .d.ts re-exports are extension-less too). */
export interface HangCatalogModule {
  readonly RootSchema: {
    safeParse(value: unknown): { success: boolean; data?: unknown; error?: { issues: unknown } };
  };
}

/** `@moq/hang/catalog`: `RootSchema` and friends. */
export async function loadHangCatalog(): Promise<HangCatalogModule> {
  registerExtensionlessResolve();
  return (await import("@moq/hang/catalog")) as unknown as HangCatalogModule;
}

/** `@moq/hang/container`: the `Cmaf` decoder the official player uses. */
export async function loadHangContainer(): Promise<typeof import("@moq/hang/container")> {
  registerExtensionlessResolve();
  return import("@moq/hang/container");
}
