import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/mcp-kit",
    // One module graph per worker for all its files: imports dominate the suite's CPU (see README, Development).
    isolate: false,
    include: ["src/**/*.test.ts"],
    // Several tests spawn server processes over stdio; bound a hang, not a speed.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
