import { z } from "zod";
import { OPERATIONS } from "./api.js";

const errorSchema = {
  type: "object",
  properties: {
    error: {
      type: "object",
      properties: { code: { type: "string" }, message: { type: "string" }, details: { type: "object" } },
      required: ["code", "message"],
    },
  },
  required: ["error"],
};

function jsonSchema(schema: z.ZodType, io: "input" | "output" = "input"): Record<string, unknown> {
  const s = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  delete s.$schema;
  return s;
}

/** `/api/work/:workId` → `/api/work/{workId}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z]+)/g, "{$1}");
}

function parameters(schema: z.ZodObject | undefined, where: "path" | "query"): unknown[] {
  if (!schema) return [];
  const js = jsonSchema(schema) as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === "path" || (js.required ?? []).includes(name),
    schema: s,
  }));
}

/** The OpenAPI 3.1 document of the REST API, generated from the operation table's zod schemas. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const add = (path: string, method: string, op: Record<string, unknown>) => {
    paths[path] ??= {};
    (paths[path] as Record<string, unknown>)[method] = op;
  };
  const errors = {
    "400": {
      description: "invalid input; details.field names the field",
      content: { "application/json": { schema: errorSchema } },
    },
    "401": {
      description: "missing or wrong bearer token",
      content: { "application/json": { schema: errorSchema } },
    },
    "403": {
      description: "the token may not do this",
      content: { "application/json": { schema: errorSchema } },
    },
    "404": { description: "not found", content: { "application/json": { schema: errorSchema } } },
  };
  add("/health", "get", {
    operationId: "health",
    summary: "Liveness (no auth)",
    security: [],
    responses: { "200": { description: "status, NATS state, leadership" } },
  });
  add("/metrics", "get", {
    operationId: "metrics",
    summary: "Prometheus metrics",
    responses: { "200": { description: "text exposition format" } },
  });
  add("/api/openapi.json", "get", {
    operationId: "openapi",
    summary: "This document",
    responses: { "200": { description: "OpenAPI 3.1" } },
  });
  add("/api/events", "get", {
    operationId: "events",
    summary: "Server-sent events of one project (agent, work, target, spinup); resumable with Last-Event-ID",
    parameters: [
      { name: "projectId", in: "query", required: false, schema: { type: "string" } },
      { name: "Last-Event-ID", in: "header", required: false, schema: { type: "string" } },
    ],
    responses: { "200": { description: "text/event-stream" }, ...errors },
  });
  for (const op of OPERATIONS) {
    add(openApiPath(op.path), op.method, {
      operationId: op.id,
      summary: op.summary,
      ...(op.admin ? { description: `Needs an admin token (${op.admin}).` } : {}),
      ...(op.op ? { "x-nats-subject": `coord.<projectId>.${op.op}` } : {}),
      parameters: [...parameters(op.params, "path"), ...parameters(op.query, "query")],
      ...(op.body
        ? {
            requestBody: { required: true, content: { "application/json": { schema: jsonSchema(op.body) } } },
          }
        : {}),
      responses: {
        [op.method === "post" && (op.id === "submitWork" || op.id === "createTarget") ? "201" : "200"]: {
          description: "success",
        },
        ...errors,
      },
    });
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Weft",
      version: "0.1.0",
      description:
        "The Loominal coordinator's REST API. Every route but /health needs `Authorization: Bearer <token>`.",
    },
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    security: [{ bearer: [] }],
    paths,
  };
}
