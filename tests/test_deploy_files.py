"""The files that run the system elsewhere than `make run`: the Dockerfiles,
docker-compose.yml (+ docker-compose.prod.yml) and deploy/k8s. This machine has
no Docker engine and no cluster, so their invariants are checked here: compose
files read and merged as Docker Compose would (tests/compose.py), kustomize
overlays rendered (tests/kustomize.py) and every object validated against the
Kubernetes API schemas (kubernetes-validate, offline)."""

import fnmatch
import importlib
import importlib.util
import re
import shlex
import tomllib
import typing
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from pydantic import AliasChoices, SecretStr
from pydantic_settings import BaseSettings

from shared import tracing
from shared.entrypoint import RUN_MIGRATIONS_VARIABLE
from shared.settings import ServiceSettings
from tests import compose
from tests.kustomize import render

ROOT = Path(__file__).resolve().parent.parent
DEV_FILE = ROOT / "docker-compose.yml"
PROD_FILE = ROOT / "docker-compose.prod.yml"
K8S = ROOT / "deploy" / "k8s"
# The seed's ports, published by docker-compose.yml.
SEED_PORTS = {
    "api-gateway": 5000,
    "auth-service": 3001,
    "product-service": 3002,
    "order-service": 3003,
    "payment-service": 3004,
    "cart-service": 3005,
}
# Read from the environment outside any settings class.
EXTRA_VARIABLES = {RUN_MIGRATIONS_VARIABLE, tracing.ENDPOINT_VARIABLE}
# What the production file must require (no default anywhere in it).
REQUIRED_IN_PRODUCTION = ("JWT_SECRET", "INTERNAL_SERVICE_SECRET", "POSTGRES_PASSWORD")
PRODUCTION_ENV = {
    "JWT_SECRET": "j" * 64,
    "INTERNAL_SERVICE_SECRET": "i" * 64,
    "POSTGRES_PASSWORD": "p" * 32,
}


# --- what the code reads ------------------------------------------------------------


@cache
def workspace_members() -> dict[str, str]:
    """{folder: project name} of the uv workspace's members."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = {}
    for folder in root["tool"]["uv"]["workspace"]["members"]:
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())
        members[folder] = project["project"]["name"]
    return members


def package_of(folder: str) -> str:
    return folder.replace("-", "_")


@cache
def settings_classes() -> dict[str, list[type[BaseSettings]]]:
    """{folder: the settings classes its config module defines}, for each member."""
    found: dict[str, list[type[BaseSettings]]] = {"shared": [ServiceSettings]}
    for folder in workspace_members():
        module_name = f"{package_of(folder)}.config"
        if folder == "shared" or importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        found[folder] = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, BaseSettings)
            and value.__module__ == module_name
        ]
    return found


def _aliases(name: str, field) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return [name.upper()]


def _is_secret(annotation) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def variables_read(settings_class: type[BaseSettings], *, secrets_only: bool = False) -> set[str]:
    return {
        alias
        for name, field in settings_class.model_fields.items()
        if not secrets_only or _is_secret(field.annotation)
        for alias in _aliases(name, field)
    }


def own_variables(folder: str, *, secrets_only: bool = False) -> set[str]:
    """What a member's settings read beyond the shared ServiceSettings."""
    common = variables_read(ServiceSettings, secrets_only=secrets_only)
    return {
        variable
        for cls in settings_classes().get(folder, [])
        for variable in variables_read(cls, secrets_only=secrets_only)
    } - common


def every_variable_read() -> set[str]:
    return {
        variable
        for classes in settings_classes().values()
        for cls in classes
        for variable in variables_read(cls)
    } | EXTRA_VARIABLES


def documented_variables() -> set[str]:
    """Names `.env.example` assigns, commented out or not (`# NAME=...`)."""
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def database_variable(folder: str) -> str | None:
    found = [v for v in own_variables(folder) if v.endswith("_DATABASE_URL")]
    assert len(found) <= 1, found
    return found[0] if found else None


def app_services() -> list[str]:
    """Members that are services (`python -m <package>` starts them)."""
    return [
        folder
        for folder in workspace_members()
        if (ROOT / folder / package_of(folder) / "__main__.py").is_file()
    ]


def test_the_settings_of_every_service_are_found():
    assert set(SEED_PORTS) <= set(app_services())
    assert database_variable("auth-service") == "AUTH_DATABASE_URL"
    assert "ADMIN_PASSWORD" in own_variables("auth-service", secrets_only=True)
    assert database_variable("api-gateway") is None


def test_env_example_documents_every_variable_a_service_reads():
    missing = every_variable_read() - documented_variables()
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_env_example_documents_every_variable_the_compose_files_use():
    used = compose.variables_referenced(DEV_FILE.read_text() + PROD_FILE.read_text())
    # $${POSTGRES_USER} in a healthcheck is the container's own variable, not .env's.
    missing = used - documented_variables()
    assert not missing, f"add to .env.example: {sorted(missing)}"


# --- Dockerfiles ------------------------------------------------------------------


def dockerfile_stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    """{stage name: [(INSTRUCTION, arguments)]}, continuation lines joined."""
    logical, current = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    stages: dict[str, list[tuple[str, str]]] = {}
    name = None
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            parts = arguments.split()
            name = parts[2] if len(parts) >= 3 and parts[1].lower() == "as" else parts[0]
            stages[name] = []
        elif name is not None:
            stages[name].append((instruction, arguments.strip()))
    return stages


def dockerfiles() -> list[Path]:
    return sorted(ROOT.glob("*/Dockerfile"))


def test_every_service_has_a_dockerfile_and_the_simulator_too():
    folders = {path.parent.name for path in dockerfiles()}
    assert set(app_services()) <= folders
    assert "mpesa-simulator" in folders


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda path: path.parent.name)
def test_dockerfile_builds_with_uv_and_runs_slim_unprivileged_and_probed(dockerfile):
    folder = dockerfile.parent.name
    project = workspace_members().get(folder, folder)
    package = package_of(folder)
    stages = dockerfile_stages(dockerfile)
    assert "builder" in stages and list(stages)[-1] == "final", list(stages)
    builder, final = stages["builder"], stages["final"]

    syncs = [args for instruction, args in builder if instruction == "RUN" and "uv sync" in args]
    assert syncs and all("--locked" in s and "--no-dev" in s for s in syncs)
    assert all(f"--package {project}" in s for s in syncs)
    assert any("--no-editable" in s for s in syncs)  # the final stage needs no source tree

    final_text = "\n".join(f"{instruction} {args}" for instruction, args in final)
    assert "uv " not in final_text and "--from=uv" not in final_text
    for tool in ("apt-get install", "apk add", "gcc", "build-essential", "pip install"):
        assert tool not in final_text
    assert "pip uninstall" in final_text  # the base image's pip goes too
    assert "COPY --from=builder /app/.venv /app/.venv" in final_text

    [user] = [args for instruction, args in final if instruction == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000  # numeric: Kubernetes can check runAsNonRoot
    [healthcheck] = [args for instruction, args in final if instruction == "HEALTHCHECK"]
    assert "/health" in healthcheck and "curl" not in healthcheck
    env_text = " ".join(args for instruction, args in final if instruction == "ENV")
    assert "HOST=0.0.0.0" in env_text

    [cmd] = [args for instruction, args in final if instruction == "CMD"]
    migrations = (ROOT / folder / "alembic.ini").is_file()
    if migrations:
        assert cmd == f'["python", "-m", "shared.entrypoint", "{package}"]'
        assert "RUN_MIGRATIONS=false" in env_text
        assert f"COPY {folder}/alembic.ini ./" in final_text
        assert f"COPY {folder}/migrations/ ./migrations/" in final_text
    else:
        assert cmd == f'["python", "-m", "{package}"]'


def test_the_dockerignore_keeps_out_nothing_an_image_copies():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = {"pyproject.toml", "uv.lock", "shared/shared/app.py"}
    for dockerfile in dockerfiles():
        for instruction, args in dockerfile_stages(dockerfile)["final"]:
            if instruction == "COPY" and "--from" not in args:
                copied.add(shlex.split(args)[0].rstrip("/"))
        copied.add(f"{dockerfile.parent.name}/pyproject.toml")
    for path in copied:
        ignored = [p for p in patterns if fnmatch.fnmatch(path, p.removeprefix("**/"))]
        ignored += [p for p in patterns if p.startswith("**/") and p[3:] in path.split("/")]
        assert not ignored, f"{path} is excluded by {ignored}"
    assert ".env" in patterns and ".git" in patterns


# --- docker-compose.yml -------------------------------------------------------------


@pytest.fixture(scope="module")
def dev():
    return compose.load_project([DEV_FILE], {})


@pytest.fixture(scope="module")
def prod():
    return compose.load_project([DEV_FILE, PROD_FILE], PRODUCTION_ENV)


def healthcheck_port(service: dict) -> int | None:
    test = " ".join(service["healthcheck"]["test"])
    found = re.search(r"127\.0\.0\.1:(\d+)/health", test)
    return int(found.group(1)) if found else None


def is_migration_job(service: dict) -> bool:
    return "--migrate-only" in (service.get("command") or [])


def test_development_stack_has_the_six_services_and_a_postgres_15_each(dev):
    services = dev["services"]
    assert set(SEED_PORTS) | {"mpesa-simulator"} <= set(services)
    databases = {name for name, s in services.items() if "postgres" in s.get("image", "")}
    assert len(databases) == 5
    for name in databases:
        assert services[name]["image"].startswith("postgres:15")
        [volume] = services[name]["volumes"]
        assert volume.endswith(":/var/lib/postgresql/data")
        assert volume.split(":")[0] in dev["volumes"]  # a named volume


def test_every_container_has_a_healthcheck_and_waits_for_healthy_dependencies(dev):
    for name, service in dev["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            assert dependency in dev["services"]
    assert set(dev["services"]["api-gateway"]["depends_on"]) == set(SEED_PORTS) - {"api-gateway"}


def test_development_publishes_the_seed_ports_and_probes_the_port_served(dev):
    for name, port in SEED_PORTS.items():
        service = dev["services"][name]
        assert service["ports"] == [f"{port}:{port}"]
        assert healthcheck_port(service) == port
    assert dev["services"]["mpesa-simulator"]["ports"] == ["3010:3010"]


def _check_databases(project: dict) -> None:
    """Each service's *_DATABASE_URL names its own database container, which shares a
    network with that service (and its migration job) only."""
    services = compose.active_services(project)
    urls_of = {
        name: {k: v for k, v in compose.environment(s).items() if k.endswith("_DATABASE_URL")}
        for name, s in services.items()
    }
    for folder in SEED_PORTS:
        variable = database_variable(folder)
        if variable is None:
            assert urls_of[folder] == {}, f"{folder} needs no database"
            continue
        jobs = {n for n, s in services.items() if is_migration_job(s) and variable in urls_of[n]}
        for name in {folder} | jobs:
            assert set(urls_of[name]) == {variable}, f"{name} sees {sorted(urls_of[name])}"
            url = urlsplit(urls_of[name][variable])
            database = services[url.hostname]
            assert compose.environment(database)["POSTGRES_DB"] == url.path.lstrip("/")
            private = compose.networks(database)
            assert len(private) == 1 and private <= compose.networks(services[name])
            sharing = {n for n, s in services.items() if private & compose.networks(s)}
            assert sharing == {url.hostname, folder} | jobs, sorted(sharing)


def test_each_service_reaches_only_its_own_database(dev, prod):
    _check_databases(dev)
    _check_databases(prod)
    for name in SEED_PORTS:
        if database_variable(name):
            assert compose.environment(dev["services"][name])[RUN_MIGRATIONS_VARIABLE] == "true"


def test_development_reads_dotenv_when_there_is_one(dev):
    for name in SEED_PORTS:
        assert dev["services"][name]["env_file"] == [{"path": ".env", "required": False}]


def test_production_fails_fast_without_each_secret():
    for missing in REQUIRED_IN_PRODUCTION:
        env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
        with pytest.raises(compose.MissingVariable, match=missing):
            compose.load_project([DEV_FILE, PROD_FILE], env)
    # Nowhere in the production file does a secret have a default.
    secrets = set(REQUIRED_IN_PRODUCTION) | variables_read(ServiceSettings, secrets_only=True)
    text = PROD_FILE.read_text()
    for name in secrets:
        references = re.findall(r"\$\{" + name + r"(:?[-?])?", text)
        assert references and all(op == ":?" for op in references), name


def test_production_publishes_only_the_gateway_and_runs_no_simulator(prod):
    services = compose.active_services(prod)
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"api-gateway"}
    assert "mpesa-simulator" not in services
    assert "mpesa-simulator" in prod["services"]  # behind a profile
    assert prod["services"]["mpesa-simulator"]["profiles"]


def test_production_services_restart_have_limits_and_production_settings(prod):
    for name, service in compose.active_services(prod).items():
        if is_migration_job(service):
            assert service["restart"] == "no"
            continue
        assert service["restart"] == "unless-stopped", name
        limits = service["deploy"]["resources"]["limits"]
        assert limits["cpus"] and limits["memory"], name
        if name in SEED_PORTS:
            env = compose.environment(service)
            assert env["ENVIRONMENT"] == "production"
            assert env[RUN_MIGRATIONS_VARIABLE] == "false"
            assert env["JWT_SECRET"] == PRODUCTION_ENV["JWT_SECRET"]
            assert service["healthcheck"]["test"]


def test_production_migrates_once_before_each_service_starts(prod):
    services = compose.active_services(prod)
    for folder in SEED_PORTS:
        variable = database_variable(folder)
        if variable is None:
            continue
        [job_name] = [
            name
            for name, condition in services[folder]["depends_on"].items()
            if condition == {"condition": "service_completed_successfully"}
        ]
        job = services[job_name]
        assert is_migration_job(job)
        assert job["build"] == services[folder]["build"]
        assert job["image"] == services[folder]["image"]
        assert compose.environment(job)[variable] == compose.environment(services[folder])[variable]


# --- Kubernetes ---------------------------------------------------------------------

OVERLAYS = ("dev", "prod")
# The oldest Kubernetes minor version still common on managed clusters, and the latest.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())


@cache
def rendered(overlay: str) -> tuple[dict, ...]:
    return tuple(render(K8S / "overlays" / overlay))


def objects_of(overlay: str, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in rendered(overlay) if o["kind"] == kind}


def secret_template() -> dict[str, set[str]]:
    documents = yaml.safe_load_all((K8S / "base" / "secret.template.yaml").read_text())
    return {doc["metadata"]["name"]: set(doc["stringData"]) for doc in documents}


def pod_containers(template: dict) -> list[dict]:
    spec = template["spec"]
    return spec.get("initContainers", []) + spec["containers"]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_rendered_object_is_valid_for_kubernetes(overlay, version):
    objects = rendered(overlay)
    assert len(objects) > 30
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_a_deployment_service_autoscaler_and_disruption_budget(overlay):
    deployments = objects_of(overlay, "Deployment")
    services = objects_of(overlay, "Service")
    autoscalers = objects_of(overlay, "HorizontalPodAutoscaler")
    budgets = objects_of(overlay, "PodDisruptionBudget")
    for name, port in SEED_PORTS.items():
        template = deployments[name]["spec"]["template"]
        [container] = template["spec"]["containers"]
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True
        assert template["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
        labels = template["metadata"]["labels"]
        selector = services[name]["spec"]["selector"]
        assert selector.items() <= labels.items()
        assert services[name]["spec"]["ports"][0]["port"] == port
        assert autoscalers[name]["spec"]["scaleTargetRef"]["name"] == name
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # A Service selects only its Deployment's pods (not its migration Job's).
    for job in objects_of(overlay, "Job").values():
        job_labels = job["spec"]["template"]["metadata"]["labels"]
        for service in services.values():
            assert not service["spec"]["selector"].items() <= job_labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_resource_requests_and_limits(overlay):
    for obj in rendered(overlay):
        template = obj.get("spec", {}).get("template")
        if not template:
            continue
        for container in pod_containers(template):
            resources = container["resources"]
            assert resources["requests"]["cpu"] and resources["requests"]["memory"], obj
            assert resources["limits"]["cpu"] and resources["limits"]["memory"], obj


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_as_a_job_and_pods_wait_for_them(overlay):
    deployments = objects_of(overlay, "Deployment")
    jobs = objects_of(overlay, "Job")
    for folder in SEED_PORTS:
        template = deployments[folder]["spec"]["template"]
        if database_variable(folder) is None:
            assert "initContainers" not in template["spec"]
            continue
        [job_container] = jobs[f"{folder}-migrate"]["spec"]["template"]["spec"]["containers"]
        assert job_container["command"] == ["python", "-m", "shared.entrypoint", "--migrate-only"]
        [wait] = template["spec"]["initContainers"]
        assert wait["command"][-1] == "--wait-for-migrations"
        [app] = template["spec"]["containers"]
        assert job_container["image"] == wait["image"] == app["image"]
        assert job_container["envFrom"] == wait["envFrom"] == app["envFrom"]
    config = objects_of(overlay, "ConfigMap")["ecommerce-config"]["data"]
    assert config[RUN_MIGRATIONS_VARIABLE] == "false"


def test_the_secret_template_lists_every_secret_each_service_reads():
    template = secret_template()
    assert template["ecommerce-shared-secrets"] == variables_read(
        ServiceSettings, secrets_only=True
    )
    for folder in SEED_PORTS:
        variable = database_variable(folder)
        if variable is None:
            assert f"{folder}-secrets" not in template
            continue
        expected = {variable} | own_variables(folder, secrets_only=True)
        missing = expected - template[f"{folder}-secrets"]
        assert not missing, f"add to {folder}-secrets in secret.template.yaml: {sorted(missing)}"
    for secret in objects_of("prod", "Secret").values():
        pytest.fail(f"production must not ship a Secret: {secret['metadata']['name']}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_gets_the_shared_secrets_and_only_its_own(overlay):
    available = set(objects_of(overlay, "Secret")) or set(secret_template())
    for folder in SEED_PORTS:
        deployment = objects_of(overlay, "Deployment")[folder]
        [app] = deployment["spec"]["template"]["spec"]["containers"]
        secrets = {
            source["secretRef"]["name"] for source in app["envFrom"] if "secretRef" in source
        }
        own = {f"{folder}-secrets"} if database_variable(folder) else set()
        assert secrets == {"ecommerce-shared-secrets"} | own
        assert secrets <= available
        assert {"configMapRef": {"name": "ecommerce-config"}} in app["envFrom"]


def test_development_secrets_have_every_key_of_the_template():
    secrets = objects_of("dev", "Secret")
    for name, keys in secret_template().items():
        assert set(secrets[name]["stringData"]) == keys, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_config_map_holds_only_settings_a_service_reads(overlay):
    data = objects_of(overlay, "ConfigMap")["ecommerce-config"]["data"]
    unknown = set(data) - every_variable_read()
    assert not unknown, f"no service reads {sorted(unknown)} (a typo?)"
    assert data["HOST"] == "0.0.0.0"
    for name, port in SEED_PORTS.items():
        prefix = name.removesuffix("-service").upper()
        if name != "api-gateway":
            assert data[f"{prefix}_SERVICE_URL"] == f"http://{name}:{port}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_replicas_share_rate_limits_through_redis(overlay):
    data = objects_of(overlay, "ConfigMap")["ecommerce-config"]["data"]
    url = urlsplit(data["REDIS_URL"])
    redis = objects_of(overlay, "Service")[url.hostname]
    assert redis["spec"]["ports"][0]["port"] == url.port
    assert objects_of(overlay, "Deployment")["redis"]
    assert objects_of(overlay, "HorizontalPodAutoscaler")["api-gateway"]["spec"]["maxReplicas"] > 1


def test_production_exposes_only_the_gateway_api_and_health():
    [ingress] = objects_of("prod", "Ingress").values()
    routes = [
        (path["path"], path["backend"]["service"]["name"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert routes == [("/api", "api-gateway"), ("/health", "api-gateway")]
    for overlay in OVERLAYS:
        for service in objects_of(overlay, "Service").values():
            assert service["spec"].get("type", "ClusterIP") == "ClusterIP"


def test_images_are_the_dockerfiles_and_production_pins_a_registry_tag():
    for overlay in OVERLAYS:
        for name in SEED_PORTS:
            template = objects_of(overlay, "Deployment")[name]["spec"]["template"]
            for container in pod_containers(template):
                image = container["image"]
                assert image.rsplit(":", 1)[0].endswith(f"ecommerce/{name}")
                assert (ROOT / name / "Dockerfile").is_file()
                if overlay == "prod":
                    assert "/" in image.split("/ecommerce/")[0] or "." in image.split("/")[0]
                    assert not image.endswith((":latest", ":dev"))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_namespaced_object_is_in_the_overlay_namespace(overlay):
    [namespace] = objects_of(overlay, "Namespace")
    for obj in rendered(overlay):
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace, obj["metadata"]["name"]
