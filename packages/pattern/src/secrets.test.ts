import { describe, expect, it } from "vitest";
import { detectSecrets } from "./secrets.js";

describe("detectSecrets", () => {
  it.each([
    ["AWS access key id", "key AKIAIOSFODNN7EXAMPLE here"],
    ["GitHub token", `token ghp_${"a1B2".repeat(9)}`],
    ["Slack token", "xoxb-123456789012-abcdefABCDEF"],
    ["Anthropic or OpenAI API key", `sk-ant-${"x".repeat(30)}`],
    ["private key", "-----BEGIN RSA PRIVATE KEY-----"],
    [
      "JSON web token",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
    ["credentials in a URL", "nats://admin:s3cretpass@nats.internal:4222"],
    ["password or secret assignment", "DB_PASSWORD=correcthorsebattery"],
  ])("flags a %s", (kind, text) => {
    expect(detectSecrets(text)).toContain(kind);
  });

  it("leaves ordinary notes alone", () => {
    for (const text of [
      "the password policy lives in docs/security.md",
      "use nats://127.0.0.1:4222 for local runs",
      "sk- prefixes mark keys; never commit them",
      "tokenize the input before parsing",
    ]) {
      expect(detectSecrets(text), text).toEqual([]);
    }
  });
});
