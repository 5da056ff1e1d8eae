# syntax=docker/dockerfile:1

# Builder: wheels for retarget and every dependency, so the final image needs no compiler.
FROM python:3.11-slim AS builder
WORKDIR /src
RUN python -m pip install --no-cache-dir --upgrade pip
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime: the installed package, a non-root user, nothing else.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RETARGET_HOST=0.0.0.0 \
    RETARGET_ENV=production \
    RETARGET_DATA_DIR=/var/lib/retarget
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links /wheels retarget \
    && useradd --system --create-home --home-dir /var/lib/retarget --uid 10001 retarget
USER retarget
WORKDIR /var/lib/retarget
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('RETARGET_PORT', '8000') + '/readyz', timeout=2)"]
CMD ["retarget", "serve"]
