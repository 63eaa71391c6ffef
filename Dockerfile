# syntax=docker/dockerfile:1
# diswot: DisWOT student search on Optuna, in two stages.
# "build" copies the files the package is made of (pyproject.toml, README.md, LICENSE and the seven package
# folders, which hold the eight packages of pyproject.toml's package-dir: pipeline/cli is inside pipeline),
# builds the wheel from them and installs that wheel, with the storage drivers and timm but without the
# test tools, into a virtualenv that has no pip. "runtime" is the slim base image plus that virtualenv:
# no source tree, wheel, compiler or build tools; it runs as a non-root user. CI (.ci/run) builds the
# wheel from exactly the files the build stage copies (.ci/image_files.py) and runs `diswot --help` from it.
#
#   docker build -t diswot .
#   docker run --rm diswot search --space s0 --teacher resnet20 --dataset synthetic --n-trials 5
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_PROGRESS_BAR=off PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY diswot ./diswot
COPY pipeline ./pipeline
COPY proxies ./proxies
COPY registry ./registry
COPY samplers ./samplers
COPY spaces ./spaces
COPY storage ./storage
# the wheel, built in an isolated environment with the build requirements of pyproject.toml
RUN pip wheel --no-deps --wheel-dir /dist .
# the wheel and its dependencies, installed by the base image's pip into a virtualenv without one
RUN python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install "$(ls /dist/diswot-*.whl)[postgres,mysql,redis,grpc,timm]"
ENV PATH=/opt/venv/bin:$PATH
RUN diswot --help >/dev/null \
 && python -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"

FROM python:${PYTHON_VERSION}-slim AS runtime
LABEL org.opencontainers.image.title="diswot" \
      org.opencontainers.image.description="Training-free student architecture search for distillation (DisWOT) on Optuna"
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 diswot \
 && useradd --system --uid 10001 --gid diswot --create-home --home-dir /home/diswot diswot \
 && mkdir -p /work \
 && chown diswot:diswot /work
COPY --from=build /opt/venv /opt/venv
USER diswot
WORKDIR /work
# the dashboard (diswot dashboard --host 0.0.0.0) and the gRPC storage proxy (diswot storage-server)
EXPOSE 8080 13000
ENTRYPOINT ["diswot"]
CMD ["--help"]
