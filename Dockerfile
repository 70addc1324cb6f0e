# The pipeline's own processes (consumer, API, simulator, stream services) as containers: the docker
# backend runs them from this image when `stack.pipeline = "containers"`. Build it in k2tui's source tree:
#   docker build -t k2tui:0.1.0 .
# The entrypoint is `k2tui`; a container's command is the verb and its flags (`consume --metrics-port …`),
# and its settings arrive as K2_* variables, as they do for the processes k2tui starts on the host.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# Behind a private package index or a TLS-inspecting proxy: pip reads these from the environment.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_CERT

COPY pyproject.toml README.md /src/
COPY k2tui /src/k2tui
RUN PIP_ROOT_USER_ACTION=ignore python -m pip install --no-cache-dir --disable-pip-version-check /src

ENV PYTHONUNBUFFERED=1
# Any user: the docker backend runs it as the owner of k2tui's home on the host, which it mounts.
USER 10001:10001
ENTRYPOINT ["k2tui"]
CMD ["--help"]
