"""peerlib: what every Python peer benchmark shares.

A peer script declares its cases and calls peerlib.main(prefix, cases, order):

    python3 bench/peers/b1_queue_threads.py [--case NAME] [--quick]

and prints the same lines as the duet scripts (bench/benchlib.lua):

    RESULT <case> <metric> <value> <unit>

A case that fails prints ``ERROR <case> <message>`` on stderr and makes the
script exit non-zero, so the driver shows "n/a", never a number. A case
that is a coroutine function runs under asyncio.run.
"""
import asyncio
import os
import sys
import traceback

now = __import__("time").perf_counter


def rss_kb(field="VmRSS"):
    """A size in KB from /proc/self/status: VmRSS (resident now) or VmHWM (the peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no " + field)


def result(case, metric, value, unit):
    """Print one figure and flush, so a later hang cannot lose it."""
    sys.stdout.write("RESULT %s %s %.6g %s\n" % (case, metric, value, unit))
    sys.stdout.flush()


def check(what, got, want):
    """Raise unless got == want: a wrong run must never give a figure."""
    if got != want:
        raise AssertionError("wrong result: %s = %r, expected %r" % (what, got, want))


def parse_args(argv):
    opts = {"case": None, "quick": False}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--quick":
            opts["quick"] = True
        elif a == "--case":
            i += 1
            opts["case"] = argv[i]
        else:
            raise SystemExit("unknown argument: " + a)
        i += 1
    return opts


def main(prefix, cases, order):
    opts = parse_args(sys.argv[1:])
    names = [opts["case"]] if opts["case"] else order
    failed = False
    for name in names:
        case_id = prefix + "." + name
        try:
            fn = cases[name]
            if asyncio.iscoroutinefunction(fn):
                asyncio.run(fn(opts["quick"], case_id))
            else:
                fn(opts["quick"], case_id)
        except BaseException as e:  # report and go on with the next case
            failed = True
            if isinstance(e, KeyError) and name not in cases:
                msg = "no such case"
            else:
                msg = "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc())
            sys.stderr.write("ERROR %s %s\n" % (case_id, msg))
            sys.stderr.flush()
    sys.stdout.flush()
    os._exit(1 if failed else 0)
