"""The ``scenario`` deployment's flow: ``flows/scenario.py::scenario`` with its environment set-up as a hook.

A scenario runs on a fresh stack of its own (``set_up_scenario``), which a flow never deploys; a CLI or a
benchmark makes it before calling the flow. A run started from Prefect (the UI, ``prefect deployment run``)
has no such caller: the hook makes the stack when the run enters Running, before the flow's body. If it
fails, the body finds no stack and fails with a one-line error naming the fix.
"""

from __future__ import annotations

from typing import Any

from deployments.environment import set_up_scenario
from flows.scenario import scenario as scenario_flow
from storeops.settings import load_settings


def _fresh_stack(flow: Any, flow_run: Any, state: Any) -> None:
    set_up_scenario(load_settings(), str((flow_run.parameters or {}).get("policy", "storeops")))


scenario = scenario_flow.with_options(on_running=[_fresh_stack])
