# The storeops flows' image: the flow runs an ECS work pool starts, and the Prefect ECS worker itself
# (deployments/flows_template.yaml runs `prefect worker start --type ecs` from it).
#
#   docker build --platform linux/amd64 -t storeops-flows .
#
# prefect.yaml's ECS deployments build and push it to the flows stack's ECR repository (README
# "Flows on ECS"). The project is installed the way the README installs it (`pip install -e`), with the
# `aws` extra (prefect-aws, for the worker) and without `local` (no emulator): the flows read
# STOREOPS_TARGET=aws, STOREOPS_REGION and STOREOPS_STACK_NAME from the job's environment. Editable, so
# the project's `sql/` stays beside the code, where storeops.settings.project_root() finds it, and
# WORKDIR is that folder, so the deployments' entrypoints (flows/plan.py:plan, ...) resolve.
# No credentials in the image: the ECS task role, and the Prefect API key from Secrets Manager.

# The official slim Python image, pinned by tag (the Lambda runs Python 3.12 too).
FROM python:3.12.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STOREOPS_TARGET=aws \
    STOREOPS_LOCAL_HOME=/home/storeops/.localaws \
    PREFECT_HOME=/home/storeops/.prefect

RUN groupadd --system --gid 10001 storeops \
    && useradd --system --uid 10001 --gid storeops --create-home --home-dir /home/storeops storeops

WORKDIR /opt/storeops

# What pip needs to install the project (pyproject.toml names README.md), then the code; .dockerignore
# keeps everything else (tests, benchmarks, .venv, .localaws, .git) out of the context.
COPY pyproject.toml README.md prefect.toml ./
COPY storeops/ storeops/
COPY flows/ flows/
COPY tasks/ tasks/
COPY deployments/ deployments/
COPY sql/ sql/
RUN pip install -e ".[aws]" \
    && python -c "import flows.plan, flows.rollup, flows.forecast, flows.trucks, flows.replay_dlq, prefect_aws"

USER storeops:storeops

# A flow run's command comes from the ECS worker (`prefect flow-run execute`); the worker service sets
# its own. This default only says what the image holds.
CMD ["prefect", "version"]
