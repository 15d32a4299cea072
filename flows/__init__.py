"""Prefect flows: they only orchestrate tasks; each module is also a CLI (`python -m flows.X`)."""
