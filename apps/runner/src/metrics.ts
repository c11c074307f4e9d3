import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** The runner's Prometheus metrics, on their own registry (GET /metrics). */
export class RunnerMetrics {
  readonly registry = new Registry();
  readonly runsAccepted = new Counter({
    name: "runner_runs_accepted_total",
    help: "Runs admitted by this replica",
    registers: [this.registry],
  });
  readonly runsFinished = new Counter({
    name: "runner_runs_finished_total",
    help: "Runs this replica ended (or reaped), by final status",
    labelNames: ["status"],
    registers: [this.registry],
  });
  readonly admissionRefused = new Counter({
    name: "runner_admission_refused_total",
    help: "Run requests refused at admission, by error code",
    labelNames: ["code"],
    registers: [this.registry],
  });
  readonly providerRetries = new Counter({
    name: "runner_provider_retries_total",
    help: "Provider calls retried, by reason (rate_limited, outage)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly activeRuns = new Gauge({
    name: "runner_active_runs",
    help: "Runs executing on this replica",
    registers: [this.registry],
  });
  readonly runDuration = new Histogram({
    name: "runner_run_duration_seconds",
    help: "Run duration from start to its end on this replica",
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
}
