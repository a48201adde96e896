#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The real daemon against packs written from the BMS documents alone.

For every polled serial BMS family, tests/readers/bms_pack_reader.py plays
the pack(s) on one side of a pty; bmsbridged reads them (bms { driver; port;
addresses }) and writes Victron frames in candump format; the frames are
read by tests/readers/can_inverter_reader.py and compared, at the wire's
resolution, with the state the packs were given (the bank rules of
bmsbridge-safety(7), "Several packs", for two packs). Every request the
daemon sent must be valid per the family's document.

    test-bms-readers.py BUILD_DIR [FAMILY...]
"""
import concurrent.futures
import os
import signal
import subprocess
import sys
import tempfile
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pyhelpers"))
sys.path.insert(0, os.path.join(HERE, "..", "readers"))
from tap import check, finish, wait_for  # noqa: E402
import bms_pack_reader as bpr  # noqa: E402
import can_inverter_reader as cir  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BUILD_DIR",
                                                               "build")
ONLY = sys.argv[2:]
SRC = os.environ.get("SRC_DIR", os.path.join(HERE, "..", ".."))
DAEMON = os.path.join(BUILD, "bmsbridged")
S = bpr.PackState


def cells(base, spread=0, n=16):
    """n cells from base to base + spread (mV), the highest last."""
    return [base + (spread * i) // (n - 1) for i in range(n)]


# --------------------------------------------------------------------------
# the states: per family an ordinary one, an edge one (negative current,
# sub-zero temperatures, high cell spread) and, where the family has
# addresses, two packs at two addresses. Values are chosen exactly
# representable in the family's own encoding (Daly: whole C, 0.1 V; JBD:
# whole % SOC), so the expectation is the state itself.
# --------------------------------------------------------------------------
def ordinary(cap=100, soc=63.4, cur=12.3, temps=(21.4, 22.0, 23.5, 22.7),
             base=3301, spread=23, soh=97.5, cyc=41):
    c = cells(base, spread)
    return S(c, list(temps), cur, soc, cap, soh_pct=soh, cycles=cyc,
             mos_c=temps[1] + 0.3, env_c=temps[2] - 0.4)


def edge(cap=100, soc=18.7, cur=-42.7, temps=(-5.3, -3.1, -1.2, -4.4),
         base=3000, spread=420, soh=88.0, cyc=530):
    c = cells(base, spread)
    return S(c, list(temps), cur, soc, cap, soh_pct=soh, cycles=cyc,
             mos_c=temps[1] - 0.2, env_c=temps[0] + 0.5)


def states(family):
    """[(label, {address: PackState})]"""
    if family == "pylontech-rs485":
        return [("ordinary, 100 Ah (user items 4)", {2: ordinary()}),
                ("edge: -42.7 A, -5.3 C, 420 mV spread, 50 Ah (user items 2)",
                 {2: edge(cap=50)}),
                ("two packs at 2 and 3",
                 {2: ordinary(cap=100, soc=55.0, cur=10.0),
                  3: edge(cap=50, soc=80.0, cur=-25.5,
                          temps=(3.5, 4.1, 6.6, 5.0), base=3250, spread=90)})]
    if family in ("seplos-v2", "pace", "seplos-v3"):
        a, b = {"seplos-v2": (0, 1), "pace": (1, 2), "seplos-v3": (1, 2)}[
            family]
        return [("ordinary, address %d" % a, {a: ordinary(cap=200)}),
                ("edge: -42.7 A, -5.3 C, 420 mV spread", {a: edge(cap=200)}),
                ("two packs at %d and %d" % (a, b),
                 {a: ordinary(cap=200, soc=55.0, cur=10.0),
                  b: edge(cap=100, soc=80.0, cur=-25.5,
                          temps=(3.5, 4.1, 6.6, 5.0), base=3250,
                          spread=90)})]
    if family == "jbd":
        return [("ordinary", {1: ordinary(soc=63.0)}),
                ("edge: -42.7 A, -5.3 C, 420 mV spread",
                 {1: edge(soc=19.0)}),
                ("charging near full, warm",
                 {1: ordinary(cap=280, soc=96.0, cur=55.4,
                              temps=(31.2, 33.9, 35.0, 32.2), base=3380,
                              spread=40)})]
    if family == "daly":
        def d(st):   # whole C, 0.1 V (Daly V1.2 §3)
            st.temps_c = [float(round(t)) for t in st.temps_c]
            st.mos_c, st.env_c = st.temps_c[1], st.temps_c[2]
            st.voltage_mv = int(round(st.voltage_mv / 100.0)) * 100
            return st
        return [("ordinary", {1: d(ordinary())}),
                ("edge: -42.7 A, -5 C, 420 mV spread", {1: d(edge())}),
                ("charging near full, warm",
                 {1: d(ordinary(cap=280, soc=96.0, cur=55.4,
                                temps=(31, 34, 35, 32), base=3380,
                                spread=40))})]
    if family in ("pace-modbus", "eg4-lifepower4"):
        # SOC and SOH are whole % in both documents (Pace Modbus §4.1
        # registers 2-3 UINT8 %; LifePower4 §2.1 items 33-34 "1%").
        # Capacity: Pace 10 mAh unsigned, LifePower4 10 mAh signed (a
        # LifePower4 is a 100 Ah pack).  Addresses 1-15 in both (address 0
        # is the broadcast / "Master" DIP setting): the edge pack sits at
        # 15 (all four switches on), the two packs at 1 and 2
        big = 200 if family == "pace-modbus" else 100
        return [("ordinary, address 1",
                 {1: ordinary(cap=big, soc=63.0, soh=97.0)}),
                ("edge: -42.7 A, -5.3 C, 420 mV spread, address 15",
                 {15: edge(cap=big, soc=19.0)}),
                ("two packs at 1 and 2",
                 {1: ordinary(cap=big, soc=55.0, cur=10.0, soh=97.0),
                  2: edge(cap=100, soc=80.0, cur=-25.5, soh=91.0,
                          temps=(3.5, 4.1, 6.6, 5.0), base=3250,
                          spread=90)})]
    if family == "eg4-ll":
        # EG4-LL V01.06 §3: temperatures whole C (0018-0020 SHORT C, 0033-
        # 0035 one byte per sensor, 6 sensors), SOC/SOH whole % (0023,
        # 0024), voltage 10 mV (0000), current 10 mA (0001).  The states
        # give the 6 sensors, the PCB (0018) as the MOS temperature and an
        # ambient one (no register) equal to a sensor.  Full capacity
        # (0031-0032, mAs) = SOH x the designed 100 Ah (0037, 0.1 Ah), so
        # the two differ and capacity_ah (the full one) tells which was
        # read.  Addresses (§1.3): 16 = 0x10, the master BMS and the
        # factory default; 15 = 0x0F, the last slave module (all DIP
        # switches OFF); 16 and 1 together
        def ll(st, six):
            st.temps_c = list(six)
            st.mos_c, st.env_c = float(six[1]), float(six[2])
            st.voltage_mv = int(round(st.voltage_mv / 10.0)) * 10
            st.design_ah = 100.0
            return st
        return [("ordinary, address 16 (0x10, master BMS)",
                 {16: ll(ordinary(cap=97, soc=63.0, soh=97.0),
                         (21, 22, 24, 23, 22, 21))}),
                ("edge: -42.7 A, -5 C, 420 mV spread, address 15",
                 {15: ll(edge(cap=88, soc=19.0), (-5, -3, -1, -4, -2, -4))}),
                ("two packs at 16 and 1",
                 {16: ll(ordinary(cap=97, soc=55.0, cur=10.0, soh=97.0),
                         (21, 22, 24, 23, 22, 21)),
                  1: ll(edge(cap=91, soc=80.0, cur=-25.5, soh=91.0,
                             base=3250, spread=90), (4, 4, 7, 5, 6, 3))})]
    raise ValueError(family)


FAMILY_NAMES = ["pylontech-rs485", "seplos-v2", "pace", "jbd", "daly",
                "seplos-v3", "pace-modbus", "eg4-lifepower4", "eg4-ll"]
# what the family's document carries (a field it lacks is not compared)
HAS_SOH = {"pylontech-rs485": False, "seplos-v2": True, "pace": False,
           "jbd": False, "daly": False, "seplos-v3": True,
           "pace-modbus": True, "eg4-lifepower4": True, "eg4-ll": True}
# bms group settings a user sets for the family (bmsbridge.conf(5), POLLED
# SERIAL BMS): the LifePower4 is slow, "start with response_timeout_ms =
# 500 and request_gap_ms = 200"
EXTRA_CONF = {"eg4-lifepower4": "response_timeout_ms = 500; "
                                "request_gap_ms = 200; "}
HAS_CAPACITY = {"daly": False}


# --------------------------------------------------------------------------
# the expectation: bmsbridge-safety(7) "Several packs" for the bank
# --------------------------------------------------------------------------
def expected(family, packs):
    ps = list(packs.values())
    cap = sum(p.capacity_ah for p in ps)
    temps = [t for p in ps for t in p.all_temps_c()]
    cells_ = [c for p in ps for c in p.cells_mv]
    e = {
        # "voltage is the average, current the sum"
        "pack_voltage_v": (sum(p.voltage_mv for p in ps) / len(ps) / 1000.0,
                           0.01),
        "current_a": (sum(p.current_a for p in ps), 0.1),
        # "SOC and SOH are weighted by capacity"
        "soc_pct": (sum(p.soc_pct * p.capacity_ah for p in ps) / cap, 1.0),
        "soc_hires_pct": (sum(p.soc_pct * p.capacity_ah for p in ps) / cap,
                          0.01),
        # "cell and temperature extremes are those of the whole bank"
        "min_cell_voltage_v": (min(cells_) / 1000.0, 0.001),
        "max_cell_voltage_v": (max(cells_) / 1000.0, 0.001),
        # 0x373: whole kelvin; 0x356: 0.1 C, the highest (bmsbridge-
        # protocols(7): SMA names no statistic; every sensor of the state
        # lies within the cell sensors' range, so any choice is the same)
        "min_cell_temperature_k": (min(temps) + 273.15, 1.0),
        "max_cell_temperature_k": (max(temps) + 273.15, 1.0),
        "temperature_c": (max(temps), 0.1),
    }
    if HAS_SOH[family]:
        e["soh_pct"] = (sum(p.soh_pct * p.capacity_ah for p in ps) / cap, 1.0)
    if HAS_CAPACITY.get(family, True):
        # "capacities add up"; 0x35F: the bank's full capacity
        e["capacity_ah"] = (cap, 1.0)
    return e


# --------------------------------------------------------------------------
# one run of the daemon
# --------------------------------------------------------------------------
def candump_frames(path):
    frames = []
    try:
        with open(path) as f:
            for line in f:
                r = cir._parse_line(line)
                if r:
                    frames.append((r[1], r[2]))
    except OSError:
        pass
    return frames


def run(family, packs, tmp, tag):
    master, slave = os.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    fam = bpr.FAMILIES[family](packs)
    stop, thr = bpr.start(master, fam)
    out = os.path.join(tmp, "%s.log" % tag)
    conf = os.path.join(tmp, "%s.conf" % tag)
    with open(conf, "w") as f:
        f.write('dbus = false;\n'
                'bms: { driver = "%s"; port = "%s"; addresses = [%s];\n'
                '       poll_interval_ms = 500; %s};\n'
                'inverter: { protocol = "victron"; output = "candump";\n'
                '            port = "%s"; };\n'
                % (family, port, ", ".join(str(a) for a in sorted(packs)),
                   EXTRA_CONF.get(family, ""), out))
    env = dict(os.environ)
    env["LSAN_OPTIONS"] = "suppressions=" + os.path.join(SRC, "tests",
                                                         "lsan.supp")
    err = open(os.path.join(tmp, "%s.err" % tag), "w+")
    proc = subprocess.Popen([DAEMON, "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=err, env=env)

    def ready():
        ids = {c for c, _ in candump_frames(out)}
        return {0x351, 0x355, 0x356, 0x373} <= ids
    ok = wait_for(ready, 20)
    if ok:
        time.sleep(3.0)          # a few more poll rounds (500 ms each)
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    stop.set()
    thr.join(2)
    os.close(master)
    os.close(slave)
    err.seek(0)
    stderr = err.read()
    err.close()
    return fam, candump_frames(out), rc, stderr, bool(ok)


def last_set(frames):
    """The frames from the last 0x351 on (one transmit period's set)."""
    idx = [i for i, (c, _) in enumerate(frames) if c == 0x351]
    if len(idx) >= 2:
        return frames[idx[-2]:idx[-1]]
    return frames


def main():
    if not os.access(DAEMON, os.X_OK):
        check("bmsbridged built at %s" % DAEMON, False)
        return finish()
    tmp = tempfile.mkdtemp(prefix="bms-readers-")
    table = []
    families = [f for f in FAMILY_NAMES if not ONLY or f in ONLY]
    # every run has its own pty, packs and daemon, and mostly waits: three
    # at a time (the checks below still come in order)
    jobs = {(family, n): (family, packs, tmp, "%s-%d" % (family, n))
            for family in families
            for n, (label, packs) in enumerate(states(family))}
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {k: pool.submit(run, *a) for k, a in jobs.items()}
        results = {k: f.result() for k, f in futures.items()}
    for family in families:
        tot = {"requests": 0, "invalid": 0, "fields": 0, "mismatches": 0,
               "answered": 0}
        for n, (label, packs) in enumerate(states(family)):
            fam, frames, rc, stderr, ok = results[(family, n)]
            name = "%s [%s]" % (family, label)
            tot["requests"] += fam.requests
            tot["invalid"] += fam.invalid
            tot["answered"] += fam.answered
            check("%s: the daemon polled (%d valid requests, by command %s)"
                  % (name, fam.requests,
                     {("%02X" % k if isinstance(k, int) else
                       "%02X@%04X+%d" % k): v
                      for k, v in sorted(fam.by_cmd.items(), key=str)}),
                  fam.requests > 0, stderr)
            check("%s: every request valid per the document (%d invalid)"
                  % (name, fam.invalid), fam.invalid == 0,
                  "\n".join(fam.problems))
            if getattr(fam, "min_gap_s", None) and fam.gaps:
                # Pace Modbus §2 "Interval time of the frame: > 100mS"
                # (EG4-LL §1.2 "Reading time interval: 100mS"),
                # measured on the pack's side of the pty: from our
                # answer's last byte written (or the previous request) to
                # the next request; 2 ms allowed for the pty and threads
                g = min(fam.gaps)
                check("%s: every request > %d ms after the previous frame "
                      "(%s; %d gaps, shortest %.1f ms, 2 ms measuring "
                      "tolerance)" % (name, fam.min_gap_s * 1000,
                                      getattr(fam, "gap_rule", "§2"),
                                      len(fam.gaps), g * 1000),
                      g > fam.min_gap_s - 0.002)
            check("%s: the inverter got frames 0x351 0x355 0x356 0x373"
                  % name, ok, stderr)
            check("%s: the daemon stopped cleanly (exit %s, no sanitizer "
                  "report)" % (name, rc),
                  rc == 0 and "Sanitizer" not in stderr, stderr)
            if not ok:
                continue
            s = last_set(frames)
            viol = cir.check("victron", s, full_set=True)
            check("%s: Victron frames valid per MG v8 / SMA (%d violations)"
                  % (name, len(viol)), not viol, "\n".join(viol))
            got = cir.decode("victron", s)
            for key, (want, tol) in sorted(expected(family, packs).items()):
                g = got.get(key)
                what = key
                if family == "daly" and key == "current_a":
                    what = ("current_a (Daly V1.2 does not say which side "
                            "of 30000 is charge; a real pack's 0x93 state "
                            "does: below is charge)")
                tot["fields"] += 1
                good = g is not None and abs(g - want) <= tol + 1e-6
                if not good:
                    tot["mismatches"] += 1
                check("%s: %s = %s (pack state %.4g, wire step %g)"
                      % (name, what, g, want, tol), good,
                      "decoded: %r" % {k: v for k, v in got.items()
                                       if not isinstance(v, set)})
        table.append((family, tot))
    print("# %-16s %9s %8s %8s %8s %10s" % ("family", "requests", "answered",
                                          "invalid", "fields", "mismatches"))
    for family, t in table:
        print("# %-16s %9d %8d %8d %8d %10d"
              % (family, t["requests"], t["answered"], t["invalid"],
                 t["fields"], t["mismatches"]))
    return finish()


if __name__ == "__main__":
    sys.exit(main())
