# Gradient Lab -- the hosted teaching instance, CPU image.
#
#   docker build -t gradlab:0.1.0 .
#   docker run --rm -p 8501:8501 gradlab:0.1.0          # then open http://localhost:8501
#
# One container = gradlab-serve (app/hosting/serve.py), a supervisor that starts
# GRADLAB_EXECUTORS training processes (every run of every session trains there, in short
# turns) and then WEB_CONCURRENCY uvicorn web workers sharing port 8501 (they serve pages
# and never train). One Python process gives about one core (the GIL; deploy/README.md,
# "Inside a pod"), so a 2-CPU container runs 2 executors and 2 web workers. Scale out with
# more containers behind a sticky proxy (deploy/), never with more threads in one process.
#
# torch comes from PyTorch's CPU wheel index: the default PyPI torch wheel for Linux bundles
# CUDA libraries (several GB) that a CPU pod never uses. The version is the one pinned in
# ci/constraints.txt, so the image runs the torch the tests ran.
#
# CUDA variant (a GPU node pool; see deploy/README.md): build with
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
#                --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 -t gradlab:0.1.0-cuda .
# (that base has no python3.11 of its own: install python3 + python3-venv with apt first),
# or start FROM pytorch/pytorch:<version>-cuda12.6-cudnn9-runtime, which already holds torch,
# and skip the torch step. RunConfig.device="auto" picks cuda when the pod sees a GPU.

ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# GRADLAB_PROFILE=hosted: the tighter per-run caps (core/config.py HOSTED_MAX_WORK, steps).
# WEB_CONCURRENCY: web worker processes (uvicorn's variable); GRADLAB_EXECUTORS: training
# processes. Both default to the container's CPUs (its cgroup quota) when unset; set both
# to the CPUs of the pod. GRADLAB_TORCH_THREADS=1: one torch thread per executor.
# MALLOC_ARENA_MAX=2: fewer glibc malloc arenas, so memory freed after a class goes back
# to the OS (deploy/README.md, "Memory after a class"; the load test sets the same).
# STREAMLIT_<SECTION>_<OPTION> sets any Streamlit option at run time (e.g.
# STREAMLIT_SERVER_ALLOWED_HOSTS, STREAMLIT_SERVER_COOKIE_SECRET): app/hosting/asgi.py
# applies them in every worker as `streamlit run` would (uvicorn alone ignores all but the
# secret).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADLAB_PROFILE=hosted \
    WEB_CONCURRENCY=2 \
    GRADLAB_EXECUTORS=2 \
    GRADLAB_TORCH_THREADS=1 \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    MALLOC_ARENA_MAX=2 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_FILE_WATCHER_TYPE=none \
    STREAMLIT_SERVER_RUN_ON_SAVE=false

WORKDIR /app

# 1. torch (CPU wheel) and the other dependencies: a layer that changes only with the pins.
COPY pyproject.toml ./
COPY ci/constraints.txt ci/constraints.txt
RUN pip install --index-url "${TORCH_INDEX_URL}" \
        "torch==$(sed -n 's/^torch==//p' ci/constraints.txt)" \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt -c ci/constraints.txt \
 && rm /tmp/requirements.txt

# 2. the project itself. Editable on purpose: core/data.py finds assets/ next to core/.
COPY . .
RUN pip install --no-deps -e . \
 && groupadd --gid 10001 gradlab \
 && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin gradlab \
 && python -c "import core.config, streamlit, torch; print('torch', torch.__version__)"

# Non-root from here on; the code stays root-owned (read-only to the app).
USER 10001:10001

EXPOSE 8501

# python:3.11-slim has no curl: ask with the standard library. The check runs the app script
# once (Streamlit's script health check, enabled below) in whichever worker answers, and says
# ok only when the page works. Each web worker warms itself (the pages, the lessons, its
# connections to the executors) before it accepts a connection (app/hosting/asgi.py), and
# each executor runs a tiny net before it takes runs, so no student's first page or first
# Play pays a cold start. The Kubernetes startupProbe does the same (deploy/deployment.yaml).
ENV STREAMLIT_SERVER_SCRIPT_HEALTH_CHECK_ENABLED=true
HEALTHCHECK --interval=30s --timeout=30s --start-period=120s --start-interval=3s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8501/_stcore/script-health-check', timeout=28); sys.exit(0 if r.read().strip() == b'ok' else 1)"]

# .streamlit/config.toml (copied with the source) carries the hardening; the address and
# port are set here. Processes: WEB_CONCURRENCY and GRADLAB_EXECUTORS (above; the
# Deployment sets them too). gradlab-serve is PID 1: on SIGTERM it stops the web workers,
# then the executors.
CMD ["gradlab-serve", "--host", "0.0.0.0", "--port", "8501"]
