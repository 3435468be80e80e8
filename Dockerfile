# The gpufabric agent image (what WorkflowDeployment runs by default). Build and tag it with the
# package version, e.g.:
#   docker build -t gpufabric/agent:$(node -p 'require("./package.json").version') .
# It runs as user 10001 and writes only to its data directory (/var/lib/gpufabric) and /tmp, so it
# works with a read-only root filesystem.

# Node 22: a maintained LTS line within package.json's engines (Node 20, also supported, is past its end of life).
FROM node:22-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary matches the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# Dependencies first (their layer is reused while package-lock.json stays the same), without the
# lifecycle scripts: prepare would build before the sources are here. The agent's one native addon is
# built on its own.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3
# The compiled CLI and library (npm run build: dist/), the same output the package ships; then the
# sources, the compiler and the other development dependencies go.
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY bin ./bin
COPY cli ./cli
COPY constructs ./constructs
COPY policies ./policies
COPY runtime ./runtime
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf cli constructs policies runtime scripts tsconfig.json tsconfig.build.json
# The example workflows' stage programs: workflows reference them relative to /app.
COPY examples ./examples

FROM node:22-slim
ENV NODE_ENV=production \
    TMPDIR=/tmp \
    GPUFABRIC_DATA_DIR=/var/lib/gpufabric
WORKDIR /app
# bubblewrap sandboxes each stage (mount, PID, network namespaces); prlimit (util-linux) caps it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap util-linux \
 && rm -rf /var/lib/apt/lists/*
# Owned by root and read-only to the agent: only the data directory is its own.
COPY --from=build /app /app
RUN mkdir -p /var/lib/gpufabric \
 && chown 10001:10001 /var/lib/gpufabric \
 && chmod 0750 /var/lib/gpufabric
USER 10001:10001
VOLUME ["/var/lib/gpufabric"]
EXPOSE 8443
# bin/gpufabric.mjs runs dist/ (there are no sources beside it here): no TypeScript at run time.
ENTRYPOINT ["node", "bin/gpufabric.mjs"]
CMD ["agent", "--config", "/etc/gpufabric/platform.json"]
