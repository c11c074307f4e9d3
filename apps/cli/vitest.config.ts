import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/cli",
    // One module graph per worker for all its files: imports dominate the suite's CPU (see README, Development).
    isolate: false,
    include: ["src/**/*.test.ts"],
    // Each test runs the built CLI as a child process, some of which start nats-server.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
