import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** This CLI's version, from its package.json (one directory above dist/ and src/). */
export function cliVersion(): string {
  const manifest = JSON.parse(
    readFileSync(fileURLToPath(new URL("../package.json", import.meta.url)), "utf8"),
  ) as {
    version?: unknown;
  };
  return typeof manifest.version === "string" ? manifest.version : "0.0.0";
}
