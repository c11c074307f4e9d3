import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@loominal/testkit";
import { describe, expect, it } from "vitest";
import { loadWeftConfig, parseTokens, readConfigFile } from "./config.js";

const DOC = new URL("../../../docs/weft.md", import.meta.url);

/** The example config file of docs/weft.md, exactly as printed there. */
function exampleConfig(): string {
  const doc = readFileSync(DOC, "utf8");
  const block = doc.split("<!-- example-config:start -->")[1]?.split("<!-- example-config:end -->")[0] ?? "";
  const yaml = /```yaml\n([\s\S]*?)```/.exec(block)?.[1];
  if (!yaml) throw new Error("docs/weft.md has no example config between its markers");
  return yaml;
}

describe("config", () => {
  it("loads the complete example of docs/weft.md", () => {
    const dir = tempDir("weft-config-");
    try {
      const path = join(dir.path, "weft.yaml");
      writeFileSync(path, exampleConfig());
      const file = readConfigFile(path);
      expect(file.boundaries.map((b) => b.name)).toEqual([
        "corporate",
        "corporate-adjacent",
        "personal",
        "open-source",
        "default",
      ]);
      expect(file.boundaries[0]).toMatchObject({
        allowedAgentTypes: ["copilot-cli"],
        preferredAgentType: "copilot-cli",
      });
      expect(file.defaults.spinUp).toEqual({ timeoutMs: 60_000, maxConcurrent: 3, cooldownMs: 30_000 });
      expect(file.targets.map((t) => t.name)).toEqual(["local-claude", "local-copilot"]);
      const config = loadWeftConfig({
        env: { WEFT_CONFIG: path, WEFT_API_TOKENS: "a".repeat(20) },
        cwd: dir.path,
      });
      expect(config.port).toBe(3000);
      expect(config.host).toBe("0.0.0.0");
      expect(config.boundaries.find((b) => b.boundary === "corporate")?.allowedAgentTypes).toEqual([
        "copilot-cli",
      ]);
      // The same file as JSON.
      const json = join(dir.path, "weft.json");
      writeFileSync(json, JSON.stringify(file));
      expect(readConfigFile(json).targets).toHaveLength(2);
    } finally {
      dir.cleanup();
    }
  });

  it("takes the environment over the file over the defaults", () => {
    const dir = tempDir("weft-config-");
    try {
      const path = join(dir.path, "weft.yaml");
      writeFileSync(path, "port: 4000\nhost: 10.0.0.1\n");
      const fromFile = loadWeftConfig({ env: { WEFT_CONFIG: path }, cwd: dir.path });
      expect([fromFile.port, fromFile.host]).toEqual([4000, "10.0.0.1"]);
      const fromEnv = loadWeftConfig({
        env: { WEFT_CONFIG: path, WEFT_PORT: "5000", WEFT_HOST: "127.0.0.2" },
        cwd: dir.path,
      });
      expect([fromEnv.port, fromEnv.host]).toEqual([5000, "127.0.0.2"]);
      const defaults = loadWeftConfig({ env: {}, cwd: dir.path });
      expect([defaults.port, defaults.host]).toEqual([3000, "127.0.0.1"]);
      expect(defaults.boundaries).toEqual([{ boundary: "default", allowedAgentTypes: [], spinUp: true }]);
      expect(defaults.dataDir).toBe(join(dir.path, ".loominal"));
    } finally {
      dir.cleanup();
    }
  });

  it("names the file and field of a bad value, and the variable of a bad environment value", () => {
    const dir = tempDir("weft-config-");
    try {
      const path = join(dir.path, "weft.yaml");
      writeFileSync(path, "defaults:\n  spinUp:\n    maxConcurrent: 0\n");
      expect(() => readConfigFile(path)).toThrow(`${path}: defaults.spinUp.maxConcurrent`);
      writeFileSync(path, "boundaries: [{name: a}, {name: a}]\n");
      expect(() => readConfigFile(path)).toThrow(/declared twice/);
      writeFileSync(path, "colour: red\n");
      expect(() => readConfigFile(path)).toThrow(/colour/);
      expect(() => loadWeftConfig({ env: { WEFT_PORT: "99999" }, cwd: dir.path })).toThrow(/WEFT_PORT/);
      expect(() => loadWeftConfig({ env: { WEFT_CONFIG: "missing.yaml" }, cwd: dir.path })).toThrow(
        /missing\.yaml cannot be read/,
      );
    } finally {
      dir.cleanup();
    }
  });

  it("parses admin and project tokens and refuses short ones without echoing them", () => {
    expect(parseTokens("adminadminadminadmin, limitedlimitedlimited:proj-a+proj-b")).toEqual([
      { kind: "admin", token: "adminadminadminadmin" },
      { kind: "project", token: "limitedlimitedlimited", projects: ["proj-a", "proj-b"] },
    ]);
    expect(() => parseTokens("tiny")).toThrow(/shorter than 16/);
    try {
      parseTokens("tinysecret");
    } catch (err) {
      expect(String(err)).not.toContain("tinysecret");
    }
    expect(() => parseTokens("limitedlimitedlimited:Bad_Project")).toThrow(/Bad_Project/);
  });
});
