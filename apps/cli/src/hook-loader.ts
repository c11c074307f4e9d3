import { createHash } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Script } from "node:vm";

/** What the hook's bundle exports (src/hook-main.ts). */
export type HookMainModule = typeof import("./hook-main.js");

/**
 * Loads the hook's bundle (a CommonJS file, scripts/bundle-hook.mjs) with V8's code cache, kept beside it
 * in `<bundle>.cache` (after a digest of the bundle it belongs to): a hook starts on every prompt and tool call, and compiling 870 KB of JavaScript each
 * time is a third of its cost. The cache is written once, after the first run (so it holds the functions
 * that run compiled too), and again whenever V8 rejects it (another Node version, another bundle).
 * Undefined when there is no bundle. Nothing else of the package is loaded, so this module imports only
 * Node's own.
 */
export function loadHookBundle(bundle: string): { main: HookMainModule; saveCache: () => void } | undefined {
  let source: string;
  try {
    source = readFileSync(bundle, "utf8");
  } catch (err) {
    if ((err as { code?: unknown }).code === "ENOENT") return undefined;
    throw err;
  }
  const cacheFile = `${bundle}.cache`;
  // V8 checks a cache against the source's length only, so the cache starts with a digest of the source.
  const digest = createHash("sha256").update(source).digest();
  let cachedData: Buffer | undefined;
  try {
    const stored = readFileSync(cacheFile);
    if (stored.subarray(0, digest.length).equals(digest)) cachedData = stored.subarray(digest.length);
  } catch {
    // No cache yet: compiled from source, and the cache is written after this run.
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    ...(cachedData ? { cachedData } : {}),
  });
  const module = { exports: {} as HookMainModule };
  const wrapper = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: { exports: unknown },
    filename: string,
    dirname: string,
  ) => void;
  wrapper.call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  const stale = cachedData === undefined || script.cachedDataRejected === true;
  return {
    main: module.exports,
    saveCache: () => {
      if (!stale) return;
      try {
        // Written aside and renamed, so a hook starting meanwhile never reads half a cache.
        const partial = `${cacheFile}.${process.pid}`;
        writeFileSync(partial, Buffer.concat([digest, script.createCachedData()]));
        renameSync(partial, cacheFile);
      } catch {
        // A read-only installation: every run compiles the bundle, as without a cache.
      }
    },
  };
}
