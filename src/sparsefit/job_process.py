"""The process of a studio job: ``sparsefit train`` that stops on SIGINT whatever the studio inherited.

A studio started with SIGINT ignored (``nohup sparsefit studio &`` from a script: the shell makes
background commands ignore it) would pass that on to every job, and Cancel, which sends SIGINT to
the job's process group, would do nothing. Python keeps an inherited SIG_IGN, so this entry point
puts Ctrl-C's handler back before running the CLI.

Example:
    $ python -m sparsefit.job_process train examples/catalog.csv --rounds 1   # doctest: +SKIP
"""

from __future__ import annotations

import signal

if __name__ == "__main__":
    # before the (slow) imports below, so that a Cancel in the job's first seconds is not lost
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from sparsefit.cli import main

    main()
