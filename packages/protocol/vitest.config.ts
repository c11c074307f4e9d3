import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "@loominal/protocol",
    include: ["src/**/*.test.ts"],
  },
});
