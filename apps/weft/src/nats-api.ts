import { encodeJson, type Logger } from "@loominal/fabric";
import { PROJECT_ID_RE } from "@loominal/protocol";
import type { Subscription } from "@nats-io/transport-node";
import { z } from "zod";
import { operationByOp } from "./api.js";
import type { Principal } from "./auth.js";
import { errorBody, runOperation } from "./http.js";
import type { Weft } from "./weft.js";

/** The queue group every Weft instance answers `coord.<p>.<op>` in: each request is answered once. */
export const COORD_QUEUE = "weft";

/** A request on `coord.<p>.<op>`: the same parts as the REST call of that operation. */
export const coordRequestSchema = z.object({
  params: z.record(z.string(), z.unknown()).optional(),
  query: z.record(z.string(), z.unknown()).optional(),
  body: z.unknown().optional(),
});

/** The reply: `{ ok: true, status, body }` or `{ ok: false, status, error: { code, message, details } }`. */
export type CoordReply =
  | { ok: true; status: number; body: unknown }
  | { ok: false; status: number; error: { code: string; message: string; details?: unknown } };

/**
 * Answers Weft's operations over NATS request/reply for every project (`coord.*.<op>`, queue group
 * `weft`). A caller acts on the project of the subject only; NATS permissions decide who may publish
 * there, so a NATS caller is treated like a token limited to that project (no target mutations).
 */
export function serveCoordinatorApi(weft: Weft, logger: Logger): Subscription {
  const sub = weft.fabric.nc.subscribe("coord.*.*", { queue: COORD_QUEUE });
  void (async () => {
    for await (const m of sub) {
      const [, projectId, opName] = m.subject.split(".");
      void (async () => {
        let reply: CoordReply;
        const op = opName ? operationByOp(opName) : undefined;
        try {
          if (!projectId || !PROJECT_ID_RE.test(projectId)) throw new Error("bad project");
          if (!op) {
            reply = {
              ok: false,
              status: 404,
              error: {
                code: "not_found",
                message: `no operation ${opName}; see the x-nats-subject fields of /api/openapi.json`,
              },
            };
          } else {
            const parsed = coordRequestSchema.safeParse(m.data.length > 0 ? m.json() : {});
            if (!parsed.success) {
              reply = {
                ok: false,
                status: 400,
                error: {
                  code: "invalid_input",
                  message: "a coordinator request is {params?, query?, body?}",
                },
              };
            } else {
              const principal: Principal = {
                kind: "project",
                projects: [projectId],
                id: `nats:coord.${projectId}`,
              };
              const r = await runOperation(weft, op, principal, {
                params: parsed.data.params ?? {},
                query: { ...(parsed.data.query ?? {}), projectId },
                body: parsed.data.body ?? {},
              });
              reply = { ok: true, status: r.status, body: r.body };
            }
          }
        } catch (err) {
          const e = errorBody(err);
          reply = { ok: false, status: e.status, error: e.body.error };
        }
        weft.metrics.natsRequests.inc({ op: op?.op ?? "unknown", outcome: reply.ok ? "ok" : "error" });
        if (m.reply) m.respond(encodeJson(reply));
      })().catch((err: unknown) => logger.warn({ err: String(err) }, "coordinator request failed"));
    }
  })();
  return sub;
}
