import { isAbsolute } from "node:path";
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
