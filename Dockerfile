# The agent image: one NFT's agent (`panthers agent`) serving on port 8080, as Akash and
# SecretVM run it. Build: docker build -t ghcr.io/secret-panthers/agent:0.1.0 .

# --- build: TypeScript and the native addons (better-sqlite3 builds from source) ---
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts off: the root "prepare" would compile before the sources are here; the one native
# addon that needs its install script is rebuilt explicitly.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json ./
COPY src ./src
COPY actors ./actors
COPY adapters ./adapters
COPY bin ./bin
# Only what runs (bench/ and test/ stay out of the image).
# src/logger.ts imports pino-pretty, listed under devDependencies: kept (this copy of
# package.json only) so the prune does not remove it.
RUN printf '{ "extends": "./tsconfig.json", "include": ["src", "actors", "adapters", "bin"] }\n' > tsconfig.image.json \
 && npx tsc -p tsconfig.image.json \
 && node bin/bundle.mjs \
 && npm pkg set "dependencies.pino-pretty=$(node -p "require('./package.json').devDependencies['pino-pretty']")" \
 && npm prune --omit=dev --ignore-scripts

# --- run: no compilers, no dev dependencies; the agent itself runs as `node` ---
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0 \
    PANTHERS_ENV=production \
    PANTHERS_DATA_DIR=/app/data \
    PANTHERS_RUN_AS=1000:1000
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /app/data && chown node:node /app/data
# No USER: Akash mounts the persistent volume at /app/data root-owned (the pod gets no fsGroup),
# so the process starts as root, takes ownership of the data dir and drops to node (uid 1000,
# PANTHERS_RUN_AS) before it opens anything (src/run-as.ts).
EXPOSE 8080
CMD ["node", "dist/bin/panthers.js", "agent"]
