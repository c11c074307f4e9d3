# syntax=docker/dockerfile:1
# Weft, the coordinator: REST API on :3000, NATS request/reply, spin-up and idle shutdown.
# Built from the pnpm workspace at the repository root:
#   docker build -f deploy/docker/weft.Dockerfile -t ghcr.io/loominal/weft:0.1.0 .

# ——— build: install the workspace, compile @loominal/weft and what it depends on, then `pnpm deploy` it ———
FROM node:20.20.2-bookworm-slim AS build
ENV CI=true PNPM_HOME=/pnpm PATH=/pnpm:$PATH
RUN corepack enable && corepack prepare pnpm@10.34.9 --activate
WORKDIR /src
COPY . .
RUN pnpm install --frozen-lockfile --filter "@loominal/weft..." \
 && pnpm --filter "@loominal/weft..." run build \
 && pnpm --filter "@loominal/weft" deploy --prod --legacy /out

# ——— runtime: the deployed package and its production dependencies only ———
FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out /app
# Weft writes its generated token and spin-up logs here (a volume in Kubernetes and compose).
RUN mkdir /data && chown 1000:1000 /data
# The image's `node` user (uid 1000, as the Kubernetes manifests' runAsUser); /app stays root-owned and read-only.
USER 1000:1000
EXPOSE 3000
ENV WEFT_HOST=0.0.0.0 WEFT_PORT=3000 WEFT_DATA_DIR=/data
ENTRYPOINT ["node", "/app/dist/bin.js"]
CMD ["serve"]
