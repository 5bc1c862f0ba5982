# ala-operator image: build wheels in one stage, install them into a virtual environment
# in a slim final stage with no compilers, run as a non-root user on a read-only root
# filesystem (only /tmp, an emptyDir in the chart, is written). The development stack
# (ala_operator.devstack: emulator, simulated fleet, replay, benchmarks) is left out, and so
# is its extra (kmock, jsonpatch): `ala-operator run` imports none of it.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ala ./ala
COPY operator ./operator
RUN python -m venv /opt/ala \
 && /opt/ala/bin/pip install --no-cache-dir --upgrade pip==24.3.1 \
 && /opt/ala/bin/pip install --no-cache-dir '.[operator]' \
 && rm -rf /opt/ala/lib/python3.11/site-packages/ala_operator/devstack

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="ala-operator" \
      org.opencontainers.image.description="Capacity planning for LLM inference on Kubernetes (ALA)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/ala /opt/ala
ENV PATH=/opt/ala/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    ALA_METRICS_PORT=8080 \
    ALA_HEALTH_PORT=8081
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["ala-operator", "run"]
