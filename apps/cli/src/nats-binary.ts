/** The nats-server lookup lives in the fabric (one for the CLI and the test kit); re-exported here. */
export { findNatsServer, natsServerVersionOf, requireNatsServer } from "@loominal/fabric/host";
