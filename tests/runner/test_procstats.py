"""Parsing a resource sample: real /proc text, captured on a Linux host with the sample's own line.

proc_samples/sample_a.txt and sample_b.txt are the output of `procstats.sample_command` one
second apart (the pid section of a process named `odd) name`, whose name holds a parenthesis
and a space); python_stat_t1/t2.txt are a busy python's `/proc/self/stat` 0.6 s apart.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runner.engine import procstats
from runner.engine.procstats import SampleError, parse_sample, reading, sample_command

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


def test_the_command_runs_under_sh_here() -> None:
    """The line works under this machine's sh and yields a parseable sample."""
    out = subprocess.run(
        ["sh", "-c", sample_command("/nonexistent/data", "fc-controller")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    c = parse_sample(out)
    assert c.mem_total_kib > 0 and c.cpus >= 1 and c.disk_free_kib > 0
