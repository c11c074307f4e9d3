import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/fabric",
    // One module graph per worker for all its files: imports dominate the suite's CPU (see README, Development).
    isolate: false,
    include: ["src/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
