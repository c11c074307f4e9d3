export { NatsCluster } from "./cluster.js";
export { type EventuallyOptions, eventually, sleep, tempDir, uniqueProjectId } from "./helpers.js";
export {
  freePort,
  NatsServer,
  type NatsServerOptions,
  natsServerBinary,
  natsServerVersion,
} from "./nats-server.js";
export { TcpProxy } from "./tcp-proxy.js";
