# Troupe's image: `docker compose up -d` (see docker-compose.yml), or alone:
#   docker build -t troupe . && docker run --env-file .env -v troupe-data:/app/data troupe
# The builder stage makes a virtual environment; the final stage copies only that, so pip's
# build requirements and caches never reach the image.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first, against an empty package, so code changes reuse this layer. Its build/
# goes too: setuptools would otherwise keep the empty bot/__init__.py, newer than the real one.
COPY pyproject.toml ./
RUN mkdir bot && touch README.md bot/__init__.py \
    && /opt/venv/bin/pip install . \
    && rm -rf bot README.md build troupe.egg-info
# Then Troupe itself, as a wheel (not editable): the image needs no source tree.
COPY README.md ./
COPY bot/ bot/
RUN /opt/venv/bin/pip install --no-deps --force-reinstall .

FROM ${PYTHON_IMAGE}
# Where the venv's packages live; bot/storage/migrate.py looks for migrations/ beside bot/.
ARG SITE_PACKAGES=/opt/venv/lib/python3.11/site-packages
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TROUPE_CHARACTERS_DIR=/app/characters \
    TROUPE_HEALTH_PORT=8080 \
    DATABASE_URL=sqlite:////app/data/troupe.sqlite3
RUN groupadd --system --gid 10001 troupe \
    && useradd --system --uid 10001 --gid troupe --home-dir /app --no-create-home troupe
COPY --from=builder /opt/venv /opt/venv
COPY migrations/ ${SITE_PACKAGES}/migrations/
COPY alembic.ini /app/alembic.ini
COPY characters/ /app/characters/
COPY docker/healthcheck.py /app/docker/healthcheck.py
# /app/migrations lets `alembic` (e.g. `alembic current`) run from /app with alembic.ini;
# /app/data holds the SQLite file when no PostgreSQL DATABASE_URL is given.
RUN ln -s ${SITE_PACKAGES}/migrations /app/migrations \
    && mkdir /app/data \
    && chown troupe:troupe /app/data
WORKDIR /app
USER 10001:10001
# /healthz and /metrics (TROUPE_HEALTH_PORT).
EXPOSE 8080
ENTRYPOINT ["troupe"]
CMD ["run"]
