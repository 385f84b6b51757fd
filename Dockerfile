# Imagine bot: a slim image that runs `python -m bot` as an unprivileged user.
#
#   docker compose up -d                     (see compose.yaml), or by hand:
#   docker build -t imagine-bot .
#   docker run -d --env-file .env -v imagine-data:/data --restart unless-stopped imagine-bot
#
# The SQLite database lives on the /data volume. /healthz is served on METRICS_PORT for the
# HEALTHCHECK (and /metrics for a scraper). The bot stops gracefully on SIGTERM (docker stop).
# An --env-file copied from .env.example sets METRICS_PORT empty, which turns the listener (and so
# the HEALTHCHECK) off: delete that line and METRICS_HOST from it to keep the values below.

# --- builder: the project and its dependencies in a virtual environment ------------------------
FROM python:3.12-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, read from pyproject.toml, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

COPY bot ./bot
COPY cogs ./cogs
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps .

# --- runtime ----------------------------------------------------------------------------------
FROM python:3.12-slim

# DATABASE_URL: four slashes, an absolute path on the /data volume.
# METRICS_*: listen on all interfaces so the HEALTHCHECK and a scraper in another container reach it.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATABASE_URL=sqlite:////data/bot.sqlite3 \
    METRICS_PORT=8080 \
    METRICS_HOST=0.0.0.0

# An unprivileged user owning /data (a new named volume takes this ownership). /app/data points at
# /data too, so the relative default sqlite:///data/bot.sqlite3 (from a copied .env.example) also
# lands on the volume.
RUN groupadd --system --gid 10001 bot \
    && useradd --system --uid 10001 --gid bot --home-dir /app --no-create-home --shell /usr/sbin/nologin bot \
    && mkdir -p /data /app \
    && ln -s /data /app/data \
    && chown bot:bot /data

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['METRICS_PORT'], timeout=4)"]

STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
