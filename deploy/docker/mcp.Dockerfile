# syntax=docker/dockerfile:1
# The MCP servers Warp, Pattern and Shuttle (stdio), for MCP clients that start servers as containers:
#   docker run -i --rm -e NATS_URL=nats://host:4222 -e LOOMINAL_PROJECT_ID=my-app ghcr.io/loominal/mcp:0.1.0 loominal-warp
# (`weft mcp` ships in the weft image: `docker run -i --rm … ghcr.io/loominal/weft:0.1.0 mcp`.)
# Built from the pnpm workspace at the repository root:
#   docker build -f deploy/docker/mcp.Dockerfile -t ghcr.io/loominal/mcp:0.1.0 .

# ——— build: install the workspace, compile the three servers, then `pnpm deploy` each ———
FROM node:20.20.2-bookworm-slim AS build
ENV CI=true PNPM_HOME=/pnpm PATH=/pnpm:$PATH
RUN corepack enable && corepack prepare pnpm@10.34.9 --activate
WORKDIR /src
COPY . .
RUN pnpm install --frozen-lockfile --filter "@loominal/warp..." --filter "@loominal/pattern..." --filter "@loominal/shuttle..." \
 && pnpm --filter "@loominal/warp..." --filter "@loominal/pattern..." --filter "@loominal/shuttle..." run build \
 && for p in warp pattern shuttle; do pnpm --filter "@loominal/$p" deploy --prod --legacy "/out/$p"; done

# ——— runtime: the deployed packages and their production dependencies only ———
FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out /app
RUN for p in warp pattern shuttle; do \
      printf '#!/bin/sh\nexec node /app/%s/dist/bin.js "$@"\n' "$p" > "/usr/local/bin/loominal-$p" \
      && chmod 755 "/usr/local/bin/loominal-$p"; \
    done
# The image's `node` user (uid 1000); /app stays root-owned and read-only.
USER 1000:1000
CMD ["loominal-warp"]
