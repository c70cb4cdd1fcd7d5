# The batchbridge services image: the gateway on :4566 serving Batch and SageMaker, and
# forwarding everything else to LocalStack (see docker-compose.yml and docs/compose.md).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/batchbridge

# Only what the package needs; tests, docs and the venv stay out (.dockerignore).
COPY pyproject.toml README.md ./
COPY lambdas ./lambdas
COPY services ./services
COPY pipeline ./pipeline
COPY scripts ./scripts

# awscli (v1, pure Python) lets the `process` executor run aws-cli job images' commands when
# the container is started with `--executor process` instead of `docker`.
RUN pip install ".[local]" "awscli>=1.33"

EXPOSE 4566

# Root, because the `docker` executor talks to the mounted /var/run/docker.sock, which is
# owned by root (or a host-specific docker group id) on the host.
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=12 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4566/_batchbridge/health', timeout=4)"]

CMD ["batchbridge", "local", "up", "--host", "0.0.0.0", "--port", "4566"]
