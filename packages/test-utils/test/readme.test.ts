import { readFile } from "node:fs/promises";
import { expect, it } from "vitest";

// The README's complete example is the downstream example project's test, which CI installs from
// packed tarballs and runs; keeping them identical keeps the README honest.
it("the README's complete vitest example is the downstream example's test, verbatim", async () => {
  const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("## A complete vitest example"));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  const example = await readFile(
    new URL("../../../tools/downstream-example/template/test/live.test.ts", import.meta.url),
    "utf8",
  );
  expect(block).toBe(example);
});
