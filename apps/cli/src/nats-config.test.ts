import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ensureStream, Fabric } from "@loominal/fabric";
import { NatsServer, tempDir } from "@loominal/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "./cli.test-helper.js";

describe("loominal nats-config", () => {
  const dir = tempDir();
  const servers: NatsServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    dir.cleanup();
  });

  it("writes a config a real nats-server accepts, with passwords only in the file", async () => {
    const out = join(dir.path, "nats.json");
    const r = await runCli(
      [
        "nats-config",
        "--user",
        "alice:proj-a",
        "--user",
        "bob:proj-b",
        "--out",
        out,
        "--store-dir",
        join(dir.path, "js"),
      ],
      { cwd: dir.path },
    );
    expect(r.code).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const config = JSON.parse(readFileSync(out, "utf8")) as {
      accounts: { LOOMINAL: { users: Array<{ user: string; password: string }> } };
    };
    const alice = config.accounts.LOOMINAL.users.find((u) => u.user === "alice");
    expect(alice?.password.length).toBeGreaterThan(20);
    expect(r.stdout + r.stderr).not.toContain(alice?.password ?? "none");
    const server = await NatsServer.start({ configFile: out, jetstream: false });
    servers.push(server);
    const f = await Fabric.connect({
      nats: { servers: [server.url], user: "alice", password: alice?.password ?? "" },
    });
    try {
      const spec = (p: string) => ({ name: `loom_${p}_work`, subjects: [`loom.${p}.work.>`] });
      await expect(ensureStream(f, spec("proj-a"))).resolves.toBeDefined();
      await expect(ensureStream(f, spec("proj-b"))).rejects.toThrow();
    } finally {
      await f.close();
    }
    await expect(
      Fabric.connect({ nats: { servers: [server.url], user: "alice", password: "wrong" } }),
    ).rejects.toThrow();
  });

  it("names the bad --user", async () => {
    const r = await runCli(["nats-config", "--user", "alice:Bad.Proj", "--out", join(dir.path, "x.json")], {
      cwd: dir.path,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--user "alice:Bad\.Proj": projectId/);
  });
});
