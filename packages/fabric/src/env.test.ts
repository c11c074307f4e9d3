import { describe, expect, it } from "vitest";
import { z } from "zod";
import { type EnvTable, envTableMarkdown, parseEnv } from "./env.js";

const TABLE = {
  WEFT_PORT: {
    schema: z.coerce.number().int().min(1).max(65535).default(8080),
    description: "HTTP port of the REST API",
  },
  WEFT_MODE: { schema: z.enum(["local", "cluster"]).default("local"), description: "how spin-up works" },
  WEFT_ADMIN_TOKEN: { schema: z.string().min(16), description: "bearer token for admin calls", secret: true },
} satisfies EnvTable;

describe("parseEnv", () => {
  it("parses each variable with its schema, with defaults for unset and blank ones", () => {
    const env = parseEnv(TABLE, { WEFT_PORT: "9000", WEFT_MODE: " ", WEFT_ADMIN_TOKEN: "0123456789abcdef" });
    expect(env).toEqual({ WEFT_PORT: 9000, WEFT_MODE: "local", WEFT_ADMIN_TOKEN: "0123456789abcdef" });
    const port: number = env.WEFT_PORT;
    expect(port).toBe(9000);
  });

  it("names every bad variable in one error and never echoes a secret", () => {
    let message = "";
    try {
      parseEnv(TABLE, { WEFT_PORT: "http", WEFT_MODE: "cloud", WEFT_ADMIN_TOKEN: "short-secret" });
    } catch (err) {
      message = String(err);
    }
    expect(message).toMatch(/WEFT_PORT is "http": .*\(HTTP port of the REST API\)/);
    expect(message).toMatch(/WEFT_MODE is "cloud": /);
    expect(message).toMatch(/WEFT_ADMIN_TOKEN is invalid: /);
    expect(message).not.toContain("short-secret");
    expect(() => parseEnv(TABLE, {})).toThrow(/WEFT_ADMIN_TOKEN is not set/);
  });

  it("renders the table for a README", () => {
    expect(envTableMarkdown(TABLE)).toBe(
      [
        "| variable | default | meaning |",
        "|---|---|---|",
        "| `WEFT_PORT` | `8080` | HTTP port of the REST API |",
        "| `WEFT_MODE` | `local` | how spin-up works |",
        "| `WEFT_ADMIN_TOKEN` |  | bearer token for admin calls |",
      ].join("\n"),
    );
  });
});
