# nemo-batch: one image for every process (api, worker, beat, flower, migrate, emulator).
#   docker build -t nemo-batch .      docker run --rm nemo-batch --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# curl for the health checks; ffmpeg comes with the imageio-ffmpeg and av wheels.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY api ./api
COPY cli ./cli
COPY core ./core
COPY emulator ./emulator
COPY migrations ./migrations
COPY worker ./worker
# The tested versions, exactly (requirements.lock, made by `make lock`).
RUN pip install -c requirements.lock . && rm -rf /src

RUN useradd --create-home --uid 10001 nemo \
    && mkdir -p /data/storage \
    && chown -R nemo:nemo /data
USER nemo
WORKDIR /home/nemo
ENV STORAGE_DIR=/data/storage
VOLUME ["/data/storage"]
EXPOSE 8000 5555 8700

ENTRYPOINT ["nemo-batch"]
CMD ["--help"]
