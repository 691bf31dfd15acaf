# Shelfwatch image (ingest service, web views, demo): the locked environment plus the code; used by
# docker-compose.yml. The same install as the Airflow image and `make install` (deploy/install.sh).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends make gcc g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock pyproject.toml Makefile ./
COPY deploy/airflow/requirements-airflow.lock deploy/airflow/
COPY deploy/install.sh deploy/
RUN python -m venv .venv && .venv/bin/pip install --quiet --upgrade "pip>=24" && deploy/install.sh .venv/bin/python deps
COPY . .
RUN deploy/install.sh .venv/bin/python project
ENV PATH=/app/.venv/bin:$PATH
CMD ["shelfwatch", "--help"]
