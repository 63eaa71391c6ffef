# syntax=docker/dockerfile:1
# diswot: DisWOT student search on Optuna. Two stages: "build" installs the project exactly as the
# README's Quick start does (the command CI runs, .ci/run); "runtime" gets only the virtualenv and
# the source, runs as a non-root user, and has no compiler, pip cache or build tools.
#
#   docker build -t diswot .
#   docker run --rm diswot search --space s0 --teacher resnet20 --dataset synthetic --n-trials 5
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_PROGRESS_BAR=off PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY samplers ./samplers
COPY spaces ./spaces
COPY storage ./storage
# README: install
RUN pip install -e ".[test]"
RUN python -c "import torch, torchvision, diswot.pipeline.cli; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"

FROM python:${PYTHON_VERSION}-slim AS runtime
LABEL org.opencontainers.image.title="diswot" \
      org.opencontainers.image.description="Training-free student architecture search for distillation (DisWOT) on Optuna"
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 diswot \
 && useradd --system --uid 10001 --gid diswot --create-home --home-dir /home/diswot diswot \
 && mkdir -p /work \
 && chown diswot:diswot /work
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
USER diswot
WORKDIR /work
# the dashboard (diswot dashboard --host 0.0.0.0) and the gRPC storage proxy (diswot storage-server)
EXPOSE 8080 13000
ENTRYPOINT ["diswot"]
CMD ["--help"]
