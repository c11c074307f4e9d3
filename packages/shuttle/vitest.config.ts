import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/shuttle",
    // One module graph per worker for all its files: imports dominate the suite's CPU (see README, Development).
    isolate: false,
    include: ["src/**/*.test.ts"],
    // Orchestration tests wait on nats-server, worker processes and ack-wait redeliveries.
    testTimeout: 90_000,
    hookTimeout: 30_000,
  },
});
