import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/runner",
    // One module graph per worker for all its files: imports dominate the suite's CPU (see README, Development).
    isolate: false,
    include: ["src/**/*.test.ts"],
    // Cluster tests start nats-server and several runner processes.
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
