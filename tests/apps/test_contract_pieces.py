"""The engine contract's pieces on their own: status bodies, SMPC sums, app folders, isolation."""

from __future__ import annotations

import json

import pytest

from fcapi.emulator.engine import process, smpc
from fcapi.emulator.engine.folders import AppFolder, load_folders, parse_spec, write_folders
from fcapi.emulator.engine.status import StatusError, parse_status
from tests.apps.engine_apps import MEAN


def test_a_status_with_nulls_reads_as_the_engine_means_it():
    body = {
        "available": False,
        "finished": None,
        "message": None,
        "progress": None,
        "state": None,
        "destination": None,
        "smpc": None,
        "dp": None,
        "memo": None,
    }
    st = parse_status(json.dumps(body))
    assert (st.available, st.finished, st.state, st.memo) == (False, False, None, None)
    assert st.wire_memo == "None"


def test_a_queued_status_served_as_a_json_string_is_read_whatever_its_type():
    status = {"available": True, "finished": False, "memo": "GATHERROUND1", "destination": "2"}
    text = json.dumps(status, sort_keys=True)  # what bottle serves as text/html
    assert parse_status(text).memo == "GATHERROUND1"
    # a JSON string holding the status (encoded twice) is read too
    st = parse_status(json.dumps(text))
    assert (st.available, st.destination, st.wire_memo) == (True, "2", "GATHERROUND1")
    smpc_status = parse_status(json.dumps({"available": True, "smpc": {"operation": "add"}}))
    assert smpc_status.smpc == {"operation": "add"}


@pytest.mark.parametrize("text", ["<html>oops</html>", "[1, 2]", '{"available": "maybe"}'])
def test_a_body_that_is_no_status_is_one_line(text):
    with pytest.raises(StatusError) as info:
        parse_status(text)
    assert "the app's status" in str(info.value) and "\n" not in str(info.value)


def test_smpc_pieces_are_summed_in_client_order_into_one_package():
    agg = smpc.Aggregator(["a", "b", "c"])
    assert agg.add("M", "b", b"[2, 20]", "add") is None
    assert agg.add("M", "a", b"[1, 10]", "add") is None
    assert json.loads(agg.add("M", "c", b"[3, 30]", "add") or b"") == [6, 60]
    assert agg.pieces == {}
    wrapped = smpc.envelope(b"[1]", "multiply")
    assert smpc.opened(wrapped) == (b"[1]", "multiply")
    assert smpc.opened(b"\x80pickle") is None
    with pytest.raises(ValueError, match="different lengths"):
        smpc.combine([1], [1, 2], "add")


def test_app_folders_register_by_slug_and_id(tmp_path):
    folder = parse_spec(f"my-mean=4242:{MEAN}")
    assert folder == AppFolder("my-mean", 4242, MEAN)
    write_folders(tmp_path, [folder])
    assert load_folders(tmp_path) == {"my-mean": folder}
    assert parse_spec("my-mean=4242").path.name == ""  # the website needs no folder
    with pytest.raises(ValueError, match="expected SLUG=ID:DIR"):
        parse_spec("my-mean:apps/mean")
    with pytest.raises(ValueError, match=r"has no main\.py"):
        parse_spec(f"x=1:{tmp_path}")


def test_without_namespaces_an_engine_app_is_refused_in_one_line(monkeypatch, tmp_path):
    """The fallback where no namespace can be made: the step fails saying what to change,
    rather than run the app against the host's own /mnt/input."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no unshare on it
    with pytest.raises(process.AppStartError) as info:
        process.namespace_command()
    message = str(info.value)
    assert "cannot be made here: the unshare command (util-linux) is not installed" in message
    assert "unprivileged user namespaces" in message
    monkeypatch.setenv(process.ISOLATION_ENV, "docker")
    with pytest.raises(process.AppStartError, match="expected one of"):
        process.namespace_command()
