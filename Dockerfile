# Imagine: a Discord bot that generates images with ToAPIs.
# Build: docker build -t imagine .    Run: docker run --env-file .env -v imagine-data:/data imagine
# Pinned to a patch release: a rebuild months later gets the same Python. Raise it deliberately.
FROM python:3.11.14-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite:////data/imagine.db

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them. The lock pins every package, direct or
# not, with its hashes: the image installs exactly what was reviewed, and nothing a changed upload swapped in.
COPY requirements.lock .
RUN pip install --require-hashes --no-deps -r requirements.lock

COPY bot.py settings.py ./
COPY cogs/ cogs/
COPY generation/ generation/
COPY storage/ storage/
COPY toapis/ toapis/

# A user without privileges owns the data volume: the database and spooled results live there.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin imagine \
    && mkdir -p /data \
    && chown imagine:imagine /data
USER imagine
VOLUME /data

# Healthy: the gateway is connected, the database answers and jobs are taken. `bot.py --health` asks /healthz
# when METRICS_PORT is set and otherwise reads the heartbeat file the bot keeps fresh (a HEALTHCHECK cannot
# depend on run-time variables itself).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["python", "bot.py", "--health"]

# SIGTERM (docker stop) makes the bot stop taking jobs and exit cleanly; unfinished jobs resume at the next start.
STOPSIGNAL SIGTERM
CMD ["python", "bot.py"]
