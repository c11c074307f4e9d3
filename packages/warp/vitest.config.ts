import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/warp",
    include: ["src/**/*.test.ts"],
  },
});
