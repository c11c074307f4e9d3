# syntax=docker/dockerfile:1
# The Runner: executes agent runs (REST + SSE on :3100) with cluster-wide quotas on JetStream.
# Built from the pnpm workspace at the repository root:
#   docker build -f deploy/docker/runner.Dockerfile -t ghcr.io/loominal/runner:0.1.0 .

# ——— build: install the workspace, compile @loominal/runner and what it depends on, then `pnpm deploy` it ———
FROM node:20.20.2-bookworm-slim AS build
ENV CI=true PNPM_HOME=/pnpm PATH=/pnpm:$PATH
RUN corepack enable && corepack prepare pnpm@10.34.9 --activate
WORKDIR /src
COPY . .
RUN pnpm install --frozen-lockfile --filter "@loominal/runner..." \
 && pnpm --filter "@loominal/runner..." run build \
 && pnpm --filter "@loominal/runner" deploy --prod --legacy /out

# ——— runtime: the deployed package and its production dependencies only ———
FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out /app
# The image's `node` user (uid 1000, as the Kubernetes manifests' runAsUser); /app stays root-owned and read-only.
USER 1000:1000
EXPOSE 3100
ENV RUNNER_HOST=0.0.0.0 RUNNER_PORT=3100
ENTRYPOINT ["node", "/app/dist/bin.js"]
