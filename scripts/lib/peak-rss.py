#!/usr/bin/env python3
"""Runs a command and prints its exit status and peak resident set, as JSON on one line.

usage: peak-rss.py COMMAND [ARG...]

The command's own output goes to /dev/null. The peak is the child's own: `os.wait4` reaps that
one process. Linux starts a spawned process's ru_maxrss at the high-water mark of the memory it
was spawned from, so a large process (a test runner) cannot measure a child this way itself;
this small one can, down to its own size (about 15 MB).
"""
import json
import os
import subprocess
import sys

if len(sys.argv) < 2:
    print("usage: peak-rss.py COMMAND [ARG...]", file=sys.stderr)
    sys.exit(2)
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
child.returncode = 0  # reaped above; keeps Popen from waiting again
code = os.waitstatus_to_exitcode(status)
print(json.dumps({"status": code if code >= 0 else 128 - code, "peak_bytes": usage.ru_maxrss * 1024}))
