import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@loominal/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { loadHookBundle } from "./hook-loader.js";

const dir = tempDir("hook-loader-");
afterAll(() => dir.cleanup());

/** A stand-in bundle: CommonJS exporting a hookMain that answers `code`. */
const bundleSource = (code: number) => `exports.hookMain = async () => ${code};\n`;

describe("loadHookBundle", () => {
  it("runs the bundle, keeps a code cache beside it, and never runs a cache against another bundle", async () => {
    const bundle = join(dir.path, "hook.bundle.cjs");
    expect(loadHookBundle(bundle)).toBeUndefined();

    writeFileSync(bundle, bundleSource(3));
    const first = loadHookBundle(bundle);
    expect(await first?.main.hookMain("Stop")).toBe(3);
    first?.saveCache();
    const cache = readFileSync(`${bundle}.cache`);

    // Accepted: nothing to write again.
    const second = loadHookBundle(bundle);
    expect(await second?.main.hookMain("Stop")).toBe(3);
    writeFileSync(`${bundle}.cache`, cache);
    second?.saveCache();
    expect(readFileSync(`${bundle}.cache`).equals(cache)).toBe(true);

    // A rebuilt bundle of the same length is compiled from its source, and the cache is replaced.
    writeFileSync(bundle, bundleSource(4));
    const rebuilt = loadHookBundle(bundle);
    expect(await rebuilt?.main.hookMain("Stop")).toBe(4);
    rebuilt?.saveCache();
    expect(readFileSync(`${bundle}.cache`).equals(cache)).toBe(false);
    expect(await loadHookBundle(bundle)?.main.hookMain("Stop")).toBe(4);

    // A damaged cache is only a slower start.
    writeFileSync(`${bundle}.cache`, "not a cache");
    expect(await loadHookBundle(bundle)?.main.hookMain("Stop")).toBe(4);
    expect(existsSync(`${bundle}.cache`)).toBe(true);
  });
});
