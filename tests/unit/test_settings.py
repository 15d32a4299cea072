from __future__ import annotations

import pytest

from storeops.exceptions import ConfigurationError
from storeops.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("STOREOPS_"):
            monkeypatch.delenv(key)


def test_defaults_target_the_embedded_emulator_on_loopback() -> None:
    settings = load_settings()
    assert settings.target == "local"
    assert settings.endpoint_url == "http://127.0.0.1:4566"
    assert settings.stack_name == "storeops"
    assert settings.local_home.name == ".localaws"


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREOPS_TARGET", "aws")
    monkeypatch.setenv("STOREOPS_REGION", "eu-west-1")
    monkeypatch.setenv("STOREOPS_STACK_NAME", "shop-prod")
    settings = load_settings()
    assert settings.target == "aws"
    assert settings.endpoint_url is None
    assert settings.region == "eu-west-1"
    assert settings.stack_name == "shop-prod"


def test_explicit_overrides_win_and_none_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREOPS_LOCAL_PORT", "4700")
    assert load_settings(local_port=None).local_port == 4700
    assert load_settings(local_port=4800).endpoint_url == "http://127.0.0.1:4800"


@pytest.mark.parametrize(
    ("env", "value", "needle"),
    [
        ("STOREOPS_TARGET", "azure", "STOREOPS_TARGET"),
        ("STOREOPS_STACK_NAME", "Bad_Name", "STOREOPS_STACK_NAME"),
        ("STOREOPS_STACK_NAME", "a" * 25, "STOREOPS_STACK_NAME"),
        ("STOREOPS_LOCAL_PORT", "80", "STOREOPS_LOCAL_PORT"),
        ("STOREOPS_REGION", "mars", "STOREOPS_REGION"),
    ],
)
def test_invalid_settings_fail_in_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    line = info.value.one_line()
    assert "\n" not in line
    assert needle in line
    assert value in line
    assert info.value.exit_code == 2


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError for frozen models
        settings.target = "aws"  # type: ignore[misc]


def test_the_longest_stack_name_keeps_bucket_names_within_63_characters() -> None:
    from deployments.stack import artifacts_bucket_name

    settings = load_settings(stack_name="s" * 24, region="ap-southeast-2")
    assert len(artifacts_bucket_name(settings, "123456789012")) <= 63
    assert len(f"{settings.stack_name}-lake-123456789012-{settings.region}") <= 63
