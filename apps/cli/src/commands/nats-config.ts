import { randomBytes } from "node:crypto";
import { chmodSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import {
  type AdminUser,
  assertProjectId,
  ConfigError,
  inboxPrefixFor,
  nameTokenProblem,
  natsServerConfig,
  type ProjectUser,
} from "@loominal/protocol";
import type { Command } from "commander";
import type { CliContext } from "../context.js";

interface NatsConfigOptions {
  user: string[];
  out: string;
  storeDir: string;
  listen?: string;
  admin?: string;
}

/** Parses `name:projectId[:userId]`; the message names the bad part. */
function parseUser(spec: string): Omit<ProjectUser, "password"> {
  const [user, projectId, userId, ...rest] = spec.split(":");
  if (!user || !projectId || rest.length > 0) {
    throw new ConfigError(`--user ${JSON.stringify(spec)} must be name:projectId or name:projectId:userId`);
  }
  const problem = nameTokenProblem(user, "name");
  if (problem) throw new ConfigError(`--user ${JSON.stringify(spec)}: user ${problem}`);
  try {
    assertProjectId(projectId);
  } catch (err) {
    throw new ConfigError(`--user ${JSON.stringify(spec)}: ${(err as Error).message}`);
  }
  if (userId !== undefined && !/^[0-9a-f]{32}$/.test(userId)) {
    throw new ConfigError(
      `--user ${JSON.stringify(spec)}: userId must be 32 lower-case hex (LOOMINAL_USER_ID)`,
    );
  }
  return { user, projectId, ...(userId ? { userId } : {}) };
}

export function registerNatsConfigCommand(program: Command, ctx: CliContext): void {
  program
    .command("nats-config")
    .description(
      "write a nats-server config whose users are each confined to one project (see docs/security.md)",
    )
    .requiredOption(
      "--user <name:projectId[:userId]>",
      "a NATS user and the project it may use; repeat for more users",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .requiredOption(
      "--out <file>",
      "where to write the config (created with mode 0600; it holds the passwords)",
    )
    .option("--store-dir <dir>", "the JetStream store directory of the server", "/var/lib/nats-server")
    .option("--listen <host:port>", "the client listen address")
    .option(
      "--admin <name>",
      "also write an admin user with every right, for 'loominal nats-provision' and services (keep its password to operators)",
    )
    .action((opts: NatsConfigOptions) => {
      const users: ProjectUser[] = opts.user.map((spec) => ({
        ...parseUser(spec),
        password: randomBytes(24).toString("base64url"),
      }));
      const names = new Set<string>();
      for (const u of users) {
        if (names.has(u.user)) throw new ConfigError(`--user ${u.user} is given twice`);
        names.add(u.user);
      }
      let admin: AdminUser | undefined;
      if (opts.admin !== undefined) {
        const problem = nameTokenProblem(opts.admin, "name");
        if (problem) throw new ConfigError(`--admin ${JSON.stringify(opts.admin)}: ${problem}`);
        if (names.has(opts.admin)) throw new ConfigError(`--admin ${opts.admin} is also given as --user`);
        admin = { user: opts.admin, password: randomBytes(24).toString("base64url") };
      }
      const out = resolve(ctx.cwd, opts.out);
      const config = natsServerConfig({
        users,
        ...(admin ? { admin } : {}),
        storeDir: opts.storeDir,
        ...(opts.listen ? { listen: opts.listen } : {}),
      });
      writeFileSync(out, `${config}\n`, { mode: 0o600 });
      // The mode given above applies only to a new file; an existing one keeps its own unless changed.
      chmodSync(out, 0o600);
      ctx.out(`wrote ${out} (mode 0600)`);
      for (const u of users)
        ctx.out(
          `  user ${u.user} → project ${u.projectId}${u.userId ? `, personal ${u.userId}` : ""}; replies under ${inboxPrefixFor(u.user)}`,
        );
      if (admin) ctx.out(`  user ${admin.user} → admin (provisions streams and buckets)`);
      ctx.out(`The passwords are in the file (never printed). Start the server with: nats-server -c ${out}`);
      ctx.out(
        admin
          ? `Then create each project's streams and buckets: NATS_USER=${admin.user} NATS_PASSWORD=… loominal nats-provision --project <projectId>`
          : "Streams and buckets must be provisioned by a user with every right ('loominal nats-provision'); add --admin <name> to write one.",
      );
    });
}
