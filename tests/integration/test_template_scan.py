"""checkov over both templates: no failed check, every skip with its reason in the template.

Not a unit test: the first run installs the pinned checkov from the package registry into an
environment of its own (``.localaws/tools/``; checkov pins a boto3 the project cannot share).
"""

from __future__ import annotations

from deployments.template_scan import FLOWS_TEMPLATE_PATH, TEMPLATE_PATH, scan_all
from storeops.settings import load_settings


def test_checkov_finds_nothing_that_is_not_fixed_or_skipped_with_a_reason() -> None:
    results = scan_all(load_settings().local_home / "tools")
    assert set(results) == {TEMPLATE_PATH.name, FLOWS_TEMPLATE_PATH.name}
    for name, result in results.items():
        assert result.failed == [], (name, result.failed)
        assert result.skipped, name
        assert all(finding.get("reason") for finding in result.skipped), (name, result.skipped)
    assert results[TEMPLATE_PATH.name].passed >= 30
    assert results[FLOWS_TEMPLATE_PATH.name].passed >= 30
