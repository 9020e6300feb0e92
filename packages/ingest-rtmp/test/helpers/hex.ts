/** Builds bytes from annotated hex: whitespace and `# comments` are ignored. */
export function hex(text: string): Uint8Array {
  const clean = text
    .split("\n")
    .map((line) => line.replace(/#.*/, ""))
    .join("")
    .replace(/\s+/g, "");
  if (clean.length % 2 !== 0) throw new Error("odd number of hex digits");
  return Uint8Array.from(Buffer.from(clean, "hex"));
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

/** Lowercase hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}
