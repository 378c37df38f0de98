"""The image: the Dockerfile read instruction by instruction (no docker engine needed),
checked against the Deployment it runs in; .dockerignore matched against the paths the image
needs; and the settings both set: every GRADLAB_* variable is one the code reads, and the
slot queue's are gone.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from typing import Any

import pytest
import tomllib
import yaml

from tests.test_deploy import (
    APP_PORT,
    DEPLOY,
    DOCKERFILE,
    DOCKERIGNORE,
    REPO,
    SCRIPT_HEALTH,
    _env,
    _manifests,
    _processes,
)

#: Stale settings of the slot queue that issue 19 replaced: set anywhere, they do nothing.
STALE = ("GRADLAB_MAX_WORKERS", "GRADLAB_SLICE_S", "GRADLAB_FIRST_TURN_S")


def _container() -> dict[str, Any]:
    (pod,) = [d for _, d in _manifests() if d.get("kind") == "Deployment"]
    return pod["spec"]["template"]["spec"]["containers"][0]


# ---- Dockerfile ---------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    assert DOCKERFILE.is_file(), "no Dockerfile"
    return _instructions()


def _args(dockerfile, name: str) -> list[str]:
    return [rest for word, rest in dockerfile if word == name]


def _exec_form(rest: str) -> list[str]:
    return yaml.safe_load(rest) if rest.startswith("[") else shlex.split(rest)


def test_dockerfile_base_image(dockerfile) -> None:
    args = {k: v for k, _, v in (a.partition("=") for a in _args(dockerfile, "ARG"))}
    base = _args(dockerfile, "FROM")[0].split()[0]
    base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), base)
    assert base.startswith("python:3.11-slim"), base


def test_dockerfile_installs_cpu_torch(dockerfile) -> None:
    runs = " ".join(_args(dockerfile, "RUN"))
    args = " ".join(_args(dockerfile, "ARG"))
    assert "download.pytorch.org/whl/cpu" in runs + args, "torch from the CPU wheel index"
    assert "ci/constraints.txt" in runs, "the pinned versions the tests ran"


def test_dockerfile_runs_as_non_root(dockerfile) -> None:
    users = _args(dockerfile, "USER")
    assert users, "no USER: the app would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"final USER is {user}"
    deploy_uid = yaml.safe_load((DEPLOY / "deployment.yaml").read_text())[
        "spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert user == str(deploy_uid), "the image's USER and the pod's runAsUser differ"


def test_dockerfile_port_health_and_command(dockerfile) -> None:
    assert _args(dockerfile, "EXPOSE") == [str(APP_PORT)]
    hc = _args(dockerfile, "HEALTHCHECK")
    assert hc and SCRIPT_HEALTH in hc[-1] and str(APP_PORT) in hc[-1], (
        "the health check warms the server (runs the app once) before the first student")
    assert re.search(r"\bSTREAMLIT_SERVER_SCRIPT_HEALTH_CHECK_ENABLED=true\b",
                     " ".join(_args(dockerfile, "ENV"))), "the script health check is off"
    timeout = re.search(r"--timeout=(\d+)s", hc[-1])
    assert timeout and int(timeout.group(1)) >= 20, "the first run imports torch: allow time"
    cmd = _exec_form((_args(dockerfile, "CMD") or _args(dockerfile, "ENTRYPOINT"))[-1])
    assert cmd[0] == "gradlab-serve", cmd          # app/hosting/serve.py: uvicorn workers
    flags = dict(zip(cmd[1::2], cmd[2::2], strict=False))
    assert flags.get("--port") == str(APP_PORT)
    assert flags.get("--host") == "0.0.0.0"
    env = " ".join(_args(dockerfile, "ENV"))
    workers = re.search(r"\bWEB_CONCURRENCY=(\d+)\b", env)
    executors = re.search(r"\bGRADLAB_EXECUTORS=(\d+)\b", env)
    assert workers and executors, "set the web workers and the executors"
    shape = _processes(_container())
    assert (int(workers.group(1)), int(executors.group(1))) == shape, (
        "the image's process layout differs from the Deployment's")
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.get("gradlab-serve") == "app.hosting.serve:main", "the CMD's console script"


def test_dockerfile_sets_the_hosted_profile(dockerfile) -> None:
    env = " ".join(_args(dockerfile, "ENV"))
    assert re.search(r"\bGRADLAB_PROFILE=hosted\b", env)


def test_dockerfile_copies_only_what_exists(dockerfile) -> None:
    for rest in _args(dockerfile, "COPY"):
        parts = [p for p in rest.split() if not p.startswith("--")]
        for src in parts[:-1]:
            if src != ".":
                assert (REPO / src).exists(), f"COPY {src}: no such path in the repo"


# ---- .dockerignore ------------------------------------------------------------------------------


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last matching pattern wins; '!' re-includes; a pattern
    matching a parent directory excludes everything below it."""
    result = False
    parts = path.split("/")
    for pat in patterns:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        p = p.strip("/")
        candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatch(c, p) or (p.startswith("**/") and
                                         fnmatch.fnmatch(c.split("/")[-1], p[3:]))
               for c in candidates):
            result = not neg
    return result


def test_dockerignore_keeps_the_context_small_but_complete() -> None:
    assert DOCKERIGNORE.is_file(), "no .dockerignore: .venv and .git would be sent to docker"
    patterns = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    for path in (".venv/bin/python", ".git/HEAD", ".pytest_cache/x", ".ruff_cache/x",
                 ".hypothesis/x", "core/__pycache__/config.cpython-311.pyc",
                 "gradlab.egg-info/PKG-INFO", "tests/output/shot.png", ".streamlit/secrets.toml"):
        assert _ignored(path, patterns), f"{path} would be sent into the image"
    for path in ("pyproject.toml", "README.md", "ci/constraints.txt", "core/config.py",
                 "app/main.py", "app/views/playground.py", "assets/mnist_5k.npz",
                 ".streamlit/config.toml"):
        assert not _ignored(path, patterns), f"{path} is needed by the image but ignored"


# ---- settings ----------------------------------------------------------------------------------


def test_no_stale_settings_and_every_setting_is_read(dockerfile) -> None:
    """Every GRADLAB_* variable the image or the Deployment sets is one the code reads
    (a setting nobody reads is a silent lie), and the slot queue's are gone from deploy/."""
    set_here = set(_env(_container())) | set(re.findall(r"\b(GRADLAB_\w+)=", " ".join(
        _args(dockerfile, "ENV"))))
    code = "\n".join(p.read_text() for root in ("app", "core")
                     for p in (REPO / root).rglob("*.py"))
    unread = sorted(n for n in set_here if n.startswith("GRADLAB_") and f'"{n}"' not in code)
    assert not unread, f"set but read nowhere in app/ or core/: {unread}"
    for path in (DOCKERFILE, *DEPLOY.iterdir()):
        text = path.read_text()
        found = [n for n in STALE if n in text]
        assert not found, f"{path.relative_to(REPO)} still names {found}"
