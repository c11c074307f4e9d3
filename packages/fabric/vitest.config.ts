import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/fabric",
    include: ["src/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
