"""Thin Prefect tasks over the plain functions of ``storeops``: retries, logging, artifacts."""
