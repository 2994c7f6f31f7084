# iccmatch's API and pages, for docker-compose.yml. On start it loads the sample network
# (a no-op when it is already loaded: ingest is idempotent), then serves on port 8000.

# The pages' browser libraries come from npm, at build time.
FROM node:20-slim AS web
WORKDIR /web
COPY api/web/package.json api/web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
WORKDIR /app
# CPU-only torch first, so sentence-transformers does not pull the CUDA build.
RUN pip install --no-cache-dir torch --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY graph graph
COPY matching matching
COPY ingest ingest
COPY api api
COPY --from=web /web/node_modules api/web/node_modules
COPY data/sample data/sample
# Editable: the code (and the pages under api/web) run from /app.
RUN pip install --no-cache-dir -e .
EXPOSE 8000
CMD ["sh", "-c", "iccmatch ingest data/sample && exec iccmatch serve --host 0.0.0.0 --port 8000"]
