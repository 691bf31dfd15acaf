# Shelfwatch image: the locked environment plus the code; used by docker-compose.yml.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends make gcc g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock pyproject.toml Makefile ./
RUN python -m venv .venv && .venv/bin/pip install --quiet --upgrade "pip>=24" && .venv/bin/pip install --quiet -r requirements.lock
COPY . .
RUN .venv/bin/pip install --quiet --no-deps -e .
ENV PATH=/app/.venv/bin:$PATH
CMD ["shelfwatch", "--help"]
