import type { ToolDefinition } from "@loominal/mcp-kit";
import type { ShuttleToolDeps } from "../schemas.js";
import { assessTaskTool } from "./assess-task.js";
import { cancelTool } from "./cancel.js";
import { checkpointTool } from "./checkpoint.js";
import { getResultsTool } from "./get-results.js";
import { getStateTool } from "./get-state.js";
import { listOrchestrationsTool } from "./list-orchestrations.js";
import { spawnSubagentsTool } from "./spawn-subagents.js";
import { synthesizeResultsTool } from "./synthesize-results.js";

export function shuttleTools(deps: ShuttleToolDeps): ToolDefinition[] {
  return [
    assessTaskTool(deps),
    spawnSubagentsTool(deps),
    checkpointTool(deps),
    getStateTool(deps),
    listOrchestrationsTool(deps),
    getResultsTool(deps),
    synthesizeResultsTool(deps),
    cancelTool(deps),
  ];
}
