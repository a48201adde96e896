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
- the board goes silent: the inverter gets CCL = DCL = 0 (comm_loss zero);
- several boards on one bus (bms.addresses = [1, 2, 3], one pack each):
  three simulated boards answer with real answers (board 1 the #212
  board's, board 2 the #249 board 2's with its 0x98 from #215, board 3 a
  second copy of board 1's); every request of every round reaches its
  board (18 a second: counted, none dropped by the send queue), the bank
  reaches the inverter (bmsbridge-safety(7) "Several packs": voltage the
  average, current the sum); board 2 unplugged: its pack goes stale
  ("packs online: 2 of 3"), the other two go on (limits not zero).

Usage: test-daly-can.py BUILD_DIR (vcan0, vcan1 up). TAP.
"""
import os
import re
import sys
import threading
import time

import can  # python3-can

from canpeer import Daemon, Notify, Peer, capture, check, finish, tmpdir, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
BOARD1 = os.path.join(HERE, "..", "data", "daly-can-8s-addr1.log")
BOARD2 = os.path.join(HERE, "..", "data", "daly-can-8s-addr2.log")
BOARD3 = os.path.join(HERE, "..", "data", "daly-can-16s-addr3.log")
ASKED = [0x90, 0x91, 0x92, 0x93, 0x94, 0x98]


def le(d, a, signed=False):
    return int.from_bytes(d[a:a + 2], "little", signed=signed)


class DalyBoard:
    """Board BOARD on IFACE: answers each request 0x18 <ID> <BOARD> 40 with its captured answer."""

    def __init__(self, iface, answers, board=1):
        self.bus = can.interface.Bus(interface="socketcan", channel=iface)
        self.answers = answers  # {ID: data}
        self.board = board
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
            if (m.is_extended_id and ident >> 24 == 0x18
                    and ident & 0xFFFF == self.board << 8 | 0x40 and self.answering):
                cmd = (ident >> 16) & 0xFF
                if cmd in self.answers:
                    self.bus.send(can.Message(arbitration_id=0x18004000 | cmd << 16 | self.board,
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
    boards(board1)
    return finish()


def rounds(requests):
    """The requests (time, id) split into rounds: bursts more than 0.3 s apart."""
    out = []
    for t, ident in requests:
        if not out or t - out[-1][-1][0] > 0.3:
            out.append([])
        out[-1].append((t, ident))
    return out


def boards(board1):
    """Three boards on one bus, one pack each; board 2 unplugged."""
    board2 = {(i >> 16) & 0xFF: d for i, d in capture(BOARD2) if i & 0xFF == 0x02}
    board2[0x98] = next(d for i, d in capture(BOARD3) if i == 0x18984002)
    check("#249 holds board 2's 0x90-0x94, #215 its 0x98", set(ASKED) <= set(board2),
          sorted(board2))
    inv = Peer("vcan0")
    b = {1: DalyBoard("vcan1", board1, 1), 2: DalyBoard("vcan1", board2, 2),
         3: DalyBoard("vcan1", board1, 3)}
    want = sorted(0x18000040 | c << 16 | n << 8 for n in (1, 2, 3) for c in ASKED)
    with tmpdir() as tmp:
        note = Notify(tmp)
        dm = Daemon('bms: { driver = "daly-can"; port = "vcan1"; addresses = [1, 2, 3]; };\n'
                    'inverter: { protocol = "pylontech"; port = "vcan0"; };\n'
                    'safety: { comm_loss = "zero"; stale_timeout_ms = 3000; };\n'
                    'status_interval_s = 1;\n', tmp, "dalyboards", env=note.env())
        try:
            t0 = time.monotonic()
            dm.wait_log(r"packs online: 3 of 3", 10)
            # 6 s of requests, heard by board 1 (every board hears the whole bus)
            while time.monotonic() - t0 < 6.2:
                note.poll()  # each STATUS= dated as it comes
                time.sleep(0.02)
            t1 = time.monotonic()
            req = [(r[0], r[1]) for r in b[1].asked(t0) if r[0] < t1 and r[3] and
                   r[1] >> 24 == 0x18 and r[1] & 0xFF == 0x40]
            full = rounds(req)[1:-1]  # whole rounds only
            bad = [sorted(i for _, i in r) for r in full if sorted(i for _, i in r) != want]
            check("3 boards: every round asks each board 0x90-0x94 and 0x98, 18 ids once "
                  "each (%d whole rounds, %d short or doubled)" % (len(full), len(bad)),
                  len(full) >= 4 and not bad, ["%x" % i for i in (bad[0] if bad else [])])
            if len(full) >= 2:
                span = full[-1][0][0] - full[0][0][0]
                n = sum(len(r) for r in full[:-1])
                rate = n / span if span > 0 else 0
                burst = max(r[-1][0] - r[0][0] for r in full)
                check("%.1f request frames a second (%d in %.2f s), each round's 18 within "
                      "%.1f ms" % (rate, n, span, burst * 1000),
                      16 <= rate <= 20 and burst < 0.25, rate)
            # the daemon's own count (STATUS=, "daly-can on vcan1 ..., N tx, N rx, N dropped
            # (N stale)") against the requests the boards heard by then (a STATUS= written
            # within a round's few ms may come before or after that round)
            heard = [r[0] for r in b[1].asked(t0) if r[3] and r[1] & 0xFF == 0x40]
            st = []
            for t, m in note.poll():
                g = re.search(r"daly-can on vcan1 [^,]*, (\d+) tx, \d+ rx, (\d+) dropped "
                              r"\((\d+) stale\)", m)
                if g and t0 < t <= t1 and int(g.group(1)) > 0:
                    st.append((t, int(g.group(1)), int(g.group(2)), int(g.group(3))))
            if st:
                t, tx, dropped, stale = st[-1]
                n_heard = {sum(1 for h in heard if h <= t), sum(1 for h in heard if h < t - 0.1)}
                check("the send queue kept every request: %d sent by the daemon's count, %s "
                      "heard by the boards, %d dropped, %d stale" % (tx, sorted(n_heard),
                                                                     dropped, stale),
                      tx in n_heard and dropped == 0 and stale == 0, st[-3:])
            else:
                check("the daemon's STATUS= counts requests", False, note.poll()[-3:])
            # the bank: voltage the average of 26.30, 26.90, 26.30 V; current the sum,
            # 0 - 5.4 + 0 A (bmsbridge-safety(7) "Several packs")
            f356 = wait_for(lambda: [f for f in inv.frames(0x356, since=t0)
                                     if abs(le(f[2], 0) - 2650) <= 1], 10)
            check("0x356: the three packs' bank, 26.50 V and -5.4 A",
                  f356 and le(f356[-1][2], 2, True) == -54,
                  [f[2].hex() for f in inv.frames(0x356)[-3:]])
            soc = [le(f[2], 0) for f in inv.frames(0x355, since=t0)]
            check("0x355: the bank's SOC between the packs' 70 %% and 81 %% (%s)"
                  % (soc[-1] if soc else None), soc and 70 <= soc[-1] <= 81, soc[-3:])

            # board 2 unplugged
            m = dm.mark()
            b[2].answering = False
            t2 = time.monotonic()
            gone = dm.wait_log(r"packs online: 2 of 3", 8, since=m)
            check("board 2 silent: its pack goes stale, 'packs online: 2 of 3' (%.1f s)"
                  % (time.monotonic() - t2), gone, dm.log(m)[-5:])
            t3 = time.monotonic()
            time.sleep(2.5)
            after = inv.frames(0x356, since=t3)
            check("boards 1 and 3 go on: 0x356 26.30 V and 0.0 A (%d frames)" % len(after),
                  after and all(le(f[2], 0) == 2630 and le(f[2], 2, True) == 0
                                for f in after), [f[2].hex() for f in after[-3:]])
            lim = inv.frames(0x351, since=t3)
            check("and the limits stay open: CCL and DCL above 0 (min_packs_online 1)",
                  lim and all(le(f[2], 2) > 0 and le(f[2], 4) > 0 for f in lim),
                  [f[2].hex() for f in lim[-3:]])
            req = [r for r in b[1].asked(t2) if r[3] and r[1] == 0x18900240]
            check("board 2 is still asked every second (%d times)" % len(req), len(req) >= 3)
            # plugged back
            m = dm.mark()
            b[2].answering = True
            back = dm.wait_log(r"packs online: 3 of 3", 10, since=m)
            check("board 2 back: 'packs online: 3 of 3'", back, dm.log(m)[-5:])
            check("no frame rejected as malformed, the daemon alive",
                  dm.alive() and not any("rejected" in l for l in dm.log()), dm.log()[-5:])
        finally:
            dm.stop()
            for x in b.values():
                x.close()
            inv.close()
            note.close()


if __name__ == "__main__":
    sys.exit(main())
