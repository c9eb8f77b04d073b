# syntax=docker/dockerfile:1.7
# One image for every Dueflow role: `dueflow serve`, `dueflow relay`, `dueflow worker <name>`,
# `dueflow db upgrade`. The builder turns the project and its pinned dependencies into wheels; the
# runtime installs them from that directory only (no index, no compiler) into /opt/dueflow.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY dueflow ./dueflow
COPY mcp_server ./mcp_server
COPY workers ./workers
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="dueflow" \
      org.opencontainers.image.description="Dueflow: an MCP task server for AI agents (API and workers)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}"
ENV PATH=/opt/dueflow/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    DUEFLOW_DATA_DIR=/var/lib/dueflow
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/dueflow \
    && /opt/dueflow/bin/pip install --no-cache-dir --no-index --find-links /wheels \
        "dueflow==${VERSION}" \
    && /opt/dueflow/bin/pip uninstall --yes pip \
    && mkdir -p /var/lib/dueflow \
    && chown 10001:10001 /var/lib/dueflow
# The only places a process writes: /tmp and the embedded database's directory (unused when
# DUEFLOW_DATABASE_URL names PostgreSQL). Everything else can be mounted read-only.
VOLUME ["/var/lib/dueflow"]
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000 3000
ENTRYPOINT ["dueflow"]
CMD ["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8000"]
