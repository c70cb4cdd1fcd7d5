"""docker-compose.yml and the Dockerfile, checked without a Docker engine (CI has none).

What these prove: the files parse, every path they name exists, images are pinned, the
health checks and start order are declared, one port is published, and the batchbridge
service's command is one the ``batchbridge`` CLI accepts. What they cannot prove: that the
images build and the containers start (see docs/compose.md).
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli import build_parser
from services.gateway import CONTROL_PREFIX

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# Releases from 2026.3.0 on, and every 4.x tag after 4.14.0, refuse to start without
# LOCALSTACK_AUTH_TOKEN; the compose file must stay on a community tag at or below this.
LAST_TOKENLESS_LOCALSTACK = (4, 14, 0)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and "services" in data, "docker-compose.yml has no services"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _tag(image: str) -> str | None:
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else None


def test_compose_runs_localstack_and_batchbridge(services: dict[str, Any]) -> None:
    assert set(services) == {"localstack", "batchbridge"}


def test_every_image_is_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if "image" not in service:
            continue
        tag = _tag(service["image"])
        assert tag not in (None, "latest", "stable"), f"{name}: image {service['image']} unpinned"


def test_localstack_tag_starts_without_an_auth_token(services: dict[str, Any]) -> None:
    image = services["localstack"]["image"]
    assert image.startswith("localstack/localstack:"), image
    tag = _tag(image) or ""
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?", tag)
    assert match, f"{image}: pin an exact 4.x version, not {tag!r}"
    version = tuple(int(part or 0) for part in match.groups())
    assert (4, 0, 0) <= version <= LAST_TOKENLESS_LOCALSTACK, (
        f"{image}: LocalStack images after 4.14.0 (and 2026.x) exit without LOCALSTACK_AUTH_TOKEN"
    )
    assert "LOCALSTACK_AUTH_TOKEN" not in _env(services["localstack"])


def test_localstack_serves_what_batchbridge_forwards(services: dict[str, Any]) -> None:
    served = set(_env(services["localstack"])["SERVICES"].split(","))
    assert {"sqs", "lambda", "s3", "iam", "logs", "cloudformation"} <= served


def test_build_context_and_dockerfile_exist(services: dict[str, Any]) -> None:
    build = services["batchbridge"]["build"]
    context = ROOT / (build["context"] if isinstance(build, dict) else build)
    assert context.is_dir(), f"build context {context} does not exist"
    dockerfile = context / (
        build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
    )
    assert dockerfile.is_file(), f"{dockerfile} does not exist"
    assert dockerfile.resolve() == DOCKERFILE


def test_repo_paths_named_in_mounts_exist(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: mount source {source} does not exist"
            else:
                # Host paths outside the repo: only the Docker socket is expected.
                assert source == "/var/run/docker.sock", f"{name}: unexpected mount {source}"


def test_both_services_mount_the_docker_socket(services: dict[str, Any]) -> None:
    # LocalStack runs Lambdas in containers; batchbridge's docker executor runs job images.
    for name in ("localstack", "batchbridge"):
        mounts = [v.split(":", 1)[0] for v in services[name].get("volumes", [])]
        assert "/var/run/docker.sock" in mounts, name


def test_health_checks_and_start_order(services: dict[str, Any]) -> None:
    for name in ("localstack", "batchbridge"):
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
    localstack_check = " ".join(services["localstack"]["healthcheck"]["test"])
    assert "/_localstack/health" in localstack_check
    batchbridge_check = " ".join(services["batchbridge"]["healthcheck"]["test"])
    assert f"{CONTROL_PREFIX}health" in batchbridge_check
    assert services["batchbridge"]["depends_on"] == {"localstack": {"condition": "service_healthy"}}


def test_only_the_gateway_port_is_published(services: dict[str, Any]) -> None:
    assert "ports" not in services["localstack"], "clients must use the gateway, not LocalStack"
    ports = [str(p) for p in services["batchbridge"]["ports"]]
    assert len(ports) == 1 and ports[0].endswith(":4566"), ports


def test_lambda_and_job_containers_join_the_compose_network(compose: dict[str, Any]) -> None:
    network = compose["networks"]["default"]["name"]
    env = _env(compose["services"]["localstack"])
    assert env["LAMBDA_DOCKER_NETWORK"] == network
    batchbridge = _env(compose["services"]["batchbridge"])
    assert batchbridge["BATCHBRIDGE_DOCKER_NETWORK"] == network
    # Job containers reach the gateway by its service name on that network.
    assert batchbridge["BATCHBRIDGE_DOCKER_ENDPOINT_URL"] == "http://batchbridge:4566"


def test_batchbridge_command_is_a_valid_proxy_mode_invocation(services: dict[str, Any]) -> None:
    command = _command(services["batchbridge"])
    assert command[:3] == ["batchbridge", "local", "up"]
    args = build_parser(argparse.ArgumentParser()).parse_args(command[2:])
    assert (args.host, args.port, args.executor) == ("0.0.0.0", 4566, "docker")
    assert args.upstream == "http://localstack:4566"
    assert args.upstream.split("//")[1].split(":")[0] in services


def _dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_base_image_is_pinned() -> None:
    bases = [rest.split()[0] for keyword, rest in _dockerfile_instructions() if keyword == "FROM"]
    assert bases, "Dockerfile has no FROM"
    for base in bases:
        assert _tag(base) not in (None, "latest"), f"base image {base} is not pinned"
        assert base.startswith("python:3.11"), "the services run on Python 3.11 (pyproject)"


def test_dockerfile_copy_sources_exist_and_are_not_ignored() -> None:
    ignored = _dockerignore_patterns()
    copies = [rest for keyword, rest in _dockerfile_instructions() if keyword in ("COPY", "ADD")]
    assert copies
    for rest in copies:
        parts = [p for p in rest.split() if not p.startswith("--")]
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"COPY source {source} does not exist"
            hit = [p for p in ignored if fnmatch.fnmatch(source.rstrip("/"), p.rstrip("/"))]
            assert not hit, f"COPY source {source} is excluded by .dockerignore {hit}"


def test_dockerfile_installs_the_local_extra_and_serves_4566() -> None:
    instructions = _dockerfile_instructions()
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert '".[local]"' in runs or "'.[local]'" in runs
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^local = \[", pyproject, re.M), "pyproject lost its [local] extra"
    assert ("EXPOSE", "4566") in instructions
    health = " ".join(rest for keyword, rest in instructions if keyword == "HEALTHCHECK")
    assert f"{CONTROL_PREFIX}health" in health


def test_dockerignore_keeps_the_venv_and_git_out() -> None:
    patterns = _dockerignore_patterns()
    assert ".venv" in patterns and ".git" in patterns
