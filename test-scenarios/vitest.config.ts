import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "scenarios",
    // One module graph per worker for all its files: imports dominate the suite's CPU (see README, Development).
    isolate: false,
    include: ["**/*.scenario.test.ts"],
    exclude: ["**/node_modules/**"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
