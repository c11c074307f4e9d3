// Charts of a circuit report: vega-lite specs compiled to vega, rendered to SVG, rasterised to PNG by resvg.
import { writeFileSync } from "node:fs";
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import * as vl from "vega-lite";

const PCTS = ["p50", "p95", "p99", "max"];

/** Per-wave latency and completion (and, for runs with several windows, latency and runs/s over time). */
export function chartSpec(report, title) {
  const waves = report.waves.map(
    (w) => `${w.wave}: ${w.circuits} circuits${w.kind === "phase" ? ` in ${w.name.split(":")[1]}` : ""}`,
  );
  const latency = report.waves.flatMap((w, i) =>
    PCTS.map((p) => ({ wave: waves[i], percentile: p, seconds: w.latencyMs[p] / 1000 })),
  );
  const completion = report.waves.map((w, i) => ({
    wave: waves[i],
    completion: w.completionPercent,
    label: `${w.completionPercent}%`,
  }));
  const charts = [
    {
      title: "Circuit latency per wave (s)",
      width: 360,
      height: 220,
      data: { values: latency },
      mark: { type: "bar" },
      encoding: {
        x: { field: "wave", type: "nominal", title: null, axis: { labelAngle: 0 } },
        xOffset: { field: "percentile", sort: PCTS },
        y: { field: "seconds", type: "quantitative", title: "seconds" },
        color: { field: "percentile", type: "nominal", sort: PCTS },
      },
    },
    {
      title: "Completion per wave (%)",
      width: 240,
      height: 220,
      data: { values: completion },
      layer: [
        {
          mark: { type: "bar", color: "#4c9a5b" },
          encoding: {
            x: { field: "wave", type: "nominal", title: null, axis: { labelAngle: 0 } },
            y: { field: "completion", type: "quantitative", title: "%", scale: { domain: [0, 100] } },
          },
        },
        {
          mark: { type: "text", dy: -8 },
          encoding: {
            x: { field: "wave", type: "nominal" },
            y: { field: "completion", type: "quantitative" },
            text: { field: "label" },
          },
        },
      ],
    },
  ];
  const rows = [{ hconcat: charts }];
  const windows = (report.windows ?? []).filter((w) => w.circuits > 0);
  if (windows.length >= 3 && report.waves.some((w) => w.kind === "phase")) {
    const over = windows.flatMap((w) => [
      { t: w.startS, series: "p50 latency (s)", value: w.latencyMs.p50 / 1000 },
      { t: w.startS, series: "p99 latency (s)", value: w.latencyMs.p99 / 1000 },
    ]);
    rows.push({
      hconcat: [
        {
          title: "Circuit latency over time",
          width: 360,
          height: 160,
          data: { values: over },
          mark: { type: "line", point: true },
          encoding: {
            x: { field: "t", type: "quantitative", title: "seconds since start" },
            y: { field: "value", type: "quantitative", title: "seconds" },
            color: { field: "series", type: "nominal", title: null },
          },
        },
        {
          title: "Runs ended per second",
          width: 240,
          height: 160,
          data: { values: windows.map((w) => ({ t: w.startS, runs: w.runsPerSecond })) },
          mark: { type: "line", point: true, color: "#555" },
          encoding: {
            x: { field: "t", type: "quantitative", title: "seconds since start" },
            y: { field: "runs", type: "quantitative", title: "runs/s" },
          },
        },
      ],
    });
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, fontSize: 13 },
    vconcat: rows.map((r) => ({ ...r, resolve: { scale: { color: "independent" } } })),
    resolve: { scale: { color: "independent" } },
    config: { font: "DejaVu Sans", view: { stroke: null } },
  };
}

/** Renders the report's chart to a PNG file (and the SVG beside it when `svg` is set). */
export async function writeChart(report, pngPath, title, { svg = false } = {}) {
  const compiled = vl.compile(chartSpec(report, title)).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  const svgText = await view.toSVG();
  view.finalize();
  if (svg) writeFileSync(pngPath.replace(/\.png$/, ".svg"), svgText);
  const png = new Resvg(svgText, {
    background: "white",
    fitTo: { mode: "zoom", value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" },
  })
    .render()
    .asPng();
  writeFileSync(pngPath, png);
}

// `node bench/circuits/chart.mjs report.json out.png [title]` draws a saved report again.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const { readFileSync } = await import("node:fs");
  const [file, png, title] = process.argv.slice(2);
  if (!file || !png) {
    process.stderr.write("usage: node bench/circuits/chart.mjs report.json out.png [title]\n");
    process.exit(2);
  }
  const r = JSON.parse(readFileSync(file, "utf8"));
  await writeChart(r, png, title ?? r.command);
}
