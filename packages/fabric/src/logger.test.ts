import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { createLogger, loggerOptions, logLevelFrom, redactLogObject } from "./logger.js";

/** A logger built exactly like createLogger's, writing lines into an array. */
function capture(): { logger: pino.Logger; lines: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { logger: pino(loggerOptions({ name: "t", env: {} }), sink), lines: () => chunks.join("") };
}

describe("log redaction", () => {
  it("censors secret keys at any depth, whatever their case or separator", () => {
    const { logger, lines } = capture();
    logger.info(
      {
        config: {
          nats: { servers: ["nats://127.0.0.1:4222"], user: "alice", password: "hunter2", token: "tok-1" },
          env: { NATS_PASSWORD: "hunter3", NATS_TOKEN: "tok-2", NATS_CREDS: "creds-x", HOME: "/home/a" },
          deeper: [
            { level: { apiKey: "sk-1", "api-key": "sk-2", clientSecret: "cs-1", authorization: "Bearer b" } },
          ],
        },
      },
      "config loaded",
    );
    const out = lines();
    for (const secret of [
      "hunter2",
      "hunter3",
      "tok-1",
      "tok-2",
      "creds-x",
      "sk-1",
      "sk-2",
      "cs-1",
      "Bearer b",
    ]) {
      expect(out).not.toContain(secret);
    }
    expect(out).toContain('"user":"alice"');
    expect(out).toContain('"HOME":"/home/a"');
    expect(out).toContain("[redacted]");
  });

  it("removes credentials from URLs, including passwords with @ and /", () => {
    const { logger, lines } = capture();
    logger.info({
      natsUrl: "nats://alice:p@ss/w@rd@10.0.0.1:4222",
      servers: ["nats://bob:pw9@h1:4222", "nats://h2:4222"],
      nested: { url: "nats://tok3n@h3:4222", other: "tls://carol:pw8@h4:4222" },
    });
    const out = lines();
    for (const secret of ["p@ss", "w@rd", "pw9", "tok3n", "pw8", "alice", "bob", "carol"]) {
      expect(out).not.toContain(secret);
    }
    expect(out).toContain("nats://[redacted]@10.0.0.1:4222");
    expect(out).toContain("nats://h2:4222");
  });

  it("redacts child bindings, and a whole loaded config", () => {
    const { logger, lines } = capture();
    const config = loadConfig({
      cwd: "/",
      env: { NATS_URL: "nats://alice:hunter2@h:1", LOOMINAL_PROJECT_DIR: "/" },
    });
    logger.child({ token: "child-tok" }).info({ config }, "start");
    const out = lines();
    expect(out).not.toContain("hunter2");
    expect(out).not.toContain("child-tok");
    expect(out).toContain('"servers":["nats://h:1"]');
  });

  it("copies without touching the original, and survives cycles", () => {
    const original: Record<string, unknown> = { password: "x", inner: { ok: 1 } };
    original.self = original;
    const copy = redactLogObject(original);
    expect(original.password).toBe("x");
    expect(copy).toMatchObject({ password: "[redacted]", inner: { ok: 1 }, self: "[circular]" });
  });
});

describe("log level", () => {
  it("refuses an unknown LOOMINAL_LOG_LEVEL, naming the variable and the valid values", () => {
    expect(() => logLevelFrom(undefined, { LOOMINAL_LOG_LEVEL: "bogus" })).toThrow(
      'LOOMINAL_LOG_LEVEL is "bogus"; use one of fatal, error, warn, info, debug, trace, silent',
    );
    expect(() =>
      createLogger({ name: "t", destination: "stderr", env: { LOOMINAL_LOG_LEVEL: "bogus" } }),
    ).toThrow(/LOOMINAL_LOG_LEVEL/);
    expect(logLevelFrom(undefined, { LOOMINAL_LOG_LEVEL: "DEBUG" })).toBe("debug");
    expect(logLevelFrom(undefined, {})).toBe("info");
    expect(logLevelFrom("warn", { LOOMINAL_LOG_LEVEL: "bogus" })).toBe("warn");
  });
});
