import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureStream, Fabric, NotProvisionedError } from "@loominal/fabric";
import { streams, subjects } from "@loominal/protocol";
import { NatsServer, tempDir } from "@loominal/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "./cli.test-helper.js";

type GeneratedConfig = { accounts: { LOOMINAL: { users: Array<{ user: string; password: string }> } } };

describe("loominal nats-config and nats-provision", () => {
  const dir = tempDir();
  const servers: NatsServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    dir.cleanup();
  });

  it("writes a 0600 config a real nats-server accepts; the admin provisions what the users may only use", async () => {
    const out = join(dir.path, "nats.json");
    // An existing world-readable file keeps no say over the mode of the passwords written into it.
    writeFileSync(out, "{}");
    chmodSync(out, 0o644);
    const r = await runCli(
      [
        "nats-config",
        "--user",
        "alice:proj-a",
        "--user",
        "bob:proj-b",
        "--admin",
        "root",
        "--out",
        out,
        "--store-dir",
        join(dir.path, "js"),
      ],
      { cwd: dir.path },
    );
    expect(r.code).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(r.stdout).toContain("replies under _INBOX_alice");
    const config = JSON.parse(readFileSync(out, "utf8")) as GeneratedConfig;
    const password = (user: string) =>
      config.accounts.LOOMINAL.users.find((u) => u.user === user)?.password ?? "";
    expect(password("alice").length).toBeGreaterThan(20);
    expect(password("root").length).toBeGreaterThan(20);
    for (const user of ["alice", "bob", "root"]) expect(r.stdout + r.stderr).not.toContain(password(user));
    const server = await NatsServer.start({ configFile: out, jetstream: false });
    servers.push(server);

    const f = await Fabric.connect({
      nats: { servers: [server.url], user: "alice", password: password("alice") },
    });
    const work = (p: string) => ({
      name: streams.work(p),
      subjects: [subjects.workAll(p)],
      retention: "workqueue" as const,
      duplicateWindowMs: 120_000,
    });
    try {
      await expect(ensureStream(f, work("proj-a"))).rejects.toBeInstanceOf(NotProvisionedError);
      const provisioned = await runCli(["nats-provision", "--project", "proj-a"], {
        cwd: dir.path,
        env: { NATS_URL: server.url, NATS_USER: "root", NATS_PASSWORD: password("root") },
      });
      expect(provisioned.code).toBe(0);
      expect(provisioned.stdout).toContain(`created stream ${streams.work("proj-a")}`);
      expect(provisioned.stdout + provisioned.stderr).not.toContain(password("root"));
      await expect(ensureStream(f, work("proj-a"))).resolves.toBeDefined();
      await expect(ensureStream(f, work("proj-b"))).rejects.toThrow(/refused/);
      // A second run finds everything in place.
      const again = await runCli(["nats-provision", "--project", "proj-a"], {
        cwd: dir.path,
        env: { NATS_URL: server.url, NATS_USER: "root", NATS_PASSWORD: password("root") },
      });
      expect(again.stdout).toMatch(/0 created or updated/);
      // A project user cannot provision: the error says what to run.
      const denied = await runCli(["nats-provision", "--project", "proj-b"], {
        cwd: dir.path,
        env: { NATS_URL: server.url, NATS_USER: "alice", NATS_PASSWORD: password("alice") },
      });
      expect(denied.code).toBe(1);
      expect(denied.stderr).toMatch(/refused|nats-provision/);
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
