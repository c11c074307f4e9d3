import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/runner",
    include: ["src/**/*.test.ts"],
    // Cluster tests start nats-server and several runner processes.
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
