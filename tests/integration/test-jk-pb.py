#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The real bmsbridged reading simulated JK-PB packs over a real tty (a pty
served by tests/integration/jk-pb-server, which answers with the frames
of a real JK-PB2A16S20P, tests/data/jk-pb-v19.hex), speaking Pylontech
to a candump file:

- one pack (trigger method, then register method): the pack comes online
  and the 0x356 frames the inverter gets carry its voltage;
- two and three packs at different addresses, all read;
- one pack unplugged mid-run: it is reported, the others are still read
  every round (an absent pack costs bounded time), and it comes back;
- a CRC/checksum error (retried) and garbage on the line: reading goes on;
- the tty vanishing and coming back: the port is reopened.

Usage: test-jk-pb.py BUILD_DIR SERVER DATA_HEX   (prints TAP)
"""
import json
import os
import queue
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyhelpers"))
from tap import check, results, wait_for  # noqa: E402,F401

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BUILD_DIR", "build")
SERVER = sys.argv[2] if len(sys.argv) > 2 else os.path.join(BUILD, "tests", "jk-pb-server")
DATA = sys.argv[3] if len(sys.argv) > 3 else os.path.join(
    os.environ.get("SRC_DIR", "."), "tests", "data", "jk-pb-v19.hex")
DAEMON = os.path.join(BUILD, "bmsbridged")


class Server:
    def __init__(self, link):
        self.p = subprocess.Popen([SERVER, link, DATA], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self.readline(5)

    def _read(self):
        for line in self.p.stdout:
            self.q.put(line.strip())

    def readline(self, timeout=5):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("jk-pb-server silent")

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.readline()
        if out.startswith("ready"):  # "return": the new pty, then "ok"
            out = self.readline()
        if out.startswith("stats"):
            self.readline()  # its "ok"
            return out
        if out != "ok":
            raise RuntimeError("jk-pb-server: %s -> %s" % (line, out))
        return out

    def answers(self):
        """{address: (requests, answers)}"""
        s = self.cmd("stats")
        return {int(a): (int(q), int(n)) for a, q, n in re.findall(r"(\d+):(\d+):(\d+)", s)}

    def stop(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
        except OSError:
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()


class Daemon:
    def __init__(self, conf):
        self.lines = []
        self.statuses = []  # STATUS= as sd_notify(3) sends it: the heartbeat is not logged
        self.lock = threading.Lock()
        self.notify_path = conf + ".notify"
        if os.path.exists(self.notify_path):
            os.unlink(self.notify_path)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(0.2)
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        env.pop("WATCHDOG_USEC", None)
        self.p = subprocess.Popen([DAEMON, "-c", conf], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, env=env)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        threading.Thread(target=self._notified, daemon=True).start()

    def _notified(self):
        while self.p.poll() is None:
            try:
                msg = self.notify.recv(4096).decode(errors="replace")
            except (socket.timeout, OSError):
                continue
            with self.lock:
                self.statuses += [l[7:] for l in msg.split("\n") if l.startswith("STATUS=")]

    def status(self):
        with self.lock:
            return list(self.statuses)

    def _read(self):
        for line in self.p.stderr:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def log(self):
        with self.lock:
            return list(self.lines)

    def wait_log(self, pattern, timeout, start=0):
        """Index of the first line from @start matching @pattern, or None."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            lines = self.log()
            for i in range(start, len(lines)):
                if rx.search(lines[i]):
                    return i
            if self.p.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
        self.t.join(timeout=5)
        self.notify.close()
        if os.path.exists(self.notify_path):
            os.unlink(self.notify_path)
        return self.p.returncode


def write_conf(d, link, out, addresses, method="trigger", extra=""):
    path = os.path.join(d, "jk.conf")
    with open(path, "w") as f:
        f.write('bms: { driver = "jk-pb-modbus"; port = "%s"; addresses = [%s];\n'
                '       read_method = "%s"; poll_interval_ms = 1000;\n'
                '       response_timeout_ms = 150; request_gap_ms = 50; };\n'
                'inverter: { protocol = "pylontech"; output = "candump"; port = "%s"; };\n%s'
                % (link, ", ".join(str(a) for a in addresses), method, out, extra))
    return path


def frames_of(path, can_id):
    """The data bytes of every frame @can_id written to the candump file."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                m = re.match(r"\(\S+\) \S+ %03X#([0-9A-F]*)" % can_id, line.strip())
                if m:
                    out.append(bytes.fromhex(m.group(1)))
    except FileNotFoundError:
        pass
    return out


def voltages_356(path):
    """Pack voltages (mV) of the 0x356 frames written to the candump file."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                m = re.match(r"\(\S+\) \S+ 356#([0-9A-F]+)", line.strip())
                if m:
                    d = bytes.fromhex(m.group(1))
                    out.append(int.from_bytes(d[0:2], "little") * 10)
    except FileNotFoundError:
        pass
    return out


def wait_356(path, mv, timeout):
    """Wait for a 0x356 frame within 10 mV (its 0.01 V unit) of @mv."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(abs(v - mv) <= 10 for v in voltages_356(path)):
            return True
        time.sleep(0.1)
    return False


# the pack voltage of the capture every simulated pack answers with (its
# cells add up to it, so no plausibility check of the safety layer trips)
PACK_MV = 54028


def scenario(d, packs, addresses, method="trigger", extra="", setup=()):
    """Start a server with @packs (addresses) and a daemon reading @addresses."""
    link = os.path.join(d, "ttyJK")
    out = os.path.join(d, "inverter.log")
    if os.path.exists(out):
        os.unlink(out)
    srv = Server(link)
    for a in packs:
        srv.cmd("pack %d" % a)
    for c in setup:
        srv.cmd(c)
    dm = Daemon(write_conf(d, link, out, addresses, method, extra))
    return srv, dm, out


def late_link(d):
    """
    issue 11, "Late Modbus answers taken as fresh": the link answers every
    request 5 s late (serial-over-TCP, a buffering adapter), the stale
    timeout is 2 s. Every answer is then 5 s old when it arrives: the
    inverter must never get a set of limits (0x351 with a charge current)
    built from it. Returns the number of such sets in 20 s.
    """
    srv, dm, out = scenario(d, [1], [1], extra='safety: { stale_timeout_ms = 2000; };\n',
                            setup=["delay 5000"])
    try:
        time.sleep(20)
        fresh = [f for f in frames_of(out, 0x351) if int.from_bytes(f[2:4], "little") > 0]
        n_all = len(frames_of(out, 0x351))
        # the link prompt again: the requests still in flight are answered or
        # forgotten, and the pack's data is fresh again (not stuck behind them)
        srv.cmd("delay 0")
        mark = len(dm.log())
        t0 = time.monotonic()
        back = dm.wait_log(r"Safety: .*-> normal", 25, mark)
        back_s = time.monotonic() - t0
        log = dm.log()
    finally:
        dm.stop()
        srv.stop()
    return len(fresh), n_all, log, (back is not None, back_s)


def main():
    if not os.access(DAEMON, os.X_OK) or not os.access(SERVER, os.X_OK):
        check("bmsbridged and jk-pb-server are built", False, "%s %s" % (DAEMON, SERVER))
        print("1..%d" % len(results))
        return 1
    with tempfile.TemporaryDirectory() as d:
        # Can this daemon load a configuration at all?
        probe = write_conf(d, "/dev/null", "-", [1])
        r = subprocess.run([DAEMON, "--check-config", probe], capture_output=True, text=True,
                           timeout=10)
        if r.returncode != 0:
            check("the daemon accepts a jk-pb-modbus configuration", False,
                  r.stdout + r.stderr)
            print("1..%d" % len(results))
            return 1

        # -- bmsbridgectl decode: a real bus capture, through the daemon's parser ------------
        # (LA1010 capture of a JKBMS Monitor polling "bat3", in
        # mr-manuel/venus-os_dbus-serialbattery tests/bms/test_jkbms_pb.py)
        la = os.path.join(os.path.dirname(DATA), "jk-pb-rs485-la1010.hex")
        r = subprocess.run([os.path.join(BUILD, "bmsbridgectl"), "decode", "jk-pb-modbus", la],
                           capture_output=True, text=True, timeout=10)
        try:
            p = json.loads(r.stdout)["packs"][0]
        except (ValueError, KeyError, IndexError):
            p = None
        check("bmsbridgectl decode: the LA1010 bus capture is pack address 3, 52.695 V, "
              "SOC 55 %, CVL 55.2 V", p is not None and "address 3" in r.stderr and
              p["electrical"]["voltage_mv"] == 52695 and p["capacity"]["soc_pct"] == 55 and
              p["limits"]["charge_voltage_limit_mv"] == 55200, r.stdout + r.stderr)
        r = subprocess.run([os.path.join(BUILD, "bmsbridgectl"), "--address", "1", "decode",
                            "jk-pb-modbus", la], capture_output=True, text=True, timeout=10)
        check("bmsbridgectl decode --address 1 of a capture of pack 3: exit 1",
              r.returncode == 1, r.stdout + r.stderr)

        # -- bmsbridgectl: a V1.0 pack's settings (RCV 0) never become CVL 0 V -------------
        raw = bytearray(bytes.fromhex("".join(
            line.split("#")[0] for line in open(DATA).read().splitlines())))
        settings = raw[0:300]
        settings[38:46] = bytes(8)  # V1.1 0x1020 VolCellRCV, 0x1024 VolCellRFV: absent in V1.0
        settings[299] = sum(settings[:299]) & 0xFF
        v10 = os.path.join(d, "jk-v10.hex")
        with open(v10, "w") as f:
            f.write(" ".join("%02X" % b for b in bytes(settings) + bytes(raw[600:900])) + "\n")
        ctl = os.path.join(BUILD, "bmsbridgectl")
        r = subprocess.run([ctl, "decode", "jk-pb-modbus", v10], capture_output=True, text=True,
                           timeout=10)
        try:
            st = json.loads(r.stdout)
        except ValueError:
            st = None
        check("bmsbridgectl decode, V1.0 settings: the pack sets no CVL (4294967295), the bank "
              "has no limits", st is not None and
              st["packs"][0]["limits"]["charge_voltage_limit_mv"] == 4294967295 and
              st["bank"]["limits"] is None, r.stdout + r.stderr)
        r2 = subprocess.run([ctl, "encode", "pylontech"], input=r.stdout, capture_output=True,
                            text=True, timeout=10)
        check("bmsbridgectl encode of it: nothing sent, no CVL at all (exit 1)",
              r2.returncode == 1 and r2.stdout == "", r2.stdout + r2.stderr)

        # -- a link that answers 5 s late ------------------------------------------------
        n_fresh, n_all, log, (back, back_s) = late_link(d)
        print("# late link: %d of %d 0x351 sets carried a charge current" % (n_fresh, n_all))
        check("a link 5 s late: no set built from 5 s old answers (%d sets)" % n_fresh,
              n_fresh == 0, "\n".join(log[-20:]))
        check("a link 5 s late: the late answers are seen and reported",
              any("late answer" in line.lower() for line in log), "\n".join(log[-20:]))
        print("# late link prompt again: normal after %.1f s" % back_s)
        check("a link prompt again: the pack's data is fresh again (%.1f s)" % back_s, back,
              "\n".join(log[-20:]))

        # -- an older JK-PB (Modbus V1.0 map, RCV reads 0) -------------------------------
        srv, dm, out = scenario(d, [1], [1], setup=["v10 1"])
        try:
            ok = wait_356(out, PACK_MV, 10)
            time.sleep(3)
            cvl = [int.from_bytes(f[0:2], "little") for f in frames_of(out, 0x351)]
        finally:
            dm.stop()
            srv.stop()
        print("# V1.0 pack: 0x351 CVL (0.1 V) sent: %s" % sorted(set(cvl)))
        check("V1.0 pack (RCV 0): read, and CVL is the 55.2 V cap, never 0 V (%d sets)"
              % len(cvl), ok and cvl and all(v == 552 for v in cvl), cvl)

        # -- a silent pack: said once (issue 11: ~70 lines a minute) -----------------------
        srv, dm, out = scenario(d, [1, 2], [1, 2])
        try:
            ok = all(dm.wait_log(r"Pack %d \(address %d\) online" % (n, n), 10) is not None
                     for n in (1, 2))
            srv.cmd("unplug 2")
            mark = len(dm.log())
            smark = len(dm.status())
            time.sleep(25)
            # the bridge's own lines (the log observer: packs online, limit cuts) apart
            every = dm.log()[mark:]
            bridge = [x for x in every if "BMS packs online:" in x or " cut " in x]
            lines = [x for x in every if "Status:" not in x and "Safety:" not in x and
                     x not in bridge]
            status = dm.status()[smark:]
            print("# a silent pack, 25 s: %d lines of the Modbus input" % len(lines))
            check("a silent pack: its silence said once, not per exchange (%d lines in 25 s)"
                  % len(lines), ok and 1 <= len(lines) <= 4 and
                  any("Pack 2 (address 2) not answering" in x for x in lines), "\n".join(lines))
            check("a silent pack: the bank's packs online said once, as 1 of 2",
                  sum("BMS packs online:" in x for x in bridge) == 1 and
                  any("BMS packs online: 1 of 2" in x for x in bridge), "\n".join(bridge))
            check("a silent pack: STATUS names it with its time and rounds",
                  status and re.search(r"@2 silent \d+ s/\d+ rounds", status[-1]),
                  "\n".join(status))
            mark = len(dm.log())
            srv.cmd("plug 2")
            i = dm.wait_log(r"Pack 2 \(address 2\) online again after [\d.]+ s silent "
                            r"\(\d+ rounds missed\)", 10, mark)
            check("a silent pack back: said once, with how long it was away", i is not None,
                  "\n".join(dm.log()[mark:]))
        finally:
            dm.stop()
            srv.stop()

        # -- listening on a bus a DIP-0 JK master drives -----------------------------------
        srv, dm, out = scenario(d, [0, 1, 2], [1, 2], method="listen",
                                setup=["cells 0 3300", "cells 1 3310", "cells 2 3320",
                                       "master on"])
        try:
            ok = all(dm.wait_log(r"Pack %d \(address %d\) online" % (n, a), 15) is not None
                     for n, a in ((1, 0), (2, 1), (3, 2)))
            check("listen: the master (address 0) and packs 1, 2 are all heard", ok,
                  "\n".join(dm.log()))
            # each pack's cells x 16, averaged: attributed right, the bank is their mean
            mean = (3300 + 3310 + 3320) * 16 // 3
            check("listen: 0x356 carries the three packs' mean (%d mV)" % mean,
                  wait_356(out, mean, 15), voltages_356(out)[-5:])
            rx = int(re.search(r"rx (\d+)", srv.cmd("stats")).group(1))
            check("listen: the daemon never put a byte on the bus (%d)" % rx, rx == 0)
            mark = len(dm.log())
            srv.cmd("collide 1")
            i = dm.wait_log(r"A frame for address 1 came with the write echo of address 2 "
                            r"\(a collision", 10, mark)
            check("listen: a frame whose echo names another pack than the poll is dropped",
                  i is not None, "\n".join(dm.log()[mark:]))
            srv.cmd("unplug 2")
            mark = len(dm.log())
            i = dm.wait_log(r"Pack 3 \(address 2\) not heard on the bus", 25, mark)
            check("listen: a pack the master no longer gets an answer from is reported",
                  i is not None, "\n".join(dm.log()[mark:]))
        finally:
            dm.stop()
            srv.stop()

        # -- one pack, both read methods ---------------------------------------------
        for method in ("trigger", "registers"):
            srv, dm, out = scenario(d, [1], [1], method)
            try:
                i = dm.wait_log(r"Pack 1 \(address 1\) online", 10)
                check("%s: one pack comes online" % method, i is not None, "\n".join(dm.log()))
                check("%s: the inverter gets its voltage (0x356 54.02 V)" % method,
                      wait_356(out, PACK_MV, 10), "\n".join(dm.log()[-10:]))
            finally:
                dm.stop()
                srv.stop()

        # -- two packs ------------------------------------------------------------------
        srv, dm, out = scenario(d, [1, 2], [1, 2])
        try:
            ok = all(dm.wait_log(r"Pack %d \(address %d\) online" % (n, n), 10) is not None
                     for n in (1, 2))
            check("two packs at addresses 1 and 2 both online", ok, "\n".join(dm.log()))
            check("two packs: 0x356 carries their voltage", wait_356(out, PACK_MV, 10))
        finally:
            dm.stop()
            srv.stop()

        # -- three packs, unplug, errors, vanishing tty -----------------------------------
        srv, dm, out = scenario(d, [1, 7, 15], [1, 7, 15])
        try:
            ok = all(dm.wait_log(r"Pack %d \(address %d\) online" % (n, a), 10) is not None
                     for n, a in ((1, 1), (2, 7), (3, 15)))
            check("three packs at addresses 1, 7, 15 all online", ok, "\n".join(dm.log()))
            check("three packs: 0x356 carries their voltage", wait_356(out, PACK_MV, 10))

            srv.cmd("unplug 7")
            mark = len(dm.log())
            i = dm.wait_log(r"Pack 2 \(address 7\) not answering", 8, mark)
            check("an unplugged pack is reported", i is not None, "\n".join(dm.log()[mark:]))
            # a round is poll_interval (1 s) plus the absent pack's two timeouts
            # (2 x 150 ms): 5 s hold at least 3 rounds even on a loaded machine
            a0 = srv.answers()
            time.sleep(5)
            a1 = srv.answers()
            check("the other packs are still read every round",
                  a1[1][1] - a0[1][1] >= 6 and a1[15][1] - a0[15][1] >= 6, "%s -> %s" % (a0, a1))
            # bounded: the absent pack is asked at most twice (one retry) per exchange
            asked = a1[7][0] - a0[7][0]
            check("an absent pack costs at most one retry per round (%d requests in 5 s)" % asked,
                  2 <= asked <= 2 * 2 * 5, "%s -> %s" % (a0, a1))
            srv.cmd("plug 7")
            i = dm.wait_log(r"Pack 2 \(address 7\) online", 8, mark)
            check("the pack plugged back is read again", i is not None)

            mark = len(dm.log())
            srv.cmd("crc 1 1")
            i = dm.wait_log(r"address 1.*Bad message.*retrying", 5, mark)
            time.sleep(1.5)
            check("a bad checksum is reported and retried without dropping the pack",
                  i is not None and dm.wait_log(r"Pack 1 \(address 1\) not answering", 0.1, mark)
                  is None, "\n".join(dm.log()[mark:]))

            a0 = srv.answers()
            srv.cmd("garbage 200")
            time.sleep(3)
            a1 = srv.answers()
            check("garbage on the line: reading goes on",
                  a1[1][1] > a0[1][1] and a1[15][1] > a0[15][1] and dm.p.poll() is None,
                  "%s -> %s" % (a0, a1))

            mark = len(dm.log())
            srv.cmd("vanish")
            i = dm.wait_log(r"Reopening BMS port", 8, mark)
            check("the vanished tty is noticed", i is not None, "\n".join(dm.log()[mark:]))
            time.sleep(1)
            srv.cmd("return")
            j = dm.wait_log(r"BMS port .* open", 10, (i or mark) + 1)
            check("the tty back: the port is reopened", j is not None,
                  "\n".join(dm.log()[mark:]))
            ok = all(dm.wait_log(r"Pack %d \(address %d\) online" % (n, a), 10, j or mark)
                     is not None for n, a in ((1, 1), (2, 7), (3, 15)))
            check("after the reopen all three packs are read again", ok,
                  "\n".join(dm.log()[mark:]))
            check("the daemon is still running", dm.p.poll() is None)
        finally:
            rc = dm.stop()
            srv.stop()
        check("clean exit on SIGTERM", rc == 0, "exit %s" % rc)
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
