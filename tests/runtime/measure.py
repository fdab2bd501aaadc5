"""`python -m tests.runtime.measure REPORT COMMAND...`: run COMMAND, then write its exit status, wall-clock
and CPU seconds and peak memory to REPORT as JSON.

Linux folds the memory of the process that forks into the child's ru_maxrss, so a command started
straight from pytest (hundreds of MiB) would seem that large; started from this small interpreter,
its figure is its own.
"""

import json
import os
import sys
import time


def main() -> int:
    report, command = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.posix_spawnp(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    with open(report, "w") as file:
        json.dump({"returncode": code, "seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                   "peak_mib": usage.ru_maxrss / 1024}, file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
