"""Parsing a resource sample: real /proc text, captured on a Linux host with the sample's own line.

proc_samples/sample_a.txt and sample_b.txt are the output of `procstats.sample_command` one
second apart (the pid section of a process named `odd) name`, whose name holds a parenthesis
and a space); python_stat_t1/t2.txt are a busy python's `/proc/self/stat` 0.6 s apart.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from runner.engine import procstats
from runner.engine.procstats import (
    Counters,
    SampleError,
    parse_sample,
    parse_samples,
    reading,
    sample_command,
)
from runner.sites.shell import emulator_pid_file

HERE = Path(__file__).parent / "proc_samples"
SAMPLE_A = (HERE / "sample_a.txt").read_text()
SAMPLE_B = (HERE / "sample_b.txt").read_text()
PYTHON_T1 = (HERE / "python_stat_t1.txt").read_text().strip()
PYTHON_T2 = (HERE / "python_stat_t2.txt").read_text().strip()

#: the format `docker stats --no-stream --format '{{json .}}'` prints (no daemon to capture here)
DOCKER = (
    '{"BlockIO":"0B / 0B","CPUPerc":"12.50%","Container":"fc-controller","ID":"4f1c",'
    '"MemPerc":"0.08%","MemUsage":"512MiB / 1.944GiB","Name":"fc-controller",'
    '"NetIO":"1.05kB / 0B","PIDs":"3"}'
)


def with_process(sample: str, stat: str, rss_kib: int) -> str:
    return sample.split("@pid")[0] + f"@pid\n{stat}\n{rss_kib}\n"


def test_host_counters_from_real_proc_text() -> None:
    c = parse_sample(SAMPLE_A)
    assert c.uptime == 15344.70
    assert (c.cpu_total, c.cpu_idle, c.cpus) == (3062167, 1404092 + 9785, 2)
    assert (c.mem_total_kib, c.mem_available_kib) == (24684084, 21614128)
    assert c.disk_free_kib == 65831188
    # loopback is left out: only eth0 (and two idle ifb) count
    assert (c.net_rx_bytes, c.net_tx_bytes) == (3845664867, 7334246)


def test_process_whose_name_holds_a_parenthesis_and_spaces() -> None:
    c = parse_sample(SAMPLE_A).controller
    assert c is not None and c.kind == "process"
    assert (c.pid, c.ticks, c.rss_kib) == (5370, 0, 1808)


def test_rates_between_two_samples() -> None:
    before = parse_sample(with_process(SAMPLE_A, PYTHON_T1, 13540))
    now = parse_sample(with_process(SAMPLE_B, PYTHON_T2, 13540))
    r = reading(before, now)
    # 198 ticks passed on the host, 87 of them idle; the python used 38 of them
    assert r.cpu_pct == pytest.approx(100 * (198 - 87) / 198)
    assert r.controller_cpu_pct == pytest.approx(100 * 38 / 198)
    assert r.controller_rss_mib == pytest.approx(13540 / 1024)
    assert r.mem_used_mib == pytest.approx((24684084 - 21597396) / 1024)
    assert r.mem_total_mib == pytest.approx(24684084 / 1024)
    assert r.disk_free_mib == pytest.approx(65831184 / 1024)
    # lo moved 9880 bytes, eth0 nothing: no traffic off the host
    assert (r.net_rx_kib_s, r.net_tx_kib_s) == (0.0, 0.0)


def test_first_sample_has_no_rates() -> None:
    r = reading(None, parse_sample(SAMPLE_A))
    assert r.cpu_pct is None and r.net_rx_kib_s is None and r.controller_cpu_pct is None
    assert r.controller_rss_mib == pytest.approx(1808 / 1024)


def test_a_new_controller_process_is_not_compared_with_the_old_one() -> None:
    before = parse_sample(with_process(SAMPLE_A, PYTHON_T1, 1))
    now = parse_sample(with_process(SAMPLE_B, PYTHON_T2.replace("5549 ", "6001 ", 1), 1))
    assert reading(before, now).controller_cpu_pct is None


def test_container_share_is_of_the_whole_host() -> None:
    c = parse_sample(SAMPLE_A.split("@pid")[0] + "@docker\n" + DOCKER + "\n")
    assert c.controller is not None and c.controller.kind == "container"
    r = reading(None, c)
    assert r.controller_cpu_pct == pytest.approx(12.5 / 2)  # two cores
    assert r.controller_rss_mib == pytest.approx(512)


def test_no_controller_found() -> None:
    c = parse_sample(SAMPLE_A.split("@pid")[0] + "@docker\n")
    assert c.controller is None
    assert reading(None, c).controller_rss_mib is None


@pytest.mark.parametrize("amount, mib", [("1.5GiB", 1536), ("2048KiB", 2), ("1GB", 953.674)])
def test_docker_sizes(amount: str, mib: float) -> None:
    assert procstats.mebibytes(amount) == pytest.approx(mib, rel=1e-4)


@pytest.mark.parametrize("section", ["uptime", "cpu", "mem", "net", "df"])
def test_a_missing_section_is_a_sample_error(section: str) -> None:
    broken = SAMPLE_A.replace(f"@{section}\n", "@ignored\n")
    with pytest.raises(SampleError, match=section):
        parse_sample(broken)


def test_garbage_is_a_sample_error() -> None:
    with pytest.raises(SampleError):
        parse_sample(SAMPLE_A.replace("MemAvailable: 21614128", "MemAvailable: lots"))


def sample_here(targets: list[tuple[str, str]]) -> str:
    return subprocess.run(
        ["sh", "-c", sample_command(targets)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


def test_the_command_runs_under_sh_here() -> None:
    """The line works under this machine's sh and yields a parseable sample."""
    targets = [("/nonexistent/data", "fc-controller")]
    (c,) = parse_samples(sample_here(targets), targets)
    assert isinstance(c, Counters)
    assert c.mem_total_kib > 0 and c.cpus >= 1 and c.disk_free_kib > 0


def test_sites_on_one_host_share_its_counters_and_keep_their_own(tmp_path: Path) -> None:
    """One line for a host's sites: the host read once and one df for all, each site its own
    disk and controller (this test's own process stands in for site b's controller; site c's
    data dir does not exist yet, so its disk is the root's)."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    pid_file = Path(emulator_pid_file(str(b), "fc-b"))
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    targets = [(str(a), "fc-a"), (str(b), "fc-b"), ("/nonexistent/c", "fc-c")]
    out = sample_here(targets)
    assert out.count("@uptime") == 1 and out.count("@@df") == 1
    site_a, site_b, site_c = parse_samples(out, targets)
    assert isinstance(site_a, Counters) and isinstance(site_b, Counters)
    assert isinstance(site_c, Counters)
    assert site_a.uptime == site_b.uptime == site_c.uptime
    assert site_a.controller is None
    assert site_b.controller is not None and site_b.controller.pid == os.getpid()
    root = os.statvfs("/")
    assert site_c.disk_free_kib == pytest.approx(root.f_bavail * root.f_frsize / 1024, rel=0.05)


def test_a_host_sample_with_a_missing_site_part_or_df_row_is_a_miss() -> None:
    """A site whose part is missing misses alone; a df that answered for fewer data dirs than
    it was asked about cannot say whose row is whose, so every site of the host misses."""
    targets = [("/a", "fc-a"), ("/b", "fc-b")]
    host = SAMPLE_A.split("@df")[0]
    df_root = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/x 10 5 5 50% /"
    text = f"{host}@@0\n@@disks\n@@df\n{df_root}\n@@docker\n"
    first, second = parse_samples(text, targets)
    assert isinstance(first, Counters) and first.disk_free_kib == 5
    assert isinstance(second, SampleError) and "no output for this site" in str(second)
    short = f"{host}@@0\n@@1\n@@disks\n0\n1\n@@df\n{df_root}\n/dev/x 9 4 4 50% /a\n@@docker\n"
    assert all(
        isinstance(r, SampleError) and "df answered 1 of 2" in str(r)
        for r in parse_samples(short, targets)
    )


def test_containers_are_matched_to_their_sites_by_name() -> None:
    """One `docker stats` for the host's controllers without a process, each by its name."""
    targets = [("/a", "fc-a"), ("/b", "fc-b")]
    host = SAMPLE_A.split("@df")[0]
    df = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/x 10 5 5 50% /"
    b_stats = DOCKER.replace("fc-controller", "fc-b").replace("12.50%", "40.00%")
    text = f"{host}@@0\n@@1\n@@disks\n@@df\n{df}\n@@docker\n{b_stats}\n"
    first, second = parse_samples(text, targets)
    assert isinstance(first, Counters) and first.controller is None
    assert isinstance(second, Counters) and second.controller is not None
    assert second.controller.container_cpu_pct == 40.0
