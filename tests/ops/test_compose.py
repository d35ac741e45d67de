"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine runs here).

What `docker compose up` would get wrong at run time that a reading can catch: a missing service
or port, start-up order, env vars that point at the wrong service, secrets committed in clear, and
commands naming modules (or simulator flags) that do not exist.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"

EXPECTED_SERVICES = {
    "postgres",
    "temporal",
    "temporal-ui",
    "migrate",
    "api",
    "worker",
    "mt5-sim",
    "psp-sim",
}
APP_SERVICES = {"migrate", "api", "worker", "mt5-sim", "psp-sim"}
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|PWD|SECRET|SECRETS_KEY|_KEY|_TOKEN)$")
# Command-line flags that carry a secret: --password, --card-secret, --bank-api-key...
SECRET_FLAG = re.compile(r"^--[a-z-]*(password|secret|key)$")
PSP_SECRETS = ("CARDCO_API_KEY", "CARDCO_WEBHOOK_SECRET", "BANKCO_API_KEY", "BANKCO_WEBHOOK_SECRET")
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    services: dict[str, Any] = compose["services"]
    return services


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def published_ports(service: dict[str, Any]) -> set[int]:
    ports = set()
    for spec in service.get("ports", []):
        text = str(spec["published"] if isinstance(spec, dict) else spec)
        parts = text.split(":")
        ports.add(int(parts[-2] if len(parts) >= 2 else parts[-1]))
    return ports


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return dockerfile_cmd()
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def dockerfile_cmd() -> list[str]:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    cmds = [line[len("CMD") :].strip() for line in lines if line.upper().startswith("CMD ")]
    assert cmds, "the Dockerfile has no CMD"
    value = json.loads(cmds[-1])  # exec form only: signals must reach Python, not a shell
    assert isinstance(value, list)
    return [str(v) for v in value]


def module_file(command: list[str]) -> str:
    """The repository file a `python -m pkg.mod` / `python file.py` command runs."""
    assert command[0] == "python", command
    if command[1] == "-m":
        parts = command[2].split(".")
        package = ROOT.joinpath(*parts)
        if package.is_dir() or not ROOT.joinpath(*parts[:-1], parts[-1] + ".py").exists():
            return "/".join(parts) + "/__main__.py"
        return "/".join(parts) + ".py"
    return command[1]


def require(path: str) -> None:
    assert (ROOT / path).is_file(), f"{path} is named by the compose file but does not exist"


def test_all_services_present(services: dict[str, Any]) -> None:
    assert EXPECTED_SERVICES <= set(services)


@pytest.mark.parametrize(
    ("service", "port"),
    [("api", 8000), ("temporal-ui", 8080), ("temporal", 7233), ("psp-sim", 8600)],
)
def test_ports_published(services: dict[str, Any], service: str, port: int) -> None:
    assert port in published_ports(services[service])


@pytest.mark.parametrize(
    ("service", "needs"),
    [
        ("temporal", {"postgres": "service_healthy"}),
        ("temporal-ui", {"temporal": "service_healthy"}),
        ("migrate", {"postgres": "service_healthy"}),
        ("api", {"migrate": "service_completed_successfully", "temporal": "service_healthy"}),
        (
            "worker",
            {
                "migrate": "service_completed_successfully",
                "temporal": "service_healthy",
                "mt5-sim": "service_healthy",
                "psp-sim": "service_healthy",
            },
        ),
    ],
)
def test_start_order(services: dict[str, Any], service: str, needs: dict[str, str]) -> None:
    depends = services[service].get("depends_on", {})
    assert isinstance(depends, dict), f"{service}: depends_on needs conditions"
    for other, condition in needs.items():
        assert depends.get(other, {}).get("condition") == condition, (service, other)


def test_services_waited_on_have_healthchecks(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for other, spec in (service.get("depends_on") or {}).items():
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[other], f"{name} waits on {other}'s health"


def test_migrate_runs_once(services: dict[str, Any]) -> None:
    assert str(services["migrate"].get("restart", "no")) == "no"


def test_postgres_has_volume_and_healthcheck(services: dict[str, Any]) -> None:
    pg = services["postgres"]
    assert str(pg["image"]).startswith("postgres:16")
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in pg.get("volumes", []))
    assert "pg_isready" in json.dumps(pg["healthcheck"]["test"])


def test_temporal_persists_in_the_postgres_service(services: dict[str, Any]) -> None:
    temporal = services["temporal"]
    env = env_of(temporal)
    assert str(temporal["image"]).startswith("temporalio/auto-setup:")
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgres"
    assert env["DB_PORT"] == "5432"
    pg_env = env_of(services["postgres"])
    assert env["POSTGRES_USER"] == pg_env["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == pg_env["POSTGRES_PASSWORD"]
    config = env["DYNAMIC_CONFIG_FILE_PATH"]
    mounted = [str(v) for v in temporal.get("volumes", [])]
    host_dir = next(v.split(":")[0] for v in mounted if ":/etc/temporal/config/dynamicconfig" in v)
    assert (ROOT / host_dir / Path(config).name).is_file()


def test_temporal_ui_points_at_temporal(services: dict[str, Any]) -> None:
    assert env_of(services["temporal-ui"])["TEMPORAL_ADDRESS"] == "temporal:7233"


@pytest.mark.parametrize("service", ["migrate", "api", "worker"])
def test_database_url_points_at_postgres(services: dict[str, Any], service: str) -> None:
    url = env_of(services[service])["BROKERFLOW_DATABASE_URL"]
    assert re.match(r"postgresql://[^@/]+@postgres:5432/", url), url


def test_only_migrate_gets_the_owner_password(services: dict[str, Any]) -> None:
    assert "${POSTGRES_PASSWORD" in env_of(services["migrate"])["BROKERFLOW_DATABASE_URL"]
    for name in ("api", "worker"):
        env = env_of(services[name])
        assert "POSTGRES_PASSWORD" not in json.dumps(env), name
        assert env["BROKERFLOW_DATABASE_APP_PASSWORD"].startswith("${")


@pytest.mark.parametrize("service", ["migrate", "api", "worker"])
def test_app_role_password_wired(services: dict[str, Any], service: str) -> None:
    assert "BROKERFLOW_DATABASE_APP_PASSWORD" in env_of(services[service])


@pytest.mark.parametrize("service", ["api", "worker"])
def test_temporal_address(services: dict[str, Any], service: str) -> None:
    assert env_of(services[service])["BROKERFLOW_TEMPORAL_ADDRESS"] == "temporal:7233"


def test_worker_reaches_the_simulator(services: dict[str, Any]) -> None:
    env = env_of(services["worker"])
    assert env["BROKERFLOW_MT5__ADDRESS"] == "mt5-sim:8443"
    assert env["BROKERFLOW_MT5__TLS"] == "true"
    sim = command_of(services["mt5-sim"])
    assert sim[sim.index("--port") + 1] == "8443"
    assert "--tls" in sim
    # Reachable from other containers, not only from its own loopback.
    assert sim[sim.index("--host") + 1] == "0.0.0.0"
    # The worker logs in with the manager the simulator was started with; the worker's copy of
    # the password is sealed (prod refuses it plain), the stand-in server's is in clear.
    assert sim[sim.index("--manager") + 1] == env["BROKERFLOW_MT5__MANAGER_LOGIN"]
    assert "MT5_SIM_MANAGER_PASSWORD" in sim[sim.index("--password") + 1]
    assert "BROKERFLOW_MT5__MANAGER_PASSWORD" in env["BROKERFLOW_MT5__MANAGER_PASSWORD"]


def test_api_and_worker_reach_the_psp_simulator(services: dict[str, Any]) -> None:
    sim = command_of(services["psp-sim"])
    assert sim[sim.index("--port") + 1] == "8600"
    assert sim[sim.index("--host") + 1] == "0.0.0.0"
    # Webhooks go to the API's own port and route, from inside the compose network.
    api_port = env_of(services["api"])["BROKERFLOW_API_PORT"]
    assert sim[sim.index("--webhook-url") + 1] == f"http://api:{api_port}/v1/webhooks"
    for name in ("api", "worker"):
        env = env_of(services[name])
        assert env["BROKERFLOW_PSP__BASE_URL"] == "http://psp-sim:8600", name
        for secret in PSP_SECRETS:
            # BrokerFlow's copies are sealed (prod refuses them plain)...
            assert f"BROKERFLOW_PSP__{secret}" in env[f"BROKERFLOW_PSP__{secret}"], (name, secret)
    # ...the stand-in processors' own are in clear, from variables of their own.
    flags = {"--card-api-key": "CARDCO_API_KEY", "--card-secret": "CARDCO_WEBHOOK_SECRET"}
    flags |= {"--bank-api-key": "BANKCO_API_KEY", "--bank-secret": "BANKCO_WEBHOOK_SECRET"}
    for flag, secret in flags.items():
        assert f"PSP_SIM_{secret}" in sim[sim.index(flag) + 1], flag


def test_api_never_gets_mt5_settings(services: dict[str, Any]) -> None:
    # architecture.md: no MT5 call inline in a request.
    assert not [k for k in env_of(services["api"]) if k.startswith("BROKERFLOW_MT5__")]


def test_secrets_wired(services: dict[str, Any]) -> None:
    assert "BROKERFLOW_JWT_SECRET" in env_of(services["api"])
    for name in ("api", "worker"):
        assert "BROKERFLOW_SECRETS_KEY" in env_of(services[name])
        for secret in PSP_SECRETS:
            assert f"BROKERFLOW_PSP__{secret}" in env_of(services[name])
    assert "BROKERFLOW_MT5__MANAGER_PASSWORD" in env_of(services["worker"])


def _secret_values(services: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for name, service in services.items():
        for key, value in env_of(service).items():
            if SECRET_NAME.search(key.upper()) or key.upper().endswith("_URL"):
                found.append((name, key, value))
        command = command_of(service) if name in APP_SERVICES else []
        for i, arg in enumerate(command[:-1]):
            if SECRET_FLAG.match(arg):
                found.append((name, arg, command[i + 1]))
    return found


def test_no_plain_text_secrets(services: dict[str, Any]) -> None:
    for service, key, value in _secret_values(services):
        if key.upper().endswith("_URL"):
            # A URL may carry a password only as a reference: user:${VAR}@host
            masked = REFERENCE.sub("VARREF", value)
            password = re.match(r"^[a-z0-9+]+://[^:@/]+:([^@]*)@", masked)
            if password:
                assert password.group(1) == "VARREF", f"{service}: {key} has a password in clear"
            continue
        if key.upper().endswith(("_ROLE", "_KEY_FILE")):
            continue
        match = REFERENCE.fullmatch(value)
        assert match, f"{service}: {key} must be a ${{VAR}} reference, not a value"
        operator, default = match.group(2), match.group(3)
        assert operator in (None, ":?", "?"), f"{service}: {key} has a committed default"
        del default


def test_required_variables_are_documented(compose: dict[str, Any]) -> None:
    documented = ENV_EXAMPLE.read_text()
    required = {m.group(1) for m in REFERENCE.finditer(COMPOSE.read_text()) if m.group(2) == ":?"}
    assert required, "no required variables found: is the secret wiring gone?"
    missing = sorted(name for name in required if name not in documented)
    assert not missing, f"set in .env for compose but not in .env.example: {missing}"


def test_dockerfile_basics() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "uv sync --frozen --no-dev" in text
    assert re.search(r"^USER (?!root\b|0\b)\S+", text, re.M), "the image must not run as root"
    for lib in ("libpango-1.0-0", "libpangoft2-1.0-0"):
        assert lib in text


def test_dockerignore_keeps_state_and_secrets_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".data", ".env", ".git"} <= ignored


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_app_services_use_the_image(services: dict[str, Any], service: str) -> None:
    spec = services[service]
    assert spec.get("build", {}).get("context") == "."
    assert spec["image"] == services["api"]["image"]


@pytest.mark.parametrize("service", [None, *sorted(APP_SERVICES)])
def test_commands_run_modules_that_exist(services: dict[str, Any], service: str | None) -> None:
    command = dockerfile_cmd() if service is None else command_of(services[service])
    require(module_file(command))


@pytest.mark.parametrize(
    ("service", "module"), [("mt5-sim", "simulators.mt5"), ("psp-sim", "simulators.psp")]
)
def test_simulator_accepts_the_compose_flags(
    services: dict[str, Any], service: str, module: str
) -> None:
    require(module.replace(".", "/") + "/__main__.py")
    out = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    flags = [arg for arg in command_of(services[service]) if arg.startswith("--")]
    missing = [flag for flag in flags if flag not in out.stdout]
    assert not missing, f"python -m {module} has no {missing}"
