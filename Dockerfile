# The hub's image: one image, one process per container, chosen by the command
# (`worker`, `gateway`, `sink NAME`, `topics create`, `db upgrade`; see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY aiguillage aiguillage
COPY connectors connectors
COPY streams streams
COPY sinks sinks
COPY schemas schemas
# psycopg: PostgreSQL is the production database (the package itself only needs SQLite).
RUN pip install . "psycopg[binary]>=3.1,<4" \
    && useradd --create-home --uid 10001 aiguillage \
    && mkdir /app && chown aiguillage /app

# Not root; /app is writable for Faust's data directory (tables are in memory, rebuilt from changelogs).
USER aiguillage
WORKDIR /app
ENTRYPOINT ["aiguillage"]
CMD ["--help"]
