import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** Weft's Prometheus metrics, on their own registry (served at /metrics). */
export class WeftMetrics {
  readonly registry = new Registry();
  readonly workSubmitted = new Counter({
    name: "weft_work_submitted_total",
    help: "Work items submitted through Weft",
    registers: [this.registry],
  });
  readonly workByStatus = new Gauge({
    name: "weft_work_items",
    help: "Work items by state (queued, in_flight, dead) per project this instance served, read when /metrics is scraped",
    labelNames: ["project", "status"] as const,
    registers: [this.registry],
  });
  readonly spinUps = new Counter({
    name: "weft_spinups_total",
    help: "Spin-ups by result: succeeded (its agent registered) or failed",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly idleShutdowns = new Counter({
    name: "weft_idle_shutdowns_total",
    help: "Shutdown requests sent to idle agents Weft started",
    registers: [this.registry],
  });
  readonly agentsOnline = new Gauge({
    name: "weft_agents_online",
    help: "Agents online or busy, per project",
    labelNames: ["project"] as const,
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: "weft_leader",
    help: "1 while this instance holds the leader lease",
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: "weft_http_request_duration_seconds",
    help: "REST request latency",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly natsRequests = new Counter({
    name: "weft_nats_requests_total",
    help: "Requests answered on coord.<p>.<op>",
    labelNames: ["op", "outcome"] as const,
    registers: [this.registry],
  });

  constructor() {
    this.leader.set(0);
  }
}
