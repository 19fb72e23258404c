# syntax=docker/dockerfile:1
# One image for every slice: MODULES picks what a container serves (all | user | order | event | orchestrator).
#   docker build -t ticketremaster .
#   docker run -p 8000:8000 -e JWT_SECRET=… -e SERVICE_TOKEN=… -e QR_ENCRYPTION_KEY=… \
#     -e STRIPE_WEBHOOK_SECRET=… -e DATABASE_URL=postgres://… ticketremaster
#   docker run -p 5000:5000 -e MODULES=user … ticketremaster
# TypeScript runs through tsx (a production dependency), exactly as `npm start` does: no build step.
ARG NODE_VERSION=20

# Production dependencies. argon2 and better-sqlite3 are native addons: when no prebuilt binary
# fits, they compile here, with the toolchain this stage has and the final image does not.
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production \
    MODULES=all \
    PORT=8000 \
    DATA_DIR=/app/data \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY config ./config
COPY src ./src
# The code stays root-owned and read-only; only the SQLite directory belongs to the runtime user.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 8000 5000 5001 5002 5003
# Probes the port this container listens on: a module run alone uses its own port, otherwise PORT.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const m=process.env.MODULES||'all';const e=process.env;const p={user:e.USER_PORT||5000,order:e.ORDER_PORT||5001,event:e.EVENT_PORT||5002,orchestrator:e.ORCHESTRATOR_PORT||5003}[m]||e.PORT||8000;fetch('http://127.0.0.1:'+p+'/health',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# What `npm start` execs, started directly so that the app itself is PID 1 and receives the
# SIGTERM of `docker stop`, with no npm in between.
CMD ["node", "--import", "tsx", "src/main.ts"]
