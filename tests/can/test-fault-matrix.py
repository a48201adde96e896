#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The fault matrix, CAN part (tests/integration/fault-matrix.py has the pty
part): faults staged on real SocketCAN (vcan, in user-mode Linux where the
kernel has no CAN) against the real bmsbridged, every frame judged from the
inverter's side on vcan0. The BMS on vcan1 sends a real US5000 pack's frames
(tests/data/pylontech-us5000-v12.log: CVL 53.2 V, CCL/DCL 480 A, charge and
discharge enabled); the default caps are 55.2 V / 100 A.

  can-bms-silent   the BMS stops (comm_loss zero): limits 0 within the stale
                   timeout, normal again when it comes back
  can-same-batch   the BMS withdraws charge enable in 0x35C, sent in the same
                   burst as 0x359: the inverter must see charge disabled and
                   CCL 0 from the next set on
  can-reload-caps  a reload lowers max_charge_current_a 100 -> 20 in NORMAL:
                   the next frame already obeys it
  can-held-queue   the inverter side's queue held (sch_plug) while the BMS goes
                   silent and the mode goes to STOP (manage_link): nothing
                   released later carries the old NORMAL set
  can-iface-back   vcan0 deleted for 5 s and created again: frames resume
  can-xw-pro-ack   an inverter that acks with an extended-id 0x305 (Schneider
                   XW Pro) counts as present

Columns as in the pty part: staged, recovered, recover_s, above_caps (frames
above the caps in force), stale (frames carrying limits that are no longer
true: data older than the stale timeout, or an enable already withdrawn).

Usage: test-fault-matrix.py BUILD_DIR (vcan0, vcan1 up). TAP.
"""
import os
import sys
import threading
import time

from canpeer import Daemon, Peer, capture, check, finish, ip, tc, tmpdir, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURE = os.path.join(HERE, "..", "data", "pylontech-us5000-v12.log")
STALE_S = 2.0
GRACE_S = 1.5  # one broadcast period and slack
table = []


def le(d, a, signed=False):
    return int.from_bytes(d[a:a + 2], "little", signed=signed)


def limits(f):
    """(CVL V, CCL A, DCL A) of a 0x351 payload (Pylontech CAN V1.2)"""
    return le(f, 0) / 10.0, le(f, 2, True) / 10.0, le(f, 4, True) / 10.0


class Bms:
    """The captured set once a second on vcan1; 0x35C can be changed on the fly."""

    def __init__(self, peer):
        self.peer = peer
        self.frames = capture(CAPTURE)
        self.req = None
        self.last = 0.0
        self.running = True
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while self.running:
            for ident, data in self.frames:
                if ident == 0x35C and self.req is not None:
                    data = bytes([self.req]) + data[1:]
                self.peer.send(ident, data)
            self.last = time.monotonic()
            time.sleep(1.0)

    def stop(self):
        self.running = False
        self.t.join(timeout=3)


def row(name, staged, recovered, recover_s, above, stale, detail=""):
    table.append((name, staged, recovered, recover_s, len(above), len(stale)))
    check("%s: staged, %s, 0 frames above the caps, 0 carrying what is no longer true"
          % (name, "recovered" if recovered is True else "no recovery needed"
             if recovered is None else "NOT recovered"),
          staged and recovered is not False and not above and not stale,
          "\n".join([str(x) for x in above[:5]] + [str(x) for x in stale[:5]] + [str(detail)]))


def above_caps(frames, caps_at):
    out = []
    for t, _, d in frames:
        cvl, ccl, dcl = limits(d)
        c_cvl, c_ccl, c_dcl = caps_at(t)
        if cvl > c_cvl + 1e-6 or ccl > c_ccl + 1e-6 or dcl > c_dcl + 1e-6:
            out.append((round(t, 2), cvl, ccl, dcl))
    return out


def live(d):
    _, ccl, dcl = limits(d)
    return ccl > 0 or dcl > 0


def rig(tmp, name, safety="", inverter=""):
    bms_peer, inv = Peer("vcan1"), Peer("vcan0")
    dm = Daemon('bms: { driver = "pylontech-can"; port = "vcan1"; };\n'
                'inverter: { protocol = "pylontech"; port = "vcan0"; %s };\n'
                'safety: { stale_timeout_ms = %d; recovery_reads = 2; %s };\n'
                'status_interval_s = 1;\n' % (inverter, STALE_S * 1000, safety), tmp, name)
    bms = Bms(bms_peer)
    return bms_peer, inv, dm, bms


def normal_since(inv, since, timeout):
    f = wait_for(lambda: [f for f in inv.frames(0x351, since=since) if live(f[2])], timeout)
    return f[0][0] if f else None


def close(bms_peer, inv, dm, bms):
    bms.stop()
    dm.stop()
    bms_peer.close()
    inv.close()


def fault_bms_silent(tmp):
    r = rig(tmp, "silent", 'comm_loss = "zero";')
    bms_peer, inv, dm, bms = r
    try:
        staged = normal_since(inv, 0, 15) is not None
        bms.stop()
        t_silent = bms.last
        time.sleep(STALE_S + 3)
        zeroed = [f for f in inv.frames(0x351, since=t_silent + STALE_S + GRACE_S)]
        bms.running = True
        bms.t = threading.Thread(target=bms._run, daemon=True)
        bms.t.start()
        t_back = time.monotonic()
        t_norm = normal_since(inv, t_back, 15)
        stale = [(round(f[0] - t_silent, 2), limits(f[2])) for f in inv.frames(0x351)
                 if t_silent + STALE_S + GRACE_S < f[0] < t_back and live(f[2])]
        above = above_caps(inv.frames(0x351), lambda t: (55.2, 100.0, 100.0))
        row("can-bms-silent", staged and bool(zeroed), bool(t_norm),
            round(t_norm - t_back, 2) if t_norm else None, above, stale)
    finally:
        close(*r)


def fault_same_batch(tmp):
    r = rig(tmp, "batch", 'comm_loss = "zero";')
    bms_peer, inv, dm, bms = r
    try:
        staged = normal_since(inv, 0, 15) is not None
        time.sleep(2.0)
        bms.req = 0x40  # discharge enable only: charge withdrawn (0x35C byte 0 bit 7)
        t_change = time.monotonic()
        time.sleep(4.0)
        # from the first set after the BMS's next burst on, charge must be off
        after = [f for f in inv.frames(since=t_change + GRACE_S) if f[1] in (0x351, 0x35C)]
        stale = [(round(f[0] - t_change, 2), hex(f[1]), f[2].hex()) for f in after
                 if (f[1] == 0x351 and limits(f[2])[1] > 0) or (f[1] == 0x35C and f[2][0] & 0x80)]
        off = [f for f in inv.frames(0x35C, since=t_change) if not f[2][0] & 0x80]
        t_off = off[0][0] - t_change if off else None
        bms.req = None
        above = above_caps(inv.frames(0x351), lambda t: (55.2, 100.0, 100.0))
        row("can-same-batch", staged and bool(after), None if off else False,
            round(t_off, 2) if t_off is not None else None, above, stale,
            "charge disabled on the wire after %s s" % t_off)
    finally:
        close(*r)


def fault_reload_caps(tmp):
    r = rig(tmp, "reload", 'comm_loss = "zero";')
    bms_peer, inv, dm, bms = r
    try:
        # the CCL ramps to the 100 A cap
        staged = bool(wait_for(lambda: [f for f in inv.frames(0x351)
                                        if limits(f[2])[1] >= 100.0], 20))
        with open(dm.conf) as f:
            text = f.read()
        with open(dm.conf, "w") as f:
            f.write(text.replace("recovery_reads = 2;",
                                 "recovery_reads = 2; max_charge_current_a = 20;"))
        t_reload = time.monotonic()
        dm.p.send_signal(1)  # SIGHUP
        time.sleep(3.0)
        first = [f for f in inv.frames(0x351, since=t_reload) if limits(f[2])[1] <= 20.0]
        t_first = first[0][0] - t_reload if first else None
        # the new cap binds at the first evaluation after the reload: 0.3 s
        above = above_caps(inv.frames(0x351), lambda t: (55.2, 100.0, 100.0)
                           if t < t_reload + 0.3 else (55.2, 20.0, 100.0))
        row("can-reload-caps", staged, bool(first), round(t_first, 2) if first else None,
            above, [], dm.log()[-3:])
    finally:
        close(*r)


def fault_held_queue(tmp):
    tc("qdisc", "del", "dev", "vcan0", "root")
    r = rig(tmp, "held", 'comm_loss = "stop";', "manage_link = true;")
    bms_peer, inv, dm, bms = r
    try:
        staged = normal_since(inv, 0, 15) is not None
        held = tc("qdisc", "add", "dev", "vcan0", "root", "plug", "limit", "96")
        time.sleep(2.0)
        bms.stop()
        t_silent = bms.last
        stop = dm.wait_log(r"Safety: \S+ -> stop", 10)
        time.sleep(max(0.0, t_silent + 8.0 - time.monotonic()))
        t_rel = time.monotonic()
        tc("qdisc", "change", "dev", "vcan0", "root", "plug", "release_indefinite")
        time.sleep(2.5)
        stale = [(round(f[0] - t_silent, 2), hex(f[1]), f[2].hex())
                 for f in inv.frames(since=t_rel) if f[0] - t_silent > STALE_S]
        above = above_caps(inv.frames(0x351), lambda t: (55.2, 100.0, 100.0))
        row("can-held-queue", staged and held.returncode == 0 and bool(stop), None, None,
            above, stale, held.stderr)
    finally:
        tc("qdisc", "del", "dev", "vcan0", "root")
        ip("link", "set", "vcan0", "up")
        close(*r)


def fault_iface_back(tmp):
    r = rig(tmp, "iface", 'comm_loss = "zero";')
    bms_peer, inv, dm, bms = r
    try:
        staged = normal_since(inv, 0, 15) is not None
        inv.close()
        ip("link", "del", "dev", "vcan0")
        time.sleep(5.0)
        ip("link", "add", "dev", "vcan0", "type", "vcan")
        ip("link", "set", "vcan0", "up")
        t_back = time.monotonic()
        inv2 = Peer("vcan0")
        t_norm = normal_since(inv2, t_back, 10)
        above = above_caps(inv2.frames(0x351), lambda t: (55.2, 100.0, 100.0))
        inv2.close()
        r = (bms_peer, Peer("vcan0"), dm, bms)
        row("can-iface-back", staged, bool(t_norm), round(t_norm - t_back, 2) if t_norm else None,
            above, [], dm.log()[-3:])
    finally:
        close(*r)


def fault_xw_pro(tmp):
    r = rig(tmp, "xwpro", 'comm_loss = "zero";')
    bms_peer, inv, dm, bms = r
    try:
        staged = normal_since(inv, 0, 15) is not None
        mark = dm.mark()
        t0 = time.monotonic()
        for _ in range(4):
            inv.send(0x305, bytes(8), ext=True)
            time.sleep(0.5)
        present = dm.wait_log(r"[Ii]nverter present", 3, mark)
        row("can-xw-pro-ack", staged, bool(present),
            round(time.monotonic() - t0, 2) if present else None, [], [], dm.log(mark)[-5:])
    finally:
        close(*r)


def main():
    with tmpdir() as tmp:
        fault_bms_silent(tmp)
        fault_same_batch(tmp)
        fault_reload_caps(tmp)
        fault_held_queue(tmp)
        fault_iface_back(tmp)
        fault_xw_pro(tmp)
    print("# %-16s %-7s %-9s %-9s %-10s %s" % ("fault", "staged", "recovered", "recover_s",
                                               "above_caps", "stale"), flush=True)
    for name, staged, rec, rs, above, stale in table:
        print("# %-16s %-7s %-9s %-9s %-10d %d" % (name, staged, "-" if rec is None else rec,
                                                     "-" if rs is None else rs, above, stale),
              flush=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
