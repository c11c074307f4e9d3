import { execFileSync } from "node:child_process";
import { readFileSync, realpathSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { NatsServer, spawnStdio, tempDir } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runCli } from "./cli.test-helper.js";
import { cliVersion } from "./version.js";

interface McpJson {
  mcpServers: Record<string, { type: string; command: string; args: string[]; env: Record<string, string> }>;
}

const project = tempDir("loom-cli-");
let nats: NatsServer;

beforeAll(async () => {
  nats = await NatsServer.start();
});

afterAll(async () => {
  await nats?.stop();
  project.cleanup();
});

describe("loominal mcp-config", () => {
  test("prints a .mcp.json with the four servers: absolute node and bin paths, NATS_URL", async () => {
    const run = await runCli(["mcp-config"], {
      cwd: project.path,
      env: { NATS_URL: "nats://127.0.0.1:4333" },
    });
    expect(run.code).toBe(0);
    const config = JSON.parse(run.stdout) as {
      mcpServers: Record<
        string,
        { type: string; command: string; args: string[]; env: Record<string, string> }
      >;
    };
    expect(Object.keys(config.mcpServers).sort()).toEqual([
      "loominal-pattern",
      "loominal-shuttle",
      "loominal-warp",
      "loominal-weft",
    ]);
    for (const [name, entry] of Object.entries(config.mcpServers)) {
      const part = name.replace("loominal-", "");
      expect(entry.type).toBe("stdio");
      expect(isAbsolute(entry.command)).toBe(true);
      expect(isAbsolute(entry.args[0] ?? "")).toBe(true);
      if (part === "weft") {
        expect(entry.args).toEqual([expect.stringMatching(/\/apps\/weft\/dist\/bin\.js$/), "mcp"]);
      } else {
        expect(entry.args).toHaveLength(1);
        expect(entry.args[0]).toMatch(new RegExp(`/packages/${part}/dist/bin\\.js$`));
      }
      expect(entry.env).toEqual({ NATS_URL: "nats://127.0.0.1:4333" });
    }
  });

  test("starts each configured server exactly as written, and each lists its tools", async () => {
    const run = await runCli(["mcp-config"], { cwd: project.path, env: { NATS_URL: nats.url } });
    expect(run.code).toBe(0);
    // The servers must be built for the config to work; warnings name any that are not.
    expect(run.stderr).toBe("");
    const config = JSON.parse(run.stdout) as McpJson;
    for (const [name, entry] of Object.entries(config.mcpServers)) {
      const client = await spawnStdio({
        command: entry.command,
        args: entry.args,
        env: entry.env,
        cwd: project.path,
      });
      try {
        const tools = await client.listTools();
        expect(tools.length, name).toBeGreaterThan(0);
      } finally {
        await client.close();
      }
    }
  });

  test("--tools sets LOOMINAL_TOOLS for every server; a value other than core or full is refused", async () => {
    const run = await runCli(["mcp-config", "--tools", "full"], {
      cwd: project.path,
      env: { NATS_URL: "nats://127.0.0.1:4333" },
    });
    expect(run.code).toBe(0);
    const config = JSON.parse(run.stdout) as McpJson;
    expect(Object.keys(config.mcpServers)).toHaveLength(4);
    for (const entry of Object.values(config.mcpServers)) {
      expect(entry.env).toEqual({ NATS_URL: "nats://127.0.0.1:4333", LOOMINAL_TOOLS: "full" });
    }
    const bad = await runCli(["mcp-config", "--tools", "all"], {
      cwd: project.path,
      env: { NATS_URL: "nats://127.0.0.1:4333" },
    });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--tools must be core or full (what LOOMINAL_TOOLS takes), got "all"');
  });

  test("never prints credentials from NATS_URL or NATS_PASSWORD", async () => {
    const run = await runCli(["mcp-config"], {
      cwd: project.path,
      env: {
        NATS_URL: "nats://alice:s3cret-pw@127.0.0.1:4333",
        NATS_USER: "alice",
        NATS_PASSWORD: "s3cret-pw",
      },
    });
    expect(run.code).toBe(0);
    expect(run.stdout + run.stderr).not.toContain("s3cret");
    const config = JSON.parse(run.stdout) as { mcpServers: Record<string, { env: Record<string, string> }> };
    expect(config.mcpServers["loominal-warp"]?.env.NATS_URL).toBe("nats://127.0.0.1:4333");
    expect(run.stderr).toContain("credentials");

    // Credentials in the URL that contradict NATS_PASSWORD are a configuration error, still unprinted.
    const conflict = await runCli(["mcp-config"], {
      cwd: project.path,
      env: {
        NATS_URL: "nats://alice:s3cret-pw@127.0.0.1:4333",
        NATS_USER: "alice",
        NATS_PASSWORD: "other-s3cret",
      },
    });
    expect(conflict.code).toBe(2);
    expect(conflict.stderr).toContain(
      "NATS_URL carries a user and password that differ from NATS_USER/NATS_PASSWORD",
    );
    expect(conflict.stdout + conflict.stderr).not.toContain("s3cret");
  });
});

describe("loominal mcp-config --write and --claude", () => {
  test("--write merges into .mcp.json, keeps another server, and each written server lists its tools", async () => {
    const dir = tempDir("loom-mcp-write-");
    try {
      const file = join(dir.path, ".mcp.json");
      const other = { command: "npx", args: ["-y", "some-other-server"], env: { TOKEN_FILE: "/x" } };
      writeFileSync(file, JSON.stringify({ mcpServers: { other }, note: "kept" }, null, 4));

      const write = await runCli(["mcp-config", "--write"], { cwd: dir.path, env: { NATS_URL: nats.url } });
      expect(write.stderr).toBe("");
      expect(write.code).toBe(0);
      expect(write.stdout).toContain("loominal-warp: added");
      expect(write.stdout).toContain("kept as they were: other");
      const written = JSON.parse(readFileSync(file, "utf8")) as McpJson & { note: string };
      expect(written.note).toBe("kept");
      expect(written.mcpServers.other).toEqual(other);
      expect(Object.keys(written.mcpServers).sort()).toEqual([
        "loominal-pattern",
        "loominal-shuttle",
        "loominal-warp",
        "loominal-weft",
        "other",
      ]);
      // The file's own indentation is kept.
      expect(readFileSync(file, "utf8")).toMatch(/^\{\n {4}"/);

      // Spawned exactly as Claude Code would from the file (the other SDK generation than the test above).
      for (const [name, entry] of Object.entries(written.mcpServers)) {
        if (name === "other") continue;
        const client = await spawnStdio({
          sdk: "v1",
          command: entry.command,
          args: entry.args,
          env: entry.env,
          cwd: dir.path,
        });
        try {
          expect((await client.listTools()).length, name).toBeGreaterThan(0);
        } finally {
          await client.close();
        }
      }

      const again = await runCli(["mcp-config", "--write"], { cwd: dir.path, env: { NATS_URL: nats.url } });
      expect(again.code).toBe(0);
      expect(again.stdout.match(/: unchanged/g)).toHaveLength(4);
    } finally {
      dir.cleanup();
    }
  });

  test("--write refuses to overwrite a differing entry without --force, and writes nothing", async () => {
    const dir = tempDir("loom-mcp-write-");
    try {
      const file = join(dir.path, ".mcp.json");
      const mine = {
        type: "stdio",
        command: "/opt/node",
        args: ["/opt/warp.js"],
        env: { NATS_URL: "nats://x:1" },
      };
      const before = `${JSON.stringify({ mcpServers: { "loominal-warp": mine, other: { command: "true" } } }, null, 2)}\n`;
      writeFileSync(file, before);

      const refused = await runCli(["mcp-config", "--write"], { cwd: dir.path, env: { NATS_URL: nats.url } });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('already has "loominal-warp" with a different command');
      expect(refused.stderr).toContain("--write --force");
      expect(readFileSync(file, "utf8")).toBe(before);

      const forced = await runCli(["mcp-config", "--write", "--force"], {
        cwd: dir.path,
        env: { NATS_URL: nats.url },
      });
      expect(forced.code).toBe(0);
      expect(forced.stdout).toContain("loominal-warp: replaced");
      expect(forced.stdout).toContain("loominal-weft: added");
      const written = JSON.parse(readFileSync(file, "utf8")) as McpJson;
      expect(written.mcpServers["loominal-warp"]?.env.NATS_URL).toBe(nats.url);
      expect(written.mcpServers.other).toEqual({ command: "true" });

      writeFileSync(file, "{ not json");
      const broken = await runCli(["mcp-config", "--write"], { cwd: dir.path, env: { NATS_URL: nats.url } });
      expect(broken.code).toBe(2);
      expect(broken.stderr).toContain(`${realpathSync(dir.path)}/.mcp.json is not valid JSON`);
      expect(readFileSync(file, "utf8")).toBe("{ not json");
    } finally {
      dir.cleanup();
    }
  });

  test("--claude prints one 'claude mcp add' per server whose words are the written command", async () => {
    const env = { NATS_URL: "nats://127.0.0.1:4333,nats://127.0.0.1:4334" };
    const json = JSON.parse((await runCli(["mcp-config"], { cwd: project.path, env })).stdout) as McpJson;
    const run = await runCli(["mcp-config", "--claude"], { cwd: project.path, env });
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split("\n");
    expect(lines).toHaveLength(4);
    for (const line of lines) {
      // What a POSIX shell makes of the line: its argv after `claude`.
      const words = execFileSync("sh", ["-c", `printf '%s\\n' ${line.replace(/^claude /, "")}`], {
        encoding: "utf8",
      })
        .trimEnd()
        .split("\n");
      expect(words.slice(0, 6)).toEqual(["mcp", "add", "--transport", "stdio", "--scope", "project"]);
      const entry = json.mcpServers[words[6] ?? ""];
      expect(entry, line).toBeDefined();
      // The name comes before -e (which takes several values), and `--` ends claude's options.
      expect(words.slice(7, 10)).toEqual(["-e", `NATS_URL=${env.NATS_URL}`, "--"]);
      expect(words.slice(10)).toEqual([entry?.command, ...(entry?.args ?? [])]);
    }
    const user = await runCli(["mcp-config", "--claude", "--scope", "user"], { cwd: project.path, env });
    expect(user.stdout).toContain("--scope user loominal-warp -e");
    const bad = await runCli(["mcp-config", "--claude", "--scope", "team"], { cwd: project.path, env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--scope must be local, project or user");
  });
});

describe("loominal version", () => {
  test("prints the package version and the node and nats-server versions", async () => {
    const run = await runCli(["version", "--json"], { cwd: project.path });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      loominal: cliVersion(),
      node: process.versions.node,
      natsServer: expect.stringMatching(/^\d+\.\d+\.\d+/),
    });
    const text = await runCli(["version"], { cwd: project.path });
    expect(text.stdout).toContain(`loominal     ${cliVersion()}`);
  });

  test("an unknown command or option is exit code 2", async () => {
    expect((await runCli(["no-such-command"], { cwd: project.path })).code).toBe(2);
    expect((await runCli(["up", "--no-such-option"], { cwd: project.path })).code).toBe(2);
  });
});
