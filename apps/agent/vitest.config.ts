import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/agent",
    include: ["src/**/*.test.ts"],
    // Tests start nats-server and run the built `weft` and `loominal-agent` bins as child processes.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
