import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/shuttle",
    include: ["src/**/*.test.ts"],
    // Orchestration tests wait on nats-server, worker processes and ack-wait redeliveries.
    testTimeout: 90_000,
    hookTimeout: 30_000,
  },
});
