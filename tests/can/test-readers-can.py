#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
Every CAN inverter protocol of the real bmsbridged, read on vcan0 by the
independent reader (tests/readers/can_inverter_reader.py, written from the
manufacturers' documents alone by someone who had not read our encoders),
which also plays the inverter the way its document says a real one behaves:
the 0x305 reply once a second (Pylontech/Deye V1.2, Luxpower V04.2), and
for Growatt the 0x301 request every 500 ms, as a real SPH6000 does (the
GBLI6532 captures in schmellic/growatt2solis).

The BMS is a real US5000 pack's frames on vcan1 (tests/data/
pylontech-us5000-v12.log, from setfirelabs.com: 49.86 V, -27.0 A, SOC 88 %,
SOH 94 %, CVL 53.2 V, CCL/DCL 480 A). For each protocol the last complete
set must conform to its document (no violation), carry the BMS's values,
and limits no higher than the BMS's and the user's caps (100 A default).

Usage: test-readers-can.py BUILD_DIR (vcan0, vcan1 up). TAP.
"""
import os
import sys
import threading
import time

from canpeer import Daemon, Peer, check, finish, tmpdir, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "readers"))
import can_inverter_reader as CAN  # noqa: E402
from accepted import accepted  # noqa: E402

CAPTURE = os.path.join(HERE, "..", "data", "pylontech-us5000-v12.log")
PROTOCOLS = ("pylontech", "deye", "luxpower", "growatt", "victron")
INVERTER_IDS = {0x300, 0x301, 0x305, 0x306, 0x307}


def capture():
    out = []
    with open(CAPTURE) as f:
        for line in f:
            if line.startswith("("):
                ident, data = line.split()[2].split("#")
                out.append((int(ident, 16), bytes.fromhex(data)))
    return out


class Loop:
    """Sends FRAMES every PERIOD seconds on PEER until stopped."""

    def __init__(self, peer, frames, period):
        self.peer, self.frames, self.period = peer, frames, period
        self.running = True
        self.sent = []  # monotonic times of each round
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while self.running:
            for ident, data in self.frames:
                self.peer.send(ident, data)
            self.sent.append(time.monotonic())
            time.sleep(self.period)

    def stop(self):
        self.running = False
        self.t.join(timeout=3)


def last_set(frames):
    """the newest frame of each battery id"""
    out = {}
    for _, ident, data in frames:
        if ident not in INVERTER_IDS:
            out[ident] = data
    return sorted(out.items())


def main():
    bms_peer = Peer("vcan1")
    bms = Loop(bms_peer, capture(), 1.0)
    try:
        for protocol in PROTOCOLS:
            inv = Peer("vcan0")
            # Growatt V1.04: the inverter's 0x301; a real SPH6000 sends it every ~500 ms
            period = 0.5 if protocol == "growatt" else 1.0
            played = Loop(inv, [(i, d) for i, d, _ in CAN.inverter_frames(protocol)
                                if i != 0x300], period)
            with tmpdir() as tmp:
                dm = Daemon('bms: { driver = "pylontech-can"; port = "vcan1"; };\n'
                            'inverter: { protocol = "%s"; port = "vcan0"; };\n'
                            'safety: { comm_loss = "zero"; stale_timeout_ms = 3000; };\n'
                            % protocol, tmp, "readers-" + protocol)
                try:
                    # the CCL ramps up from the first read; wait for the BMS values
                    wait_for(lambda: inv.frames(), 5)
                    time.sleep(4.0)
                    got = inv.frames(since=time.monotonic() - 2.5)
                    frames = last_set(got)
                    # the US5000 BMS gives the cell extremes only, no cell list
                    viol = [v for v in CAN.check(protocol, frames)
                            if not accepted(protocol, False, v)] if frames else ["no frames"]
                    check("%s: the set on vcan0 conforms to its document (%d ids)"
                          % (protocol, len(frames)), not viol, "\n".join(viol) or dm.log()[-5:])
                    dec = CAN.decode(protocol, frames) if frames else {}
                    err = []
                    if abs(dec.get("pack_voltage_v", 0) - 49.86) > 0.1:
                        err.append("voltage %r, the BMS says 49.86 V" % dec.get("pack_voltage_v"))
                    if abs(dec.get("current_a", 0) - -27.0) > 0.1:
                        err.append("current %r, the BMS says -27.0 A" % dec.get("current_a"))
                    if dec.get("soc_pct") != 88:
                        err.append("SOC %r, the BMS says 88 %%" % dec.get("soc_pct"))
                    if dec.get("soh_pct") != 94:
                        err.append("SOH %r, the BMS says 94 %%" % dec.get("soh_pct"))
                    if not 0 < dec.get("charge_voltage_limit_v", 99) <= 53.2:
                        err.append("CVL %r above the BMS's 53.2 V" % dec.get("charge_voltage_limit_v"))
                    for k in ("charge_current_limit_a", "discharge_current_limit_a"):
                        if not 0 <= dec.get(k, 999) <= 100.0:
                            err.append("%s %r above the 100 A cap" % (k, dec.get(k)))
                    check("%s: the reader sees the BMS's values, limits within the caps"
                          % protocol, not err, "\n".join(err))
                    if protocol == "growatt":
                        t = time.monotonic()
                        time.sleep(2.0)
                        n311 = len(inv.frames(0x311, since=t))
                        n301 = len([s for s in played.sent if s >= t])
                        check("growatt: every 0x301 of the last 2 s is answered at most once "
                              "with 0x311 (%d requests, %d answers)" % (n301, n311),
                              n301 >= 3 and 1 <= n311 <= n301, (n301, n311))
                finally:
                    dm.stop()
                    played.stop()
                    inv.close()
    finally:
        bms.stop()
        bms_peer.close()
    return finish()


if __name__ == "__main__":
    sys.exit(main())
