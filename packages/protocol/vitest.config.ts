import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/protocol",
    // One module graph per worker for all its files: imports dominate the suite's CPU (see README, Development).
    isolate: false,
    include: ["src/**/*.test.ts"],
  },
});
