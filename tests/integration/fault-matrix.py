#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The fault matrix: faults staged against the real bmsbridged, every frame
judged from the inverter's side.

The BMS is jk-pb-server (simulated JK-PB packs on a pty, answering with a
real JK-PB2A16S20P capture); the inverter reads the Pylontech CAN frames the
daemon writes to a candump file, decoded by the independent reader
(tests/readers/can_inverter_reader.py). For each fault the table gives:

  staged      the fault was put in place as described
  recovered   the gateway came back to normal on its own (where it should)
  recover_s   seconds from the fault's end to the first normal frame
  above_caps  frames whose CVL/CCL/DCL exceed the user caps IN FORCE at the
              frame's time, or whose DVL is not below its CVL (must be 0)
  stale       frames carrying limits from data older than the stale timeout
              as if fresh: non-zero limits more than stale_timeout + one
              period after the BMS's last answer, outside a documented HOLD
              (must be 0)

Faults (issue "Never wrong, never stuck"):
  hold-reload     comm_loss hold, BMS silent, a reload lowers the caps
  zero-reload     comm_loss zero, BMS silent, a reload lowers CVL
  silent          the only pack stops answering, then answers again
  flaky-pack-min2 two packs, one drops out for 8 s, min_packs_online 2: zero, then back
  flaky-pack-min1 two packs, one drops out for 12 s, min_packs_online 1: live on one, then both
  late-answers    every answer arrives 3 s late (a buffering adapter)
  stall           the daemon is stopped (SIGSTOP) 4 s: no burst of old sets
  fifo-config     the config path becomes a FIFO, then SIGHUP: SIGTERM still works
  dir-config      the config path becomes a directory, then SIGHUP: keeps running
  dvl-above-cvl   max_charge_voltage_mv below the DVL floor: refused by --check-config

Usage: fault-matrix.py BUILD_DIR SERVER DATA_HEX   (TAP; the table as comments)
"""
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "readers"))
import can_inverter_reader as CAN  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyhelpers"))
from tap import check, results, wait_for  # noqa: E402,F401

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
SERVER = sys.argv[2] if len(sys.argv) > 2 else os.path.join(BUILD, "tests", "jk-pb-server")
DATA = sys.argv[3] if len(sys.argv) > 3 else os.path.join(HERE, "..", "data", "jk-pb-v19.hex")
DAEMON = os.path.join(BUILD, "bmsbridged")

STALE_MS = 2000
PERIOD_S = 1.0
GRACE_S = PERIOD_S + 0.5  # one broadcast period, plus scheduling slack

table = []


class Server:
    """jk-pb-server, driven by one-line commands (see its header)."""

    def __init__(self, link, packs):
        self.p = subprocess.Popen([SERVER, link, DATA], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self.q.get(timeout=5)
        for a in packs:
            self.cmd("pack %d" % a)

    def _read(self):
        for line in self.p.stdout:
            self.q.put(line.strip())

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.q.get(timeout=5)
        if out != "ok" and not out.startswith("stats"):
            raise RuntimeError("jk-pb-server: %s -> %s" % (line, out))
        return out

    def stop(self):
        try:
            self.cmd("quit")
        except (OSError, RuntimeError, queue.Empty):
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()


class Rig:
    """jk-pb-server + bmsbridged writing Pylontech frames to a candump file."""

    def __init__(self, tmp, name, packs=(1,), safety="", bms=""):
        self.tmp = tmp
        self.link = os.path.join(tmp, name + ".tty")
        self.out = os.path.join(tmp, name + ".candump")
        self.conf = os.path.join(tmp, name + ".conf")
        self.packs = packs
        self.server = Server(self.link, packs)
        self.write_conf(safety, bms)
        self.lines = []
        self.lock = threading.Lock()
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        self.p = subprocess.Popen([DAEMON, "-c", self.conf], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def write_conf(self, safety, bms=""):
        tmpname = self.conf + ".new"
        with open(tmpname, "w") as f:
            f.write('bms: { driver = "jk-pb-modbus"; port = "%s"; addresses = [%s]; '
                    'poll_interval_ms = 500; %s };\n'
                    'inverter: { protocol = "pylontech"; output = "candump"; port = "%s"; };\n'
                    'safety: { stale_timeout_ms = %d; recovery_reads = 2; %s };\n'
                    % (self.link, ", ".join(str(a) for a in self.packs),
                   bms or "response_timeout_ms = 150;", self.out,
                       STALE_MS, safety))
        os.replace(tmpname, self.conf)

    def _read(self):
        for line in self.p.stderr:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def log(self):
        with self.lock:
            return list(self.lines)

    def sets(self, since=0.0):
        """[(wall time, decoded pylontech set)] from the candump file, one per 0x351"""
        out, cur = [], {}
        try:
            with open(self.out) as f:
                for line in f:
                    m = re.match(r"\((\d+\.\d+)\) \S+ ([0-9A-Fa-f]+)#([0-9A-Fa-f]*)", line)
                    if not m:
                        continue
                    t, ident, data = float(m.group(1)), int(m.group(2), 16), bytes.fromhex(m.group(3))
                    cur[ident] = data
                    if ident == 0x351 and t >= since:
                        dec = CAN.decode("pylontech", sorted(cur.items()))
                        out.append((t, dec))
        except FileNotFoundError:
            pass
        return out

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGCONT)
            self.p.terminate()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.server.stop()


def live(d):
    return d.get("charge_current_limit_a", 0) > 0 or d.get("discharge_current_limit_a", 0) > 0


def judge(sets, caps_at, silent_windows, hold_ok=False):
    """(frames above the caps in force, frames stale as fresh)"""
    above, stale = [], []
    for t, d in sets:
        cvl_mv, ccl_a, dcl_a = caps_at(t)
        cvl = d.get("charge_voltage_limit_v", 0)
        if cvl * 1000 > cvl_mv + 0.5 or d.get("charge_current_limit_a", 0) > ccl_a + 1e-6 or \
                d.get("discharge_current_limit_a", 0) > dcl_a + 1e-6:
            above.append((t, cvl, d.get("charge_current_limit_a"), d.get("discharge_current_limit_a")))
        dvl = d.get("discharge_voltage_limit_v")
        if dvl is not None and cvl and dvl >= cvl:
            above.append((t, "DVL", dvl, "CVL", cvl))
        for start, end in silent_windows:
            if start + STALE_MS / 1000.0 + GRACE_S < t < end and live(d) and not hold_ok:
                stale.append((t, d.get("charge_current_limit_a"), d.get("discharge_current_limit_a")))
    return above, stale


def row(name, staged, recovered, recover_s, above, stale, detail=""):
    table.append((name, staged, recovered, recover_s, len(above), len(stale)))
    check("%s: staged, %s, 0 frames above the caps, 0 stale as fresh" %
          (name, "recovered" if recovered is True else "no recovery needed"
           if recovered is None else "NOT recovered"),
          staged and recovered is not False and not above and not stale,
          "\n".join([str(x) for x in above[:5]] + [str(x) for x in stale[:5]] + [detail]))


def caps(cvl_mv, ccl_a, dcl_a):
    return 'max_charge_voltage_mv = %d; max_charge_current_a = %d; max_discharge_current_a = %d;' \
        % (cvl_mv, ccl_a, dcl_a)


def first_normal(r, since, timeout):
    return wait_for(lambda: next((t for t, d in r.sets(since) if live(d)), None), timeout)


# ---- the faults --------------------------------------------------------------------

def fault_reload(tmp, mode):
    name = mode + "-reload"
    r = Rig(tmp, name, safety='comm_loss = "%s"; %s' % (mode, caps(55000, 50, 50)))
    try:
        staged = bool(first_normal(r, 0, 10))
        time.sleep(2.5)  # the ramp reaches the caps
        r.server.cmd("unplug 1")
        t_silent = time.time()
        time.sleep(STALE_MS / 1000.0 + 1.0)
        r.write_conf('comm_loss = "%s"; %s' % (mode, caps(52000, 20, 20)))
        t_reload = time.time()
        r.p.send_signal(signal.SIGHUP)
        time.sleep(4.0)
        r.server.cmd("plug 1")
        t_back = time.time()
        t_norm = first_normal(r, t_back, 10)
        time.sleep(1.0)

        def caps_at(t):
            # new caps bind at the first evaluation after the reload: one period
            return (55000, 50, 50) if t < t_reload + GRACE_S else (52000, 20, 20)
        above, stale = judge(r.sets(), caps_at, [(t_silent, t_back)], hold_ok=(mode == "hold"))
        row(name, staged, bool(t_norm), round(t_norm - t_back, 2) if t_norm else None,
            above, stale, "\n".join(r.log()[-8:]))
    finally:
        r.stop()


def fault_silent(tmp):
    r = Rig(tmp, "silent", safety='comm_loss = "zero"; ' + caps(55200, 100, 100))
    try:
        staged = bool(first_normal(r, 0, 10))
        time.sleep(1.0)
        r.server.cmd("unplug 1")
        t_silent = time.time()
        time.sleep(STALE_MS / 1000.0 + 2.0)
        zeroed = any(not live(d) for t, d in r.sets(t_silent + STALE_MS / 1000.0 + GRACE_S))
        r.server.cmd("plug 1")
        t_back = time.time()
        t_norm = first_normal(r, t_back, 10)
        above, stale = judge(r.sets(), lambda t: (55200, 100, 100), [(t_silent, t_back)])
        row("silent", staged and zeroed, bool(t_norm),
            round(t_norm - t_back, 2) if t_norm else None, above, stale)
    finally:
        r.stop()


def fault_flaky(tmp, min_online, dropout_s):
    """two packs, pack 2 drops out: with min_packs_online 2 the bank goes to
    zero and must come back; with 1 it must stay live on pack 1 and take
    pack 2 back. Recovered: a live set that counts both packs (0x359 byte 4)."""
    name = "flaky-pack-min%d" % min_online
    r = Rig(tmp, name, packs=(1, 2), safety='comm_loss = "zero"; min_packs_online = %d; %s'
            % (min_online, caps(55200, 100, 100)))
    try:
        staged = bool(first_normal(r, 0, 12))
        r.server.cmd("unplug 2")
        t_silent = time.time()
        time.sleep(dropout_s)
        during = [d for t, d in r.sets(t_silent + STALE_MS / 1000.0 + GRACE_S)]
        r.server.cmd("plug 2")
        t_back = time.time()
        t_norm = wait_for(lambda: next((t for t, d in r.sets(t_back)
                                        if live(d) and d.get("module_count") == 2), None), 20)
        windows = [(t_silent, t_back)] if min_online == 2 else []
        above, stale = judge(r.sets(), lambda t: (55200, 100, 100), windows)
        if min_online == 1:
            # one fresh pack is enough: the bank stays live, counting one pack
            staged = staged and bool(during) and all(live(d) and d.get("module_count") == 1
                                                     for d in during)
        row(name, staged, bool(t_norm), round(t_norm - t_back, 2) if t_norm else None,
            above, stale, "\n".join(r.log()[-8:]))
    finally:
        r.stop()


def fault_late(tmp):
    r = Rig(tmp, "late", safety='comm_loss = "zero"; ' + caps(55200, 100, 100),
            bms="response_timeout_ms = 300;")
    try:
        staged = bool(first_normal(r, 0, 10))
        try:
            r.server.cmd("delay 3000")
        except RuntimeError as e:
            row("late-answers", False, None, None, [], [], str(e))
            return
        t_late = time.time()
        time.sleep(10.0)
        r.server.cmd("delay 0")
        t_back = time.time()
        t_norm = first_normal(r, t_back, 15)
        above, stale = judge(r.sets(), lambda t: (55200, 100, 100), [(t_late, t_back)])
        row("late-answers", staged, bool(t_norm), round(t_norm - t_back, 2) if t_norm else None,
            above, stale, "\n".join(r.log()[-8:]))
    finally:
        r.stop()


def fault_stall(tmp):
    r = Rig(tmp, "stall", safety='comm_loss = "zero"; ' + caps(55200, 100, 100))
    try:
        staged = bool(first_normal(r, 0, 10))
        time.sleep(1.0)
        r.p.send_signal(signal.SIGSTOP)
        time.sleep(4.0)
        r.p.send_signal(signal.SIGCONT)
        t_cont = time.time()
        time.sleep(3.0)
        burst = [t for t, _ in r.sets(t_cont - 0.05) if t < t_cont + 0.5]
        t_norm = first_normal(r, t_cont, 5)
        above, stale = judge(r.sets(), lambda t: (55200, 100, 100), [])
        ok = len(burst) <= 2
        row("stall", staged, bool(t_norm) and ok, round(t_norm - t_cont, 2) if t_norm else None,
            above, stale, "%d sets in the 0.5 s after SIGCONT" % len(burst))
    finally:
        r.stop()


def fault_config_path(tmp, kind):
    name = kind + "-config"
    r = Rig(tmp, name, safety='comm_loss = "zero"; ' + caps(55200, 100, 100))
    try:
        staged = bool(first_normal(r, 0, 10))
        os.unlink(r.conf)
        if kind == "fifo":
            os.mkfifo(r.conf)
        else:
            os.mkdir(r.conf)
        t0 = time.time()
        r.p.send_signal(signal.SIGHUP)
        time.sleep(2.0)
        alive = r.p.poll() is None
        flowing = bool(r.sets(t0 + 1.0))
        if kind == "fifo":
            tt = time.monotonic()
            r.p.terminate()
            try:
                r.p.wait(timeout=3)
                ended = r.p.returncode == 0 and time.monotonic() - tt < 3
            except subprocess.TimeoutExpired:
                ended = False
            row(name, staged, alive and flowing and ended, None, [], [],
                "alive %s, frames %s, SIGTERM honoured %s\n%s" % (alive, flowing, ended,
                                                                   "\n".join(r.log()[-5:])))
        else:
            said = any("directory" in l or "regular file" in l for l in r.log())
            row(name, staged, alive and flowing and said, None, [], [],
                "alive %s, frames %s, said so %s\n%s" % (alive, flowing, said,
                                                        "\n".join(r.log()[-5:])))
    finally:
        if kind == "fifo" and os.path.exists(r.conf):
            os.unlink(r.conf)
        r.stop()


def fault_dvl(tmp):
    conf = os.path.join(tmp, "dvl.conf")
    with open(conf, "w") as f:
        f.write('bms: { driver = "sim"; };\n'
                'inverter: { protocol = "deye"; output = "candump"; port = "-"; };\n'
                'safety: {\n  max_charge_voltage_mv = 14200;\n};\n')
    p = subprocess.run([DAEMON, "--check-config", "-c", conf], capture_output=True, text=True,
                       timeout=10)
    said = re.search(r"dvl\.conf:\d+:.*(discharge|DVL|min_discharge_voltage)", p.stderr)
    table.append(("dvl-above-cvl", True, None, None, 0, 0))
    check("dvl-above-cvl: --check-config refuses CVL 14.2 V under the DVL floor, with "
          "file:line", p.returncode != 0 and said, p.stderr.strip())


def main():
    for prog in (DAEMON, SERVER):
        if not os.access(prog, os.X_OK):
            check("%s is built" % prog, False)
            print("1..%d" % len(results))
            return 1
    with tempfile.TemporaryDirectory(prefix="bmsbridge-faults-") as tmp:
        fault_reload(tmp, "hold")
        fault_reload(tmp, "zero")
        fault_silent(tmp)
        fault_flaky(tmp, 2, 8.0)
        fault_flaky(tmp, 1, 12.0)
        fault_late(tmp)
        fault_stall(tmp)
        fault_config_path(tmp, "fifo")
        fault_config_path(tmp, "dir")
        fault_dvl(tmp)
    print("# %-14s %-7s %-9s %-9s %-10s %s" % ("fault", "staged", "recovered", "recover_s",
                                               "above_caps", "stale"))
    for name, staged, rec, rs, above, stale in table:
        print("# %-14s %-7s %-9s %-9s %-10d %d" % (name, staged, "-" if rec is None else rec,
                                                   "-" if rs is None else rs, above, stale))
    print("1..%d" % len(results), flush=True)
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
