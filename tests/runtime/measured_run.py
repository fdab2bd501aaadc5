"""`python -S tests/runtime/measured_run.py REPORT COMMAND...`: run COMMAND, then write to REPORT its exit
status, wall-clock and CPU seconds and peak memory in MiB, one line of numbers.

This is the small interpreter `measure.run_measured` puts between pytest and the command: Linux folds
the memory of the process that forks into its child's ru_maxrss, so a command started straight from
pytest (hundreds of MiB) would seem that large. It starts once per fuzz case, so it imports only what
the interpreter has built in.
"""

import os
import sys
import time


def main() -> int:
    report, command = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.posix_spawnp(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    with open(report, "w") as file:
        cpu_seconds, peak_mib = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
        print(os.waitstatus_to_exitcode(status), seconds, cpu_seconds, peak_mib, file=file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
