import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/agent",
    // One module graph per worker for all its files: imports dominate the suite's CPU (see README, Development).
    isolate: false,
    include: ["src/**/*.test.ts"],
    // Tests start nats-server and run the built `weft` and `loominal-agent` bins as child processes.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
