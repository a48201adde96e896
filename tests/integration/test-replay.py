#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The real bmsbridged with a candump log as its BMS (driver "replay",
replay_format "pylontech-can"), speaking Pylontech to a candump file: the
frames the inverter gets carry the values of the replayed capture.

The capture: real Pylontech US5000 packs, setfirelabs.com "Pylontech
battery CAN comms V1.2 vs V1.3" (tests/data/pylontech-us5000-v12.log):
49.86 V, -27.0 A, SOC 88 %, SOH 94 %.

Usage: test-replay.py BUILD_DIR DATA_DIR   (prints TAP)
"""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyhelpers"))
from tap import check, results, wait_for  # noqa: E402,F401

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BUILD_DIR", "build")
DATA = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
    os.environ.get("SRC_DIR", "."), "tests", "data")
DAEMON = os.path.join(BUILD, "bmsbridged")


def frames(path, can_id):
    out = []
    try:
        with open(path) as f:
            for line in f:
                m = re.match(r"\(\S+\) \S+ ([0-9A-F]+)#([0-9A-F]*)$", line.strip())
                if m and int(m.group(1), 16) == can_id:
                    out.append(bytes.fromhex(m.group(2)))
    except FileNotFoundError:
        pass
    return out


def le16(d, o, signed=False):
    return int.from_bytes(d[o:o + 2], "little", signed=signed)


def main():
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "inverter.log")
        conf = os.path.join(d, "replay.conf")
        with open(conf, "w") as f:
            f.write('bms: { driver = "replay"; port = "%s"; replay_format = "pylontech-can";\n'
                    '       replay_loop = true; };\n'
                    'inverter: { protocol = "pylontech"; output = "candump"; port = "%s"; };\n'
                    % (os.path.join(DATA, "pylontech-us5000-v12.log"), out))
        p = subprocess.Popen([DAEMON, "-c", conf], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        try:
            end = time.monotonic() + 10
            while time.monotonic() < end and not (frames(out, 0x356) and frames(out, 0x355)):
                if p.poll() is not None:
                    break
                time.sleep(0.1)
            f356, f355 = frames(out, 0x356), frames(out, 0x355)
            check("the daemon replays the capture and sends a Pylontech set",
                  f356 and f355, "exit %s" % p.poll())
            if f356:
                d356 = f356[-1]
                check("0x356 carries the capture's 49.86 V and -27.0 A",
                      le16(d356, 0) == 4986 and le16(d356, 2, True) == -270, d356.hex())
            if f355:
                check("0x355 carries the capture's SOC 88 %", le16(f355[-1], 0) == 88,
                      f355[-1].hex())
        finally:
            p.terminate()
            try:
                _, err = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
        check("clean exit on SIGTERM", p.returncode == 0, err)
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
