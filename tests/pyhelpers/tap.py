# SPDX-License-Identifier: MIT
"""TAP output and polling for the Python tests (tests/integration, tests/can).

    sys.path.insert(0, os.path.join(HERE, "..", "pyhelpers"))
    from tap import check, finish, results, wait_for

check() prints one "ok N - name" / "not ok N - name" line, with the
detail of a failure as "# " lines; finish() prints the plan "1..N" and
returns the exit status (0 only if every check passed, and there was one).
"""
import time

results = []


def check(name, cond, detail="", keep=-30):
    """One TAP test point. @keep: the last (negative) or first (positive)
    lines of @detail shown on failure; None: all of them."""
    results.append(bool(cond))
    print(("ok" if cond else "not ok") + " %d - %s" % (len(results), name), flush=True)
    if not cond and detail is not None and str(detail) != "":
        lines = str(detail).splitlines()
        if keep is not None:
            lines = lines[keep:] if keep < 0 else lines[:keep]
        for line in lines:
            print("# " + line, flush=True)
    return cond


def finish():
    """The plan line; the exit status: 0 if every check passed."""
    print("1..%d" % len(results), flush=True)
    return 0 if results and all(results) else 1


def wait_for(pred, timeout, step=0.05):
    """Poll @pred until it returns a true value or @timeout passes; its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def journal_entries(text):
    """The daemon's stderr under BMSBRIDGE_LOG_EXPORT=1 (journal export
    format: KEY=value lines, an empty line after each entry) as a list of
    dicts. A line without '=' (a sanitizer report) is left out."""
    entries, cur = [], {}
    for line in text.split("\n"):
        if line == "":
            if cur:
                entries.append(cur)
            cur = {}
        elif "=" in line:
            k, v = line.split("=", 1)
            cur[k] = v
    if cur:
        entries.append(cur)
    return entries
