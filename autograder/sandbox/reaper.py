"""The sandbox's first process: runs the sandbox command as its child and reports its peak memory.

A process forked from the grader starts with the grader's resident pages counted as its own (and
keeps that count through ``exec``), so the usage the grader reads for its own child is the
grader's size, not the sandbox's. This small script is that child: it forks the sandbox command
from itself and waits for it, so the peak it reads is the sandbox's own (with the descendants the
sandbox waited for). It writes the peak, in KiB, to the file descriptor the grader gave it, which
the sandbox never holds, and exits as the sandbox did.

Run as ``python -I -S sandbox/reaper.py FD COMMAND...``: it imports nothing of the kit's.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    report, command = int(sys.argv[1]), sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.close(report)
            # As the grader made this process die with it, the sandbox dies with this one.
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    os.write(report, f"{usage.ru_maxrss}\n".encode())
    os.close(report)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number not in (signal.SIGKILL, signal.SIGSTOP):  # the two whose handling is fixed
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
