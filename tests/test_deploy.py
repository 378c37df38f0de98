"""The deployment files, checked without a cluster or a docker engine: the Kubernetes
manifests under deploy/ are parsed (yaml.safe_load_all) and their fields cross-checked, the
Dockerfile is read instruction by instruction, and .dockerignore is matched against the
paths the image needs.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
HEALTH = "/_stcore/health"
SCRIPT_HEALTH = "/_stcore/script-health-check"
APP_PORT = 8501


# ---- loading ------------------------------------------------------------------------------------


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(DEPLOY.glob("*.y*ml")):
        with open(path, encoding="utf-8") as f:
            docs.extend((path, d) for d in yaml.safe_load_all(f) if d)
    return docs


@pytest.fixture(scope="module")
def manifests() -> list[tuple[Path, dict[str, Any]]]:
    docs = _manifests()
    assert docs, "deploy/ holds no YAML manifests"
    return docs


def _of_kind(manifests, kind: str) -> list[dict[str, Any]]:
    return [d for _, d in manifests if d.get("kind") == kind]


def _one(manifests, kind: str) -> dict[str, Any]:
    found = _of_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind} in deploy/, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def deployment(manifests) -> dict[str, Any]:
    return _one(manifests, "Deployment")


@pytest.fixture(scope="module")
def container(deployment) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "one container per pod (one Streamlit process)"
    return containers[0]


@pytest.fixture(scope="module")
def service(manifests) -> dict[str, Any]:
    return _one(manifests, "Service")


@pytest.fixture(scope="module")
def ingresses(manifests) -> list[dict[str, Any]]:
    found = _of_kind(manifests, "Ingress")
    assert found, "no Ingress in deploy/"
    return found


@pytest.fixture(scope="module")
def app_ingress(ingresses) -> dict[str, Any]:
    """The Ingress that serves "/" (the others only fence off internal paths)."""
    serving = [i for i in ingresses for r in i["spec"]["rules"] for p in r["http"]["paths"]
               if p["path"] == "/"]
    assert len(serving) == 1, "exactly one Ingress must route '/' to the app"
    return serving[0]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _cpu(q: str | int | float) -> float:
    s = str(q)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


_MEM_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
              "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def _mem(q: str | int) -> float:
    m = re.fullmatch(r"([0-9.]+)([KMGT]i?)?", str(q))
    assert m, f"not a memory quantity: {q!r}"
    return float(m.group(1)) * _MEM_UNITS.get(m.group(2) or "", 1)


def _container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe / targetPort given by number or by the container port's name."""
    if isinstance(port, int):
        return port
    named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    assert port in named, f"port name {port!r} is not a container port ({named})"
    return named[port]


# ---- kinds and basic shape ----------------------------------------------------------------------


def test_every_kind_is_present(manifests) -> None:
    kinds = {d["kind"] for _, d in manifests}
    for kind in ("Deployment", "Service", "Ingress", "HorizontalPodAutoscaler"):
        assert kind in kinds, f"deploy/ has no {kind}"


def test_every_document_is_well_formed(manifests) -> None:
    for path, d in manifests:
        where = f"{path.name}: {d.get('kind')}"
        assert d.get("apiVersion") and d.get("kind"), where
        if d["kind"] != "Kustomization":
            assert d.get("metadata", {}).get("name"), f"{where} has no metadata.name"


def test_kustomization_lists_every_manifest(manifests) -> None:
    kust = _one(manifests, "Kustomization")
    files = {p.name for p in DEPLOY.glob("*.y*ml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == files, "kustomization.yaml resources != deploy/*.yaml"


def test_kubectl_kustomize_renders_when_available() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed (the YAML checks above still ran)")
    out = subprocess.run([kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(out.stdout) if d}
    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler"} <= kinds


# ---- Deployment ---------------------------------------------------------------------------------


def test_selector_matches_pod_labels(deployment) -> None:
    sel = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert sel.items() <= labels.items()


def test_probes_use_the_health_endpoint(container) -> None:
    for probe in ("readinessProbe", "livenessProbe"):
        p = container.get(probe)
        assert p, f"container has no {probe}"
        assert p["httpGet"]["path"] == HEALTH, f"{probe} must GET {HEALTH}"
        assert _container_port(container, p["httpGet"]["port"]) == APP_PORT
    live = container["livenessProbe"]
    # a pod busy training answers slowly: liveness must tolerate a minute, not kill it
    assert live.get("periodSeconds", 10) * live.get("failureThreshold", 3) >= 60
    assert live.get("timeoutSeconds", 1) >= 3


def test_startup_probe_and_its_switch(container) -> None:
    p = container.get("startupProbe")
    assert p, "no startupProbe: a cold pod (torch import) would fail its liveness probe"
    assert _container_port(container, p["httpGet"]["port"]) == APP_PORT
    # The script health check runs the app once before the pod takes students: torch is
    # imported, and Streamlit leaves its pages/-directory mode (see test_warm_start_...).
    assert p["httpGet"]["path"] == SCRIPT_HEALTH, "warm the pod with the script health check"
    assert _env(container).get("STREAMLIT_SERVER_SCRIPT_HEALTH_CHECK_ENABLED") == "true", (
        "the script health check answers 404 unless it is enabled")
    assert p.get("timeoutSeconds", 1) >= 20, "the first run imports torch: allow time"
    budget = p.get("periodSeconds", 10) * p.get("failureThreshold", 3)
    assert budget >= 60, "give a cold start at least a minute"


def test_resources_requests_and_limits(container) -> None:
    res = container.get("resources", {})
    req, lim = res.get("requests", {}), res.get("limits", {})
    for key in ("cpu", "memory"):
        assert key in req and key in lim, f"resources.requests/limits.{key} must be set"
    assert _cpu(req["cpu"]) <= _cpu(lim["cpu"])
    assert _mem(req["memory"]) <= _mem(lim["memory"])
    assert _cpu(req["cpu"]) >= 1, "a training slot needs a whole core"
    # measured: ~450 MB per warm worker process, ~1.0 GB for two with 200 sessions open
    procs = int(_env(container).get("WEB_CONCURRENCY", "1"))
    assert _mem(req["memory"]) >= procs * 0.75 * 2**30, "memory request below the workers' need"


def test_hosted_profile_and_worker_count(container) -> None:
    env = _env(container)
    assert env.get("GRADLAB_PROFILE") == "hosted"
    workers = int(env.get("GRADLAB_MAX_WORKERS", "0"))      # training slots per process
    procs = int(env.get("WEB_CONCURRENCY", "0"))            # server processes (gradlab-serve)
    cpu = _cpu(container["resources"]["requests"]["cpu"])
    # one process ~ one core (the GIL): a process per core, and no more slots than cores
    assert procs == max(1, int(cpu)), f"WEB_CONCURRENCY={procs} for a {cpu}-CPU pod"
    assert 1 <= workers and procs * workers <= max(1, int(cpu)), (
        f"{procs} processes x {workers} slots for a {cpu}-CPU pod: scale with pods, not threads")


def test_container_port_and_security(deployment, container) -> None:
    ports = [p["containerPort"] for p in container["ports"]]
    assert ports == [APP_PORT]
    pod_sc = deployment["spec"]["template"]["spec"].get("securityContext", {})
    c_sc = container.get("securityContext", {})
    assert pod_sc.get("runAsNonRoot") is True or c_sc.get("runAsNonRoot") is True
    assert (c_sc.get("runAsUser") or pod_sc.get("runAsUser") or 0) != 0
    assert c_sc.get("allowPrivilegeEscalation") is False
    assert deployment["spec"]["template"]["spec"].get("automountServiceAccountToken") is False
    if c_sc.get("readOnlyRootFilesystem"):
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, "a read-only root needs a writable /tmp"


def test_no_secret_value_in_the_manifests(container) -> None:
    for e in container.get("env", []):
        if "SECRET" in e["name"] or "PASSWORD" in e["name"] or "TOKEN" in e["name"]:
            assert "valueFrom" in e and "value" not in e, f"{e['name']} must come from a Secret"


# ---- Service and Ingress ------------------------------------------------------------------------


def test_service_targets_the_container_port(deployment, container, service) -> None:
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items(), "service selects no pod"
    for port in service["spec"]["ports"]:
        assert _container_port(container, port["targetPort"]) == APP_PORT
    # stickiness lives in the ingress cookie: ClientIP would pin a classroom behind one NAT
    assert service["spec"].get("sessionAffinity", "None") == "None"


def test_ingress_backends_point_at_the_service(ingresses, service) -> None:
    svc_ports = {p["port"] for p in service["spec"]["ports"]} | {
        p.get("name") for p in service["spec"]["ports"] if p.get("name")}
    for ing in ingresses:
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] == service["metadata"]["name"]
                port = backend["port"].get("number", backend["port"].get("name"))
                assert port in svc_ports, f"ingress backend port {port} not on the Service"


def test_ingress_cookie_affinity_and_websocket_timeouts(app_ingress) -> None:
    a = app_ingress["metadata"].get("annotations", {})
    p = "nginx.ingress.kubernetes.io/"
    assert app_ingress["spec"].get("ingressClassName") == "nginx"
    assert a.get(p + "affinity") == "cookie", "sticky sessions: Streamlit sessions are stateful"
    assert a.get(p + "affinity-mode") == "persistent", "scaling up must not move a browser"
    assert a.get(p + "session-cookie-name"), "name the affinity cookie"
    for key in ("session-cookie-expires", "session-cookie-max-age"):
        assert int(a.get(p + key, "0")) >= 3600, f"{key}: at least a lesson long"
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(a.get(p + key, "0")) >= 3600, f"{key}: websockets stay open for a lesson"
    assert re.fullmatch(r"\d+[kKmMgG]?", a.get(p + "proxy-body-size", "")), "proxy-body-size"
    for key, value in a.items():
        assert isinstance(value, str), f"annotation {key} must be a string, not {value!r}"


def test_internal_endpoints_are_fenced_off(ingresses) -> None:
    fenced = {path["path"] for ing in ingresses
              if "nginx.ingress.kubernetes.io/whitelist-source-range"
              in ing["metadata"].get("annotations", {})
              for rule in ing["spec"]["rules"] for path in rule["http"]["paths"]}
    for path in ("/_stcore/metrics", "/_stcore/script-health-check"):
        assert path in fenced, f"{path} must not be reachable from outside the cluster"


def test_allowed_hosts_cover_every_ingress_host(ingresses, container) -> None:
    allowed = str(_env(container).get("STREAMLIT_SERVER_ALLOWED_HOSTS", "")).split()
    assert allowed, "set STREAMLIT_SERVER_ALLOWED_HOSTS (DNS-rebinding guard)"
    hosts = {r["host"] for ing in ingresses for r in ing["spec"]["rules"] if r.get("host")}
    assert hosts <= set(allowed), (
        f"ingress hosts {sorted(hosts - set(allowed))} missing from server.allowedHosts: "
        "their websockets would be refused")
    assert "*" not in allowed


# ---- HorizontalPodAutoscaler --------------------------------------------------------------------


def test_hpa_scales_the_deployment_on_cpu(manifests, deployment, container) -> None:
    hpa = _one(manifests, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", deployment["metadata"]["name"])
    lo, hi = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
    assert 2 <= lo <= hi, "at least two pods (one can be replaced while the other serves)"
    assert hi >= 34, "a class of 200 pressing Play at once needs ~34 one-core pods (README)"
    cpu = [m for m in hpa["spec"]["metrics"]
           if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
    assert cpu, "scale on CPU utilisation"
    target = cpu[0]["resource"]["target"]
    assert target["type"] == "Utilization" and 10 <= target["averageUtilization"] <= 100
    assert "cpu" in container["resources"]["requests"], "utilisation is relative to requests"
    down = hpa["spec"].get("behavior", {}).get("scaleDown", {})
    assert down.get("stabilizationWindowSeconds", 300) >= 600, (
        "scale down slowly: removing a pod ends the sessions on it")


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
    assert re.search(r"\bWEB_CONCURRENCY=\d+\b", env), "set the worker processes"
    assert re.search(r"\bGRADLAB_MAX_WORKERS=1\b", env), "one training slot per process"
    import tomllib

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


# ---- the warm start, live ----------------------------------------------------------------------


@pytest.mark.slow
def test_deep_link_to_a_lesson_on_a_cold_server(streamlit_factory, page) -> None:
    """The first session of a fresh server opens a lesson's direct link without Streamlit's
    spurious "Page not found" dialog. (With a ``pages/`` directory next to app/main.py,
    Streamlit 1.67 ran a fresh server's first session in its old "pages/ directory" mode
    until the first st.navigation call, and showed that dialog over the lesson; the page
    modules now live in app/views/, so there is no such mode to leave.)"""
    url = streamlit_factory()
    from app import lessons

    name = lessons.discover()[0].__name__.rsplit(".", 1)[-1]
    page.goto(f"{url}/{name}", wait_until="domcontentloaded")
    heading = page.locator("h1").first
    heading.wait_for(state="visible", timeout=60_000)
    page.wait_for_timeout(1500)                        # the dialog would be up by now
    assert page.get_by_text("Page not found").count() == 0, "spurious Page-not-found dialog"
    assert page.get_by_role("dialog").count() == 0
    assert "Gradient Lab" not in heading.inner_text(), "the playground ran instead of the lesson"
