# iccmatch's API, for docker-compose.yml. Loads the sample network on start (a no-op
# when it is already loaded: ingest is idempotent), then serves on port 8000.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY graph graph
COPY matching matching
COPY ingest ingest
COPY api api
COPY data/sample data/sample
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["sh", "-c", "iccmatch ingest data/sample && exec iccmatch serve --host 0.0.0.0 --port 8000"]
