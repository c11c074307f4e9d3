import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureStream, Fabric, NotProvisionedError } from "@loominal/fabric";
import { streams, subjects } from "@loominal/protocol";
import { freePort, NatsServer, sleep, tempDir } from "@loominal/testkit";
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

  it("--k8s writes the Secrets deploy/k8s includes; nats-server with the overlay's config confines each project's pods", async () => {
    const out = join(dir.path, "nats-secrets.json");
    const r = await runCli(
      [
        "nats-config",
        "--k8s",
        "--user",
        "team_a:proj-a",
        "--user",
        "team-b:proj-b",
        "--admin",
        "services",
        "--out",
        out,
      ],
      { cwd: dir.path },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    type Secret = {
      kind: string;
      metadata: { name: string; namespace: string };
      stringData: Record<string, string>;
    };
    const list = JSON.parse(readFileSync(out, "utf8")) as { kind: string; items: Secret[] };
    expect(list.kind).toBe("List");
    expect(list.items.map((i) => i.metadata.name)).toEqual([
      "nats-accounts",
      "nats-service-user",
      "nats-user-team-a",
      "nats-user-team-b",
    ]);
    for (const i of list.items)
      expect(i).toMatchObject({ kind: "Secret", metadata: { namespace: "loominal" } });
    const secret = (name: string) => list.items.find((i) => i.metadata.name === name)?.stringData ?? {};
    expect(secret("nats-user-team-a")).toMatchObject({ NATS_USER: "team_a", LOOMINAL_PROJECT_ID: "proj-a" });
    expect(secret("nats-service-user").NATS_USER).toBe("services");
    for (const s of list.items.slice(1))
      expect(r.stdout + r.stderr).not.toContain(s.stringData.NATS_PASSWORD);
    // One user per project, each with its own permissions, in the accounts block.
    const accounts = secret("nats-accounts")["accounts.conf"] ?? "";
    expect(accounts).toMatch(/"user": "team_a"[\s\S]*"permissions"/);
    expect(accounts).toContain("loom.proj-a.>");
    expect(accounts).toContain("loom.proj-b.>");

    // The exact single-node nats.conf of deploy/k8s (only its paths and ports changed for this host),
    // with the Secret where the StatefulSet mounts it: /etc/nats/nats.conf includes ../nats-auth/accounts.conf.
    const root = join(dir.path, "k8s-etc");
    mkdirSync(join(root, "nats"), { recursive: true });
    mkdirSync(join(root, "nats-auth"), { recursive: true });
    const overlayConf = readFileSync(
      join(import.meta.dirname, "../../../deploy/k8s/overlays/single-node/nats.conf"),
      "utf8",
    );
    expect(overlayConf).toContain("include ../nats-auth/accounts.conf");
    writeFileSync(
      join(root, "nats", "nats.conf"),
      overlayConf
        .replace(/^http_port: \d+$/m, `http_port: ${await freePort()}`)
        .replace(/store_dir: \/data/, `store_dir: ${join(dir.path, "k8s-js")}`),
    );
    writeFileSync(join(root, "nats-auth", "accounts.conf"), accounts);
    // Its own jetstream block (store_dir) enables JetStream: no -js flags.
    const server = await NatsServer.start({ configFile: join(root, "nats", "nats.conf"), jetstream: false });
    servers.push(server);
    const as = (user: string) =>
      Fabric.connect({
        nats: { servers: [server.url], user: secret(user).NATS_USER, password: secret(user).NATS_PASSWORD },
      });
    const services = await as("nats-service-user");
    const a = await as("nats-user-team-a");
    const b = await as("nats-user-team-b");
    try {
      // The services' user provisions project b and writes into it.
      const provisioned = await runCli(["nats-provision", "--project", "proj-b"], {
        cwd: dir.path,
        env: {
          NATS_URL: server.url,
          NATS_USER: "services",
          NATS_PASSWORD: secret("nats-service-user").NATS_PASSWORD ?? "",
        },
      });
      expect(provisioned.code, provisioned.stderr).toBe(0);
      await services.js.publish(subjects.workOffer("proj-b", "default", "ts"), "secret plan of b");
      // b reads its own stream; a, a pod of another project, may not read it, nor subscribe to b's subjects.
      const stream = streams.work("proj-b");
      expect((await (await b.jsm()).streams.getMessage(stream, { seq: 1 }))?.string()).toBe(
        "secret plan of b",
      );
      await expect((await a.jsm()).streams.getMessage(stream, { seq: 1 })).rejects.toThrow(
        /permissions violation/i,
      );
      const refused = a.nc.subscribe("loom.proj-b.>");
      const outcome = await Promise.race([
        refused.closed.then((e) => String(e ?? "closed")),
        sleep(2_000).then(() => "open"),
      ]);
      expect(outcome).toMatch(/permissions violation/i);
      // Its own subjects stay open to it.
      const own = a.nc.subscribe("loom.proj-a.>");
      const ownOutcome = await Promise.race([
        own.closed.then(() => "closed"),
        sleep(1_000).then(() => "open"),
      ]);
      expect(ownOutcome).toBe("open");
      own.unsubscribe();
    } finally {
      await Promise.all([services.close(), a.close(), b.close()]);
    }
  });

  it("--k8s needs the services' user", async () => {
    const r = await runCli(
      ["nats-config", "--k8s", "--user", "a:proj-a", "--out", join(dir.path, "y.json")],
      {
        cwd: dir.path,
      },
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--k8s needs --admin/);
  });

  it("names the bad --user", async () => {
    const r = await runCli(["nats-config", "--user", "alice:Bad.Proj", "--out", join(dir.path, "x.json")], {
      cwd: dir.path,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--user "alice:Bad\.Proj": projectId/);
  });
});
