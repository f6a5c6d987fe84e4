# syntax=docker/dockerfile:1
# Build stage: a wheel of the project and of every dependency.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pixelwand ./pixelwand
COPY schema ./schema
COPY compat_rest ./compat_rest
# `video` (PyAV: video facts and posters) bundles GPL FFmpeg builds; build with
# `--build-arg EXTRAS=` for an image without it (docs/media.md).
ARG EXTRAS=video
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[${EXTRAS}]"

# Runtime stage: only the wheels, a non-root user and the data volume.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIXELWAND_HOST=0.0.0.0 \
    PIXELWAND_PORT=8000 \
    PIXELWAND_DATA_DIR=/data
RUN useradd --system --uid 10001 --home-dir /data --create-home pixelwand
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["pixelwand"]
CMD ["serve"]
