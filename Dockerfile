# etcetera container image (the one deploy/kubernetes/etcetera.yaml names): docker build -t etcetera:0.1.0 .
# Build stage: the full Debian image has python3/make/g++ should a native module (lmdb, bcrypt, uWebSockets.js)
# find no prebuilt binary. Run stage: the slim image of the same Debian release, so native modules built in the
# first stage link against the same glibc.
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
# Compiles src/ only (tests and benchmarks are not copied); then drops the dev dependencies.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    ETCD_DATA_DIR=/var/lib/etcetera/data
WORKDIR /opt/etcetera
# A dedicated unprivileged user (fixed uid/gid so Kubernetes' runAsUser/fsGroup can name it).
RUN groupadd --system --gid 10001 etcetera \
 && useradd --system --uid 10001 --gid etcetera --home-dir /var/lib/etcetera --no-create-home --shell /usr/sbin/nologin etcetera \
 && install -d -o etcetera -g etcetera -m 0700 /var/lib/etcetera
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
USER 10001:10001
VOLUME ["/var/lib/etcetera"]
# client, peer, metrics (--listen-metrics-urls)
EXPOSE 2379 2380 2381
# Flags come as arguments or ETCD_* variables (etcd's names). Node heap settings: see deploy/README.md.
ENTRYPOINT ["node", "--max-semi-space-size=64", "--max-old-space-size=4096", "dist/src/cli/etcetera.js"]
