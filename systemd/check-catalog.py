#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The journal message catalog: every MESSAGE_ID the daemon logs with
(LOG_MSGID_* in include/log.h) has exactly one entry, and no entry is
for an id the daemon never uses; journalctl itself (a real client)
compiles it into a database under a scratch root (--root) and lists
each id with its subject.

Usage: check-catalog.py JOURNALCTL CATALOG LOG_H  (prints TAP)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "pyhelpers"))
from tap import check, finish  # noqa: E402


def main():
    journalctl, catalog, log_h = sys.argv[1:4]
    ids = dict(re.findall(r'#define (LOG_MSGID_\w+) "([0-9a-f]{32})"', open(log_h).read()))
    text = open(catalog).read()
    entries = re.findall(r"^-- ([0-9a-f]{32})$", text, re.M)
    check("include/log.h defines MESSAGE_IDs (%d)" % len(ids), len(ids) >= 7, ids)
    check("the ids are distinct", len(set(ids.values())) == len(ids), ids)
    for name, mid in sorted(ids.items()):
        check("%s has one catalog entry" % name, entries.count(mid) == 1, entries)
    check("no catalog entry for an id the daemon does not use",
          set(entries) <= set(ids.values()), set(entries) - set(ids.values()))
    for block in re.split(r"^-- [0-9a-f]{32}$", text, flags=re.M)[1:]:
        head = block.strip().split("\n\n")[0]
        check("entry '%s' has a Subject, Defined-By and Support" % head.split("\n")[0][:50],
              "Subject: " in head and "Defined-By: bmsbridge" in head and
              "Support: man:bmsbridge-troubleshooting(7)" in head, head)

    root = tempfile.mkdtemp(prefix="bmsbridge-catalog-")
    try:
        d = os.path.join(root, "usr", "lib", "systemd", "catalog")
        os.makedirs(d)
        shutil.copy(catalog, d)
        r = subprocess.run([journalctl, "--root=" + root, "--update-catalog"],
                           capture_output=True, text=True)
        check("journalctl --update-catalog accepts it", r.returncode == 0 and not r.stderr,
              r.stderr)
        r = subprocess.run([journalctl, "--root=" + root, "--list-catalog"],
                           capture_output=True, text=True)
        listed = dict(re.findall(r"^([0-9a-f]{32}) bmsbridge: (.*)$", r.stdout, re.M))
        check("journalctl --list-catalog lists every id",
              set(listed) == set(ids.values()), r.stdout + r.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
