"""The files that run the system elsewhere than `make run`: the Dockerfile,
docker-compose.yml (+ docker-compose.prod.yml) and deploy/k8s, read by the real tools
without an engine or a cluster: compose files by `docker compose config`, kustomize
overlays by `kubectl kustomize` (tests/ops_tools.py), and every Kubernetes object
validated against the API schemas (kubernetes-validate, offline). `make compose-test`
builds and runs them for real (tests/compose/)."""

import fnmatch
import importlib
import importlib.util
import re
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

from api_gateway.routing import UPSTREAMS
from scripts.stack import Output, ensure_development_secrets
from shared import tracing
from shared.entrypoint import RUN_MIGRATIONS_VARIABLE
from shared.internal_access import callers_of
from shared.keys import (
    generate_private_key,
    is_development_key,
    load_private_key,
    load_public_key_map,
    private_pem,
    thumbprint,
)
from shared.settings import ServiceSettings
from shared.testing import TestKeys
from tests.ops_tools import ComposeError, compose_config, compose_variables, kustomize

ROOT = Path(__file__).resolve().parent.parent
DEV_FILE = ROOT / "docker-compose.yml"
PROD_FILE = ROOT / "docker-compose.prod.yml"
DOCKERFILE = ROOT / "Dockerfile"
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
# Each process's own private key, in compose (one variable per process; in a service's
# settings it is INTERNAL_PRIVATE_KEY).
PRIVATE_KEY_VARIABLES = {
    "JWT_PRIVATE_KEY": "auth-service",
    "AUTH_INTERNAL_PRIVATE_KEY": "auth-service",
    "PRODUCT_INTERNAL_PRIVATE_KEY": "product-service",
    "CART_INTERNAL_PRIVATE_KEY": "cart-service",
    "ORDER_INTERNAL_PRIVATE_KEY": "order-service",
    "PAYMENT_INTERNAL_PRIVATE_KEY": "payment-service",
    "GATEWAY_INTERNAL_PRIVATE_KEY": "api-gateway",
    "ADMIN_CONSOLE_INTERNAL_PRIVATE_KEY": "admin-console",
}
REQUIRED_IN_PRODUCTION = (
    *PRIVATE_KEY_VARIABLES,
    "INTERNAL_PUBLIC_KEYS",
    "MPESA_CALLBACK_SECRET",
    "POSTGRES_PASSWORD",
)
_KEYS = TestKeys()
PRODUCTION_ENV = {
    **{
        name: private_pem(generate_private_key()).replace("\n", "\\n")
        for name in PRIVATE_KEY_VARIABLES
    },
    "INTERNAL_PUBLIC_KEYS": _KEYS.internal_public_keys(),
    "MPESA_CALLBACK_SECRET": "m" * 64,
    "POSTGRES_PASSWORD": "p" * 32,
    "CORS_ORIGINS": "https://shop.example.com",
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
    used = compose_variables(DEV_FILE.read_text() + PROD_FILE.read_text())
    missing = used - documented_variables()
    assert not missing, f"add to .env.example: {sorted(missing)}"


# --- the Dockerfile -----------------------------------------------------------------


def dockerfile_stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    """{stage name: [(INSTRUCTION, arguments)]}, continuation lines joined; the stage's
    FROM is its first entry."""
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
            stages[name] = [("FROM", parts[0])]
        elif name is not None:
            stages[name].append((instruction, arguments.strip()))
    return stages


def built_services(project: dict) -> dict[str, dict]:
    """{service: its build section} of the long-running services (not the migration jobs)."""
    return {
        name: service["build"]
        for name, service in project["services"].items()
        if "build" in service and not is_migration_job(service)
    }


def test_one_dockerfile_builds_every_service_and_the_simulator(dev):
    builds = built_services(dev)
    assert not list(ROOT.glob("*/Dockerfile")), "one Dockerfile at the root, not one per service"
    # Every workspace member that is a program (the simulator too) is a compose service
    # built from the one Dockerfile with its folder as SERVICE.
    assert set(app_services()) == set(builds)
    for name, build in builds.items():
        assert Path(build["context"]) == ROOT
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
        assert build["args"]["SERVICE"] == name
        assert build["args"]["PYTHON_IMAGE"] == "python:3.11-slim-bookworm"
        assert dev["services"][name]["image"] == f"ecommerce/{name}:dev"


def test_the_dockerfile_builds_with_uv_and_runs_slim_unprivileged_and_probed():
    stages = dockerfile_stages(DOCKERFILE)
    assert list(stages)[-1] == "final" and "builder" in stages and "runtime" in stages
    text = DOCKERFILE.read_text()
    # The base is a build argument whose default is the official image; no other registry.
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in text
    assert not re.search(r"^# *syntax=", text, flags=re.MULTILINE)
    for name, instructions in stages.items():
        [(_, base)] = instructions[:1]
        assert base in ("${PYTHON_IMAGE}", "runtime"), (name, base)

    builder = stages["builder"]
    syncs = [args for instruction, args in builder if instruction == "RUN" and "uv sync" in args]
    assert len(syncs) == 2
    assert all("--locked" in s and "--no-dev" in s and '--package "${SERVICE}"' in s for s in syncs)
    assert "--no-install-workspace" in syncs[0]  # third-party packages: cached across code
    assert "--no-editable" in syncs[1]  # the final stage needs no source tree

    final = stages["final"]
    assert final[0] == ("FROM", "runtime")
    final_text = "\n".join(f"{instruction} {args}" for instruction, args in final)
    assert "uv " not in final_text
    for tool in ("apt-get install", "apk add", "gcc", "build-essential", "pip install"):
        assert tool not in final_text
    assert "COPY --from=builder /app /app" in final_text
    runtime_text = "\n".join(f"{i} {a}" for i, a in stages["runtime"])
    assert "pip uninstall" in runtime_text  # the base image's pip goes too
    assert "HOST=0.0.0.0" in runtime_text and "RUN_MIGRATIONS=false" in runtime_text

    [user] = [args for instruction, args in final if instruction == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000  # numeric: Kubernetes can check runAsNonRoot
    [healthcheck] = [args for instruction, args in final if instruction == "HEALTHCHECK"]
    assert "/health" in healthcheck and "curl" not in healthcheck
    [cmd] = [args for instruction, args in final if instruction == "CMD"]
    assert cmd == '["/app/start"]'
    # The start script: the entrypoint (migrations when asked) for services with Alembic.
    assert 'main="shared.entrypoint ${package}"' in text and 'main="${package}"' in text


def test_the_dockerignore_keeps_out_nothing_an_image_copies():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    needed = {"pyproject.toml", "uv.lock", "shared/shared/app.py", "Dockerfile"}
    for folder in app_services():
        needed |= {f"{folder}/pyproject.toml", f"{folder}/{package_of(folder)}/__main__.py"}
        if (ROOT / folder / "alembic.ini").is_file():
            needed |= {f"{folder}/alembic.ini", f"{folder}/migrations/env.py"}
    for path in needed:
        ignored = [p for p in patterns if fnmatch.fnmatch(path, p.removeprefix("**/"))]
        ignored += [p for p in patterns if p.startswith("**/") and p[3:] in path.split("/")]
        ignored += [p for p in patterns if path.startswith(p.rstrip("/") + "/")]
        assert not ignored, f"{path} is excluded by {ignored}"
    assert ".env" in patterns and ".git" in patterns and ".venv" in patterns


# --- docker-compose.yml (read by `docker compose config`) ---------------------------


@pytest.fixture(scope="module")
def dev():
    return compose_config([DEV_FILE], {})


@pytest.fixture(scope="module")
def prod():
    return compose_config([DEV_FILE, PROD_FILE], PRODUCTION_ENV)


def is_migration_job(service: dict) -> bool:
    return "--migrate-only" in (service.get("command") or [])


def networks_of(service: dict) -> set[str]:
    return set(service.get("networks") or {})


def conditions(service: dict) -> dict[str, str]:
    return {name: dep["condition"] for name, dep in (service.get("depends_on") or {}).items()}


def test_development_stack_has_the_six_services_and_a_postgres_15_each(dev):
    services = dev["services"]
    assert set(SEED_PORTS) | {"mpesa-simulator", "redis"} <= set(services)
    databases = {name for name, s in services.items() if "postgres" in s.get("image", "")}
    assert len(databases) == 5
    for name in databases:
        assert services[name]["image"] == "postgres:15-alpine"
        [volume] = services[name]["volumes"]
        assert volume["type"] == "volume" and volume["target"] == "/var/lib/postgresql/data"
        assert volume["source"] in dev["volumes"]  # a named volume
    # A machine without registry access substitutes its own base images.
    local = compose_config(
        [DEV_FILE], {"POSTGRES_IMAGE": "local/pg:15", "PYTHON_IMAGE": "local/python:3.11"}
    )
    assert {local["services"][name]["image"] for name in databases} == {"local/pg:15"}
    for build in built_services(local).values():
        assert build["args"]["PYTHON_IMAGE"] == "local/python:3.11"


def test_every_service_waits_for_what_it_needs_to_be_healthy_or_done(dev):
    services = dev["services"]
    for name, service in services.items():
        if is_migration_job(service):
            assert service["restart"] == "no"
            continue
        # Built services are probed by the image's HEALTHCHECK (here: only its timing).
        assert service.get("healthcheck"), f"{name} has no healthcheck"
        if "build" not in service:
            assert service["healthcheck"]["test"], name
        for dependency, condition in conditions(service).items():
            expected = (
                "service_completed_successfully"
                if is_migration_job(services[dependency])
                else "service_healthy"
            )
            assert condition == expected, (name, dependency)
    needed = (set(app_services()) - {"api-gateway", "mpesa-simulator"}) | {"redis"}
    assert set(conditions(services["api-gateway"])) == needed


def test_development_publishes_the_seed_ports_on_localhost(dev):
    for name, port in {**SEED_PORTS, "mpesa-simulator": 3010}.items():
        [published] = dev["services"][name]["ports"]
        assert published["host_ip"] == "127.0.0.1"
        assert (published["target"], published["published"]) == (port, str(port))
        assert dev["services"][name]["build"]["args"]["PORT"] == str(port)


def _check_databases(project: dict) -> None:
    """Each service's *_DATABASE_URL names its own database container, which shares a
    network with that service and its migration job only."""
    services = project["services"]
    urls_of = {
        name: {k: v for k, v in (s.get("environment") or {}).items() if k.endswith("_DATABASE_URL")}
        for name, s in services.items()
    }
    for folder in SEED_PORTS:
        variable = database_variable(folder)
        if variable is None:
            assert urls_of[folder] == {}, f"{folder} needs no database"
            continue
        jobs = {n for n, s in services.items() if is_migration_job(s) and variable in urls_of[n]}
        assert len(jobs) == 1, jobs
        for name in {folder} | jobs:
            assert set(urls_of[name]) == {variable}, f"{name} sees {sorted(urls_of[name])}"
            url = urlsplit(urls_of[name][variable])
            database = services[url.hostname]
            assert database["environment"]["POSTGRES_DB"] == url.path.lstrip("/")
            private = networks_of(database)
            assert len(private) == 1 and private <= networks_of(services[name])
            sharing = {n for n, s in services.items() if private & networks_of(s)}
            assert sharing == {url.hostname, folder} | jobs, sorted(sharing)
            assert project["networks"][next(iter(private))].get("internal") is True


def test_each_service_reaches_only_its_own_database(dev, prod):
    _check_databases(dev)
    _check_databases(prod)


def test_migrations_run_once_by_a_job_before_the_service_starts(dev, prod):
    """Several replicas of a service never race to migrate: its migrations are a one-off
    job of the same image that must finish first; the service itself never migrates."""
    for project in (dev, prod):
        services = project["services"]
        for folder in SEED_PORTS:
            env = services[folder].get("environment") or {}
            assert env.get(RUN_MIGRATIONS_VARIABLE, "false") == "false", folder
            variable = database_variable(folder)
            if variable is None:
                continue
            [job_name] = [
                name
                for name, condition in conditions(services[folder]).items()
                if condition == "service_completed_successfully"
            ]
            job = services[job_name]
            assert job["command"] == ["python", "-m", "shared.entrypoint", "--migrate-only"]
            assert job["build"] == services[folder]["build"]
            assert job["image"] == services[folder]["image"]
            assert job["environment"][variable] == services[folder]["environment"][variable]


def test_gateway_replicas_share_rate_limits_through_redis_in_compose(dev, prod):
    for project in (dev, prod):
        gateway = project["services"]["api-gateway"]
        url = urlsplit(gateway["environment"]["REDIS_URL"])
        redis = project["services"][url.hostname]
        assert networks_of(redis) <= networks_of(gateway)
        assert url.port == 6379


def test_development_pays_with_the_simulator_out_of_the_box(dev):
    env = dev["services"]["payment-service"]["environment"]
    assert urlsplit(env["MPESA_BASE_URL"]).hostname == "mpesa-simulator"
    assert urlsplit(env["MPESA_CALLBACK_URL"]).hostname == "api-gateway"
    for name in ("MPESA_CONSUMER_KEY", "MPESA_CONSUMER_SECRET", "MPESA_SHORTCODE", "MPESA_PASSKEY"):
        assert env[name], name
    assert env["MPESA_CALLBACK_SECRET"]
    # The simulator listens on the container's network, not only its loopback.
    assert dev["services"]["mpesa-simulator"]["environment"]["MPESA_SIMULATOR_HOST"] == "0.0.0.0"


def test_development_reads_dotenv_when_there_is_one():
    # As written (`config` reads an existing .env into `environment` and drops the key).
    written = yaml.safe_load(DEV_FILE.read_text())["services"]
    for name in SEED_PORTS:
        assert written[name]["env_file"] == [{"path": ".env", "required": False}], name


def test_production_fails_fast_without_each_secret():
    for missing in REQUIRED_IN_PRODUCTION:
        env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
        with pytest.raises(ComposeError, match=missing):
            compose_config([DEV_FILE, PROD_FILE], env)
    # Nowhere in the production file does a secret have a default (INTERNAL_PRIVATE_KEY is
    # each process's own <NAME>_INTERNAL_PRIVATE_KEY there).
    secrets = set(REQUIRED_IN_PRODUCTION) | variables_read(ServiceSettings, secrets_only=True)
    secrets.discard("INTERNAL_PRIVATE_KEY")
    text = PROD_FILE.read_text()
    for name in secrets:
        references = re.findall(r"\$\{" + name + r"(:?[-?])?", text)
        assert references and all(op == ":?" for op in references), name


def test_production_publishes_only_the_gateway_and_runs_no_simulator(prod):
    services = prod["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"api-gateway"}
    assert "mpesa-simulator" not in services
    # It is only behind a profile.
    with_profile = compose_config([DEV_FILE, PROD_FILE], PRODUCTION_ENV, "--profile", "dev-tools")
    assert with_profile["services"]["mpesa-simulator"]["profiles"] == ["dev-tools"]


def test_production_keeps_metrics_docs_and_any_origin_off_the_public_port(prod):
    gateway = prod["services"]["api-gateway"]["environment"]
    assert gateway["METRICS_ENABLED"] == "false"
    assert gateway["CORS_ORIGINS"] == PRODUCTION_ENV["CORS_ORIGINS"]
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "CORS_ORIGINS"}
    with pytest.raises(ComposeError, match="CORS_ORIGINS"):
        compose_config([DEV_FILE, PROD_FILE], env)
    # Every service's /metrics and /docs are on its own port, and none is published.
    for name, service in prod["services"].items():
        if name != "api-gateway":
            assert not service.get("ports"), name


def test_the_payment_service_believes_address_headers_only_from_the_services_network(dev):
    trusted = dev["services"]["payment-service"]["environment"]["TRUSTED_PROXIES"]
    assert trusted == "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
    # The gateway's own TRUSTED_PROXIES stays the operator's (.env): a host client comes
    # from the services network too and must not set its own address.
    written = yaml.safe_load(DEV_FILE.read_text())["services"]["api-gateway"]["environment"]
    assert "TRUSTED_PROXIES" not in written


def test_production_services_restart_have_limits_and_production_settings(prod):
    for name, service in prod["services"].items():
        if is_migration_job(service):
            assert service["restart"] == "no"
            assert service["environment"]["ENVIRONMENT"] == "production"
            continue
        assert service["restart"] == "unless-stopped", name
        limits = service["deploy"]["resources"]["limits"]
        assert limits["cpus"] and limits["memory"], name
        if name in SEED_PORTS:
            env = service["environment"]
            assert env["ENVIRONMENT"] == "production"
            assert env["INTERNAL_PUBLIC_KEYS"] == PRODUCTION_ENV["INTERNAL_PUBLIC_KEYS"]
            assert not any(value.startswith("dev-only") for value in env.values()), name
    payment = prod["services"]["payment-service"]["environment"]
    assert "MPESA_BASE_URL" not in payment and "MPESA_CONSUMER_KEY" not in payment


# --- Kubernetes ---------------------------------------------------------------------

OVERLAYS = ("dev", "prod")
# The oldest Kubernetes minor version still common on managed clusters, and the latest.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())


@cache
def rendered(overlay: str) -> tuple[dict, ...]:
    return tuple(kustomize(K8S / "overlays" / overlay))


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
    # Shared: every service's public key. Each its own: its private key (and database).
    assert template["ecommerce-shared-secrets"] == {"INTERNAL_PUBLIC_KEYS"}
    assert variables_read(ServiceSettings, secrets_only=True) == {"INTERNAL_PRIVATE_KEY"}
    for folder in SEED_PORTS:
        variable = database_variable(folder)
        expected = (
            {"INTERNAL_PRIVATE_KEY"}
            | ({variable} if variable else set())
            | own_variables(folder, secrets_only=True)
        )
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
        assert secrets == {"ecommerce-shared-secrets", f"{folder}-secrets"}
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
                if overlay == "prod":
                    assert "/" in image.split("/ecommerce/")[0] or "." in image.split("/")[0]
                    assert not image.endswith((":latest", ":dev"))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_namespaced_object_is_in_the_overlay_namespace(overlay):
    [namespace] = objects_of(overlay, "Namespace")
    for obj in rendered(overlay):
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace, obj["metadata"]["name"]


# --- network policies: the internal route table, as Kubernetes enforces it -----------

# The short names of shared.internal_access and the gateway's routing, as Deployments.
DEPLOYMENT_OF = {
    "gateway": "api-gateway",
    "auth": "auth-service",
    "product": "product-service",
    "cart": "cart-service",
    "order": "order-service",
    "payment": "payment-service",
}
SCRAPER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def admitted_pods(policy: dict) -> set[str]:
    return {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for rule in policy["spec"].get("ingress", [])
        for peer in rule.get("from", [])
        if "podSelector" in peer
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_admit_only_the_callers_of_the_internal_route_table(overlay):
    policies = objects_of(overlay, "NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    behind_gateway = {upstream.service for upstream in UPSTREAMS}
    for service in ("auth", "product", "cart", "order", "payment"):
        policy = policies[DEPLOYMENT_OF[service]]
        assert policy["spec"]["podSelector"] == {
            "matchLabels": {"app.kubernetes.io/name": DEPLOYMENT_OF[service]}
        }
        expected = set(callers_of(service)) | ({"gateway"} if service in behind_gateway else set())
        assert admitted_pods(policy) == {DEPLOYMENT_OF[name] for name in expected}, service
        peers = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
        assert [peer for peer in peers if "podSelector" not in peer] == [SCRAPER], service
        assert all(rule["ports"] == [{"port": "http"}] for rule in policy["spec"]["ingress"])
    # The gateway takes anyone, on its HTTP port only; Redis only the gateway.
    assert policies["api-gateway"]["spec"]["ingress"] == [{"ports": [{"port": "http"}]}]
    assert admitted_pods(policies["redis"]) == {"api-gateway"}
    # Every workload's pods are covered by a policy of their own or by the default deny.
    for name in objects_of(overlay, "Deployment"):
        assert name in policies, name


# --- secrets in one place ------------------------------------------------------------


def required_secrets(folder: str) -> set[str]:
    """The secrets a member cannot start without (no default), by their first name."""
    return {
        _aliases(name, field)[0]
        for cls in settings_classes().get(folder, [])
        for name, field in cls.model_fields.items()
        if _is_secret(field.annotation) and field.is_required()
    }


def test_make_run_generates_every_secret_a_service_needs(tmp_path):
    env = {"DEV_SECRETS_FILE": str(tmp_path / "dev-secrets.env")}
    ensure_development_secrets(env, Output(["stack"]))
    needed = set().union(*(required_secrets(folder) for folder in app_services()))
    # Not needed to start, but needed to take M-Pesa callbacks (the simulator's too).
    needed.add("MPESA_CALLBACK_SECRET")
    assert needed <= {name for name, value in env.items() if value}


def test_compose_gives_each_service_its_secrets_from_the_one_block(dev, prod):
    written = yaml.safe_load(DEV_FILE.read_text())
    block = set(written["x-secrets"]) | set(written["x-payment-secrets"])
    for folder in app_services():
        needed = required_secrets(folder)
        if folder not in dev["services"] or not needed:
            continue
        for project in (dev, prod):
            env = project["services"][folder]["environment"]
            assert all(env.get(name) for name in needed), (folder, needed)
        assert needed <= block, folder


# --- keys: each process its own --------------------------------------------------------

# compose service -> its identity in internal calls.
IDENTITY_OF = {
    "auth-service": "auth",
    "product-service": "product",
    "cart-service": "cart",
    "order-service": "order",
    "payment-service": "payment",
    "api-gateway": "gateway",
    "admin-console": "admin-console",
}


def test_compose_gives_each_process_its_own_key_and_production_refuses_the_development_ones(
    dev, prod
):
    public = load_public_key_map(
        dev["services"]["auth-service"]["environment"]["INTERNAL_PUBLIC_KEYS"]
    )
    assert set(public) == set(IDENTITY_OF.values())
    seen = set()
    for service, identity in IDENTITY_OF.items():
        env = dev["services"][service]["environment"]
        key = load_private_key(env["INTERNAL_PRIVATE_KEY"])
        assert thumbprint(key.public_key()) == thumbprint(public[identity]), service
        assert is_development_key(key), service  # production refuses it
        seen.add(thumbprint(key.public_key()))
        # The user-token key is the auth service's alone.
        assert ("JWT_PRIVATE_KEY" in env) is (service == "auth-service"), service
        assert ("JWT_PRIVATE_KEY" in prod["services"][service]["environment"]) is (
            service == "auth-service"
        )
        # In production, each from its own variable.
        variable = identity.upper().replace("-", "_") + "_INTERNAL_PRIVATE_KEY"
        production = prod["services"][service]["environment"]["INTERNAL_PRIVATE_KEY"]
        assert production == PRODUCTION_ENV[variable], service
    assert len(seen) == len(IDENTITY_OF)
    jwt_key = load_private_key(dev["services"]["auth-service"]["environment"]["JWT_PRIVATE_KEY"])
    assert is_development_key(jwt_key)


def test_the_kubernetes_dev_keys_are_refused_in_production_and_each_services_own():
    secrets = objects_of("dev", "Secret")
    public = load_public_key_map(
        secrets["ecommerce-shared-secrets"]["stringData"]["INTERNAL_PUBLIC_KEYS"]
    )
    for folder in SEED_PORTS:
        key = load_private_key(secrets[f"{folder}-secrets"]["stringData"]["INTERNAL_PRIVATE_KEY"])
        assert is_development_key(key), folder
        assert thumbprint(key.public_key()) == thumbprint(public[IDENTITY_OF[folder]]), folder
    jwt_key = load_private_key(secrets["auth-service-secrets"]["stringData"]["JWT_PRIVATE_KEY"])
    assert is_development_key(jwt_key)
