"""``batchbridge deploy`` refuses settings that cannot work, before touching anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas.settings import receives_needed
from scripts.deploy import main
from scripts.deploy_config import ConfigError, DeployConfig


def test_max_receive_count_covers_the_receives_a_message_may_need() -> None:
    config = DeployConfig(command="deploy", target="local", max_wait=3600, poll_floor=30)
    needed = receives_needed(3600, 30, config.poll_ceiling)
    assert needed < config.max_receive_count() <= 1000


def test_a_wait_sqs_cannot_redrive_for_is_refused_with_what_to_change() -> None:
    config = DeployConfig(
        command="deploy", target="local", max_wait=13 * 24 * 3600, poll_floor=1, poll_ceiling=60
    )
    with pytest.raises(ConfigError, match=r"maxReceiveCount .* at most 1000.*--poll-floor"):
        config.validate()


def test_aws_target_refuses_an_endpoint_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    with pytest.raises(ConfigError, match="unset it, or use --target local"):
        DeployConfig(command="deploy", target="aws").validate()


def test_existing_batch_needs_queue_and_definition() -> None:
    config = DeployConfig(command="deploy", target="aws", batch_resources="existing")
    with pytest.raises(ConfigError, match="--job-queue and --job-definition"):
        config.validate()


def test_bad_settings_exit_1_with_every_problem_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    argv = ["deploy", "--target", "aws", "--stack-name", "9bad", "--poll-floor", "0"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "--stack-name '9bad'" in err
    assert "BATCHBRIDGE_POLL_FLOOR_SECONDS=0" in err


def test_local_target_without_an_environment_says_how_to_start_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Port 9 (discard) has no listener here: nothing answers.
    argv = ["deploy", "--target", "local", "--endpoint-url", "http://127.0.0.1:9"]
    assert main(argv) == 1
    assert "batchbridge local up" in capsys.readouterr().err


def test_aws_target_without_credentials_says_how_to_get_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    for var in ("AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata lookup
    assert main(["deploy", "--target", "aws", "--region", "eu-west-1"]) == 1
    assert "no AWS credentials found: run `aws configure`" in capsys.readouterr().err


def test_under_compose_deploy_makes_batch_through_the_api_and_points_lambdas_at_the_gateway() -> (
    None
):
    from scripts.deploy import COMPOSE_GATEWAY_URL, adapt_to_compose

    config = DeployConfig(command="deploy", target="local")
    adapt_to_compose(config, {"ready": True, "services": {}, "upstream": {"ready": True}})
    assert config.batch_resources == "api"
    assert config.lambda_endpoint_url == COMPOSE_GATEWAY_URL


def test_on_the_embedded_environment_deploy_keeps_cloudformation_for_batch() -> None:
    from scripts.deploy import adapt_to_compose

    config = DeployConfig(command="deploy", target="local")
    adapt_to_compose(config, {"ready": True, "services": {"batch": {"ready": True}}})
    assert (config.batch_resources, config.lambda_endpoint_url) == ("cfn", None)


def test_an_explicit_choice_is_kept_under_compose() -> None:
    from scripts.deploy import adapt_to_compose

    config = DeployConfig(
        command="deploy", target="local", batch_resources="existing", lambda_endpoint_url="http://x"
    )
    adapt_to_compose(config, {"upstream": {"ready": True}})
    assert (config.batch_resources, config.lambda_endpoint_url) == ("existing", "http://x")
