import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@loominal/protocol";
import { describe, expect, it } from "vitest";
import { AgentCatalog, parseAgentsFile, TOOL_NAMES } from "./agents.js";

describe("agent definitions", () => {
  it("has the four mock agents without any file", () => {
    const catalog = AgentCatalog.load(undefined);
    expect(catalog.list().map((a) => a.name)).toEqual([
      "mock-generic",
      "mock-researcher",
      "mock-editor",
      "mock-evaluator",
    ]);
    const researcher = catalog.get("mock-researcher");
    expect(researcher?.providers).toEqual([{ provider: "mock" }]);
    expect(researcher?.maxIterations).toBe(16);
    expect(researcher?.tools).toEqual([...TOOL_NAMES]);
  });

  it("reads YAML and JSON files, and a file entry replaces a built-in of its name", () => {
    const dir = mkdtempSync(join(tmpdir(), "runner-agents-"));
    const yamlFile = join(dir, "agents.yaml");
    writeFileSync(
      yamlFile,
      [
        "agents:",
        "  - name: writer",
        "    model: claude-sonnet-4-5",
        "    system: You write.",
        "    providers:",
        "      - provider: anthropic",
        "      - provider: openai",
        "        model: gpt-4o-mini",
        "        baseUrl: http://127.0.0.1:8080/v1",
        "    tools: [memory_get, memory_set]",
        "    maxIterations: 4",
        "  - name: mock-generic",
        "    model: generic",
        "    providers: [{ provider: mock, mock: { latencyMs: 0, rate429: 0.5 } }]",
      ].join("\n"),
    );
    const catalog = AgentCatalog.load(yamlFile);
    const writer = catalog.get("writer");
    expect(writer?.providers.map((p) => p.provider)).toEqual(["anthropic", "openai"]);
    expect(writer?.tools).toEqual(["memory_get", "memory_set"]);
    expect(writer?.maxIterations).toBe(4);
    expect(catalog.get("mock-generic")?.providers[0]?.mock).toEqual({ latencyMs: 0, rate429: 0.5 });

    const json = parseAgentsFile(
      JSON.stringify([{ name: "j", model: "m", providers: [{ provider: "mock" }] }]),
      "test.json",
    );
    expect(json[0]?.name).toBe("j");
  });

  it("says which field of which agent is wrong", () => {
    expect(() => parseAgentsFile("- name: x\n  providers: []\n  model: m\n", "f.yaml")).toThrow(
      /f.yaml has invalid agent definitions: 0.providers/,
    );
    expect(() =>
      parseAgentsFile("- name: x\n  providers: [{provider: gemini}]\n  model: m\n", "f.yaml"),
    ).toThrow(ConfigError);
    expect(() => parseAgentsFile("- name: x\n  providers: [{provider: mock}]\n", "f.yaml")).toThrow(
      /every provider needs a model/,
    );
    expect(() =>
      parseAgentsFile("- {name: x, model: m, providers: [{provider: mock}], tools: [shell]}\n", "f.yaml"),
    ).toThrow(/tools/);
    expect(() => parseAgentsFile("a: [", "f.yaml")).toThrow(/not valid YAML or JSON/);
    expect(() =>
      parseAgentsFile(
        "- {name: x, model: m, providers: [{provider: mock}]}\n- {name: x, model: m, providers: [{provider: mock}]}\n",
        "f.yaml",
      ),
    ).toThrow(/defines agent x twice/);
    expect(() => AgentCatalog.load("/nonexistent/agents.yaml")).toThrow(/RUNNER_AGENTS names/);
  });
});
