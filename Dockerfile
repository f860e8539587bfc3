# syntax=docker/dockerfile:1
#
# The cijob-operator image: the `cijob-operator` console script on a slim Python base, run as
# a non-root user (uid 10001), with every Python dependency pinned by requirements.lock.
#
#   docker build -t cijob-operator:0.1.0 .
#
# Docker credential helpers that jobs' DOCKER_AUTH_CONFIG may name (`credsStore`,
# `credHelpers`) must be on the operator's PATH, as on the runner's. Add them at build time,
# e.g. for Amazon ECR (`{"credsStore": "ecr-login"}`):
#
#   docker build --build-arg CREDENTIAL_HELPERS=ecr-login -t cijob-operator:0.1.0-ecr .
#
# See docs/install.md, "Building the image".

# Python 3.11 (pyproject.toml: requires-python >= 3.11) on Debian 12, pinned to a patch release.
ARG PYTHON_IMAGE=python:3.11.15-slim-bookworm

# ---------------------------------------------------------------------------------------------
# The stages are ordered for a builder's layer cache: the locked dependencies and the runtime
# (`deps`, `runtime`) do not depend on the operator's code, so a change of the code rebuilds
# only its wheel (`build`) and the last stage's few steps.
FROM ${PYTHON_IMAGE} AS deps

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
COPY requirements.lock ./
# A pip-less virtual environment with exactly the locked versions of the dependencies (binary
# wheels only: no compiler in the image).
RUN python -m venv --without-pip /opt/cijob \
    && pip --python /opt/cijob/bin/python install --only-binary=:all: \
        --requirement requirements.lock

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# Space- or comma-separated names of Docker credential helpers to install, each giving
# `docker-credential-<name>` on the PATH. Known: ecr-login (Debian's
# amazon-ecr-credential-helper). Empty: none.
ARG CREDENTIAL_HELPERS=""

# git (and ssh, for ssh:// and git@host: URLs) is always installed: the image is also the
# default image of the jobs' clone container (helperImage), which runs `git` (docs/source.md).
RUN set -eu; \
    packages="git openssh-client"; \
    for helper in $(echo "${CREDENTIAL_HELPERS}" | tr ',' ' '); do \
        case "${helper}" in \
            ecr-login) packages="${packages} amazon-ecr-credential-helper" ;; \
            *) echo "CREDENTIAL_HELPERS: unknown helper '${helper}' (known: ecr-login);" \
                    "add its binary as docker-credential-${helper} in a derived image" >&2; \
               exit 1 ;; \
        esac; \
    done; \
    apt-get update; \
    apt-get install -y --no-install-recommends ${packages}; \
    rm -rf /var/lib/apt/lists/*; \
    git --version; ssh -V; \
    for helper in $(echo "${CREDENTIAL_HELPERS}" | tr ',' ' '); do \
        command -v "docker-credential-${helper}"; \
    done; \
    groupadd --system --gid 10001 cijob; \
    useradd --system --uid 10001 --gid 10001 --home-dir /home/cijob --create-home \
        --shell /usr/sbin/nologin cijob

COPY --from=deps /opt/cijob /opt/cijob

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

# The build backend (pyproject.toml: setuptools>=68), pinned too.
ARG SETUPTOOLS_VERSION=80.9.0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
RUN pip install "setuptools==${SETUPTOOLS_VERSION}"
COPY pyproject.toml README.md requirements.lock ./
COPY operator/ operator/
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /src/wheels .

# ---------------------------------------------------------------------------------------------
FROM runtime

# The operator's wheel, installed with no index: its dependencies must be the locked ones
# already there, or the build fails.
COPY --from=build /src/requirements.lock /src/wheels/ /tmp/cijob-wheel/
RUN cd /tmp/cijob-wheel \
    && PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
        pip --python /opt/cijob/bin/python install --no-index \
        --constraint requirements.lock ./*.whl \
    && rm -rf /tmp/cijob-wheel \
    && /opt/cijob/bin/cijob --help >/dev/null

ENV PATH=/opt/cijob/bin:${PATH} \
    HOME=/home/cijob \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

LABEL org.opencontainers.image.title="cijob-operator" \
      org.opencontainers.image.description="Runs GitLab-style CI jobs (CiJob resources) as Kubernetes pods" \
      org.opencontainers.image.licenses="Apache-2.0"

USER 10001:10001
WORKDIR /home/cijob
# GET /healthz (liveness and readiness).
EXPOSE 8080
ENTRYPOINT ["cijob-operator"]
