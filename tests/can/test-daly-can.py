#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
A Daly BMS on its CAN port (vcan1, python-can) answering what the real
bmsbridged asks, with the answers a real 8S board gave
(tests/data/daly-can-8s-addr1.log, from dbus-serialbattery issue #212),
and a python-can Pylontech inverter on vcan0:

- the daemon asks board 1 for 0x90-0x94 and 0x98 about once a second, on
  29-bit ids 0x18 <ID> 01 40 with 8 zero bytes (Daly CAN V1.0 §2.3, §3);
- the inverter-side frames carry the board's values (decoded here with an
  independent Pylontech V1.2 table: 0x356 voltage u16 0.01 V, current s16
  0.1 A; 0x355 SOC u16 %), and limits from the user caps (Daly sends none);
- what is not board 1's answer changes nothing: board 2's answers (the
  real ones of tests/data/daly-can-8s-addr2.log), the same number as an
  11-bit id, a Bluetooth master's (0x80) request and board 1's answer to it;
- the board goes silent: the inverter gets CCL = DCL = 0 (comm_loss zero).

Usage: test-daly-can.py BUILD_DIR (vcan0, vcan1 up). TAP.
"""
import os
import sys
import threading
import time

import can  # python3-can

from canpeer import Daemon, Peer, capture, check, finish, tmpdir, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
BOARD1 = os.path.join(HERE, "..", "data", "daly-can-8s-addr1.log")
BOARD2 = os.path.join(HERE, "..", "data", "daly-can-8s-addr2.log")
ASKED = [0x90, 0x91, 0x92, 0x93, 0x94, 0x98]


def le(d, a, signed=False):
    return int.from_bytes(d[a:a + 2], "little", signed=signed)


class DalyBoard:
    """Board 1 on IFACE: answers each request 0x18 <ID> 01 40 with its captured answer."""

    def __init__(self, iface, answers):
        self.bus = can.interface.Bus(interface="socketcan", channel=iface)
        self.answers = answers  # {ID: data}
        self.requests = []  # (time, id, data, extended)
        self.lock = threading.Lock()
        self.answering = True
        self.running = True
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while self.running:
            try:
                m = self.bus.recv(0.1)
            except can.CanError:
                time.sleep(0.1)
                continue
            if m is None or m.is_error_frame:
                continue
            with self.lock:
                self.requests.append((time.monotonic(), m.arbitration_id, bytes(m.data),
                                      m.is_extended_id))
            ident = m.arbitration_id
            if (m.is_extended_id and ident >> 24 == 0x18 and ident & 0xFFFF == 0x0140
                    and self.answering):
                cmd = (ident >> 16) & 0xFF
                if cmd in self.answers:
                    self.bus.send(can.Message(arbitration_id=0x18004001 | cmd << 16,
                                              data=self.answers[cmd], is_extended_id=True))

    def asked(self, since=0.0):
        with self.lock:
            return [r for r in self.requests if r[0] >= since]

    def close(self):
        self.running = False
        self.t.join(timeout=2)
        self.bus.shutdown()


def main():
    board1 = {(i >> 16) & 0xFF: d for i, d in capture(BOARD1) if i & 0xFF == 0x01}
    board1[0x98] = next(d for i, d in capture(BOARD2) if i == 0x18984001)
    board2 = [(i, d) for i, d in capture(BOARD2) if i & 0xFF == 0x02]
    check("the captures hold board 1's six answers and board 2's 0x90", set(ASKED) <=
          set(board1) and any(i == 0x18904002 for i, _ in board2), sorted(board1))
    inv = Peer("vcan0")
    board = DalyBoard("vcan1", board1)
    noise = Peer("vcan1")
    with tmpdir() as tmp:
        dm = Daemon('bms: { driver = "daly-can"; port = "vcan1"; };\n'
                    'inverter: { protocol = "pylontech"; port = "vcan0"; };\n'
                    'safety: { comm_loss = "zero"; stale_timeout_ms = 3000; };\n', tmp, "dalycan")
        try:
            t0 = time.monotonic()
            wait_for(lambda: len(board.asked()) >= 18, 6)
            got = board.asked()
            ids = [r[1] for r in got]
            check("the daemon asks 0x90-0x94 and 0x98 on 29-bit ids 0x18 <ID> 01 40",
                  all(0x18000140 | c << 16 in ids for c in ASKED) and all(r[3] for r in got),
                  ["%x" % i for i in ids[:8]])
            check("each request has 8 zero bytes (V1.0 §3: reserved)",
                  got and all(r[2] == bytes(8) for r in got), got[:2])
            n90 = [r for r in got if r[1] == 0x18900140]
            span = n90[-1][0] - n90[0][0] if len(n90) > 1 else 0
            check("about once a second (%d rounds of 0x90 in %.1f s)" % (len(n90), span),
                  len(n90) >= 3 and 0.8 * (len(n90) - 1) <= span <= 1.3 * (len(n90) - 1),
                  [round(r[0] - t0, 2) for r in n90])

            f356 = wait_for(lambda: inv.frames(0x356), 10)
            check("0x356 on the inverter side carries 26.30 V and 0.0 A from the board",
                  f356 and le(f356[-1][2], 0) == 2630 and le(f356[-1][2], 2, True) == 0,
                  f356[-1][2].hex() if f356 else dm.log()[-5:])
            f355 = inv.frames(0x355)
            check("0x355 carries SOC 70 %",
                  f355 and le(f355[-1][2], 0) == 70, f355[-1][2].hex() if f355 else "")
            f351 = wait_for(lambda: [f for f in inv.frames(0x351) if le(f[2], 2) > 0], 15)
            check("0x351: a charge current above 0 (no limit from Daly, the user's caps)",
                  f351, [f[2].hex() for f in inv.frames(0x351)[-3:]])

            # what is not board 1's answer to us: board 2 (26.9 V, SOC 81.1 %), the
            # same number as an 11-bit id, a Bluetooth master (0x80) asking board 1
            # and an answer to it
            t1 = time.monotonic()
            for _ in range(10):
                for ident, data in board2:
                    noise.send(ident, data, ext=True)
                noise.send(0x001, bytes.fromhex("010D00007566032B"))
                noise.send(0x18908001, bytes.fromhex("010D00007566032B"), ext=True)
                noise.send(0x18900180, bytes(8), ext=True)
                time.sleep(0.3)
            during = [f for f in inv.frames(0x356, since=t1)]
            soc = [le(f[2], 0) for f in inv.frames(0x355, since=t1)]
            check("while they ran (3 s): board 1's values only, 26.30 V, SOC 70 %% (%d frames)"
                  % len(during),
                  len(during) >= 2 and all(le(f[2], 0) == 2630 for f in during) and
                  soc and all(s == 70 for s in soc),
                  [f[2].hex() for f in during] + soc)
            check("no frame rejected as malformed, the daemon alive",
                  dm.alive() and not any("rejected" in l for l in dm.log()), dm.log()[-5:])

            # the board goes silent
            board.answering = False
            t_stop = time.monotonic()
            zero = wait_for(lambda: [f for f in inv.frames(0x351, since=t_stop)
                                     if le(f[2], 4) == 0 and le(f[2], 2) == 0], 8)
            check("board silent: CCL = DCL = 0 within stale_timeout (%.1f s)"
                  % (time.monotonic() - t_stop), zero, dm.log()[-5:])
        finally:
            dm.stop()
            board.close()
            noise.close()
            inv.close()
    return finish()


if __name__ == "__main__":
    sys.exit(main())
