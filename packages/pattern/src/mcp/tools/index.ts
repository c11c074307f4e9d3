import type { ToolDefinition } from "@loominal/mcp-kit";
import type { PatternToolDeps } from "../deps.js";
import { cleanupTool } from "./cleanup.js";
import { commitInsightTool } from "./commit-insight.js";
import { coreMemoryTool } from "./core-memory.js";
import { exportTool } from "./export.js";
import { forgetTool } from "./forget.js";
import { forgetBulkTool } from "./forget-bulk.js";
import { healthTool } from "./health.js";
import { importTool } from "./import.js";
import { recallContextTool } from "./recall-context.js";
import { rememberTool } from "./remember.js";
import { rememberBulkTool } from "./remember-bulk.js";
import { rememberLearningTool } from "./remember-learning.js";
import { rememberTaskTool } from "./remember-task.js";
import { searchTool } from "./search.js";
import { shareLearningTool } from "./share-learning.js";

/** Every Pattern tool, in the order clients list them. */
export function patternTools(deps: PatternToolDeps): ToolDefinition[] {
  return [
    recallContextTool(deps),
    rememberTool(deps),
    rememberTaskTool(deps),
    rememberLearningTool(deps),
    coreMemoryTool(deps),
    commitInsightTool(deps),
    shareLearningTool(deps),
    forgetTool(deps),
    searchTool(deps),
    rememberBulkTool(deps),
    forgetBulkTool(deps),
    exportTool(deps),
    importTool(deps),
    cleanupTool(deps),
    healthTool(deps),
  ];
}
