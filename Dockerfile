# ala-operator image: build wheels in one stage, install them into a virtual environment
# in a slim final stage with no compilers, run as a non-root user on a read-only root
# filesystem (only /tmp, an emptyDir in the chart, is written). The development stack
# (ala_operator.devstack: emulator, simulated fleet, replay, benchmarks) is left out, and so
# is its extra (kmock, jsonpatch): `ala-operator run` imports none of it.
#
# BASE_IMAGE: any Debian-based image with python3 (>= 3.10) and its venv module. The
# default is the public Python slim image; `.ci/build-image` passes a local Debian base
# built with mmdebstrap where no registry can be reached.
# Dependencies are pinned by deploy/image-constraints.txt. The default model is fitted
# once, here, with the image's own libraries, and saved with its fitted state: the
# operator loads it in about a second instead of fitting at every start.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY deploy/image-constraints.txt ./constraints.txt
COPY ala ./ala
COPY operator ./operator
# Run from / : in /src, ./operator would shadow Python's own operator module.
WORKDIR /
RUN python3 -m venv /opt/ala \
 && /opt/ala/bin/pip install --no-cache-dir --quiet --constraint /src/constraints.txt '/src[operator]' \
 && rm -rf /opt/ala/lib/python3*/site-packages/ala_operator/devstack \
 && mkdir -p /opt/ala/share/ala \
 && /opt/ala/bin/ala fit --seed 0 --out /opt/ala/share/ala/default.ala \
 && /opt/ala/bin/python -m pip uninstall --yes --quiet pip setuptools

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="ala-operator" \
      org.opencontainers.image.description="Capacity planning for LLM inference on Kubernetes (ALA)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/ala /opt/ala
ENV PATH=/opt/ala/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    ALA_MODEL_FILE=/opt/ala/share/ala/default.ala \
    ALA_METRICS_PORT=8080 \
    ALA_HEALTH_PORT=8081
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["ala-operator", "run"]
