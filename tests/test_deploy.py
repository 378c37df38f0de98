"""The Kubernetes manifests under deploy/, checked without a cluster: parsed
(yaml.safe_load_all) and their fields cross-checked, the pod's process layout and memory
against its CPUs and processes. (The Dockerfile and .dockerignore: test_dockerfile.py.)
"""

from __future__ import annotations

import math
import re
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
def service(manifests, deployment) -> dict[str, Any]:
    """The Service in front of the app's pods (the others, e.g. the database's, select
    other pods)."""
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    found = [s for s in _of_kind(manifests, "Service")
             if s["spec"].get("selector", {}).items() <= pod_labels.items()]
    assert len(found) == 1, f"expected one Service selecting the app's pods, found {len(found)}"
    return found[0]


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


K8S_VERSION = "1.30"   # the schemas the manifests are checked against (kubernetes-validate)


def test_every_manifest_validates_against_the_kubernetes_schemas(manifests) -> None:
    """kubernetes-validate ships the API's JSON schemas, so this runs offline and in CI
    (no cluster, no kubectl); strict: an unknown or misspelt field is an error too."""
    import kubernetes_validate as kv

    checked = 0
    for path, d in manifests:
        if d["kind"] == "Kustomization":
            continue
        try:
            kv.validate(d, K8S_VERSION, strict=True)
        except kv.ValidationError as e:
            raise AssertionError(f"{path.name}: {d['kind']}: {e.message}") from None
        checked += 1
    assert checked >= 5


def test_the_schema_check_catches_a_misspelt_field(deployment) -> None:
    import copy

    import kubernetes_validate as kv

    bad = copy.deepcopy(deployment)
    bad["spec"]["replica"] = bad["spec"].pop("replicas", 2)
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, K8S_VERSION, strict=True)


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


#: Resident memory (VmRSS) of each process of an idle pod, measured on the 2-core box and
#: rounded up (deploy/README.md, "Memory"): gradlab-serve's supervisor, one web worker (no
#: torch), one executor (torch, warmed).
SUPERVISOR_MIB, WEB_WORKER_MIB, EXECUTOR_MIB = 80, 200, 375


def _processes(container: dict[str, Any]) -> tuple[int, int]:
    """(web workers, executors) of the pod: what gradlab-serve starts from its environment."""
    env = _env(container)
    return int(env.get("WEB_CONCURRENCY", "0")), int(env.get("GRADLAB_EXECUTORS", "0"))


def test_resources_requests_and_limits(container) -> None:
    res = container.get("resources", {})
    req, lim = res.get("requests", {}), res.get("limits", {})
    for key in ("cpu", "memory"):
        assert key in req and key in lim, f"resources.requests/limits.{key} must be set"
    assert _cpu(req["cpu"]) <= _cpu(lim["cpu"])
    assert _mem(req["memory"]) <= _mem(lim["memory"])
    assert _cpu(req["cpu"]) >= 1, "an executor needs a whole core"
    workers, executors = _processes(container)
    idle = (SUPERVISOR_MIB + workers * WEB_WORKER_MIB + executors * EXECUTOR_MIB) * 2**20
    assert _mem(req["memory"]) >= 1.25 * idle, (
        f"memory request below an idle pod's {idle / 2**30:.2f} GiB plus room for sessions")
    assert _mem(lim["memory"]) >= 2 * idle, "the runs live in the executors: leave them room"


def test_hosted_profile_and_process_layout(container) -> None:
    """One executor per CPU (the supervisor's default is the CPU limit, cgroup-aware: an
    explicit count must agree with it) and at most one web worker per CPU."""
    env = _env(container)
    assert env.get("GRADLAB_PROFILE") == "hosted"
    workers, executors = _processes(container)
    cores = math.ceil(_cpu(container["resources"]["limits"]["cpu"]))
    assert executors == cores, f"GRADLAB_EXECUTORS={executors} for a {cores}-CPU pod"
    assert 1 <= workers <= cores, f"WEB_CONCURRENCY={workers} for a {cores}-CPU pod"
    assert _cpu(container["resources"]["requests"]["cpu"]) >= executors, (
        "request a core per executor: the executors are busy whenever anyone trains")
    assert env.get("GRADLAB_TORCH_THREADS") == "1", "one torch thread per executor"


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
    assert hi >= 20, "room for a class of 200 pressing Play at once (deploy/README.md sizing)"
    cpu = [m for m in hpa["spec"]["metrics"]
           if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
    assert cpu, "scale on CPU utilisation"
    target = cpu[0]["resource"]["target"]
    assert target["type"] == "Utilization" and 10 <= target["averageUtilization"] <= 100
    assert "cpu" in container["resources"]["requests"], "utilisation is relative to requests"
    down = hpa["spec"].get("behavior", {}).get("scaleDown", {})
    assert down.get("stabilizationWindowSeconds", 300) >= 600, (
        "scale down slowly: removing a pod ends the sessions on it")


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


# ---- the class board's database ---------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres(manifests) -> dict[str, Any]:
    return _one(manifests, "StatefulSet")


def _secret_refs(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """env name -> (Secret name, key) for every variable read from a Secret."""
    out = {}
    for e in container.get("env", []):
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            out[e["name"]] = (ref["name"], ref["key"])
    return out


def test_the_app_reads_its_database_url_from_a_secret(manifests, container) -> None:
    env = {e["name"]: e for e in container["env"]}
    url = env.get("GRADLAB_DATABASE_URL")
    assert url, "the hosted board needs GRADLAB_DATABASE_URL (one database for all pods)"
    assert "value" not in url, "the database URL holds a password: from a Secret only"
    ref = url["valueFrom"]["secretKeyRef"]
    assert not ref.get("optional"), "required: an optional URL would leave each pod its own board"
    secrets = {s["metadata"]["name"]: s for s in _of_kind(manifests, "Secret")}
    assert ref["name"] in secrets, f"no Secret {ref['name']} in deploy/"
    data = secrets[ref["name"]].get("stringData", {})
    assert ref["key"] in data
    from app.board import db as board_db

    assert "GRADLAB_DATABASE_URL" in Path(board_db.__file__).read_text(), (
        "the variable the manifests set is the one the code reads")


def test_postgres_statefulset_keeps_its_data_on_a_pvc(postgres, manifests) -> None:
    spec = postgres["spec"]
    assert spec["replicas"] == 1
    claims = {c["metadata"]["name"]: c for c in spec.get("volumeClaimTemplates", [])}
    assert claims, "the database needs a PersistentVolumeClaim (volumeClaimTemplates)"
    (c,) = spec["template"]["spec"]["containers"]
    env = {e["name"]: e for e in c["env"]}
    pgdata = env["PGDATA"]["value"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    data_mounts = [mounts[n] for n in claims if n in mounts]
    assert data_mounts and any(pgdata.startswith(m.rstrip("/") + "/") for m in data_mounts), (
        "PGDATA must live on the claimed volume, or a restart loses the board")
    for claim in claims.values():
        assert "ReadWriteOnce" in claim["spec"]["accessModes"]
        assert _mem(claim["spec"]["resources"]["requests"]["storage"]) >= 2**30
    # The governing Service exists and selects these pods.
    svc = [s for s in _of_kind(manifests, "Service")
           if s["metadata"]["name"] == spec["serviceName"]]
    assert svc and svc[0]["spec"]["selector"].items() <= \
        spec["template"]["metadata"]["labels"].items()
    assert any(p["port"] == 5432 for p in svc[0]["spec"]["ports"])


def test_postgres_password_and_app_url_come_from_the_same_secret(postgres, container,
                                                                 manifests) -> None:
    (c,) = postgres["spec"]["template"]["spec"]["containers"]
    pg = _secret_refs(c)
    assert "POSTGRES_PASSWORD" in pg, "the database password must come from the Secret"
    assert all("value" not in e for e in c["env"] if "PASSWORD" in e["name"])
    app_secret = _secret_refs(container)["GRADLAB_DATABASE_URL"][0]
    assert pg["POSTGRES_PASSWORD"][0] == app_secret
    secret = next(s for s in _of_kind(manifests, "Secret")
                  if s["metadata"]["name"] == app_secret)
    data = secret["stringData"]
    from urllib.parse import urlsplit

    url = urlsplit(data["url"])
    assert url.password == data["password"], "the placeholder URL and password must agree"
    assert url.hostname == postgres["spec"]["serviceName"] and url.port == 5432
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert url.username == env["POSTGRES_USER"] and url.path == "/" + env["POSTGRES_DB"]


def test_postgres_pod_is_locked_down(postgres, manifests) -> None:
    pod = postgres["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod.get("automountServiceAccountToken") is False
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["readinessProbe"] and c["livenessProbe"]
    pols = [n for n in _of_kind(manifests, "NetworkPolicy")
            if n["spec"]["podSelector"]["matchLabels"].items()
            <= pod.get("labels", postgres["spec"]["template"]["metadata"]["labels"]).items()]
    assert pols, "only the app may reach the database"
    allowed = pols[0]["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert allowed == {"app.kubernetes.io/name": "gradlab"}
