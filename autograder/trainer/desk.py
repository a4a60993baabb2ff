"""The grader's side of ``fit`` as a service: the trainer processes and the desk that serves the
sandboxed child's calls to one of them.

``TrainerProcess`` runs ``python -m autograder.trainer.service`` with the batch's inputs: only the kit's
code, limited in memory and time. ``FitDesk`` listens on a Unix socket in the child's scratch
folder, reads each call with bounds (``autograder.sandbox.frames``), hands it to the trainer, keeps the
trainer's answer as the submission's ``TrainingRecord`` and passes the weights and history back.
The child never holds the record: it is built here, from the trainer's replies alone.

``WarmTrainers`` keeps each grading thread's trainer for its next submission, so that TensorFlow
starts and the data are prepared once per thread, not once per submission. A trainer serves again
only when it ended its submission cleanly and leaves the next one its room under the memory limit
(``KEEP_RESIDENT_BYTES``, ``KEEP_ROOM_BYTES``): a submission that timed out, broke the trainer or left
it large leaves the next submission a new trainer, so that nothing one submission did to a trainer
can cost another points.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from autograder.assignment import MAX_EPOCHS
from autograder.errors import TrainerTimeout
from autograder.i18n import N_
from autograder.sandbox import frames
from autograder.trainer.records import FitRecord, TrainingRecord, refusal
from autograder.trainer.service import MAX_REQUEST_BYTES

SOCKET_NAME = "trainer.sock"
# The kit's modules the trainer imports: no student code, and not the grader's checks.
TRAINER_MODULES = (
    "__init__", "assignment", "errors", "files", "i18n", "data/fashion_mnist", "data/reference",
    "sandbox/bounded_files", "sandbox/child", "sandbox/frames", "sandbox/model_archive", "sandbox/model_config",
    "text", "trainer/cache", "trainer/fast_path", "trainer/records", "trainer/service",
)
MAX_PREDICTIONS_BYTES = 1024**2
# A submission's fit calls: the lesson makes 2-4; one call per epoch makes the config's epochs (at most
# MAX_EPOCHS) and the short call's few. Each is a trainer's round, a record the grader keeps and a key
# among the batch's trainings, so a loop on fit must end somewhere.
MAX_FIT_CALLS = MAX_EPOCHS + 24
STDERR_TAIL = 16 * 1024
# A warm trainer serves at most this many submissions (what TensorFlow keeps between trainings
# stays bounded), and only while its resident memory is under what a trainer holds after
# training the lesson's model (about 1.3 GiB), with room for its larger correct variants.
WARM_USES = 25
KEEP_RESIDENT_BYTES = 3 * 1024**3
# And only while it leaves the next submission this much of the memory limit, in its largest
# process's address space (RLIMIT_AS, where a training fails) and in resident memory (the
# cgroup's): a new trainer grows from 1.7 to 3.4 GiB of address space training the lesson's model.
# Each distinct model trained leaves its compiled programs behind (about 9 MiB each), so a
# submission of many fit calls could otherwise hand on a trainer too full for an instructor's
# lower --memory-limit.
KEEP_ROOM_BYTES = 3 * 1024**3
# And this much of what its memory cgroup may hold, where a batch holds it below the address-space limit
# (autograder.sandbox.slots.memory_share): more than a new trainer's whole peak training the lesson's
# model (1.8 GiB, benchmarks/grade_class.py), a trainer then holding about 1.3 GiB.
KEEP_GROUP_ROOM_BYTES = 2 * 1024**3


class TrainerProcess:
    """The kit's trainer as a process of its own, talked to in frames, confined as a sandbox is
    (``autograder.sandbox.confine.confined``): its own user, no network, only the kit's trainer modules,
    the batch's inputs and the shared cache to see, the memory and process limits."""

    def __init__(self, inputs: Path, cache: Path | None, *, home: Path, limits, env: dict[str, str],
                 stop: threading.Event | None = None):
        """``home``: its own writable folder, removed when it closes."""
        from autograder.sandbox.confine import confined
        from autograder.sandbox.launch import register_group

        reply_read, reply_write = os.pipe()
        self.replies = reply_read
        self.home = home
        self.submissions = 0  # served to their end
        self.stack = contextlib.ExitStack()
        try:
            argv = [
                sys.executable, "-m", "autograder.trainer.service",
                str(inputs), str(cache) if cache else "-", str(reply_write),
            ]
            self.confinement = confinement = self.stack.enter_context(confined(
                argv, writable=home, limits=limits, readable=[inputs], env=env, modules=TRAINER_MODULES,
                also_writable=[cache] if cache else [],
            ))
            self.process = subprocess.Popen(
                confinement.argv, env=confinement.env, cwd=confinement.cwd, stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(reply_write, *confinement.pass_fds),
                preexec_fn=confinement.preexec_fn, start_new_session=True,
            )
        except BaseException:
            os.close(reply_read)
            self.stack.close()
            shutil.rmtree(home, ignore_errors=True)
            raise
        finally:
            os.close(reply_write)
        register_group(self.process.pid, stop)  # a stopped batch kills its trainers with its sandboxes
        self.tail = bytearray()
        self.reader = threading.Thread(target=self._keep_tail, daemon=True)
        self.reader.start()

    def _keep_tail(self) -> None:
        try:
            for chunk in iter(lambda: self.process.stderr.read(4096), b""):
                self.tail.extend(chunk)
                del self.tail[:-STDERR_TAIL]
        except (ValueError, OSError):  # closed by ``close`` before this thread saw the end of the stream
            pass

    def exchange(self, header: dict, blobs: dict[str, bytes], timeout: float, max_reply: int):
        deadline = time.monotonic() + max(timeout, 0.0)
        try:
            self.process.stdin.write(frames.encode(header, blobs))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise frames.FrameError("the trainer is gone") from None

        def receive(size: int) -> bytes:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.replies], [], [], left)[0]:
                raise TrainerTimeout
            return os.read(self.replies, size)

        return frames.decode(frames.reader(receive), max_reply)

    def last_words(self) -> str:
        lines = self.tail.decode("utf-8", "replace").strip().splitlines()
        return lines[-1][:300] if lines else ""

    def alive(self) -> bool:
        return self.replies >= 0 and self.process.poll() is None

    def memory(self) -> tuple[int, int] | None:
        """Its processes' resident memory together, or more where its memory cgroup holds more (the files
        it wrote to a /tmp in memory, the trainings cache among them, which stay charged to it), and the
        largest address space among them (RLIMIT_AS bounds each one): those of its own user
        (``autograder.sandbox.slots``; the grader runs as root and reads any process's status). None where
        it has no user of its own."""
        from autograder.sandbox.slots import processes_of, status_bytes

        user = self.confinement.details.get("user")
        if not isinstance(user, int):
            return None
        pids = processes_of(user)
        resident = max(sum(status_bytes(pid, b"VmRSS:") for pid in pids), self.confinement.cgroup_held_bytes() or 0)
        return resident, max((status_bytes(pid, b"VmSize:") for pid in pids), default=0)

    def oom_kills(self) -> int:
        """How many of its processes the kernel has killed at its memory cgroup's limit, ever."""
        return self.confinement.cgroup_oom_kills()

    def kill(self) -> None:
        """End the trainer now: a call waiting on it gets the end of its replies at once. Not once it
        is reaped: its number may by then be another process group's."""
        if self.process.returncode is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        from autograder.sandbox.launch import unregister_group

        if self.replies < 0:
            return
        self.kill()
        self.process.wait()
        unregister_group(self.process.pid)
        self.stack.close()  # whatever it left running goes, and its user is free again
        self.reader.join(timeout=5)  # the end of its stderr, now that no process holds the pipe
        for stream in (self.process.stdin, self.process.stderr):
            try:
                stream.close()
            except OSError:
                pass
        if self.replies >= 0:
            os.close(self.replies)
            self.replies = -1
        shutil.rmtree(self.home, ignore_errors=True)


class WarmTrainers:
    """Each grading thread's trainer, kept for that thread's next submission (see the module's text)."""

    def __init__(self, memory_bytes: int, group_bytes: int | None = None):
        """``memory_bytes``: each trainer process's address space (``Limits.memory_bytes``); ``group_bytes``:
        what its processes may hold together, where a memory cgroup counts it (``Limits.group_memory``)."""
        self.memory_bytes = memory_bytes
        self.group_bytes = min(memory_bytes, group_bytes or memory_bytes)
        self.local = threading.local()
        self.lock = threading.Lock()
        self.kept: set[TrainerProcess] = set()
        self.closed = False

    def take(self) -> TrainerProcess | None:
        """This thread's warm trainer, or None: start one."""
        trainer, self.local.trainer = getattr(self.local, "trainer", None), None
        if trainer is None:
            return None
        with self.lock:
            self.kept.discard(trainer)
        if not trainer.alive():
            trainer.close()
            return None
        trainer.tail.clear()  # its last words are the next submission's own
        return trainer

    def give_back(self, trainer: TrainerProcess, served: bool) -> None:
        """``served``: the trainer ended the submission cleanly and may serve the next one."""
        if served:
            trainer.submissions += 1
            memory = trainer.memory()
            served = (trainer.alive() and trainer.submissions < WARM_USES and memory is not None
                      and memory[0] <= min(KEEP_RESIDENT_BYTES, self.memory_bytes - KEEP_ROOM_BYTES,
                                           self.group_bytes - KEEP_GROUP_ROOM_BYTES)
                      and memory[1] <= self.memory_bytes - KEEP_ROOM_BYTES)
        with self.lock:
            if served and not self.closed:
                self.kept.add(trainer)
                self.local.trainer = trainer
                return
        trainer.close()

    def close(self) -> None:
        """Close every kept trainer, each taken out only once closed: a close interrupted (Ctrl-C) leaves
        the others to the next one."""
        with self.lock:
            self.closed = True
        while True:
            with self.lock:
                trainer = next(iter(self.kept), None)
            if trainer is None:
                return
            trainer.close()
            with self.lock:
                self.kept.discard(trainer)


class FitDesk:
    """Serves one submission's ``fit`` calls on ``folder/trainer.sock`` until ``finish``."""

    def __init__(self, folder: Path, trainer: TrainerProcess, training_seconds: float, on_first_call=None):
        """``on_first_call``: called when the child first calls ``fit``, for the grader's own work while
        its trainer trains."""
        self.trainer = trainer
        self.on_first_call = on_first_call
        self.served = False  # the trainer ended this submission cleanly: it may serve another
        self.oom_killed = False  # the kernel killed the trainer at its memory cgroup's limit (batch.steps)
        self.training_seconds = training_seconds
        self.spent = 0.0
        self.record = TrainingRecord()
        self.path = folder / SOCKET_NAME
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.path))
        os.chmod(self.path, 0o666)  # the child runs as another user
        self.server.listen(4)
        self.server.settimeout(0.2)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.server.accept()
            except (socket.timeout, OSError):
                continue
            with connection, self.lock:
                if self.stopping.is_set():
                    return
                try:
                    self.answer(connection)
                except Exception:  # the desk's own fault: this submission's training fails, said; the desk goes on
                    self.record.calls.append(self.fail(N_("the grader's trainer stopped while training this model")))

    def left(self) -> float:
        return self.training_seconds - self.spent

    def answer(self, connection: socket.socket) -> None:
        started = time.monotonic()
        connection.settimeout(max(self.left(), 1.0))
        try:
            header, blobs = frames.decode(frames.reader(connection.recv), MAX_REQUEST_BYTES)
        except (frames.FrameError, OSError, ValueError):
            return  # a malformed request is no fit call: nothing was asked of the trainer
        if self.on_first_call is not None:
            self.on_first_call, on_first_call = None, self.on_first_call
            on_first_call()
        reply, reply_blobs = self.train(header, blobs)
        self.spent += time.monotonic() - started
        try:
            connection.sendall(frames.encode(reply, reply_blobs))
        except OSError:
            pass

    def train(self, header: dict, blobs: dict[str, bytes]) -> tuple[dict, dict[str, bytes]]:
        if self.record.error:
            return refusal(self.record.error, self.record.error_fields), {}
        if len(self.record.calls) >= MAX_FIT_CALLS:
            call = self.fail(N_("`model.fit` was called more than {count} times: the grader trains at most {count} "
                                "calls of one submission"), count=str(MAX_FIT_CALLS))
            self.record.calls.append(call)
            return refusal(call.message, call.fields), {}
        request = {"op": "fit", "arguments": header.get("arguments")}
        try:
            reply, reply_blobs = self.trainer.exchange(request, blobs, self.left(), MAX_REQUEST_BYTES)
            call = FitRecord.from_json(reply.pop("record"))
        except TrainerTimeout:
            self.trainer.close()
            call = self.fail(N_("the training ran longer than the grader allows ({seconds} s) and was stopped"),
                             seconds=f"{self.training_seconds:g}")
            reply, reply_blobs = refusal(call.message, call.fields), {}
        except (frames.FrameError, KeyError, TypeError, ValueError):
            words = self.trainer.last_words()
            call = (self.fail(N_("the grader's trainer stopped while training this model ({words})"), words=words)
                    if words else self.fail(N_("the grader's trainer stopped while training this model")))
            reply, reply_blobs = refusal(call.message, call.fields), {}
        self.record.calls.append(call)
        return reply, reply_blobs

    def fail(self, message: str, **fields: str) -> FitRecord:
        """The trainer cannot go on: this call and every later one fail with ``message`` (a catalogue message)."""
        self.record.error, self.record.error_fields = message, fields
        return FitRecord(trained=False, message=message, fields=fields)

    def finish(self, predict: bool = True) -> TrainingRecord:
        """Stop serving; the trainer predicts the test images with the final model and forgets the
        submission (unless the batch is being stopped: then it is killed). ``served`` says whether
        it ended the submission cleanly; the caller closes it or keeps it warm."""
        self.stopping.set()
        self.server.close()
        if not predict:
            self.trainer.kill()  # a training in progress is no result: it must not hold the desk
        with self.lock:
            try:
                if predict and self.record.calls and not self.record.error:
                    _, blobs = self.trainer.exchange({"op": "finish"}, {}, 120.0, MAX_PREDICTIONS_BYTES)
                    if "predictions.npy" in blobs:
                        predictions = np.load(io.BytesIO(blobs["predictions.npy"]), allow_pickle=False)
                        if predictions.ndim == 1 and predictions.dtype.kind in "iu":
                            self.record.predictions = predictions
                self.served = predict and not self.record.error and self.trainer.alive()
            except (TrainerTimeout, frames.FrameError, ValueError, OSError):
                pass
        self.thread.join(timeout=5)
        try:
            self.path.unlink()
        except OSError:
            pass
        return self.record
