import type { ToolDefinition } from "@loominal/mcp-kit";
import type { Warp } from "../../warp.js";
import { channelsListTool } from "./channels-list.js";
import { channelsReadTool } from "./channels-read.js";
import { channelsSendTool } from "./channels-send.js";
import { channelsStatusTool } from "./channels-status.js";
import { handleGetTool } from "./handle-get.js";
import { handleSetTool } from "./handle-set.js";
import { leaseAcquireTool } from "./lease-acquire.js";
import { leaseListTool } from "./lease-list.js";
import { leaseReleaseTool } from "./lease-release.js";
import { leaseRenewTool } from "./lease-renew.js";
import { messagesAckStatusTool, messagesAckTool } from "./messages-ack.js";
import { messagesReadDirectTool } from "./messages-read-direct.js";
import { messagesSearchTool } from "./messages-search.js";
import { messagesSendDirectTool } from "./messages-send-direct.js";
import { registryDeregisterTool } from "./registry-deregister.js";
import { registryDiscoverTool } from "./registry-discover.js";
import { registryGetInfoTool } from "./registry-get-info.js";
import { registryRegisterTool } from "./registry-register.js";
import { registryUpdatePresenceTool } from "./registry-update-presence.js";
import { workTools } from "./work-tools.js";

/** What every Warp tool needs: the library, already opened (NATS may still be connecting). */
export interface WarpToolDeps {
  warp: Warp;
}

/** Every Warp tool (messaging, then work queues and dead letters), in the order clients list them. */
export function warpTools(deps: WarpToolDeps): ToolDefinition[] {
  return [
    handleSetTool(deps),
    handleGetTool(deps),
    channelsListTool(deps),
    channelsSendTool(deps),
    channelsReadTool(deps),
    channelsStatusTool(deps),
    registryRegisterTool(deps),
    registryDiscoverTool(deps),
    registryGetInfoTool(deps),
    registryUpdatePresenceTool(deps),
    registryDeregisterTool(deps),
    messagesSendDirectTool(deps),
    messagesReadDirectTool(deps),
    leaseAcquireTool(deps),
    leaseRenewTool(deps),
    leaseReleaseTool(deps),
    leaseListTool(deps),
    messagesAckTool(deps),
    messagesAckStatusTool(deps),
    messagesSearchTool(deps),
    ...workTools({ work: deps.warp.work, ready: () => deps.warp.ready() }),
  ];
}
