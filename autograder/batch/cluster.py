"""Grading on a Dask cluster: one submission per task, with the same steps and options as on this machine.

Each task carries the notebook's bytes (workers need not share the instructor's disk) and grades
it with ``grade_submission``, as the local pool does, in the worker's batch: the data, the inputs
and the trainers' cache are set up once per worker process for the whole run, at its first task
(a Dask worker plugin, ``WorkerBatch``, registered for the run and removed at its end, which
removes the batch's files). Every option travels with the plugin: the limits, the data folder,
``sandbox``, ``reuse`` and the instructor's config (the points and the pass mark). Workers therefore need the
kit installed and Fashion-MNIST available, as
a grading machine does. Results come back as plain data and are stored by the instructor's
process, atomically, as each arrives, so a rerun after an interruption resumes as it does locally.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
import uuid
from collections import Counter
from pathlib import Path

from distributed import WorkerPlugin

from autograder.batch.progress import Progress
from autograder.batch.shared import Batch, open_batch
from autograder.batch.steps import grade_submission, language_before_reading, unreadable
from autograder.batch.store import kit_code, run_settings, store_report, stored_report
from autograder.config import Config
from autograder.errors import MemoryShareExceeded, NotebookError
from autograder.i18n import _, speaking
from autograder.judge.checks import checks_table
from autograder.judge.report import GradeReport
from autograder.limits import Limits
from autograder.submission.notebook import read_submitted_bytes


class WorkerBatch(WorkerPlugin):
    """A worker's batch for one run: opened at the worker's first task, used by the next ones, closed
    (its files removed, its sandboxes stopped) when the run ends."""

    def __init__(self, *, data_dir: str | None, limits: Limits, sandbox: bool, reuse: bool, config=None,
                 hosts: dict | None = None):
        """``hosts``: per worker's address, its host's threads and worker processes (``host_load``)."""
        self.options = {"data_dir": data_dir, "limits": limits, "sandbox": sandbox, "reuse": reuse, "config": config}
        self.hosts = hosts or {}

    def setup(self, worker) -> None:
        self.lock = threading.Lock()
        self.opened: Batch | None = None
        self.notebooks: Path | None = None  # where the tasks' notebooks are written: hidden from the sandbox
        self.files = contextlib.ExitStack()

    def batch(self) -> Batch:
        with self.lock:
            if self.opened is None:
                from autograder.sandbox.scratch import new_folder

                notebooks = new_folder("notebooks")
                self.files.callback(shutil.rmtree, notebooks, ignore_errors=True)
                limits = worker_limits(self.options["limits"], self.options["sandbox"], hosts=self.hosts)[0]
                self.opened = self.files.enter_context(open_batch(**{**self.options, "limits": limits},
                                                                  hide=[notebooks]))
                self.notebooks = notebooks
            return self.opened

    def teardown(self, worker) -> None:
        if self.opened is not None:
            from autograder.sandbox.launch import stop_running_sandboxes

            self.opened.stop.set()
            stop_running_sandboxes(self.opened.stop)
        self.files.close()


def grade_task(content: bytes, name: str, plugin: str) -> dict:
    """Runs on a Dask worker: grade one notebook given as bytes in the worker's batch; returns plain data."""
    from distributed import get_worker

    worker_batch = get_worker().plugins[plugin]
    batch = worker_batch.batch()
    folder = Path(tempfile.mkdtemp(prefix="task-", dir=worker_batch.notebooks))
    try:
        path = folder / Path(name).name
        path.write_bytes(content)
        report = grade_submission(path, batch, content)
    except MemoryShareExceeded as error:  # a worker cannot wait for its host's other workers: not stored
        share = f"{error.held_bytes / 2**30:.1f}"
        with speaking(language_before_reading(batch.config)):
            report = GradeReport.ungraded(Path(name), _(
                "stopped at {share} GiB, its worker's share of the machine's memory, below the memory limit: not "
                "graded on the cluster; grade it again without --scheduler, which gives it the whole limit").format(
                share=share),
                table=batch.checks)
        return {**report.payload(), "facts": None}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report.submission = name
    return {**report.payload(), "facts": worker_facts(batch.sandbox)}


def host_load(client) -> dict[str, tuple[int, int]]:
    """Per worker's address: the threads and the worker processes of its host, which share its memory."""
    workers = client.scheduler_info().get("workers", {})
    threads, processes = Counter(), Counter()
    for info in workers.values():
        threads[info.get("host")] += info.get("nthreads") or 1
        processes[info.get("host")] += 1
    return {address: (threads[info.get("host")], processes[info.get("host")]) for address, info in workers.items()}


def worker_limits(limits: Limits, sandbox: bool, dask_worker=None, hosts: dict | None = None,
                  ) -> tuple[Limits, str | None]:
    """The limits a Dask worker grades with, and what the instructor is told of them: the instructor's,
    with its memory cgroups held to their share (``autograder.sandbox.slots.memory_share``) of its host's
    memory, a sandbox and a trainer for each thread of every worker on the host (``hosts``, from
    ``host_load``; a worker that joined since counts its own), or of Dask's memory limit for the
    worker, where lower."""
    from distributed import get_worker

    from autograder.sandbox.slots import memory_share

    if dask_worker is None:
        with contextlib.suppress(ValueError):  # not on a worker (a test's stand-in cluster)
            dask_worker = get_worker()
    threads = getattr(getattr(dask_worker, "state", None), "nthreads", None) or 1
    host_threads, graders = (hosts or {}).get(getattr(dask_worker, "address", None), (threads, 1))
    per_worker = 2 if sandbox else 1
    shares = [memory_share(limits, host_threads, per_worker=per_worker, graders=graders)]
    memory = getattr(getattr(dask_worker, "memory_manager", None), "memory_limit", None) or None
    if memory:
        shares.append(memory_share(limits, threads, per_worker=per_worker, machine=memory))
    return min(shares, key=lambda share: share[0].group_memory)


def worker_memory_said(sandbox: bool, limits: Limits, hosts: dict, dask_worker=None) -> str | None:
    """What the instructor is told of a worker's share of memory (``worker_limits``), if anything.
    ``dask_worker``: the worker, as ``Client.run`` passes it."""
    return worker_limits(limits, sandbox, dask_worker, hosts)[1]


def worker_facts(sandbox: bool = True) -> str:
    """What a worker grades with, which a stored result is for: its kit (code, Python, libraries:
    ``kit_code``, read again: a worker outlives runs, and its sandboxes and trainers start the kit anew
    from disk), its isolation and its locale's language. Not its share of memory, on which no stored
    result depends (one stopped at it is not stored)."""
    from autograder.i18n import choose_language
    from autograder.sandbox.method import sandbox_method

    isolation = sandbox_method() if sandbox else "unsandboxed"
    kit = kit_code.__wrapped__()
    return json.dumps({"kit": kit, "isolation": isolation, "locale": choose_language()}, sort_keys=True)


def grade_on_cluster(
    notebooks: list[Path], scheduler: str, *, data_dir=None, limits=None, sandbox: bool = True, reuse: bool = True,
    results: Path | None = None, progress: Progress, config=None,
) -> list[GradeReport]:
    """Submit every notebook not already graded to the cluster; collect reports in the order given. A
    stored result is for what the workers grade with (``worker_facts``), asked of them first (with none
    yet, an adaptive cluster's start, the first result's say it): where they differ, nothing is kept for
    a rerun, and a result from a worker that differs is this run's only."""
    from distributed import Client

    reports: dict[Path, GradeReport] = {}
    plugin = f"autograder-batch-{uuid.uuid4().hex}"
    with Client(scheduler) as client:
        hosts = host_load(client)
        facts = set(client.run(worker_facts, sandbox).values())
        for said in sorted(set(client.run(worker_memory_said, sandbox, limits or Limits(), hosts).values()) - {None}):
            progress.say(f"{said} (on a worker of the cluster)")
        if len(facts) > 1:
            progress.say("warning: the cluster's workers grade with different kits, isolation or languages: "
                         "no result is kept for a rerun")
            results = None
        agreed = next(iter(facts), None)
        client.register_plugin(WorkerBatch(data_dir=str(data_dir) if data_dir else None, limits=limits or Limits(),
                                           sandbox=sandbox, reuse=reuse, config=config, hosts=hosts), name=plugin)
        try:
            futures = submit_all(client, notebooks, plugin, results if agreed else None, progress, reports, config,
                                 limits, run_settings(limits, f"workers: {agreed}", config))
            collect(futures, results, progress, reports, config, limits, agreed)
        finally:
            client.unregister_worker_plugin(plugin)
    return [reports[path] for path in notebooks]


def submit_all(client, notebooks: list[Path], plugin: str, results, progress: Progress, reports: dict,
               config=None, limits=None, settings: str = "") -> dict:
    """One task per notebook not stored yet; the longest expected first, in the queue and by Dask's
    priority (autograder.batch.order). Returns the futures, each with its notebook and the bytes sent."""
    from autograder.batch.order import start_order

    futures = {}
    for index, estimate in start_order(notebooks, epochs=(config or Config()).epochs,
                                       training_limit=(limits or Limits()).training_seconds):
        path = notebooks[index]
        stored = stored_report(results, path, config, settings)
        if stored is not None:
            reports[path] = stored
            progress.finished(stored)
            continue
        try:  # as the grader reads any submission, never through a link; once: the result is for these bytes
            content = read_submitted_bytes(path)
        except NotebookError as error:
            reports[path] = unreadable(path, error, config)
            continue
        progress.started(path)
        future = client.submit(grade_task, content, str(path), plugin, pure=False, priority=round(estimate))
        futures[future] = path, content
    return futures


def collect(futures: dict, results, progress: Progress, reports: dict, config=None, limits=None,
            facts: str | None = None) -> None:
    """Each report as it arrives: stored at once, shown, kept for the list in the order given. A report
    the cluster did not send (a worker lost) is this run's result only: a rerun grades it again. ``facts``:
    what the workers grade with (``worker_facts``); None: no worker was asked, the first result's say it."""
    from distributed import as_completed

    for future in as_completed(futures):
        path, content = futures[future]
        try:
            payload = future.result()
            report = GradeReport.from_payload(payload)
        except Exception as error:  # a worker lost or crashed: the cluster's fault, perhaps a classmate's
            with speaking(language_before_reading(config)):
                report = GradeReport.ungraded(
                    path, _("the cluster could not grade it: {error}").format(error=f"{type(error).__name__}: {error}"),
                    table=checks_table(config))
        else:  # kept only from a worker that grades as the workers asked first do (one may have joined since)
            facts = facts or payload.get("facts")
            if isinstance(facts, str) and payload.get("facts") == facts:
                store_report(results, path, report, config, content, run_settings(limits, f"workers: {facts}", config))
        reports[path] = report
        progress.finished(report)
