export * from "./leases.js";
export * from "./memory.js";
export * from "./messaging.js";
export * from "./runner.js";
export * from "./shuttle.js";
export * from "./weft.js";
export * from "./work.js";
