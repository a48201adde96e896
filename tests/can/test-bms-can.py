#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
A Pylontech-CAN BMS on vcan1 (python-can, sending the frames of a real
US5000 pack: tests/data/pylontech-us5000-v12.log, from setfirelabs.com),
the real bmsbridged between it and a python-can inverter on vcan0:

- the daemon sends the BMS the inverter keep-alive it expects (0x305);
- the inverter-side frames carry the BMS's values (decoded here with an
  independent Pylontech V1.2 table: 0x356 voltage u16 0.01 V, current s16
  0.1 A; 0x355 SOC u16 %), and the BMS's limits capped by the user caps;
- a cangen flood of foreign frames on the BMS bus: nothing crashes, the
  values still flow, nothing that matters is lost;
- the BMS goes silent: the inverter gets CCL = DCL = 0 (comm_loss zero);
- a BMS not heard in the first 10 s is one warning with its hint (the
  BMS's CAN setting, bit rate, wiring), and its first frame one notice.

Usage: test-bms-can.py BUILD_DIR (vcan0, vcan1 up). TAP.
"""
import os
import subprocess
import sys
import threading
import time

from canpeer import Daemon, Peer, check, finish, tmpdir, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURE = os.path.join(HERE, "..", "data", "pylontech-us5000-v12.log")


def capture():
    out = []
    with open(CAPTURE) as f:
        for line in f:
            if line.startswith("("):
                ident, data = line.split()[2].split("#")
                out.append((int(ident, 16), bytes.fromhex(data)))
    return out


def le(d, a, signed=False):
    return int.from_bytes(d[a:a + 2], "little", signed=signed)


class Bms:
    """Sends the captured set once a second until stopped."""

    def __init__(self, peer):
        self.peer = peer
        self.frames = capture()
        self.running = True
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while self.running:
            for ident, data in self.frames:
                self.peer.send(ident, data)
            time.sleep(1.0)

    def stop(self):
        self.running = False
        self.t.join(timeout=3)


def main():
    bms_peer = Peer("vcan1")
    inv = Peer("vcan0")
    with tmpdir() as tmp:
        dm = Daemon('bms: { driver = "pylontech-can"; port = "vcan1"; };\n'
                    'inverter: { protocol = "pylontech"; port = "vcan0"; };\n'
                    'safety: { comm_loss = "zero"; stale_timeout_ms = 3000; };\n', tmp, "bmscan")
        bms = None
        try:
            never = dm.wait_log("No frame from the BMS on vcan1 in 10 s", 14)
            check("a BMS never heard: one warning after 10 s, with its hint",
                  never and "warning:" in never and "bit rate" in never and "CAN-H" in never,
                  dm.log()[-5:])
            bms = Bms(bms_peer)
            heard = dm.wait_log("BMS heard on vcan1", 5)
            check("its first frame clears it with a notice",
                  heard and "warning" not in heard, dm.log()[-5:])
            check("said once each way",
                  sum("No frame from the BMS" in l for l in dm.log()) == 1 and
                  sum("BMS heard on" in l for l in dm.log()) == 1, dm.log()[-8:])
            ka = wait_for(lambda: bms_peer.frames(0x305), 5)
            check("the BMS hears the inverter keep-alive 0x305 from the daemon", ka)
            f356 = wait_for(lambda: inv.frames(0x356), 10)
            check("0x356 on the inverter side carries 49.86 V and -27.0 A from the BMS",
                  f356 and le(f356[-1][2], 0) == 4986 and le(f356[-1][2], 2, True) == -270,
                  f356[-1][2].hex() if f356 else dm.log())
            f355 = inv.frames(0x355)
            check("0x355 carries SOC 88 %, SOH 94 %",
                  f355 and le(f355[-1][2], 0) == 88 and le(f355[-1][2], 2) == 94,
                  f355[-1][2].hex() if f355 else "")
            # the CCL ramps up at 10 A/s from the first read
            f351 = wait_for(lambda: [f for f in inv.frames(0x351) if le(f[2], 2) == 1000], 20)
            # the BMS allows 480 A; the default user caps are 100 A and 55.2 V
            check("0x351: the BMS's 480 A capped to the user's 100 A, CVL 53.2 V kept",
                  f351 and le(f351[-1][2], 0) == 532 and le(f351[-1][2], 4) == 1000,
                  [f[2].hex() for f in inv.frames(0x351)[-3:]])

            # a flood of foreign frames on the BMS bus at full speed: random
            # 29-bit ids, then a standard id no Pylontech BMS uses
            t0 = time.monotonic()
            flood = [subprocess.run(["cangen", "vcan1", "-g", "0", "-e", "-I", "r", "-L", "8",
                                     "-n", "20000"], capture_output=True, text=True, timeout=60),
                     subprocess.run(["cangen", "vcan1", "-g", "0", "-I", "6F0", "-L", "8",
                                     "-n", "5000"], capture_output=True, text=True, timeout=60)]
            check("cangen sent its 25000 frames", all(f.returncode == 0 for f in flood),
                  "".join(f.stderr for f in flood))
            check("the daemon survives the flood", dm.alive(), dm.log()[-5:])
            later = wait_for(lambda: [f for f in inv.frames(0x356, since=t0 + 0.5)], 5)
            check("values still flow after the flood",
                  later and le(later[-1][2], 0) == 4986, later[-1:] if later else dm.log()[-5:])
            check("no BMS frame was rejected as malformed",
                  not any("rejected" in l for l in dm.log()), dm.log()[-5:])

            # the BMS goes silent
            bms.stop()
            t_stop = time.monotonic()
            zero = wait_for(lambda: [f for f in inv.frames(0x351, since=t_stop)
                                     if le(f[2], 4) == 0 and le(f[2], 2) == 0], 8)
            check("BMS silent: CCL = DCL = 0 within stale_timeout (%.1f s)"
                  % (time.monotonic() - t_stop), zero, dm.log()[-5:])
        finally:
            if bms:
                bms.stop()
            dm.stop()
            bms_peer.close()
            inv.close()
    return finish()


if __name__ == "__main__":
    sys.exit(main())
