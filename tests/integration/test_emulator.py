"""The embedded emulator: loopback only, its launcher, and the fix it needs (ministack 1.5.33)."""

from __future__ import annotations

import os
import socket
from importlib.metadata import version
from pathlib import Path

import pytest

from deployments import emulator_fixes
from deployments.localaws import LocalAws
from deployments.processes import free_port
from storeops.exceptions import EmulatorError
from storeops.settings import load_settings
from tests.conftest import run_cli

pytestmark = pytest.mark.integration


def _listening_addresses(pid: int) -> set[str]:
    """Local addresses of the TCP sockets ``pid`` listens on (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A = LISTEN
                address_hex, port_hex = local.split(":")
                if len(address_hex) == 8:
                    address = socket.inet_ntoa(bytes.fromhex(address_hex)[::-1])
                else:
                    address = "::" if set(address_hex) == {"0"} else address_hex
                found.add(f"{address}:{int(port_hex, 16)}")
    return found


def test_emulator_listens_on_loopback_only(emulator: LocalAws) -> None:
    pid = emulator.pid()
    assert pid is not None
    addresses = _listening_addresses(pid)
    assert f"127.0.0.1:{emulator.port}" in addresses
    assert all(a.startswith("127.0.0.1:") for a in addresses), addresses


def test_status_and_idempotent_start(emulator: LocalAws) -> None:
    status = emulator.status()
    assert status.running
    again = emulator.start()
    assert again.pid == status.pid


def test_the_pinned_emulator_still_needs_the_athena_fix() -> None:
    """Fails loudly when ministack changes: re-check deployments/emulator_fixes.py then."""
    assert version("ministack") == emulator_fixes.PINNED_MINISTACK
    assert emulator_fixes.athena_result_location_bug_present(), (
        "ministack no longer builds the buggy Athena result location: remove the fix"
    )


def test_the_pinned_emulator_still_reads_every_partition() -> None:
    """Athena reads only the selected partitions; ministack copies every object under the location."""
    import inspect

    from ministack.services import athena

    source = inspect.getsource(athena._materialize_table_files)
    assert "Copy every object under the table LOCATION" in source, "ministack prunes now: remove the pruning fix"


def test_partition_pruning_selects_what_the_query_selects() -> None:
    query = (
        "with r as (select store_id from inventory where (dt > '2026-11-26' or (dt = '2026-11-26' and hour >= '22'))"
        " and (dt < '2026-11-27' or (dt = '2026-11-27' and hour <= '01')) and store_id <> 'x'),"
        " l as (select shortage_id from ledger where dt >= '2026-11-25'),"
        " a as (select store_id from inventory) select * from r, l"
    )
    keys = {"inventory": {"dt", "hour"}, "ledger": {"dt"}}
    predicates = emulator_fixes.partition_predicates(query, keys)
    assert predicates["inventory"] is None  # the third CTE reads every partition: so must the copy
    assert predicates["ledger"] == "((dt >= '2026-11-25'))"
    narrowed = emulator_fixes.partition_predicates(
        query.replace(" a as (select store_id from inventory)", " a as (select 1 as store_id)"), keys
    )
    objects = [f"inventory/dt=2026-11-{d}/hour={h:02d}/x.json.gz" for d in (25, 26, 27) for h in range(24)]
    selected = emulator_fixes._selected_keys(objects, "inventory/", narrowed["inventory"] or "")
    assert selected == [f"inventory/dt=2026-11-26/hour={h}/x.json.gz" for h in ("22", "23")] + [
        f"inventory/dt=2026-11-27/hour={h}/x.json.gz" for h in ("00", "01")
    ]
    assert emulator_fixes.partition_predicates("select * from inventory where store_id = 'S1'", keys) == {
        "inventory": None
    }


def test_an_outdated_fix_stops_the_server_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulator_fixes, "BUGGY_RESULT_LOCATION", "this text is not in ministack")
    with pytest.raises(emulator_fixes.EmulatorFixOutdated, match="remove this fix"):
        emulator_fixes.install_athena_result_location_fix()


def test_start_on_a_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        local = LocalAws(load_settings(local_port=port, local_home=tmp_path))
        with pytest.raises(EmulatorError) as info:
            local.start()
        assert f"port {port}" in info.value.one_line()
        assert "STOREOPS_LOCAL_PORT" in info.value.one_line()
        result = run_cli(
            ["-m", "deployments.localaws", "start"],
            env={"STOREOPS_LOCAL_PORT": str(port), "STOREOPS_LOCAL_HOME": str(tmp_path)},
        )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ministack.pid").exists()


def test_starts_that_race_start_one_emulator(tmp_path: Path) -> None:
    """Flows that find no emulator start it together (threads here, a CLI beside them): one emulator starts,
    its PID file names it, and one stop ends it (a loser's PID in the file once left the winner running)."""
    from concurrent.futures import ThreadPoolExecutor

    env = {"STOREOPS_LOCAL_PORT": str(free_port()), "STOREOPS_LOCAL_HOME": str(tmp_path)}
    local = LocalAws(load_settings(local_port=int(env["STOREOPS_LOCAL_PORT"]), local_home=tmp_path))
    try:
        with ThreadPoolExecutor(4) as pool:
            cli = pool.submit(run_cli, ["-m", "deployments.localaws", "start"], env)
            pids = {status.pid for status in pool.map(lambda _: local.start(), range(3))}
            assert cli.result().returncode == 0, cli.result().stderr
        assert pids == {local.pid()}
        assert local.log_file.read_text().count("Local AWS Service Emulator") == 1  # one banner: one start
    finally:
        assert local.stop()
    assert not local.healthy()


def test_a_start_does_not_take_its_child_before_exec_for_a_stranger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between fork and exec the child still shows the parent's command line, so ``pid()`` cannot tell it is
    the emulator; on a loaded machine the first health poll came then, and start gave up at once."""
    local = LocalAws(load_settings(local_port=free_port(), local_home=tmp_path))
    monkeypatch.setattr(LocalAws, "pid", lambda self: None)
    try:
        local.start()  # raised "did not answer" at once before
        assert local.healthy()
    finally:
        monkeypatch.undo()
        local.stop()


def test_cli_start_stop_status_cycle(tmp_path: Path) -> None:
    env = {"STOREOPS_LOCAL_PORT": str(free_port()), "STOREOPS_LOCAL_HOME": str(tmp_path)}
    started = run_cli(["-m", "deployments.localaws", "start", "--json"], env=env)
    try:
        assert started.returncode == 0, started.stderr
        assert '"running": true' in started.stdout.strip().splitlines()[-1]
        status = run_cli(["-m", "deployments.localaws", "status"], env=env)
        assert status.returncode == 0
        reset = run_cli(["-m", "deployments.localaws", "reset"], env=env)
        assert reset.returncode == 0, reset.stderr
        assert "wiped" in reset.stdout
        assert (tmp_path / "ministack.log").exists()
    finally:
        stopped = run_cli(["-m", "deployments.localaws", "stop", "--json"], env=env)
    assert stopped.returncode == 0
    assert '"running": false' in stopped.stdout.strip().splitlines()[-1]
    assert run_cli(["-m", "deployments.localaws", "status"], env=env).returncode == 1


def test_unknown_action_is_a_usage_error() -> None:
    result = run_cli(["-m", "deployments.localaws", "explode"])
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_the_pinned_emulator_still_makes_up_its_bytes_scanned() -> None:
    """ministack reports the result rows' length as DataScannedInBytes: the fix reports what was read."""
    assert emulator_fixes.athena_scanned_bytes_made_up(), "ministack reports real bytes now: remove the fix"
