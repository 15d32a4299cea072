"""Entry point of the emulator process: install the fixes, then run ministack.

Started by ``deployments.localaws`` as ``python -m deployments.emulator_server`` with
``BIND_HOST=127.0.0.1``; not meant to be run by hand.
"""

from __future__ import annotations

import sys

from deployments.emulator_fixes import EmulatorFixOutdated, install_all


def main() -> None:
    try:
        install_all()
    except EmulatorFixOutdated as exc:
        print(f"emulator fix outdated: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
    sys.argv = ["ministack"]
    from ministack.app import main as ministack_main

    ministack_main()


if __name__ == "__main__":
    main()
