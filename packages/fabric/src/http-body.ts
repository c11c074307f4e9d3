import type { IncomingMessage } from "node:http";

/** A request body over the limit; `type` is what express's body parsers set, so one error mapping serves both. */
export class BodyTooLargeError extends Error {
  readonly type = "entity.too.large";
}

/**
 * Reads a request body of at most `maxBytes` as UTF-8 text, for routes answered on `node:http` ahead of
 * express. A longer body (declared or sent) is read to its end, so the connection stays usable, and then
 * refused with BodyTooLargeError.
 */
export function readBodyLimited(req: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = req.headers["content-length"];
    let tooLarge = declared !== undefined && Number(declared) > maxBytes;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > maxBytes) {
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (tooLarge) reject(new BodyTooLargeError("request entity too large"));
      else
        resolve(
          chunks.length === 1
            ? (chunks[0] as Buffer).toString("utf8")
            : Buffer.concat(chunks, size).toString("utf8"),
        );
    });
    req.on("error", reject);
  });
}
