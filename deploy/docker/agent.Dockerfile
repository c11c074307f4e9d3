# syntax=docker/dockerfile:1
# loominal-agent, the worker a spin-up starts. Extend it with the command it runs per item, e.g.
#   FROM ghcr.io/loominal/agent:0.1.0
#   USER root
#   RUN npm install -g @anthropic-ai/claude-code@<version>
#   USER 1000:1000
# Built from the pnpm workspace at the repository root:
#   docker build -f deploy/docker/agent.Dockerfile -t ghcr.io/loominal/agent:0.1.0 .

# ——— build: install the workspace, compile @loominal/agent and what it depends on, then `pnpm deploy` it ———
FROM node:20.20.2-bookworm-slim AS build
ENV CI=true PNPM_HOME=/pnpm PATH=/pnpm:$PATH
RUN corepack enable && corepack prepare pnpm@10.34.9 --activate
WORKDIR /src
COPY . .
RUN pnpm install --frozen-lockfile --filter "@loominal/agent..." \
 && pnpm --filter "@loominal/agent..." run build \
 && pnpm --filter "@loominal/agent" deploy --prod --legacy /out

# ——— runtime: the deployed package and its production dependencies only ———
FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out /app
# The image's `node` user (uid 1000, as the Kubernetes manifests' runAsUser); /app stays root-owned and read-only.
USER 1000:1000
ENTRYPOINT ["node", "/app/dist/bin.js"]
