# BrokerFlow: one image for the API, the worker, migrations and the MT5 simulator.
# docker-compose.yml picks the process with `command:`; the default is the API.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

# WeasyPrint (PDF statements) needs Pango, HarfBuzz and fonts from the distribution.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 \
        libpangoft2-1.0-0 \
        libharfbuzz-subset0 \
        libjpeg62-turbo \
        libopenjp2-7 \
        libffi8 \
        shared-mime-info \
        fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

RUN pip install --no-cache-dir "uv==0.13.8"

WORKDIR /app

# Dependencies first (cached until uv.lock changes), then the code.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev

RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home brokerflow \
    && mkdir -p /app/.data/mt5 \
    && chown -R brokerflow:brokerflow /app/.data
USER brokerflow

ENV PATH="/app/.venv/bin:${PATH}" \
    BROKERFLOW_DATA_DIR=/app/.data \
    BROKERFLOW_API_HOST=0.0.0.0

EXPOSE 8000 8443
CMD ["python", "-m", "api"]
