#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The daemon's Modbus RTU families against libmodbus playing the device.

bmsbridged frames its Modbus requests and reads the answers itself; here
libmodbus (Debian libmodbus5, through tests/integration/modbus-peer.c)
plays the BMS: its RTU backend must take every request the daemon sends
(address, function, CRC, counts: one it cannot take is counted "bad") and
its answers, built from a register image, must be read right. The image
is the one the independent pack reader (tests/readers/bms_pack_reader.py,
written from the BMS documents alone) builds for a state; the Victron
frames the daemon writes are compared with that state by the same rules
as test-bms-readers.py (whose states and expectations are used here).

    test-modbus-peer.py BUILD_DIR        (prints TAP)
"""
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pyhelpers"))
sys.path.insert(0, os.path.join(HERE, "..", "readers"))
from tap import check, finish, wait_for  # noqa: E402
import bms_pack_reader as bpr  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BUILD_DIR", "build")
SRC = os.environ.get("SRC_DIR", os.path.join(HERE, "..", ".."))
DAEMON = os.path.join(BUILD, "bmsbridged")
PEER = os.path.join(BUILD, "tests", "modbus-peer")

_spec = importlib.util.spec_from_file_location(
    "test_bms_readers", os.path.join(HERE, "test-bms-readers.py"))
tbr = importlib.util.module_from_spec(_spec)
sys.argv, _argv = sys.argv[:1], sys.argv
_spec.loader.exec_module(tbr)
sys.argv = _argv

# the family, and which libmodbus table its registers live in
FAMILIES = {
    "seplos-v3": "ir",     # XZH §2: function 0x04 input registers, 0x01 coils
    "pace-modbus": "hr",   # PM V1.3 §3.1: function 0x03 holding registers
    "eg4-ll": "hr",        # EG4-LL V01.06 §2.1: function 0x03
}


def image(family, address, state):
    fam = bpr.FAMILIES[family]({address: state})
    lines = ["unit %d" % address]
    for a, v in sorted(fam.registers(state).items()):
        lines.append("%s %d %d" % (FAMILIES[family], a, v & 0xFFFF))
    if hasattr(fam, "coils"):
        for a, v in sorted(fam.coils(state).items()):
            lines.append("co %d %d" % (a, 1 if v else 0))
    lines.append("end")
    return "\n".join(lines) + "\n"


def run(family, address, state, tmp, tag):
    peer = subprocess.Popen([PEER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    peer.stdin.write(image(family, address, state))
    peer.stdin.close()
    peer.stdin = None
    first = peer.stdout.readline().split()
    if len(first) != 2 or first[0] != "ready":
        peer.kill()
        return None, [], -1, "peer did not start: %r %s" % (first, peer.stderr.read())
    port = first[1]
    out = os.path.join(tmp, "%s.log" % tag)
    conf = os.path.join(tmp, "%s.conf" % tag)
    with open(conf, "w") as f:
        f.write('dbus = false;\n'
                'bms: { driver = "%s"; port = "%s"; addresses = [%d];\n'
                '       poll_interval_ms = 500; %s};\n'
                'inverter: { protocol = "victron"; output = "candump";\n'
                '            port = "%s"; };\n'
                % (family, port, address, tbr.EXTRA_CONF.get(family, ""), out))
    env = dict(os.environ)
    env["LSAN_OPTIONS"] = "suppressions=" + os.path.join(SRC, "tests", "lsan.supp")
    err = open(os.path.join(tmp, "%s.err" % tag), "w+")
    proc = subprocess.Popen([DAEMON, "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=err, env=env)

    def ready():
        ids = {c for c, _ in tbr.candump_frames(out)}
        return {0x351, 0x355, 0x356, 0x373} <= ids
    if wait_for(ready, 20):
        time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    peer.send_signal(signal.SIGTERM)
    try:
        stats, perr = peer.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        peer.kill()
        stats, perr = peer.communicate()
    err.seek(0)
    stderr = err.read()
    err.close()
    fields = stats.split()
    st = dict(zip(fields[1::2], (int(x) for x in fields[2::2]))) if fields[:1] == ["stats"] else None
    return st, tbr.candump_frames(out), rc, stderr + perr


def main():
    for exe in (DAEMON, PEER):
        if not os.access(exe, os.X_OK):
            check("built: %s" % exe, False)
            return finish()
    tmp = tempfile.mkdtemp(prefix="modbus-peer-")
    table = []
    for family in FAMILIES:
        singles = [(label, packs) for label, packs in tbr.states(family) if len(packs) == 1]
        check("%s: single-pack states to play (%d)" % (family, len(singles)), len(singles) >= 2)
        for n, (label, packs) in enumerate(singles):
            (address, state), = packs.items()
            name = "%s [%s] via libmodbus" % (family, label)
            st, frames, rc, stderr = run(family, address, state, tmp, "%s-%d" % (family, n))
            check("%s: libmodbus took every request (%s)" % (name, st),
                  st is not None and st["requests"] >= 3 and st["bad"] == 0
                  and st["answered"] == st["requests"], stderr[-2000:])
            ids = {c for c, _ in frames}
            check("%s: the inverter got its frames" % name,
                  {0x351, 0x355, 0x356, 0x373} <= ids, stderr[-2000:])
            check("%s: the daemon stopped cleanly (rc %d)" % (name, rc),
                  rc == 0 and "ERROR: AddressSanitizer" not in stderr
                  and "runtime error" not in stderr, stderr[-2000:])
            got = tbr.cir.decode("victron", tbr.last_set(frames)) if frames else {}
            bad = []
            want = tbr.expected(family, packs)
            for key, (w, tol) in sorted(want.items()):
                g = got.get(key)
                if g is None or abs(g - w) > tol + 1e-6:
                    bad.append("%s: got %s, want %s +- %s" % (key, g, w, tol))
            check("%s: %d fields as the state says" % (name, len(want)), not bad, "\n".join(bad))
            table.append((family, label, st, len(want), len(bad)))
    print("# %-12s %-44s %9s %6s %7s %10s" % ("family", "state", "requests", "bad",
                                               "fields", "mismatches"))
    for family, label, st, nf, nb in table:
        print("# %-12s %-44s %9s %6s %7d %10d" % (family, label[:44],
                                                  st["requests"] if st else "-",
                                                  st["bad"] if st else "-", nf, nb))
    return finish()


if __name__ == "__main__":
    sys.exit(main())
