import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/cli",
    include: ["src/**/*.test.ts"],
    // Each test runs the built CLI as a child process, some of which start nats-server.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
