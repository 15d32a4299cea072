"""checkov over the template: no failed check, every skip with its reason in the template.

Not a unit test: the first run installs the pinned checkov from the package registry into an
environment of its own (``.localaws/tools/``; checkov pins a boto3 the project cannot share).
"""

from __future__ import annotations

from deployments.template_scan import scan
from storeops.settings import load_settings


def test_checkov_finds_nothing_that_is_not_fixed_or_skipped_with_a_reason() -> None:
    result = scan(load_settings().local_home / "tools")
    assert result.failed == [], result.failed
    assert result.passed >= 30
    assert result.skipped
    assert all(finding.get("reason") for finding in result.skipped), result.skipped
