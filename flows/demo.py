"""``python -m flows.demo``: the demo lives in ``deployments/demo.py`` (it sets the environment up, then runs flows)."""

if __name__ == "__main__":
    from deployments.demo import main
    from storeops.cli import run_cli

    run_cli(main)
