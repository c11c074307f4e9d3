import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/mcp-kit",
    include: ["src/**/*.test.ts"],
  },
});
