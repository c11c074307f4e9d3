import fc from "fast-check";
import picomatch from "picomatch";
import { describe, expect, it } from "vitest";
import { leasePathMatches, leasePathsOverlap, normaliseLeasePath } from "./globs.js";

describe("lease path overlap", () => {
  it.each([
    ["src/**", "src/a.ts"],
    ["src", "src/deep/file.ts"],
    ["packages/warp", "packages/*/src/**/*.ts"],
    ["src/**", "**/*.test.ts"],
    ["src/*.ts", "src/a.ts"],
    ["src/{a,b}.ts", "src/b.*"],
    ["src/[ab].ts", "src/?.ts"],
    ["src/[!a].ts", "src/b.ts"],
    ["a*b", "*ab*"],
    ["docs/**/*.md", "docs/guide/intro.md"],
    ["**/.env", ".env"],
    ["lib/x*", "lib/*y"],
  ])("%s and %s overlap", (a, b) => {
    expect(leasePathsOverlap(a, b)).toBe(true);
    expect(leasePathsOverlap(b, a)).toBe(true);
  });

  it.each([
    ["src/*.ts", "src/a.js"],
    ["packages/warp", "packages/warpx"],
    ["packages/warp/**", "packages/weft/**"],
    ["*.md", "docs/a.md"],
    ["src/[ab].ts", "src/c.ts"],
    ["src/[!a].ts", "src/a.ts"],
    ["src/{a,b}.ts", "src/c.ts"],
    ["a*b", "*c"],
    ["src/left/**", "src/right/**"],
    ["src/a/*.ts", "src/a/b/*.ts"],
    ["test/**/*.spec.ts", "test/**/*.test.ts"],
  ])("%s and %s are disjoint, though they may share a prefix", (a, b) => {
    expect(leasePathsOverlap(a, b)).toBe(false);
    expect(leasePathsOverlap(b, a)).toBe(false);
  });

  // Small alphabets make an exhaustive check possible: every path over them up to three segments.
  const SEGMENT_PATTERNS = ["a", "b", "ab", "*", "a*", "*b", "?", "??", "[ab]", "[!a]", "a?", "**"];
  const NAMES = ["a", "b", "c", "aa", "ab", "ba", "bb", "abb", "aab", "bab"];
  const paths: string[] = [];
  for (const x of NAMES) {
    paths.push(x);
    for (const y of NAMES) {
      paths.push(`${x}/${y}`);
      for (const z of NAMES) paths.push(`${x}/${y}/${z}`);
    }
  }
  const pattern = fc
    .array(fc.constantFrom(...SEGMENT_PATTERNS), { minLength: 1, maxLength: 2 })
    .map((s) => s.join("/"))
    .filter((p) => p !== "**" && p !== "**/**");

  // What a lease path covers, as documented: itself, below it when it is a plain path, and `x/**` covers `x`.
  const reference = (glob: string) => {
    const p = glob.replaceAll("[!", "[^");
    return [
      p,
      ...(picomatch.scan(p).isGlob ? [] : [`${p}/**`]),
      ...(p.endsWith("/**") ? [p.slice(0, -3)] : []),
    ];
  };

  it("agrees with picomatch: overlap exactly when some path matches both (exhaustive over small paths)", () => {
    fc.assert(
      fc.property(pattern, pattern, (a, b) => {
        const ma = picomatch(reference(a), { dot: true });
        const mb = picomatch(reference(b), { dot: true });
        const witness = paths.find((p) => ma(p) && mb(p));
        expect(leasePathsOverlap(a, b), `${a} vs ${b}, witness ${witness}`).toBe(witness !== undefined);
        if (witness !== undefined)
          expect(leasePathMatches(a, witness) && leasePathMatches(b, witness)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it("matches files like picomatch, a plain path covering what is below it", () => {
    expect(leasePathMatches("src", "src/a/b.ts")).toBe(true);
    expect(leasePathMatches("src", "srcx/a.ts")).toBe(false);
    expect(leasePathMatches("src/*.ts", "src/.hidden.ts")).toBe(true);
    expect(leasePathMatches("src/[!a].ts", "src/a.ts")).toBe(false);
    expect(leasePathMatches("src/[!a].ts", "src/b.ts")).toBe(true);
    expect(leasePathMatches("*/**", "lib")).toBe(true);
    expect(leasePathMatches("src/{a,b}/**", "src/b/c.ts")).toBe(true);
  });
});

describe("lease path normalisation", () => {
  it("makes paths relative and /-separated, and refuses what a lease cannot mean", () => {
    expect(normaliseLeasePath("./src//api/")).toBe("src/api");
    expect(normaliseLeasePath("src\\api\\x.ts")).toBe("src/api/x.ts");
    expect(normaliseLeasePath("/repo/src/a.ts", "/repo")).toBe("src/a.ts");
    expect(() => normaliseLeasePath("/elsewhere/a.ts", "/repo")).toThrow(/outside the project directory/);
    expect(() => normaliseLeasePath("../a.ts")).toThrow(/'\.\.'/);
    expect(() => normaliseLeasePath("!src/**")).toThrow(/negation/);
    expect(() => normaliseLeasePath("src/@(a|b).ts")).toThrow(/extglob/);
    expect(() => normaliseLeasePath("**")).toThrow(/whole repository/);
    expect(() => normaliseLeasePath(".")).toThrow(/repository root/);
    expect(() => normaliseLeasePath("src/{1..100}.ts")).toThrow(/alternatives|expanded/);
  });
});
