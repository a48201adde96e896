#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The real bmsbridged's daly-can driver against a Daly board written from the
Daly "CAN Communications Protocol" V1.0 alone (tests/readers/
daly_can_board.py, by someone who had not read the driver), with what the
inverter is told read on vcan0 by the independent inverter reader
(tests/readers/can_inverter_reader.py), which also plays the inverter.

For each inverter protocol (luxpower: cell voltage and temperature extremes
in 0x355/0x356; growatt: cell extremes with their numbers and the cell count
in 0x319/0x312), the board on vcan1 goes through three states: ordinary
(charging), negative current with sub-zero temperatures and no "gather"
voltage (as a real board sends), and a wide cell spread with the two pack
voltages apart, then the charge MOSFET off. Checked:
  - every request the daemon sent is valid per V1.0 (0 invalid), all to
    board 1, each answered;
  - the daemon polls at a sane rate: every data id it uses at least once
    per 5 s (its stale timeout is 10 s) and at most 5 times a second, all
    of them under 50 frames/s (2-3 % of a 250 kbit/s bus; V1.0 §1);
  - the set on vcan0 conforms to the inverter's document, and carries the
    board's voltage, current, SOC and the extremes the protocol has, at
    the coarser of the two wires' resolutions.
Then a board at board number 2 (the daemon asks board 1): it answers
nothing, and none of its values reaches the inverter.

Usage: test-daly-can-board.py BUILD_DIR (vcan0, vcan1 up). TAP.
"""
import os
import sys
import threading
import time

from canpeer import Daemon, Peer, check, finish, tmpdir, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "readers"))
import can_inverter_reader as CAN  # noqa: E402
import daly_can_board as DALY  # noqa: E402
from accepted import accepted  # noqa: E402

INVERTER_IDS = {0x300, 0x301, 0x305, 0x306, 0x307}

STATES = [
    ("ordinary", DALY.State(
        cumulative_v=53.0, gather_v=53.0, current_a=25.4, soc_pct=64.7,
        cell_max_mv=3321, cell_max_no=5, cell_min_mv=3298, cell_min_no=12,
        temp_max_c=27, temp_max_no=2, temp_min_c=22, temp_min_no=1,
        life=17, remaining_mah=181000, cells=16, sensors=2, charger=1)),
    ("negative current, sub-zero", DALY.State(
        cumulative_v=52.1, gather_v=0.0, current_a=-48.6, soc_pct=38.2,
        cell_max_mv=3262, cell_max_no=9, cell_min_mv=3247, cell_min_no=3,
        temp_max_c=-2, temp_max_no=1, temp_min_c=-11, temp_min_no=2,
        life=200, remaining_mah=107000, cells=16, sensors=2, load=1)),
    ("wide cell spread", DALY.State(
        cumulative_v=51.2, gather_v=51.4, current_a=-3.1, soc_pct=12.0,
        cell_max_mv=3455, cell_max_no=16, cell_min_mv=2987, cell_min_no=1,
        temp_max_c=31, temp_max_no=3, temp_min_c=18, temp_min_no=1,
        life=254, remaining_mah=33600, cells=16, sensors=3, load=1,
        failures=("Diff volt level 1",))),
    # the charge MOSFET off (§3 0x93 byte 1; 1 = on in the real reads, C11): the
    # battery cannot take a charge, whatever its other values
    ("charge MOS off", DALY.State(
        cumulative_v=51.6, gather_v=51.6, current_a=0.0, soc_pct=13.5,
        cell_max_mv=3240, cell_max_no=2, cell_min_mv=3205, cell_min_no=14,
        temp_max_c=28, temp_max_no=3, temp_min_c=19, temp_min_no=1,
        charge_mos=0, discharge_mos=1, life=40, remaining_mah=37800, cells=16, sensors=3)),
]
OTHER = DALY.State(cumulative_v=53.7, gather_v=53.7, current_a=-7.7, soc_pct=77.3,
                   cell_max_mv=3377, cell_max_no=4, cell_min_mv=3333, cell_min_no=8,
                   temp_max_c=33, temp_min_c=29, temp_min_no=2, sensors=2)


class Loop:
    """Sends FRAMES every PERIOD seconds on PEER until stopped."""

    def __init__(self, peer, frames, period):
        self.peer, self.frames, self.period = peer, frames, period
        self.running = True
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while self.running:
            for ident, data in self.frames:
                self.peer.send(ident, data)
            time.sleep(self.period)

    def stop(self):
        self.running = False
        self.t.join(timeout=3)


def last_set(frames):
    out = {}
    for _, ident, data in frames:
        if ident not in INVERTER_IDS:
            out[ident] = data
    return sorted(out.items())


def mismatches(protocol, s, dec):
    """What the inverter is told against board state @s: a list of differences."""
    err = []

    def near(key, want, tol, what):
        got = dec.get(key)
        if got is None or abs(got - want) > tol:
            err.append("%s: inverter %s = %r, the board says %s" % (what, key, got, want))

    # §3 0x90: voltage 0.1 V (the inverter wires: 0.01 V); cumulative, or gather if any (C3)
    v = dec.get("pack_voltage_v")
    if v is None or not (abs(v - s.cumulative_v) <= 0.011 or
                         (s.gather_v > 0 and abs(v - s.gather_v) <= 0.011)):
        err.append("voltage: inverter %r V, the board says cumulative %s V, gather %s V"
                   % (v, s.cumulative_v, s.gather_v))
    near("current_a", s.current_a, 0.051, "current (0.1 A both; + = charge, C2)")
    soc = dec.get("soc_pct")
    if soc is None or not abs(soc - s.soc_pct) < 1.0:
        err.append("SOC: inverter %r %%, the board says %s %% (0.1 %%)" % (soc, s.soc_pct))
    # §3 0x91: 1 mV, the inverters 1 mV
    near("max_cell_voltage_v", s.cell_max_mv / 1000, 0.0011, "max cell voltage")
    near("min_cell_voltage_v", s.cell_min_mv / 1000, 0.0011, "min cell voltage")
    # §3 0x92: 1 C, the inverters 0.1 C
    near("max_cell_temperature_c", s.temp_max_c, 0.051, "max temperature")
    if protocol == "luxpower":
        near("min_cell_temperature_c", s.temp_min_c, 0.051, "min temperature")
    if protocol == "growatt":
        for key, want in (("max_cell_voltage_number", s.cell_max_no),
                          ("min_cell_voltage_number", s.cell_min_no)):
            if dec.get(key) != want:
                err.append("%s: inverter %r, the board says %d (0x91 bytes 2/5)"
                           % (key, dec.get(key), want))
        near("remaining_capacity_ah", s.remaining_mah / 1000, 0.0051,
             "remaining capacity (0x93 bytes 4-7, mAh; Growatt 0.01 Ah)")
    return err


def count_mismatch(protocol, s, dec):
    """§3 0x94 byte 0 "Number of battery strings" (cells in series) against
    what the inverter is told (Growatt 0x312 byte 7 "Total Cell Number")."""
    if protocol != "growatt" or dec.get("total_cell_count") == s.cells:
        return []
    return ["total_cell_count: inverter %r, the board says %d (0x94 byte 0)"
            % (dec.get("total_cell_count"), s.cells)]


def rates(board, t0, t1):
    """{data id: requests per second} of the valid requests in [t0, t1]."""
    reqs = [r for r in board.requests if t0 <= r[0] <= t1]
    span = max(t1 - t0, 1e-3)
    out = {}
    for _, did, _ in reqs:
        out[did] = out.get(did, 0) + 1
    return {k: v / span for k, v in sorted(out.items())}, reqs


def run_protocol(protocol):
    bus = DALY.BoardOnBus("vcan1", STATES[0][1], board=1)
    board = bus.board
    inv = Peer("vcan0")
    period = 0.5 if protocol == "growatt" else 1.0
    played = Loop(inv, [(i, d) for i, d, _ in CAN.inverter_frames(protocol) if i != 0x300],
                  period)
    cycles = []
    try:
        with tmpdir() as tmp:
            dm = Daemon('bms: { driver = "daly-can"; port = "vcan1"; };\n'
                        'inverter: { protocol = "%s"; port = "vcan0"; };\n'
                        'safety: { comm_loss = "zero"; };\n' % protocol, tmp, "daly-" + protocol)
            try:
                t_start = time.monotonic()
                for name, s in STATES:
                    board.set_state(s)
                    t_set = time.monotonic()

                    def current():
                        got = inv.frames(since=max(t_set + 0.5, time.monotonic() - 2.5))
                        fs = last_set(got)
                        return fs, (CAN.decode(protocol, fs) if fs else {})
                    wait_for(lambda: not mismatches(protocol, s, current()[1]), 20, step=0.25)
                    fs, dec = current()
                    viol = [v for v in CAN.check(protocol, fs)
                            if not accepted(protocol, False, v, has_full_capacity=False)] if fs else ["no frames on vcan0"]
                    check("%s, %s: the set on vcan0 conforms to its document (%d ids)"
                          % (protocol, name, len(fs)), not viol,
                          "\n".join(viol) + "\n" + "\n".join(dm.log()[-8:]))
                    err = mismatches(protocol, s, dec)
                    check("%s, %s: the inverter is told the board's voltage, current, SOC, "
                          "cell and temperature extremes" % (protocol, name), not err,
                          "\n".join(err + dm.log()[-8:]))
                    if not s.charge_mos:
                        def no_charge():
                            d = current()[1]
                            return d.get("charge_enable") is False or \
                                d.get("charge_current_limit_a") == 0
                        wait_for(no_charge, 10, step=0.25)
                        d = current()[1]
                        check("%s, %s: the inverter is not let charge (charge enable %r, "
                              "CCL %r A)" % (protocol, name, d.get("charge_enable"),
                                             d.get("charge_current_limit_a")), no_charge(),
                              "\n".join(dm.log()[-8:]))
                    if protocol == "growatt":
                        err = count_mismatch(protocol, s, dec)
                        check("%s, %s: the inverter is told the board's cell count"
                              % (protocol, name), not err, "\n".join(err))
                    # Daly CAN V1.0 has no charge-cycle count: 0x93 byte 3 is a life
                    # counter (daly_can_board.py C4) and must not reach the inverter as one
                    cyc = dec.get("cycle_count")
                    check("%s, %s: the 0x93 life counter is not passed as a cycle count "
                          "(inverter: %r)" % (protocol, name, cyc), cyc in (None, 0), cyc)
                    print("# %s, %s: protection %s, alarms/warnings %s (board 0x98: %s)"
                          % (protocol, name, sorted(dec.get("protection_flags", ())),
                             sorted(dec.get("alarm_flags", dec.get("warning_flags", ()))),
                             list(s.failures)), flush=True)
                    print("# %s, %s: inverter SOC %r %% (board %s %%)%s"
                          % (protocol, name, dec.get("soc_pct"), s.soc_pct,
                             "" if protocol != "growatt" else
                             "; 0x315-0x318 cells %r V; 0x314 RM %r Ah, FCC %r Ah"
                             % (sorted(dec.get("cell_voltages_v", {}).items()),
                                dec.get("remaining_capacity_ah"),
                                dec.get("full_charge_capacity_ah"))), flush=True)
                    cycles.append((name, s.life, dec.get("cycle_count"),
                                   dec.get("pack_voltage_v"), s.cumulative_v, s.gather_v))
                t_end = time.monotonic()
                c = board.counts()
                check("%s: every request the daemon sent is valid per Daly CAN V1.0 "
                      "(%d valid, %d invalid)" % (protocol, c["valid"], c["invalid"]),
                      c["valid"] > 0 and c["invalid"] == 0,
                      "\n".join("%s: %s" % (f, why) for _, why, f in board.invalid[:20]))
                check("%s: all to board 1 and each answered (%d to board 1, %d to others, "
                      "%d frames sent)" % (protocol, c["mine"], c["other_board"], c["sent"]),
                      c["mine"] == c["valid"] and c["other_board"] == 0 and c["sent"] >= c["mine"],
                      c)
                # the rate once the daemon runs: from its first request on
                first = min((r[0] for r in board.requests), default=t_start)
                r, reqs = rates(board, first + 1.0, t_end)
                total = sum(r.values())
                desc = ", ".join("0x%02X %.2f/s" % (k, v) for k, v in r.items())
                gaps = {}
                for did in r:
                    ts = [t for t, d, _ in reqs if d == did]
                    gaps[did] = max((b - a for a, b in zip(ts, ts[1:])), default=99.0)
                worst = max(gaps.values()) if gaps else 99.0
                check("%s: polls at a sane rate (%s; total %.1f/s; longest gap %.2f s)"
                      % (protocol, desc, total, worst),
                      0x90 in r and total <= 50.0 and all(v <= 5.0 for v in r.values()) and
                      worst <= 5.0, gaps)
                for name, life, cyc, v, cum, gat in cycles:
                    print("# %s, %s: 0x93 life byte from %d; inverter cycle count %r; "
                          "inverter voltage %r V (cumulative %s, gather %s)"
                          % (protocol, name, life, cyc, v, cum, gat), flush=True)
                print("# %s: the daemon asked for %s" % (protocol, desc), flush=True)
            finally:
                dm.stop()
    finally:
        played.stop()
        inv.close()
        bus.close()


def run_other_board(protocol="luxpower"):
    bus = DALY.BoardOnBus("vcan1", OTHER, board=2)
    board = bus.board
    inv = Peer("vcan0")
    played = Loop(inv, [(i, d) for i, d, _ in CAN.inverter_frames(protocol) if i != 0x300], 1.0)
    try:
        with tmpdir() as tmp:
            dm = Daemon('bms: { driver = "daly-can"; port = "vcan1"; };\n'
                        'inverter: { protocol = "%s"; port = "vcan0"; };\n'
                        'safety: { comm_loss = "zero"; };\n' % protocol, tmp, "daly-other")
            try:
                wait_for(lambda: board.counts()["other_board"] >= 12, 15)
                time.sleep(2.0)
                c = board.counts()
                check("board 2: the daemon's requests are valid and for board 1 (%d), "
                      "board 2 answers none (%d), %d invalid"
                      % (c["other_board"], c["mine"], c["invalid"]),
                      c["other_board"] > 0 and c["mine"] == 0 and c["invalid"] == 0, c)
                seen = []
                for _, ident, data in inv.frames():
                    if ident in INVERTER_IDS:
                        continue
                    d = CAN.decode(protocol, [(ident, data)])
                    for key, want, tol in (("pack_voltage_v", OTHER.cumulative_v, 0.011),
                                           ("current_a", OTHER.current_a, 0.051),
                                           ("soc_pct", OTHER.soc_pct, 0.99),
                                           ("max_cell_voltage_v", OTHER.cell_max_mv / 1000,
                                            0.0011),
                                           ("max_cell_temperature_c", OTHER.temp_max_c, 0.051)):
                        if d.get(key) is not None and abs(d[key] - want) <= tol:
                            seen.append("0x%03X %s: %s = %r" % (ident, data.hex(), key, d[key]))
                n = len([f for f in inv.frames() if f[1] not in INVERTER_IDS])
                check("board 2: none of its values reaches the inverter (%d frames on vcan0)" % n,
                      not seen, "\n".join(seen[:10]))
                never = [l for l in dm.log() if "never" in l or "no answer" in l.lower()]
                print("# board 2: the daemon logged: %s" % (never[:2] or dm.log()[-3:]),
                      flush=True)
            finally:
                dm.stop()
    finally:
        played.stop()
        inv.close()
        bus.close()


def main():
    for protocol in ("luxpower", "growatt"):
        run_protocol(protocol)
    run_other_board()
    return finish()


if __name__ == "__main__":
    sys.exit(main())
