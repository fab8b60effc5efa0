# Flower (Celery's monitor) for compose.yaml: Python Celery + Flower pointed at the same Redis.
# It reads Celery's events (the workers run with -E) and remote control (inspect) replies.
#   docker build -f deploy/container/flower.Dockerfile -t celeris-flower:0.2.0 deploy/container
# BASE: a Python 3 image (default), or a plain Debian one (python3-venv is installed then).
# Behind a TLS-intercepting proxy: mount its CA and name it, e.g. (podman)
#   podman build -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/host-ca.crt:ro --build-arg PIP_CERT=/etc/ssl/certs/host-ca.crt …
ARG BASE=python:3.12-slim-bookworm
FROM ${BASE}
ARG PIP_CERT=""
RUN if ! python3 -m venv --help > /dev/null 2>&1 || ! python3 -c 'import ensurepip' 2> /dev/null; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
      && rm -rf /var/lib/apt/lists/*; fi \
 && python3 -m venv /opt/flower \
 && /opt/flower/bin/pip install --no-cache-dir ${PIP_CERT:+--cert "$PIP_CERT"} "celery[redis]==5.7.*" "flower==2.0.*" \
 && echo 'flower:x:10001:10001:Flower:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'flower:x:10001:' >> /etc/group
USER 10001:10001
WORKDIR /tmp
EXPOSE 5555
ENV CELERY_BROKER_URL=redis://redis:6379/0
# Flower needs no task code: it watches the broker's events and asks the workers over remote control.
ENTRYPOINT ["/opt/flower/bin/celery", "flower", "--port=5555", "--address=0.0.0.0"]
