from __future__ import annotations

import pytest

from storeops.aws import AwsClients, botocore_config
from storeops.exceptions import ConfigurationError
from storeops.settings import load_settings


def test_local_clients_use_the_emulator_endpoint_and_dummy_credentials() -> None:
    clients = AwsClients.from_settings(load_settings(target="local", local_port=4777))
    sqs = clients.client("sqs")
    assert sqs.meta.endpoint_url == "http://127.0.0.1:4777"
    assert sqs.meta.region_name == "us-east-1"
    assert clients.session.get_credentials().access_key == "test"


def test_clients_are_built_once_per_service() -> None:
    clients = AwsClients.from_settings(load_settings())
    assert clients.client("s3") is clients.client("s3")
    assert clients.client("s3") is not clients.client("sqs")


def test_config_applies_standard_retries_and_timeouts() -> None:
    settings = load_settings(max_attempts=4, connect_timeout=2, read_timeout=30)
    config = botocore_config(settings)
    assert config.retries == {"mode": "standard", "max_attempts": 4}
    assert config.connect_timeout == 2
    assert config.read_timeout == 30
    client = AwsClients.from_settings(settings).client("firehose")
    assert client.meta.config.retries["mode"] == "standard"
    assert client.meta.config.read_timeout == 30


def test_aws_target_uses_aws_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    clients = AwsClients.from_settings(load_settings(target="aws", region="eu-west-1"))
    assert clients.endpoint_url is None
    assert clients.client("sqs").meta.endpoint_url.startswith("https://")


def test_aws_target_without_credentials_fails_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clients = AwsClients.from_settings(load_settings(target="aws"))
    with pytest.raises(ConfigurationError) as info:
        clients.check_credentials()
    assert "no usable AWS credentials" in info.value.one_line()
    assert info.value.exit_code == 2


def test_unknown_profile_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(ConfigurationError) as info:
        AwsClients.from_settings(load_settings(target="aws", aws_profile="nope"))
    assert "STOREOPS_AWS_PROFILE" in info.value.one_line()


def test_awswrangler_is_pointed_at_the_same_endpoint() -> None:
    import awswrangler as wr

    clients = AwsClients.from_settings(load_settings(local_port=4778))
    clients.configure_awswrangler()
    try:
        assert wr.config.athena_endpoint_url == "http://127.0.0.1:4778"
        assert wr.config.s3_endpoint_url == "http://127.0.0.1:4778"
        assert wr.config.botocore_config is clients.config
    finally:
        AwsClients.from_settings(load_settings(target="aws")).configure_awswrangler()
