"""Grading on a Dask cluster: each task grades one submission with the local pool's steps, and every
option the instructor gives (reuse, the sandbox, the limits, the data folder) reaches the workers.

One local cluster of two worker processes serves both runs, so the second also shows that a run's
options do not stay behind on a worker for the next run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from autograder.batch.local import grade_notebooks
from autograder.limits import Limits

SUBMISSIONS = Path(__file__).parent / "submissions"
ATTACKS = Path(__file__).parent / "attacks"
CHEAP = [SUBMISSIONS / "unfilled_stubs.ipynb", SUBMISSIONS / "not_json.ipynb"]
TRAINS = SUBMISSIONS / "ten_epochs_only.ipynb"


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      processes=True) as cluster:
        yield cluster


def graded_both_ways(notebooks, cluster, tmp_path, **options):
    """The same batch graded on this machine and on the cluster, with the same options."""
    here = grade_notebooks(notebooks, **options)
    remote = grade_notebooks(notebooks, scheduler=cluster.scheduler_address, results=tmp_path / "results", **options)
    differing = [(Path(r.submission).name, a.id, a.message, b.message)
                 for r, h in zip(remote, here) for a, b in zip(r.checks, h.checks) if a.to_json() != b.to_json()]
    assert [r.to_json() for r in remote] == [r.to_json() for r in here], differing  # (cluster, here) per check
    assert [r.notes for r in remote] == [r.notes for r in here]
    assert len(list((tmp_path / "results").glob("*.json"))) == len(notebooks)  # stored as each arrived
    return remote


@pytest.mark.slow
def test_a_cluster_trains_every_submission_without_reuse_and_keeps_the_limits(cluster, real_data_dir, tmp_path):
    twin = tmp_path / "ten_epochs_again.ipynb"  # the same training twice: with reuse, the second is replayed
    shutil.copy(TRAINS, twin)
    # The endless cell is stopped after 40 s, not the default's 120; a set-up cell (TensorFlow's
    # import) must fit well inside it on a busy machine, or the cheap notebooks time out too.
    limits = Limits(cell_seconds=40)
    notebooks = [*CHEAP, TRAINS, twin, ATTACKS / "loops_forever.ipynb"]
    remote = graded_both_ways(notebooks, cluster, tmp_path, data_dir=real_data_dir, reuse=False, limits=limits)
    assert [r.score for r in remote] == [0, 0, 90, 90, 0]
    assert [r.usage["trainings_run"] for r in remote[2:4]] == [2, 2]  # the short check of epochs, then the 10
    assert not any("training reused" in note for r in remote for note in r.notes)
    assert "ran longer than 40 s" in remote[4].checks[0].message
    assert all("sandbox_peak_memory_mib" in r.usage for r in remote if r.error is None)  # each ran in a sandbox


@pytest.mark.slow
def test_a_cluster_grades_unsandboxed_when_asked(cluster, real_data_dir, tmp_path):
    remote = graded_both_ways([*CHEAP, TRAINS], cluster, tmp_path, data_dir=real_data_dir, sandbox=False)
    assert [r.score for r in remote] == [0, 0, 90]
    assert not any("sandbox_peak_memory_mib" in r.usage for r in remote)  # no sandbox ran


def test_a_worker_holds_its_groups_to_its_share_of_its_host_and_of_what_dask_gives_it_and_says_so(monkeypatch):
    """Each thread of a Dask worker runs a sandbox and a trainer, and a host may run several workers: the
    groups of a host's workers at once fit its memory, less each worker's reserve, and fit what Dask gives
    each worker (which Dask divides only where threads do not outnumber the cores: 0 and "auto" gave two
    workers of two threads 5 GiB each of a 23.5 GiB machine, helper-81); the instructor is told."""
    from types import SimpleNamespace

    from autograder.batch.cluster import host_load, worker_limits, worker_memory_said
    from autograder.sandbox import slots

    gib = 2**30
    monkeypatch.setattr(slots, "cgroup_controllers", lambda: ["pids", "memory", "cpu"])
    monkeypatch.setattr(slots, "machine_memory_bytes", lambda: 64 * gib)

    def worker(address, threads, dask_limit=None):
        return SimpleNamespace(address=address, state=SimpleNamespace(nthreads=threads),
                               memory_manager=SimpleNamespace(memory_limit=dask_limit))

    dask_limit = slots.MACHINE_RESERVE_BYTES + 22 * gib
    held, said = worker_limits(Limits(), True, worker("tcp://a:1", 2, dask_limit))
    assert held.group_memory == int(5.5 * gib) and "5.5 GiB" in said  # four groups in 22 GiB, not in 64
    alone = worker("tcp://a:1", 1)
    assert worker_limits(Limits(), True, alone) == (Limits(), None)  # 64 GiB for two groups: the limit
    # Four workers of two threads on host a: 16 groups in 64 GiB less four reserves.
    scheduler = {"workers": {f"tcp://a:{n}": {"host": "a", "nthreads": 2} for n in range(4)}
                 | {"tcp://b:1": {"host": "b", "nthreads": 2}}}
    hosts = host_load(SimpleNamespace(scheduler_info=lambda: scheduler))
    assert hosts["tcp://a:1"] == (8, 4) and hosts["tcp://b:1"] == (2, 1)
    crowded, _ = worker_limits(Limits(), True, worker("tcp://a:1", 2), hosts)
    assert crowded.group_memory == slots.GROUP_FLOOR_BYTES  # (64 - 12) / 16 = 3.25 GiB: at the floor
    assert "grade with fewer workers" in worker_memory_said(True, Limits(), hosts, worker("tcp://a:1", 2))
    assert worker_memory_said(True, Limits(), hosts, worker("tcp://b:1", 2)) is None


def test_a_submission_stopped_at_its_worker_s_share_is_said_so_and_not_stored(tmp_path, monkeypatch):
    """A worker cannot wait for its host's other workers to grade one alone: it says so, and sends no facts,
    so the client does not store it and a rerun (on the instructor's machine, alone) grades it."""
    from types import SimpleNamespace

    import distributed

    import autograder.batch.cluster as cluster_module
    from autograder.errors import MemoryShareExceeded
    from autograder.judge.checks import CHECKS

    def stopped(path, batch, content):
        raise MemoryShareExceeded(path, 4 * 2**30)

    batch = SimpleNamespace(config=None, checks=CHECKS, sandbox=True)
    plugin = SimpleNamespace(batch=lambda: batch, notebooks=tmp_path, options={"limits": Limits()})
    monkeypatch.setattr(distributed, "get_worker", lambda: SimpleNamespace(plugins={"p": plugin}))
    monkeypatch.setattr(cluster_module, "grade_submission", stopped)
    payload = cluster_module.grade_task(b"{}", "/course/submitted/alice/a.ipynb", "p")
    assert payload["facts"] is None and "stopped at 4.0 GiB" in payload["report"]["error"]
