#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The CAN port of the real bmsbridged on vcan, seen from a python-can inverter:

- the periodic set at the protocol's period (0x351 every 1 s);
- keep-alives (0x305) make the inverter "present"; silence past
  inverter_timeout_s makes it "silent", and the daemon keeps sending;
- `ip link set vcan0 down`, then up: reported, and frames resume without
  a restart;
- an interface missing at start: the daemon runs, reports it, and opens
  it when it appears;
- manage_link = true: a link left down is brought up by the daemon;
- error frames: bus-off and the controller's restart are reported.

Usage: test-can-link.py BUILD_DIR (vcan0 up; tests/can/run arranges it). TAP.
"""
import sys
import time

from canpeer import Daemon, Peer, check, finish, ip, tmpdir, wait_for

SIM = 'bms: { driver = "sim"; seed = 11; };\n'


def periods(frames):
    t = [f[0] for f in frames]
    return [b - a for a, b in zip(t, t[1:])]


def test_period_and_presence(tmp):
    inv = Peer("vcan0")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan0";'
                ' inverter_timeout_s = 2; };\n', tmp, "presence")
    try:
        got = wait_for(lambda: len(inv.frames(0x351)) >= 5, 10)
        p = periods(inv.frames(0x351))
        check("0x351 every 1 s (+-0.2 s) on vcan0", got and all(0.8 <= x <= 1.2 for x in p),
              "periods %s" % p)
        ids = {f[1] for f in inv.frames()}
        check("the whole Pylontech set goes out",
              {0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E} <= ids, sorted(hex(i) for i in ids))
        check("no inverter heard yet: not reported present",
              dm.wait_log("Inverter present", 0.1) is None)
        mark = dm.mark()
        for _ in range(4):
            inv.send(0x305, bytes(8))  # Pylontech inverter ack, 8 zero bytes
            time.sleep(0.5)
        check("0x305 keep-alives: the inverter is reported present",
              dm.wait_log("Inverter present", 3, mark), dm.log(mark))
        mark = dm.mark()
        silent = dm.wait_log("Inverter silent", 6, mark)
        check("no keep-alive for inverter_timeout_s: reported silent", silent, dm.log(mark))
        n = len(inv.frames(0x351))
        check("a silent inverter still gets frames",
              wait_for(lambda: len(inv.frames(0x351)) > n, 3))
        inv.send(0x305, bytes(8))
        check("the inverter back is reported",
              dm.wait_log("Inverter back after", 3, mark), dm.log(mark))
    finally:
        dm.stop()
        inv.close()


def test_down_up(tmp):
    inv = Peer("vcan0")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan0"; };\n', tmp, "downup")
    try:
        wait_for(lambda: inv.frames(0x351), 10)
        mark = dm.mark()
        ip("link", "set", "vcan0", "down")
        down = dm.wait_log("vcan0 is down", 5, mark)
        check("ip link set vcan0 down: reported", down, dm.log(mark))
        time.sleep(1.5)
        ip("link", "set", "vcan0", "up")
        t_up = time.monotonic()
        back = dm.wait_log("vcan0 is back", 5, mark)
        check("vcan0 up again: reported back", back, dm.log(mark))
        resumed = wait_for(lambda: inv.frames(0x351, since=t_up), 5)
        check("frames resume without a restart (same process)", resumed and dm.alive())
        check("the down/up is logged once each",
              sum("vcan0 is down" in l for l in dm.log(mark)) == 1 and
              sum("vcan0 is back" in l for l in dm.log(mark)) == 1, dm.log(mark))
    finally:
        ip("link", "set", "vcan0", "up")
        dm.stop()
        inv.close()


def test_missing_at_start(tmp):
    ip("link", "del", "vcan7")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan7"; };\n', tmp, "missing")
    peer = None
    try:
        warned = dm.wait_log("vcan7: cannot open", 5)
        check("interface missing at start: reported, the daemon keeps running",
              warned and dm.alive(), dm.log())
        ip("link", "add", "dev", "vcan7", "type", "vcan")
        ip("link", "set", "vcan7", "up")
        peer = Peer("vcan7")
        opened = dm.wait_log("vcan7 is back", 12)
        check("vcan7 appears: opened by itself", opened, dm.log())
        check("frames on vcan7", wait_for(lambda: peer.frames(0x351), 5))
    finally:
        dm.stop()
        if peer:
            peer.close()
        ip("link", "del", "vcan7")


def test_manage_link(tmp):
    ip("link", "add", "dev", "vcan6", "type", "vcan")
    ip("link", "set", "vcan6", "down")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan6"; manage_link = true; };\n',
                tmp, "manage")
    try:
        up = wait_for(lambda: "UP" in ip("link", "show", "vcan6").stdout.split(">")[0], 5)
        check("manage_link = true: the daemon brings a down link up", up,
              ip("link", "show", "vcan6").stdout + "\n".join(dm.log()))
        peer = Peer("vcan6")
        check("and sends on it", wait_for(lambda: peer.frames(0x351), 5))
        peer.close()
    finally:
        dm.stop()
        ip("link", "del", "vcan6")


def test_error_frames(tmp):
    inv = Peer("vcan0")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan0"; };\n', tmp, "errors")
    try:
        wait_for(lambda: inv.frames(0x351), 10)
        mark = dm.mark()
        # linux/can/error.h: class CAN_ERR_BUSOFF 0x40, then CAN_ERR_RESTARTED 0x100
        inv.send(0x40, bytes(8), error=True)
        off = dm.wait_log("vcan0: bus-off", 3, mark)
        check("an error frame saying bus-off is reported", off, dm.log(mark))
        inv.send(0x100, bytes(8), error=True)
        back = dm.wait_log("bus error-active again", 3, mark)
        check("the controller's restart is reported", back, dm.log(mark))
        # controller error passive with counters (data[1] 0x10 rx passive, tx 0, rx 130)
        inv.send(0x04, bytes([0, 0x10, 0, 0, 0, 0, 0, 130]), error=True)
        passive = dm.wait_log("error-passive.*rx errors 130", 3, mark)
        check("error passive with the error counters", passive, dm.log(mark))
        t0 = time.monotonic()
        check("the daemon keeps sending through bus errors",
              wait_for(lambda: inv.frames(0x351, since=t0), 3) and dm.alive())
    finally:
        dm.stop()
        inv.close()


def main():
    with tmpdir() as tmp:
        test_period_and_presence(tmp)
        test_down_up(tmp)
        test_missing_at_start(tmp)
        test_manage_link(tmp)
        test_error_frames(tmp)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
