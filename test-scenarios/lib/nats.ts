import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { NatsServer, tempDir } from "@loominal/testkit";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const CLI_BIN = join(here, "..", "..", "apps", "cli", "dist", "bin.js");
const ADMIN = "scenario-admin";

/**
 * How a scenario's processes reach NATS: an open server, or a server running the config
 * `loominal nats-config` generates, with streams and buckets made by `loominal nats-provision` and
 * every process connected as a generated per-project user.
 */
export type NatsMode = "open" | "credentialed";
export const NATS_MODES: readonly NatsMode[] = ["open", "credentialed"];

/** A user of the generated config: its name, its project and (for personal and public memory) its userId. */
export interface ScenarioUser {
  name: string;
  projectId: string;
  /** 32 lower-case hex; given to the process as LOOMINAL_USER_ID in both modes. */
  userId?: string;
}

/** A nats-server for one scenario, open or credentialed, and the environment of each of its processes. */
export class ScenarioNats {
  readonly mode: NatsMode;
  readonly server: NatsServer;
  readonly #users: Map<string, ScenarioUser>;
  readonly #passwords: Record<string, string>;
  readonly #cleanup: () => void;

  private constructor(
    mode: NatsMode,
    server: NatsServer,
    users: ScenarioUser[],
    passwords: Record<string, string>,
    cleanup: () => void,
  ) {
    this.mode = mode;
    this.server = server;
    this.#users = new Map(users.map((u) => [u.name, u]));
    this.#passwords = passwords;
    this.#cleanup = cleanup;
  }

  /**
   * Starts the server. Credentialed: generates the config for `users` (plus an admin), starts
   * nats-server with it, and provisions each user's project as the admin (as `./loominal up` does).
   * `projectDirs` gives a project's directory when its `.loominal.json` changes what is provisioned.
   */
  static async start(
    mode: NatsMode,
    users: ScenarioUser[],
    projectDirs: Record<string, string> = {},
  ): Promise<ScenarioNats> {
    if (mode === "open") return new ScenarioNats(mode, await NatsServer.start(), users, {}, () => undefined);
    if (!existsSync(CLI_BIN)) throw new Error(`${CLI_BIN} is missing: run pnpm -w build`);
    const dir = tempDir("scenario-nats-");
    const configFile = join(dir.path, "nats.json");
    const cli = (args: string[], env: Record<string, string>, cwd = dir.path) =>
      run(process.execPath, [CLI_BIN, ...args], {
        cwd,
        env: { PATH: process.env.PATH ?? "", HOME: dir.path, ...env },
      });
    await cli(
      [
        "nats-config",
        ...users.flatMap((u) => ["--user", [u.name, u.projectId, ...(u.userId ? [u.userId] : [])].join(":")]),
        "--admin",
        ADMIN,
        "--out",
        configFile,
        "--store-dir",
        join(dir.path, "store"),
      ],
      {},
    );
    const generated = JSON.parse(readFileSync(configFile, "utf8")) as {
      accounts: Record<string, { users?: Array<{ user: string; password: string }> }>;
    };
    const passwords = Object.fromEntries(
      Object.values(generated.accounts).flatMap((a) => (a.users ?? []).map((u) => [u.user, u.password])),
    );
    const server = await NatsServer.start({ configFile, jetstream: false });
    const nats = new ScenarioNats(mode, server, users, passwords, () => dir.cleanup());
    try {
      const admin = { NATS_URL: server.url, NATS_USER: ADMIN, NATS_PASSWORD: nats.#password(ADMIN) };
      for (const projectId of new Set(users.map((u) => u.projectId)))
        await cli(["nats-provision", "--project", projectId], admin, projectDirs[projectId] ?? dir.path);
    } catch (err) {
      await nats.stop();
      throw err;
    }
    return nats;
  }

  get url(): string {
    return this.server.url;
  }

  #password(user: string): string {
    const password = this.#passwords[user];
    if (!password) throw new Error(`no password for ${user} in the generated config`);
    return password;
  }

  #user(name: string): ScenarioUser {
    const user = this.#users.get(name);
    if (!user) throw new Error(`${name} is not a user of this scenario`);
    return user;
  }

  /** NATS_URL, and the user's NATS_USER / NATS_PASSWORD when credentialed; LOOMINAL_USER_ID when it has one. */
  env(user: string): Record<string, string> {
    const u = this.#user(user);
    return {
      NATS_URL: this.url,
      ...(this.mode === "credentialed" ? { NATS_USER: u.name, NATS_PASSWORD: this.#password(u.name) } : {}),
      ...(u.userId ? { LOOMINAL_USER_ID: u.userId } : {}),
    };
  }

  /** The user's credentials (undefined on an open server). */
  auth(user: string): { user: string; password: string } | undefined {
    const u = this.#user(user);
    return this.mode === "credentialed" ? { user: u.name, password: this.#password(u.name) } : undefined;
  }

  async restart(): Promise<void> {
    await this.server.restart();
  }

  async stop(): Promise<void> {
    await this.server.stop();
    this.#cleanup();
  }
}
