import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The version of the package a module belongs to, from the nearest `package.json` above it (pass
 * `import.meta.url`), so a server reports what was released instead of a copy of the number.
 */
export function packageVersion(moduleUrl: string): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
        name?: unknown;
        version?: unknown;
      };
      if (typeof pkg.name === "string" && typeof pkg.version === "string") return pkg.version;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json with a version above ${moduleUrl}`);
    dir = parent;
  }
}
