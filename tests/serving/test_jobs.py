"""Studio jobs under pressure: parallel requests, a queue, a restarted studio, and checked options.

The jobs here run the real `sparsefit train` child process on a catalog without an id column, so each
ends in about two seconds with a one-line error: no training, but real processes, files and exit codes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sparsefit.files import write_json
from sparsefit.serving.app import create_app
from sparsefit.serving.job_options import JobError
from sparsefit.serving.jobs import JobManager
from tests.helpers import together

# Every test here starts real `sparsefit train` child processes (studio jobs): the slow tier.
pytestmark = pytest.mark.slow


@pytest.fixture
def data(tmp_path) -> Path:
    """An allowed root with a catalog that `sparsefit train` refuses at once (no id column)."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "bad.csv").write_text("foo,bar\n1,2\n")
    return folder


@pytest.fixture
def workspace(tmp_path):
    """The studio workspace; every job process still alive at the end is killed."""
    ws = tmp_path / "ws"
    yield ws
    for file in (ws / "jobs").glob("*.json"):
        job = json.loads(file.read_text())
        pid = job.get("pid")
        if pid and pid != os.getpid() and _start_ticks(pid) == job.get("pid_start"):  # only our own children
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat, read here independently of the code under test."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2:].split()[19])


def _wait(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.time() + timeout
    while not (value := predicate()):
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def _drain(manager: JobManager) -> None:
    """Cancel queued jobs so that no background thread starts them after the test."""
    for job in manager.list():
        if job["status"] == "queued":
            manager.cancel(job["id"])


# -- item 5: races and the queue ------------------------------------------------------------------
def test_parallel_requests_for_one_name_get_one_201_and_the_rest_409(data, workspace):
    app = create_app([], workspace=workspace, allowed_roots=[data])
    with TestClient(app, base_url="http://127.0.0.1") as c:
        responses = together(8, lambda _: c.post("/api/jobs", json={"catalog": str(data / "bad.csv"), "name": "same"}))
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] + [409] * 7, [r.text for r in responses]
        for r in responses:
            if r.status_code == 409:
                detail = r.json()["detail"]
                assert "'same'" in detail and "exists already" in detail and "\n" not in detail
        assert len(list((workspace / "jobs").glob("*.json"))) == 1  # one job wrote into runs/same
        again = c.post("/api/jobs", json={"catalog": str(data / "bad.csv"), "name": "same"})
        assert again.status_code == 409


def test_unnamed_jobs_started_together_get_distinct_run_folders(data, workspace):
    manager = JobManager(workspace, max_running=1)
    try:
        jobs = together(6, lambda _: manager.start(catalog=data / "bad.csv", judgments=None, name=None, options={}))
        assert not [j for j in jobs if isinstance(j, Exception)], jobs
        names = [j["run"] for j in jobs]
        assert len(set(names)) == 6, names
        assert all(re.fullmatch(r"run-\d{8}-\d{6}-[0-9a-f]{4}", n) for n in names), names
        assert all((workspace / "runs" / n).is_dir() for n in names)  # each reserved before any process ran
        assert sorted(j["status"] for j in jobs) == ["queued"] * 5 + ["running"]
    finally:
        _drain(manager)


def test_with_one_slot_a_second_job_waits_queued_and_starts_when_the_first_ends(data, workspace):
    manager = JobManager(workspace, max_running=1, poll_seconds=0.2)
    try:
        first = manager.start(catalog=data / "bad.csv", judgments=None, name="first", options={})
        second = manager.start(catalog=data / "bad.csv", judgments=None, name="second", options={})
        third = manager.start(catalog=data / "bad.csv", judgments=None, name="third", options={})
        assert first["status"] == "running" and first["pid"]
        assert second["status"] == "queued" and second["pid"] is None
        assert third["status"] == "queued"

        dropped = manager.cancel(third["id"])
        assert dropped["status"] == "cancelled" and dropped["pid"] is None
        assert not (workspace / "runs" / "third").exists()  # the reserved name is free again

        # Nobody lists or gets jobs now: the background thread alone must notice the end and start the next one.
        record = workspace / "jobs" / f"{second['id']}.json"
        started = _wait(lambda: (job := json.loads(record.read_text()))["status"] != "queued" and job, what="second job to start")
        ended_first = json.loads((workspace / "jobs" / f"{first['id']}.json").read_text())
        assert ended_first["status"] == "failed" and ended_first["returncode"] == 2
        assert "no id column" in ended_first["reason"]
        assert started["pid"] and started["started"] >= ended_first["finished"]

        second = _wait(lambda: (job := manager.get(second["id"]))["status"] != "running" and job, what="second job to end")
        assert second["status"] == "failed" and second["returncode"] == 2
        assert manager.get(third["id"])["status"] == "cancelled" and manager.get(third["id"])["pid"] is None
        assert any("no id column" in line for line in manager.log(second["id"]))
    finally:
        _drain(manager)


# -- item 6: a restarted studio ------------------------------------------------------------------
def test_a_restarted_studio_takes_job_status_from_the_run_and_the_real_process(data, workspace):
    before = JobManager(workspace, max_running=2)
    exported = before.start(catalog=data / "bad.csv", judgments=None, name="exported", options={})
    vanished = before.start(catalog=data / "bad.csv", judgments=None, name="vanished", options={})
    for job in (exported, vanished):
        os.waitpid(job["pid"], 0)  # the processes end while "the studio is down" (reaped: the pids are gone)
    # `exported` finished its run while nobody watched: its state says so.
    write_json(workspace / "runs" / "exported" / "state.json", {"done": ["split", "baselines", "round-0/train", "export"]})
    record = json.loads((workspace / "jobs" / f"{vanished['id']}.json").read_text())
    assert record["status"] == "running" and record["pid_start"] is not None  # as the earlier studio left it

    # A job whose pid was reused: alive, but it is this test process, started at another time.
    stranger = {**record, "id": "aaaaaaaaa1", "run": "stranger", "pid": os.getpid(), "pid_start": _start_ticks(os.getpid()) + 1}
    write_json(workspace / "jobs" / "aaaaaaaaa1.json", stranger)
    # A job whose process was stopped like Ctrl-C: its log ends with the CLI's line.
    stopped = {**record, "id": "aaaaaaaaa2", "run": "stopped"}
    write_json(workspace / "jobs" / "aaaaaaaaa2.json", stopped)
    (workspace / "jobs" / "aaaaaaaaa2.log").write_text("round 0 …\nStopped. Finished stages are kept; continue with: "
                                                       "sparsefit train --resume runs/stopped\n")
    # A job that really still runs (started by the earlier studio, in its own process group).
    # (It handles SIGINT as a job does, also where this test runs with SIGINT ignored: a background CI job.)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        alive = {**record, "id": "aaaaaaaaa3", "run": "alive", "pid": child.pid, "pid_start": _start_ticks(child.pid)}
        write_json(workspace / "jobs" / "aaaaaaaaa3.json", alive)
        # Job files from before start times were kept: only the wall clock of the start tells the process apart.
        old_stranger = {**record, "id": "aaaaaaaaa4", "run": "old-stranger", "pid": os.getpid(), "pid_start": None,
                        "started": time.time()}  # this process started long before "now"
        write_json(workspace / "jobs" / "aaaaaaaaa4.json", old_stranger)
        old_alive = {**record, "id": "aaaaaaaaa5", "run": "old-alive", "pid": child.pid, "pid_start": None,
                     "started": time.time()}
        write_json(workspace / "jobs" / "aaaaaaaaa5.json", old_alive)

        after = JobManager(workspace)  # the restarted studio
        states = {job["run"]: job for job in after.list()}
        assert states["exported"]["status"] == "finished" and states["exported"]["returncode"] is None
        assert states["vanished"]["status"] == "failed" and states["vanished"]["returncode"] is None  # not a made-up -1
        assert "unknown" in states["vanished"]["reason"] and "no id column" in states["vanished"]["reason"]
        assert states["stranger"]["status"] != "running"
        assert states["stopped"]["status"] == "cancelled" and states["stopped"]["returncode"] is None
        assert states["alive"]["status"] == "running"
        assert states["old-stranger"]["status"] != "running" and states["old-alive"]["status"] == "running"

        assert after.cancel("aaaaaaaaa1")["status"] != "running"  # never signals the process that reused the pid
        after.cancel("aaaaaaaaa3")  # SIGINT to the live job's group
        child.wait(10)
        assert after.get("aaaaaaaaa3")["status"] == "cancelled"
        on_disk = json.loads((workspace / "jobs" / f"{exported['id']}.json").read_text())
        assert on_disk["status"] == "finished"  # saved, not only reported
    finally:
        child.kill()
        child.wait()


# -- item 9: checked options -----------------------------------------------------------------------
def test_job_options_are_checked_before_any_job_exists(data, workspace, tmp_path):
    outside = tmp_path / "outside-model"
    outside.mkdir()
    (data / "escape").symlink_to(outside)
    (data / "models" / "mine").mkdir(parents=True)
    app = create_app([], workspace=workspace, allowed_roots=[data])
    catalog = str(data / "bad.csv")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        def post(options):
            return c.post("/api/jobs", json={"catalog": catalog, "judgments": None, "name": None, "options": options})

        refused = [
            ({"seed": "1 --rounds 5"}, (400, 422), "seed"),
            ({"rounds": 0}, (400, 422), "rounds"),
            ({"rounds": 21}, (400, 422), "rounds"),
            ({"rounds": True}, (400, 422), "rounds"),
            ({"negatives": 0}, (400, 422), "negatives"),
            ({"train_batch_size": 1}, (400, 422), "train_batch_size"),
            ({"epochs": 0}, (400, 422), "epochs"),
            ({"mining_epochs": 1000}, (400, 422), "mining_epochs"),
            ({"queries_per_product": 2.5}, (400, 422), "queries_per_product"),
            ({"learning_rate": 0}, (400, 422), "learning_rate"),
            ({"learning_rate": "fast"}, (400, 422), "learning_rate"),
            ({"architecture": "dense"}, (400, 422), "architecture"),
            ({"rm": "-rf"}, (400,), "unknown training option 'rm'"),
            ({"base_model": "/etc"}, (403,), "base_model"),
            ({"base_model": str(data / "escape")}, (403,), "outside the folders the studio may read"),  # a symlink out of the root
            ({"base_model": "../outside-model"}, (403,), "outside the folders the studio may read"),
            ({"base_model": "some-org/some-model"}, (400,), "base_model"),
            ({"base_model": catalog}, (400,), "not a model folder"),
        ]
        for options, codes, named in refused:
            response = post(options)
            assert response.status_code in codes, (options, response.status_code, response.text)
            detail = response.json()["detail"]
            assert named in detail and "\n" not in detail, (options, detail)
        assert not list((workspace / "jobs").glob("*.json")), "a refused request wrote a job"
        assert not list((workspace / "runs").iterdir()), "a refused request reserved a run folder"

        # What the page sends: numbers, the alias, and null for a field it could not read.
        page = post({"rounds": 1, "base_model": "splade-tiny", "seed": None, "epochs": "", "learning_rate": 0.0005,
                     "architecture": "inference-free"})
        assert page.status_code == 201, page.text
        assert page.json()["options"] == {"rounds": 1, "base_model": "splade-tiny", "learning_rate": 0.0005,
                                          "architecture": "inference-free"}
        argv = JobManager(workspace)._argv(page.json())  # what the child process is started with
        assert argv[argv.index("--learning-rate") + 1] == "0.0005" and argv[argv.index("--architecture") + 1] == "inference-free"
        folder = post({"base_model": "models/mine", "seed": 7})  # a folder under the root, given relative to it
        assert folder.status_code == 201, folder.text
        assert folder.json()["options"] == {"base_model": str((data / "models" / "mine").resolve()), "seed": 7}
        assert folder.json()["status"] == "queued"  # one slot: it waits for the first
        c.post(f"/api/jobs/{folder.json()['id']}/cancel")

    with pytest.raises(JobError, match="unknown training option"):  # the manager checks too, whoever calls it
        JobManager(workspace).start(catalog=data / "bad.csv", judgments=None, name=None, options={"rm": "-rf"})


# -- one-click resume ---------------------------------------------------------------------------------
def test_a_cancelled_job_resumes_where_it_stopped_and_finishes(tiny_model, workspace):
    """A real training job on the demo catalog, cancelled (like Ctrl-C) once its inputs are loaded, continues
    with `sparsefit train --resume` through POST /api/jobs/{id}/resume: the same job, its log going on."""
    from tests.conftest import EXAMPLES

    app = create_app(workspace=workspace, allowed_roots=[EXAMPLES, tiny_model.parent])
    with TestClient(app, base_url="http://127.0.0.1") as client:
        started = client.post("/api/jobs", json={
            "catalog": str(EXAMPLES / "catalog.csv"), "judgments": str(EXAMPLES / "judged_queries.csv"), "name": "r1",
            "options": {"base_model": str(tiny_model), "rounds": 1, "train_batch_size": 16}})
        assert started.status_code == 201, started.text
        job_id = started.json()["id"]
        state = workspace / "runs" / "r1" / "state.json"
        _wait(lambda: state.is_file() and "inputs" in json.loads(state.read_text())["done"], 120, "the inputs stage")
        refused = client.post(f"/api/jobs/{job_id}/resume")
        assert refused.status_code == 409 and "only a cancelled or failed job resumes" in refused.json()["detail"]
        client.post(f"/api/jobs/{job_id}/cancel")
        _wait(lambda: client.get(f"/api/jobs/{job_id}").json()["status"] == "cancelled", 60, "the cancel")
        assert not (workspace / "runs" / "r1" / "model").exists()
        resumed = client.post(f"/api/jobs/{job_id}/resume")
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["status"] in ("queued", "running")
        final = _wait(lambda: (j := client.get(f"/api/jobs/{job_id}").json())["status"] not in ("queued", "running") and j,
                      300, "the resumed run")
        assert final["status"] == "finished", final
        assert "inputs" in json.loads(state.read_text())["done"] and (workspace / "runs" / "r1" / "model").is_dir()
        log = "\n".join(final["log"]) + (workspace / "jobs" / f"{job_id}.log").read_text()
        assert "--- resumed" in log
        assert client.post(f"/api/jobs/{job_id}/resume").status_code == 409  # finished: nothing to resume
        assert client.post("/api/jobs/0123456789/resume").status_code == 404


def test_a_job_cancelled_before_its_run_started_has_nothing_to_resume(data, workspace):
    manager = JobManager(workspace, max_running=1)
    first = manager.start(catalog=data / "bad.csv", judgments=None, name="first", options={})
    waiting = manager.start(catalog=data / "bad.csv", judgments=None, name="waiting", options={})
    assert waiting["status"] == "queued", (first["status"], waiting["status"])
    manager.cancel(waiting["id"])
    with pytest.raises(JobError) as refused:
        manager.resume(waiting["id"])
    assert refused.value.status == 409 and "nothing to resume" in str(refused.value)
    _drain(manager)
