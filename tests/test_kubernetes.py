"""Kubernetes manifests of the generated project (use_kubernetes), checked offline.

Every manifest validates against the Kubernetes OpenAPI schemas (kubernetes-validate, strict:
unknown fields are errors) for a pinned Kubernetes version, and agrees with the rest of the
project: probe paths, the port gunicorn binds and the Dockerfile exposes, the Dockerfile's user,
the image compose builds, the settings .env.example documents, the worker iff Celery, and
grace periods longer than what they must outlast. No cluster is needed.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from checks import env_keys
from helpers import RUNTIME_OPTIONS, combinations, option_id

KUBERNETES_VERSION = "1.31"
# The probes of the app's external contract (CONTRACT.md, "Endpoints").
LIVENESS_PATH = "/health/live"
READINESS_PATH = "/health/ready"
# Settings that hold secrets: the Secret carries them, never a manifest.
SECRET_SETTINGS = {
    "SECRET_KEY",
    "JWT_SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "AI_API_KEY",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
}
# `useradd --system` without a UID takes the highest free system UID: 999 on Debian, which the
# python:*-slim images are.
DEBIAN_FIRST_SYSTEM_UID = 999
# Every runtime combination, with the manifests on (they need Docker).
MATRIX = [
    {**combo, "use_docker": True, "use_kubernetes": True} for combo in combinations(RUNTIME_OPTIONS)
]


def bake(cookies: Any, **extra: Any) -> tuple[Path, dict[str, Any]]:
    result = cookies.bake(extra_context=extra)
    assert result.exception is None, f"bake failed: {result.exception!r}"
    assert result.exit_code == 0
    return Path(result.project_path), result.context


class Manifests:
    """The documents of deploy/kubernetes, by kind and name."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        self.files: dict[str, list[dict[str, Any]]] = {}
        for path in sorted(directory.glob("*.yaml")):
            if path.name != "kustomization.yaml":
                self.files[path.name] = [
                    doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None
                ]

    def documents(self) -> list[tuple[str, dict[str, Any]]]:
        return [(name, doc) for name, docs in self.files.items() for doc in docs]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for _, doc in self.documents() if doc["kind"] == kind]

    def one(self, kind: str, component: str | None = None) -> dict[str, Any]:
        found = [
            doc
            for doc in self.of_kind(kind)
            if component is None
            or doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
        return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return pod_spec(workload)["containers"]


def env_value(container: dict[str, Any], name: str) -> str | None:
    return next((e.get("value") for e in container.get("env", []) if e["name"] == name), None)


def gunicorn_defaults(root: Path) -> dict[str, Any]:
    """gunicorn.conf.py's settings with no environment at all."""
    script = (
        "import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(json.dumps({k: c[k] for k in ('bind', 'graceful_timeout')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def final_stage(dockerfile: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines()]
    start = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return [line for line in lines[start:] if line and not line.startswith("#")]


def dockerfile_uid(dockerfile: str) -> int:
    """The numeric UID the image runs as: USER's number, or the UID its useradd gives the user."""
    stage = final_stage(dockerfile)
    user = next(line.split()[1] for line in reversed(stage) if line.upper().startswith("USER "))
    user = user.split(":")[0]
    if user.isdigit():
        return int(user)
    for line in stage:
        for command in line.split("&&"):
            args = shlex.split(command.removeprefix("RUN ").strip())
            if not args or args[0] != "useradd" or args[-1] != user:
                continue
            for flag in ("--uid", "-u"):
                if flag in args:
                    return int(args[args.index(flag) + 1])
            if "--system" in args or "-r" in args:
                return DEBIAN_FIRST_SYSTEM_UID
    raise AssertionError(f"the Dockerfile's USER {user} has no UID this test can tell")


def dockerfile_exposed(dockerfile: str) -> set[int]:
    return {
        int(port.split("/")[0])
        for line in final_stage(dockerfile)
        if line.upper().startswith("EXPOSE ")
        for port in line.split()[1:]
    }


def image_name(image: str) -> str:
    """`registry/name:tag` -> `registry/name`."""
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def check_schemas(manifests: Manifests) -> list[str]:
    import kubernetes_validate

    problems = []
    for name, doc in manifests.documents():
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            # The first error of the document (the library stops there).
            where = "/".join(str(part) for part in exc.absolute_path)
            problems.append(f"{name}: {doc['kind']} at {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{name}: {exc.message}")
    return problems


def check_kustomization(manifests: Manifests, context: dict[str, Any]) -> list[str]:
    problems = []
    listed = set(manifests.kustomization.get("resources", []))
    if listed != set(manifests.files):
        problems.append(
            f"kustomization resources {sorted(listed)} != the files {sorted(manifests.files)}"
        )
    if {doc["kind"] for _, doc in manifests.documents()} & {"Secret", "Namespace"}:
        problems.append("a Secret or Namespace is written into the manifests")
    images = {entry["name"] for entry in manifests.kustomization.get("images", [])}
    if images != {context["project_slug"]}:
        problems.append(f"kustomization images name {images}, not the project's image")
    return problems


def check_workloads(root: Path, manifests: Manifests, context: dict[str, Any]) -> list[str]:
    problems = []
    dockerfile = (root / "Dockerfile").read_text()
    uid = dockerfile_uid(dockerfile)
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    compose_image = image_name(compose["services"]["api"]["image"])
    config_names = {doc["metadata"]["name"] for doc in manifests.of_kind("ConfigMap")}
    workloads = [*manifests.of_kind("Deployment"), *manifests.of_kind("Job")]
    secret_names = set()
    for workload in workloads:
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        security = spec.get("securityContext", {})
        if security.get("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if security.get("runAsUser") != uid:
            problems.append(
                f"{name}: runAsUser {security.get('runAsUser')} is not the Dockerfile's UID {uid}"
            )
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        for container in spec["containers"]:
            where = f"{name}/{container['name']}"
            if image_name(container["image"]) != compose_image:
                problems.append(f"{where}: image {container['image']} is not {compose_image}")
            limits = container.get("resources", {})
            if not {"cpu", "memory"} <= set(limits.get("requests", {})) or not limits.get(
                "limits", {}
            ).get("memory"):
                problems.append(f"{where}: no cpu/memory requests and memory limit")
            csc = container.get("securityContext", {})
            if csc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: the root filesystem is writable")
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation is allowed")
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            if "emptyDir" not in volumes.get(mounts.get("/tmp", ""), {}):
                problems.append(f"{where}: /tmp is not an emptyDir")
            for source in container.get("envFrom", []):
                if "configMapRef" in source and source["configMapRef"]["name"] not in config_names:
                    problems.append(f"{where}: reads a ConfigMap that is not in the manifests")
                if "secretRef" in source:
                    secret_names.add(source["secretRef"]["name"])
            for variable in container.get("env", []):
                if variable["name"] in SECRET_SETTINGS and "value" in variable:
                    problems.append(f"{where}: {variable['name']} is written into the manifest")
    if secret_names != {f"{context['project_slug']}-secrets"}:
        problems.append(f"workloads read the Secrets {sorted(secret_names)}")

    job = manifests.one("Job", "migrate")
    command = " ".join(containers(job)[0].get("command", []))
    if command not in ("flask db upgrade", "alembic upgrade head"):
        problems.append(f"the migration Job runs {command!r}")

    workers = [
        doc
        for doc in manifests.of_kind("Deployment")
        if doc["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    ]
    if bool(workers) != context["use_celery"]:
        problems.append(f"{len(workers)} worker Deployments, use_celery is {context['use_celery']}")
    if workers:
        problems += check_worker(root, manifests, workers[0], context)
    return problems


def check_worker(
    root: Path, manifests: Manifests, worker: dict[str, Any], context: dict[str, Any]
) -> list[str]:
    problems = []
    command = " ".join(containers(worker)[0]["command"])
    if not command.startswith(f"celery -A {context['package_name']}.tasks worker"):
        problems.append(f"the worker runs {command!r}")
    example = dict(
        line.split("=", 1)
        for line in (root / ".env.example").read_text().splitlines()
        if re.match(r"^[A-Z_]+=", line)
    )
    config = manifests.one("ConfigMap")["data"]
    time_limit = int(config.get("CELERY_TASK_TIME_LIMIT", example["CELERY_TASK_TIME_LIMIT"]))
    grace = pod_spec(worker).get("terminationGracePeriodSeconds", 30)
    if grace <= time_limit:
        problems.append(
            f"the worker's grace period {grace} s does not outlast CELERY_TASK_TIME_LIMIT "
            f"{time_limit} s (acks_late: a job cut off is run again)"
        )
    return problems


def check_api(root: Path, manifests: Manifests, context: dict[str, Any]) -> list[str]:
    problems = []
    dockerfile = (root / "Dockerfile").read_text()
    defaults = gunicorn_defaults(root)
    port = int(str(defaults["bind"]).rsplit(":", 1)[1])
    if dockerfile_exposed(dockerfile) != {port}:
        problems.append(f"the Dockerfile exposes {dockerfile_exposed(dockerfile)}, gunicorn {port}")
    api = manifests.one("Deployment", "api")
    spec = pod_spec(api)
    (container,) = spec["containers"]
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if set(ports.values()) != {port}:
        problems.append(f"the API container port {ports} is not gunicorn's {port}")
    for probe, path in (
        ("startupProbe", LIVENESS_PATH),
        ("livenessProbe", LIVENESS_PATH),
        ("readinessProbe", READINESS_PATH),
    ):
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or ports.get(get.get("port"), get.get("port")) != port:
            problems.append(f"{probe} is {get}, expected {path} on port {port}")
    rolling = api["spec"]["strategy"].get("rollingUpdate", {})
    if rolling.get("maxUnavailable") != 0:
        problems.append("the API's rolling update may take pods away first (maxUnavailable)")
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    sleep = pre_stop.get("sleep", {}).get("seconds")
    if sleep is None and pre_stop.get("exec", {}).get("command", [])[:1] == ["sleep"]:
        sleep = int(pre_stop["exec"]["command"][1])
    if not sleep:
        problems.append("the API has no preStop sleep to leave the endpoints before SIGTERM")
    graceful = int(
        env_value(container, "GUNICORN_GRACEFUL_TIMEOUT") or defaults["graceful_timeout"]
    )
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace <= (sleep or 0) + graceful:
        problems.append(
            f"terminationGracePeriodSeconds {grace} does not outlast preStop {sleep} s + "
            f"gunicorn's graceful timeout {graceful} s"
        )
    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    if "/dev/shm" not in mounts:  # gunicorn.conf.py puts worker_tmp_dir there
        problems.append("gunicorn's worker_tmp_dir (/dev/shm) is not mounted writable")

    labels = api["spec"]["template"]["metadata"]["labels"]
    selector = api["spec"]["selector"]["matchLabels"]
    service = manifests.one("Service")
    if service["spec"]["selector"] != selector or not selector.items() <= labels.items():
        problems.append("the Service does not select the API pods")
    (service_port,) = service["spec"]["ports"]
    if service_port["targetPort"] not in (port, *[n for n, p in ports.items() if p == port]):
        problems.append(f"the Service targets {service_port['targetPort']}, not the API port")
    ingress = manifests.one("Ingress")
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            if backend["name"] != service["metadata"]["name"] or backend["port"] not in (
                {"name": service_port.get("name")},
                {"number": service_port["port"]},
            ):
                problems.append(f"the Ingress routes to {backend}, not the Service")
    annotations = ingress["metadata"].get("annotations", {})
    if context["ai_provider"] != "none":
        if annotations.get("nginx.ingress.kubernetes.io/proxy-buffering") != "off":
            problems.append("the Ingress buffers the SSE streams")
        if int(annotations.get("nginx.ingress.kubernetes.io/proxy-read-timeout", 60)) < 300:
            problems.append("the Ingress's read timeout is shorter than a long stream")
    hpa = manifests.one("HorizontalPodAutoscaler")
    if hpa["spec"]["scaleTargetRef"]["name"] != api["metadata"]["name"]:
        problems.append("the HPA does not scale the API Deployment")
    if hpa["spec"]["minReplicas"] < 2:
        problems.append("the HPA may scale the API down to one pod")
    pdb = manifests.one("PodDisruptionBudget")
    if pdb["spec"]["selector"]["matchLabels"] != selector:
        problems.append("the PodDisruptionBudget does not select the API pods")
    policy = manifests.one("NetworkPolicy")
    allowed = {p["port"] for rule in policy["spec"].get("ingress", []) for p in rule["ports"]}
    if allowed != {port}:
        problems.append(f"the NetworkPolicy admits ports {allowed}, not only {port}")
    egress = {p["port"] for rule in policy["spec"].get("egress", []) for p in rule["ports"]}
    needed = {53, 5432, 6379} | ({443} if context["ai_provider"] != "none" else set())
    if not needed <= egress:
        problems.append(f"the NetworkPolicy lets out {sorted(egress)}, needs {sorted(needed)}")
    return problems


def check_settings(root: Path, manifests: Manifests) -> list[str]:
    problems = []
    documented = env_keys((root / ".env.example").read_text())
    for config in manifests.of_kind("ConfigMap"):
        for key in sorted(config.get("data", {})):
            if key not in documented:
                problems.append(f"the ConfigMap sets {key}, which .env.example does not list")
            if key in SECRET_SETTINGS:
                problems.append(f"the ConfigMap holds the secret {key}")
    return problems


def check_readme(root: Path, context: dict[str, Any]) -> list[str]:
    readme = (root / "README.md").read_text()
    section = readme.split("## Deploy to Kubernetes", 1)
    if len(section) != 2:
        return ["README has no section 'Deploy to Kubernetes'"]
    text, slug = section[1].split("\n## ", 1)[0], context["project_slug"]
    problems = [
        f"README's Kubernetes section lacks {needed!r}"
        for needed in (
            f"docker build -t registry.example.com/{slug}:",
            f"kubectl create secret generic {slug}-secrets --from-env-file=",
            "kubectl apply -k deploy/kubernetes",
        )
        if needed not in text
    ]
    return problems


@pytest.mark.parametrize("combo", MATRIX, ids=option_id)
def test_kubernetes_manifests(cookies: Any, combo: dict[str, Any]) -> None:
    root, context = bake(cookies, **combo)
    manifests = Manifests(root / "deploy" / "kubernetes")
    problems = [
        *check_schemas(manifests),
        *check_kustomization(manifests, context),
        *check_workloads(root, manifests, context),
        *check_api(root, manifests, context),
        *check_settings(root, manifests),
        *check_readme(root, context),
    ]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_no_manifests_without_the_option(cookies: Any) -> None:
    root, _ = bake(cookies)
    assert not (root / "deploy").exists()
    assert "Kubernetes" not in (root / "README.md").read_text()


@pytest.mark.parametrize("mistake", ["unknown field", "wrong type"])
def test_schema_check_catches_a_wrong_field(cookies: Any, mistake: str) -> None:
    """Strict validation is on: an unknown or mistyped field is reported."""
    root, _ = bake(cookies, use_kubernetes=True)
    manifests = Manifests(root / "deploy" / "kubernetes")
    assert check_schemas(manifests) == []
    api = manifests.one("Deployment", "api")
    if mistake == "unknown field":
        pod_spec(api)["terminationGracePeriodSecond"] = 10
    else:
        containers(api)[0]["ports"][0]["containerPort"] = "8000"
    (problem,) = check_schemas(manifests)
    assert problem.startswith("api-deployment.yaml: Deployment at spec/template/spec"), problem


@pytest.mark.parametrize(
    ("lines", "uid"),
    [
        (["USER 10001"], 10001),
        (["USER 10001:10001"], 10001),
        (["RUN groupadd --system app && useradd --system --gid app app", "USER app"], 999),
        (["RUN useradd --uid 1234 --no-create-home app", "USER app"], 1234),
    ],
)
def test_dockerfile_uid(lines: list[str], uid: int) -> None:
    assert dockerfile_uid("\n".join(["FROM python:3.12-slim AS build", "FROM x", *lines])) == uid
