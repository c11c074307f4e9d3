import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/warp",
    // One module graph per worker for all its files: imports dominate the suite's CPU (see README, Development).
    isolate: false,
    include: ["src/**/*.test.ts"],
    // Tests wait on nats-server and spawned processes (the bin test starts three), not the CPU.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
