# The image of `memristor-tfjs sweep --k8s` (src/sweep/cluster.ts): this package, built, on Node 20,
# with `memristor-tfjs` on PATH. The pods mount the shared volume (the model, the data, the output)
# at /work and run there.
#   docker build -t memristor-tfjs:$(node -p 'require("./package.json").version') .
FROM node:20-bookworm-slim
WORKDIR /app
COPY . .
# npm ci runs `prepare` (the build: the wasm kernels and dist/); then drop what only the build needed
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund \
 && ln -s /app/bin/memristor-tfjs.js /usr/local/bin/memristor-tfjs
WORKDIR /work
ENTRYPOINT []
CMD ["memristor-tfjs", "--help"]
