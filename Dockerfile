# syntax=docker/dockerfile:1
# The reference server (aikb-server) as a container: build with `docker compose build`, run with
# `docker compose up` (docker-compose.yml: PostgreSQL with pgvector, Redis, this server).

# --- build: every dependency, the server bundle, then only production dependencies kept ----------
FROM node:20-bookworm-slim AS build
WORKDIR /app
# The manifests first, so that `npm ci` is cached until a dependency changes.
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/express-adapter/package.json packages/express-adapter/
COPY packages/openfeature-provider/package.json packages/openfeature-provider/
COPY packages/prometheus/package.json packages/prometheus/
COPY examples/reference-server/package.json examples/reference-server/
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json tsup.config.ts ./
COPY packages packages
COPY examples/reference-server examples/reference-server
# The bundle compiles the @aikb/* packages from source; their own builds are not needed.
RUN npm run build -w @aikb/reference-server && npm prune --omit=dev --no-audit --no-fund

# --- runtime: the bundle and production dependencies, as the unprivileged `node` user -----------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    AIKB_DATA_DIR=/var/lib/aikb
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./
COPY --from=build --chown=root:root /app/node_modules node_modules
COPY --from=build --chown=root:root /app/examples/reference-server/package.json examples/reference-server/
COPY --from=build --chown=root:root /app/examples/reference-server/dist examples/reference-server/dist
RUN mkdir -p /var/lib/aikb /var/log/aikb && chown node:node /var/lib/aikb /var/log/aikb
USER node
EXPOSE 3000
# 200 when every component is ok; 503 (degraded) while PostgreSQL or Redis is down.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/api/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The server shuts down gracefully on SIGTERM: stops accepting, finishes in-flight requests, exits 0.
STOPSIGNAL SIGTERM
CMD ["node", "examples/reference-server/dist/cli.js", "serve"]
