import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Logger } from "@loominal/fabric";
import { LoominalError, type TargetRecord } from "@loominal/protocol";
import { Client, type ConnectConfig } from "ssh2";
import { z } from "zod";
import { envNameSchema, errorText, parseConfig, type SecretSource, secretFrom } from "./common.js";
import type { HealthResult, Mechanism, MechanismHandle, RemoteStatus, StartRequest } from "./types.js";

const FINGERPRINT_RE = /^(SHA256:)?[A-Za-z0-9+/]{43}=?$/;

/**
 * `ssh` target config. The private key comes from a file on Weft's host (`privateKeyPath`) or from an
 * env variable of Weft's process (`privateKeyEnv`); the record never holds it. The host key is pinned by
 * `hostKeySha256` (OpenSSH's `SHA256:…` fingerprint); without a pin the connection is refused unless
 * `acceptNewHostKey`, in which case the first key seen is recorded and any later change is refused.
 */
export const sshConfigSchema = z
  .strictObject({
    host: z.string().min(1),
    port: z.int().min(1).max(65_535).default(22),
    username: z.string().min(1),
    privateKeyPath: z.string().min(1).optional(),
    privateKeyEnv: envNameSchema.optional(),
    passphraseEnv: envNameSchema.optional(),
    hostKeySha256: z
      .string()
      .regex(FINGERPRINT_RE, "hostKeySha256 is an OpenSSH SHA256 fingerprint (ssh-keygen -lf <key>.pub)")
      .optional(),
    acceptNewHostKey: z.boolean().default(false),
    command: z.string().min(1, "command must not be empty"),
    args: z.array(z.string()).default([]),
    env: z.record(envNameSchema, z.string()).default({}),
    /** Remote working directory (default: the login directory). */
    cwd: z.string().min(1).optional(),
    /** Remote directory of the agents' output, `<logDir>/<spinUpId>.log` (relative to the login directory). */
    logDir: z.string().min(1).default(".loominal/spinups"),
    /** Connecting, authenticating and each remote command, in ms. */
    timeoutMs: z.int().min(100).max(300_000).default(15_000),
  })
  .refine((c) => (c.privateKeyPath === undefined) !== (c.privateKeyEnv === undefined), {
    error:
      "give exactly one of privateKeyPath (a file on Weft's host) or privateKeyEnv (an env variable name)",
    path: ["privateKeyPath"],
  });
export type SshConfig = z.infer<typeof sshConfigSchema>;

const handleSchema = z.object({ pid: z.int().positive(), logFile: z.string(), config: sshConfigSchema });

/** A value as one single-quoted POSIX shell word. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** OpenSSH's fingerprint of a raw host key: `SHA256:` + unpadded base64 of its SHA-256. */
export function hostKeyFingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

const normalise = (fp: string) => (fp.startsWith("SHA256:") ? fp : `SHA256:${fp}`).replace(/=+$/, "");

/** Host keys accepted under `acceptNewHostKey`, by `host:port`, in `<dataDir>/ssh-known-hosts.json`. */
class KnownHosts {
  constructor(readonly file: string) {}

  #read(): Record<string, string> {
    try {
      return z.record(z.string(), z.string()).parse(JSON.parse(readFileSync(this.file, "utf8")));
    } catch {
      return {};
    }
  }

  get(hostPort: string): string | undefined {
    return this.#read()[hostPort];
  }

  record(hostPort: string, fingerprint: string): void {
    const all = { ...this.#read(), [hostPort]: fingerprint };
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

/**
 * Starts agents on another host over SSH, detached (setsid + nohup) so they outlive the connection. The
 * launch script, with the agent's environment, is written to the remote shell's stdin, never put on its
 * command line.
 */
export class SshMechanism implements Mechanism {
  readonly name = "ssh" as const;
  #logger: Logger;
  #secrets: SecretSource;
  #knownHosts: KnownHosts;

  constructor(options: { logger: Logger; dataDir: string; secrets?: SecretSource }) {
    this.#logger = options.logger;
    this.#secrets = options.secrets ?? process.env;
    this.#knownHosts = new KnownHosts(join(options.dataDir, "ssh-known-hosts.json"));
  }

  validateConfig(config: unknown): Record<string, unknown> {
    return parseConfig("ssh", sshConfigSchema, config);
  }

  /** Connects and authenticates, or throws an error saying what to fix (never quoting the key). */
  async #connect(config: SshConfig): Promise<{ client: Client; secrets: string[] }> {
    const secrets: string[] = [];
    let privateKey: string;
    if (config.privateKeyEnv) {
      privateKey = secretFrom(this.#secrets, config.privateKeyEnv, "ssh private key");
    } else {
      try {
        privateKey = readFileSync(config.privateKeyPath ?? "", "utf8");
      } catch (err) {
        throw new LoominalError(
          "invalid_input",
          `ssh private key file ${config.privateKeyPath} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"}); fix config.privateKeyPath`,
        );
      }
    }
    secrets.push(privateKey);
    const passphrase = config.passphraseEnv
      ? secretFrom(this.#secrets, config.passphraseEnv, "ssh key passphrase")
      : undefined;
    if (passphrase) secrets.push(passphrase);
    const hostPort = `${config.host}:${config.port}`;
    let refused: string | undefined;
    const hostVerifier = (key: Buffer): boolean => {
      const seen = hostKeyFingerprint(key);
      const pinned = config.hostKeySha256 ? normalise(config.hostKeySha256) : this.#knownHosts.get(hostPort);
      if (pinned) {
        if (pinned === seen) return true;
        refused = `the host key of ${hostPort} is ${seen}, not the ${config.hostKeySha256 ? "pinned" : "recorded"} ${pinned}: refusing to connect (if the host was re-keyed, verify it and update config.hostKeySha256${config.hostKeySha256 ? "" : ` or remove ${hostPort} from ${this.#knownHosts.file}`})`;
        return false;
      }
      if (!config.acceptNewHostKey) {
        refused = `the host key of ${hostPort} (${seen}) is not pinned: set config.hostKeySha256 to it after verifying it, or set config.acceptNewHostKey to record the first key seen`;
        return false;
      }
      this.#knownHosts.record(hostPort, seen);
      this.#logger.warn(
        { host: hostPort, fingerprint: seen },
        "recorded a new ssh host key (acceptNewHostKey)",
      );
      return true;
    };
    const client = new Client();
    const options: ConnectConfig = {
      host: config.host,
      port: config.port,
      username: config.username,
      privateKey,
      ...(passphrase ? { passphrase } : {}),
      readyTimeout: config.timeoutMs,
      hostVerifier,
    };
    try {
      await new Promise<void>((ok, fail) => {
        client.once("ready", ok);
        client.once("error", fail);
        try {
          client.connect(options);
        } catch (err) {
          fail(err);
        }
      });
    } catch (err) {
      client.end();
      // ssh2 may report more errors of the dead connection; they are this one.
      client.on("error", () => undefined);
      const e = err as Error & { level?: string; code?: string };
      if (refused) throw new LoominalError("forbidden", refused);
      if (e.level === "client-authentication")
        throw new LoominalError(
          "forbidden",
          `ssh ${config.username}@${hostPort} refused the key (all authentication methods failed); add its public key to the user's authorized_keys or fix config.username`,
        );
      if (e.level === "client-timeout" || /timed out/i.test(e.message))
        throw new LoominalError(
          "timeout",
          `ssh ${hostPort} did not complete the handshake within ${config.timeoutMs} ms (config.timeoutMs); is an ssh server listening there?`,
        );
      throw new LoominalError(
        "internal",
        `ssh ${hostPort} could not be reached: ${errorText(err, secrets)}${e.code ? ` (${e.code})` : ""}`,
      );
    }
    client.on("error", (err) =>
      this.#logger.debug({ host: hostPort, err: errorText(err, secrets) }, "ssh error"),
    );
    return { client, secrets };
  }

  /**
   * Runs `command` on the host, writing `stdin` (if any) to it; resolves with its exit code and output.
   * A connection that drops before the command exits is an error, never an exit code.
   */
  async #exec(
    client: Client,
    command: string,
    timeoutMs: number,
    stdin?: string,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((ok, fail) => {
      const closed = () =>
        fail(
          new LoominalError(
            "internal",
            "the ssh connection closed before the remote command finished; whether it ran is unknown (check the host, then retry)",
          ),
        );
      const timer = setTimeout(() => {
        fail(
          new LoominalError(
            "timeout",
            `the remote command did not finish within ${timeoutMs} ms (config.timeoutMs)`,
          ),
        );
        client.end();
      }, timeoutMs);
      client.exec(command, (err, stream) => {
        if (err) {
          clearTimeout(timer);
          fail(err);
          return;
        }
        let stdout = "";
        let stderr = "";
        let exited = false;
        let code: number | null = null;
        stream.on("data", (d: Buffer) => {
          stdout += d.toString("utf8");
        });
        stream.stderr.on("data", (d: Buffer) => {
          stderr += d.toString("utf8");
        });
        stream.on("exit", (c: number | null) => {
          exited = true;
          code = c;
        });
        stream.on("close", () => {
          clearTimeout(timer);
          if (exited) ok({ code, stdout, stderr });
          else closed();
        });
        stream.on("error", () => undefined);
        if (stdin !== undefined) stream.end(stdin);
      });
      client.once("close", () => {
        clearTimeout(timer);
        closed();
      });
    });
  }

  async #run<T>(config: SshConfig, fn: (client: Client) => Promise<T>): Promise<T> {
    const { client, secrets } = await this.#connect(config);
    try {
      return await fn(client);
    } catch (err) {
      if (err instanceof LoominalError) throw err;
      throw new LoominalError("internal", errorText(err, secrets));
    } finally {
      client.end();
    }
  }

  async start(request: StartRequest): Promise<MechanismHandle> {
    const config = sshConfigSchema.parse(request.target.config);
    const logFile = `${config.logDir.replace(/\/+$/, "")}/${request.spinUpId}.log`;
    const env = { ...config.env, ...request.env };
    const exports = Object.entries(env)
      .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
      .join("; ");
    const argv = [config.command, ...config.args].map(shellQuote).join(" ");
    // `setsid` in a background job is not a group leader, so it execs in place: `$!` is the agent's pid
    // and its process group, which `stop` signals as a whole.
    const script = [
      "set -e",
      `mkdir -p ${shellQuote(config.logDir)}`,
      logFile.startsWith("/") ? `log=${shellQuote(logFile)}` : `log="$PWD"/${shellQuote(logFile)}`,
      ': >>"$log"',
      ...(config.cwd ? [`cd ${shellQuote(config.cwd)}`] : []),
      ...(exports ? [exports] : []),
      `setsid nohup ${argv} >>"$log" 2>&1 </dev/null &`,
      "echo $!",
    ].join("\n");
    const { pid } = await this.#run(config, async (client) => {
      // The script (with the agent's env) goes over stdin: the remote command line, which any user of
      // the host can read in `ps`, is only `sh -s`.
      const r = await this.#exec(client, "sh -s", config.timeoutMs, `${script}\n`);
      const pid = Number.parseInt(r.stdout.trim(), 10);
      if (r.code !== 0 || !Number.isInteger(pid) || pid <= 0)
        throw new LoominalError(
          "internal",
          `the remote launch of ${config.command} failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300) || "no pid printed"}`,
        );
      return { pid };
    });
    this.#logger.info(
      { spinUpId: request.spinUpId, host: `${config.host}:${config.port}`, pid, logFile },
      "started an agent over ssh",
    );
    return { pid, logFile, config };
  }

  async stop(handle: MechanismHandle, options: { graceMs: number }): Promise<void> {
    const h = handleSchema.safeParse(handle);
    if (!h.success) return;
    const { pid, config } = h.data;
    const graceS = Math.max(1, Math.ceil(options.graceMs / 1000));
    const script = [
      `alive() { kill -0 ${pid} 2>/dev/null; }`,
      "alive || exit 0",
      `kill -TERM -- -${pid} 2>/dev/null || kill -TERM ${pid} 2>/dev/null || true`,
      `i=0; while alive && [ "$i" -lt ${graceS * 10} ]; do sleep 0.1; i=$((i+1)); done`,
      `alive && { kill -KILL -- -${pid} 2>/dev/null || kill -KILL ${pid} 2>/dev/null; }`,
      "exit 0",
    ].join("\n");
    await this.#run(config, (client) =>
      this.#exec(client, `sh -c ${shellQuote(script)}`, config.timeoutMs + options.graceMs),
    );
  }

  async status(handle: MechanismHandle): Promise<RemoteStatus> {
    const h = handleSchema.safeParse(handle);
    if (!h.success) return { state: "unknown", message: "not an ssh spin-up handle" };
    const { pid, config } = h.data;
    const r = await this.#run(config, (client) => this.#exec(client, `kill -0 ${pid}`, config.timeoutMs));
    return r.code === 0
      ? { state: "running", message: `pid ${pid} on ${config.host} is running` }
      : { state: "gone", message: `pid ${pid} on ${config.host} is not running` };
  }

  async test(target: TargetRecord): Promise<HealthResult> {
    try {
      const config = parseConfig("ssh", sshConfigSchema, target.config);
      const r = await this.#run(config, (client) => this.#exec(client, "true", config.timeoutMs));
      return r.code === 0
        ? { ok: true, message: `ssh ${config.username}@${config.host}:${config.port} runs commands` }
        : { ok: false, message: `ssh ${config.host}: \`true\` exited ${r.code}` };
    } catch (err) {
      return { ok: false, message: errorText(err) };
    }
  }
}
