#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The real bmsbridged on a private system bus (a dbus-daemon of our own with
our policy file, dbus/org.bmsbridge.Gateway1.conf, included as installed),
read by real clients: busctl (systemd) and bmsbridgectl.

- the daemon takes org.bmsbridge.Gateway1; busctl introspects the gateway
  and pack objects and reads every property, each with its signature as
  bmsbridged(8) lists it, and a unit in the name of every number;
- the values are the sim's (SOC 0-100, a 16s LFP voltage) and what is on
  the wire is what went to stdout (0x351 among WireFrames);
- PropertiesChanged arrives while the sim moves, at most a few a second;
- the policy: anyone (nobody, through setpriv) reads; a method call by
  nobody is refused, by root answered; nobody cannot own the name;
- a client floods the daemon with GetAll requests (pipelined over a raw
  socket) while the daemon sends its set every second: the worst delay of
  an inverter frame against its 1 s schedule, from the candump time
  stamps the daemon writes, idle and under flood (the figure is printed);
- bmsbridgectl status, status --json and watch against the live daemon;
- without a bus the daemon says so once and keeps sending; dbus = false
  keeps it off the bus and quiet about it;
- diagnose against staged faults on ptys: RS485 polls to another address,
  bytes at the wrong baud, a pack address that does not answer, a BMS that
  is silent, and with no daemon at all.

Usage: test-dbus.py BUILD_DIR SERVER DATA_HEX   (prints TAP)
"""
import json
import os
import pwd
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyhelpers"))
from tap import check, finish, wait_for  # noqa: E402
from privbus import Bus  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BUILD_DIR", "build")
SERVER = sys.argv[2] if len(sys.argv) > 2 else os.path.join(BUILD, "tests", "jk-pb-server")
DATA = sys.argv[3] if len(sys.argv) > 3 else os.path.join(
    os.environ.get("SRC_DIR", "."), "tests", "data", "jk-pb-v19.hex")
SRC = os.environ.get("SRC_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DAEMON = os.path.join(BUILD, "bmsbridged")
CTL = os.path.join(BUILD, "bmsbridgectl")
POLICY = os.path.join(SRC, "dbus", "org.bmsbridge.Gateway1.conf")
NAME, PATH = "org.bmsbridge.Gateway1", "/org/bmsbridge/Gateway1"

# every property, its D-Bus signature (bmsbridged(8), "D-BUS INTERFACE")
GATEWAY = {
    "Version": "s", "ConfigPath": "s", "UptimeUsec": "t", "BmsDriver": "s", "BmsPort": "s",
    "BmsPortOpen": "b", "BmsStatus": "s", "PackCount": "y", "PacksOnline": "y", "PackAddresses": "ay", "Mode": "s",
    "ModeReason": "s", "Conflict": "s", "RejectedValues": "t", "LastRejected": "s",
    "ChargeVoltageLimitMv": "u", "ChargeVoltageLimitSetBy": "s",
    "DischargeVoltageLimitMv": "u", "DischargeVoltageLimitSetBy": "s",
    "ChargeCurrentLimitMa": "u", "ChargeCurrentLimitSetBy": "s",
    "DischargeCurrentLimitMa": "u", "DischargeCurrentLimitSetBy": "s",
    "SocPct": "y", "SohPct": "y", "VoltageMv": "u", "CurrentMa": "i", "CellMinMv": "q",
    "CellMaxMv": "q", "TemperatureMinDc": "n", "TemperatureMaxDc": "n", "Alarms": "as",
    "Warnings": "as", "Requests": "as", "WireKind": "s", "WireMonotonicUsec": "t",
    "WireError": "i", "WireFrames": "a(uay)", "WireChargeVoltageLimitMv": "u",
    "WireDischargeVoltageLimitMv": "u", "WireChargeCurrentLimitMa": "u",
    "WireDischargeCurrentLimitMa": "u", "WireSocPct": "y", "WireSohPct": "y",
    "WireVoltageMv": "u", "WireCurrentMa": "i", "WireAlarms": "as", "WireWarnings": "as",
    "WireRequests": "as", "InverterProtocol": "s", "InverterTransport": "s",
    "InverterPort": "s", "InverterPortOpen": "b", "InverterStatus": "s", "InverterHeard": "b",
    "InverterHeardMonotonicUsec": "t", "InverterBusState": "s", "InverterTxFrames": "t",
    "InverterRxFrames": "t", "InverterTxDropped": "t", "InverterRxOverflows": "t",
    "InverterErrorFrames": "t", "InverterBusOffCount": "t", "InverterBaud": "u",
    "InverterAddress": "y", "InverterPolls": "t", "InverterPollsAnswered": "t",
    "InverterErrorAnswers": "t", "InverterPollsOtherAddress": "t", "InverterOtherAddress": "y",
    "InverterPollCommand": "y", "InverterMalformed": "t", "InverterNoiseBytes": "t",
    "InverterErrorCommand": "y", "InverterErrorRtn": "y", "InverterErrorsInRow": "t",
}
PACK = {
    "Address": "y", "Online": "b", "AgeUsec": "t", "SocPct": "y", "SohPct": "y",
    "VoltageMv": "u", "CurrentMa": "i", "RemainingMah": "u", "FullMah": "u", "Cycles": "u",
    "CellsMv": "aq", "CellMinMv": "q", "CellMinPosition": "y", "CellMaxMv": "q",
    "CellMaxPosition": "y", "CellDeltaMv": "q", "TemperaturesDc": "an",
    "TemperatureMinDc": "n", "TemperatureMaxDc": "n", "MosfetTemperatureDc": "n",
    "ChargeVoltageLimitMv": "u", "DischargeVoltageLimitMv": "u", "ChargeCurrentLimitMa": "u",
    "DischargeCurrentLimitMa": "u", "Alarms": "as", "Warnings": "as", "Requests": "as",
}
# numbers with no physical unit: counts, addresses, positions, protocol codes
UNITLESS = re.compile(r"(Count|Online|Frames|Dropped|Overflows|Polls|Answered|Answers|"
                      r"OtherAddress|Address|Command|Rtn|InRow|Malformed|Values|Error|"
                      r"Position|Cycles|Baud|NoiseBytes|Heard|Open)$")
UNIT = re.compile(r"(Mv|Ma|Mah|Dc|Pct|Usec)$")


def fail_all(why):
    print("not ok 1 - " + why)
    print("1..1")
    sys.exit(1)


for tool in ("dbus-daemon", "busctl", "setpriv", "socat"):
    if not shutil.which(tool):
        fail_all(tool + " not installed (tools/setup --test)")
try:
    import serial  # noqa: F401  python3-serial
except ImportError:
    fail_all("python3-serial not installed")


def busctl(bus, *args, nobody=False, timeout=10):
    cmd = ["busctl", "--system"] + list(args)
    if nobody:
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + cmd
    return subprocess.run(cmd, env=bus.env, capture_output=True, text=True, timeout=timeout)


def ctl(env, *args, timeout=20):
    return subprocess.run([CTL] + list(args), env=env, capture_output=True, text=True,
                          timeout=timeout)


class Daemon:
    """bmsbridged with stdout (candump lines) and stderr (the log) collected"""

    def __init__(self, args, env, user=None):
        cmd = [DAEMON] + args
        if user:
            cmd = ["setpriv", "--reuid=" + user, "--regid=nogroup", "--clear-groups"] + cmd
        self.p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        self.out, self.err = [], []
        self.lock = threading.Lock()
        threading.Thread(target=self._pump, args=(self.p.stdout, self.out), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.p.stderr, self.err), daemon=True).start()

    def _pump(self, f, into):
        for line in f:
            with self.lock:
                into.append(line.rstrip("\n"))

    def log(self):
        with self.lock:
            return list(self.err)

    def frames(self):
        with self.lock:
            return list(self.out)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


# ---- a raw D-Bus client, to flood the daemon ---------------------------------------

def _pad(b, n):
    return b + b"\0" * ((-len(b)) % n)


def _str(s):
    e = s.encode()
    return struct.pack("<I", len(e)) + e + b"\0"


def message(serial, path, iface, member, dest, sig="", body=b""):
    """a METHOD_CALL, little endian (D-Bus specification, "Message Format")"""
    fields = b""
    for code, t, val in ((1, b"o", path), (2, b"s", iface), (3, b"s", member), (6, b"s", dest)):
        fields = _pad(fields, 8) + bytes([code, 1]) + t + b"\0" + _str(val)
    if sig:
        fields = _pad(fields, 8) + bytes([8, 1]) + b"g\0" + bytes([len(sig)]) + sig.encode() + b"\0"
    head = struct.pack("<cBBBII", b"l", 1, 0, 1, len(body), serial) + struct.pack("<I", len(fields))
    return _pad(head + fields, 8) + body


class Flood:
    """GetAll on the gateway, pipelined (at most WINDOW outstanding), as fast as it goes"""
    WINDOW = 32

    def __init__(self, bus):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(bus.sock)
        self.s.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
        if not self.s.recv(256).startswith(b"OK"):
            raise RuntimeError("auth refused")
        self.s.sendall(b"BEGIN\r\n")
        self.sent = self.replies = 0
        self.stop_flag = False
        self.cv = threading.Condition()
        self.s.sendall(message(1, "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello",
                               "org.freedesktop.DBus"))
        self.sent = 1
        self.rd = threading.Thread(target=self._read, daemon=True)
        self.rd.start()

    def _read(self):
        buf = b""
        while True:
            try:
                d = self.s.recv(65536)
            except OSError:
                return
            if not d:
                return
            buf += d
            while len(buf) >= 16:
                blen, = struct.unpack_from("<I", buf, 4)
                flen, = struct.unpack_from("<I", buf, 12)
                total = 16 + flen + ((-flen) % 8) + blen
                if len(buf) < total:
                    break
                mtype = buf[1]
                buf = buf[total:]
                if mtype in (2, 3):
                    with self.cv:
                        self.replies += 1
                        self.cv.notify()

    def run(self, seconds):
        body = _str(NAME)
        end = time.monotonic() + seconds
        serial = 2
        while time.monotonic() < end:
            with self.cv:
                while self.sent - self.replies >= self.WINDOW:
                    self.cv.wait(1)
            self.s.sendall(message(serial, PATH, "org.freedesktop.DBus.Properties", "GetAll",
                                   NAME, "s", body))
            serial += 1
            self.sent += 1
        with self.cv:
            self.cv.wait_for(lambda: self.replies >= self.sent, 5)
        self.s.close()
        return self.sent - 1, self.replies - 1


def worst_delay_ms(lines, can_id, t0, t1):
    """the worst lateness of frame @can_id against its own 1 s schedule within [t0, t1]
    (daemon time stamps): each frame's time less the schedule the earliest one sets"""
    ts = []
    for l in lines:
        m = re.match(r"\((\d+\.\d+)\) \S+ ([0-9A-F]+)#", l)
        if m and int(m.group(2), 16) == can_id and t0 <= float(m.group(1)) <= t1:
            ts.append(float(m.group(1)))
    if len(ts) < 3:
        return None, len(ts)
    late = [t - ts[0] - round(t - ts[0]) for t in ts]
    return (max(late) - min(late)) * 1000.0, len(ts)


# ---- the tests -------------------------------------------------------------------

def props_of(bus, path, iface):
    r = busctl(bus, "introspect", "--no-pager", NAME, path, iface)
    got = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 3 and f[0].startswith(".") and f[1] == "property":
            got[f[0][1:]] = f[2]
    return got, r


def test_properties(bus, d):
    for what, path, iface, want in (("gateway", PATH, NAME, GATEWAY),
                                    ("pack 1", PATH + "/pack/1", "org.bmsbridge.Pack1", PACK)):
        got, r = props_of(bus, path, iface)
        check("busctl introspect %s: every property with its signature" % what, got == want,
              "missing %s, extra %s, differing %s\n%s" % (
                  sorted(set(want) - set(got)), sorted(set(got) - set(want)),
                  sorted(k for k in want if k in got and got[k] != want[k]), r.stderr))
        bad = []
        for name in sorted(got):
            rr = busctl(bus, "get-property", NAME, path, iface, name)
            if rr.returncode != 0 or not rr.stdout.startswith(want.get(name, "?") + " "):
                bad.append("%s: %s %s" % (name, rr.stdout.strip(), rr.stderr.strip()))
        check("busctl get-property reads every property of %s (%d)" % (what, len(got)),
              got and not bad, "\n".join(bad))
        nounit = [k for k, s in want.items() if s in "yqnuit" and not UNIT.search(k)
                  and not UNITLESS.search(k)]
        check("%s: a unit in the name of every quantity" % what, not nounit, str(nounit))


def getp(bus, path, iface, name, nobody=False):
    r = busctl(bus, "--json=short", "get-property", NAME, path, iface, name, nobody=nobody)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)["data"]


def test_values(bus, d):
    ok = wait_for(lambda: getp(bus, PATH, NAME, "Mode") == "normal", 10)
    check("Mode is normal once the sim is read", ok, str(getp(bus, PATH, NAME, "ModeReason")))
    soc = getp(bus, PATH, NAME, "SocPct")
    mv = getp(bus, PATH + "/pack/1", "org.bmsbridge.Pack1", "VoltageMv")
    cells = getp(bus, PATH + "/pack/1", "org.bmsbridge.Pack1", "CellsMv")
    check("the sim's values: SOC 0-100, 16 cells 3.0-3.6 V, pack 48-57.6 V",
          soc is not None and 0 <= soc <= 100 and cells and len(cells) == 16 and
          all(3000 <= c <= 3600 for c in cells) and 48000 <= mv <= 57600,
          "soc %s mv %s cells %s" % (soc, mv, cells))
    def stdout_ids():
        return {int(m.group(1), 16) for m in
                (re.search(r" ([0-9A-F]+)#", l) for l in d.frames()) if m}

    # the first set goes out on the tick after the first complete read
    wait_for(lambda: getp(bus, PATH, NAME, "WireFrames") and 0x351 in stdout_ids(), 5)
    frames = getp(bus, PATH, NAME, "WireFrames") or []
    ids = {f[0] for f in frames}
    on_stdout = stdout_ids()
    check("WireFrames: the set on stdout (0x351 among them)",
          0x351 in ids and ids <= on_stdout, "%s vs %s" % (sorted(ids), sorted(on_stdout)))
    for k in ("ChargeVoltageLimitSetBy", "ChargeCurrentLimitSetBy"):
        v = getp(bus, PATH, NAME, k)
        check("%s names a rule (%s)" % (k, v), v in ("bms", "cap", "floor", "ramp", "rules", "taper", "cell", "derate",
                                                 "taper+cell", "taper+derate", "cell+derate",
                                                 "taper+cell+derate"), str(v))


def test_signals(bus):
    # busctl monitor runs until killed: 4 s of it
    p = subprocess.Popen(["busctl", "--system", "--json=short", "monitor",
                          "--match=type='signal',interface='org.freedesktop.DBus.Properties',"
                          "member='PropertiesChanged'"],
                         env=bus.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)
    p.terminate()
    out, err = p.communicate(5)
    sigs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    gw = [s for s in sigs if s.get("path") == PATH]
    pk = [s for s in sigs if s.get("path") == PATH + "/pack/1"]
    check("PropertiesChanged arrives for the gateway and the pack as the sim moves",
          len(gw) >= 2 and len(pk) >= 2, "gateway %d, pack %d\n%s" % (len(gw), len(pk), err))
    check("signals rate-limited: at most 2 a second per object (%d gateway in 4 s)" % len(gw),
          len(gw) <= 9 and len(pk) <= 9, "gateway %d, pack %d" % (len(gw), len(pk)))


def test_policy(bus, tmp):
    v = getp(bus, PATH, NAME, "SocPct", nobody=True)
    check("policy: nobody reads a property", v is not None)
    r = busctl(bus, "call", NAME, PATH, NAME, "GetStatus", nobody=True)
    check("policy: nobody's method call is refused",
          r.returncode != 0 and "denied" in (r.stderr + r.stdout).lower(), r.stdout + r.stderr)
    r = busctl(bus, "call", NAME, PATH, NAME, "GetStatus")
    check("policy: root's method call is answered",
          r.returncode == 0 and r.stdout.startswith("s \"BMS"), r.stdout + r.stderr)
    other = Daemon(["--demo"], bus.env, user="nobody")
    ok = wait_for(lambda: any("Cannot own" in l for l in other.log()), 10)
    other.stop()
    check("policy: nobody cannot own the name (the daemon says so and runs on)",
          ok and any("AccessDenied" in l or "not allowed" in l for l in other.log()),
          "\n".join(other.log()))


def test_flood(bus, d):
    time.sleep(3)
    t_idle0 = time.time()
    time.sleep(8)
    t_idle1 = time.time()
    f = Flood(bus)
    sent, replies = f.run(10)
    t_flood1 = time.time()
    time.sleep(1.5)
    idle, n_idle = worst_delay_ms(d.frames(), 0x351, t_idle0, t_idle1)
    flood, n_flood = worst_delay_ms(d.frames(), 0x351, t_idle1, t_flood1)
    print("# flood: %d GetAll requests in 10 s, %d answered; worst 0x351 lateness: "
          "idle %.1f ms (%d frames), flooded %.1f ms (%d frames)" %
          (sent, replies, idle or -1, n_idle, flood or -1, n_flood), flush=True)
    check("flood: the daemon answered every request (%d)" % sent,
          sent > 100 and replies == sent, "%d sent, %d answered" % (sent, replies))
    check("flood: the inverter set kept coming every second (%d frames in 10 s)" % (n_flood or 0),
          n_flood >= 9, str(n_flood))
    # the tick's own timer slack is 50 ms (1/20 of the period); under ASan on a shared machine
    check("flood: worst inverter-frame lateness under load %.1f ms < 250 ms" % (flood or -1),
          flood is not None and flood < 250.0, "idle %s flood %s" % (idle, flood))
    check("flood: the daemon is still on the bus", getp(bus, PATH, NAME, "Mode") is not None)


def test_ctl(bus):
    r = ctl(bus.env, "status")
    check("bmsbridgectl status: one screen with safety, limits, setter and inverter",
          r.returncode == 0 and re.search(r"Safety: normal", r.stdout) and
          re.search(r"Charge current: [\d.]+ A \(set by \w+; on the wire [\d.]+ A\)", r.stdout)
          and "Pack: #1 online" in r.stdout and "Inverter: pylontech" in r.stdout,
          r.stdout + r.stderr)
    r = ctl(bus.env, "status", "--json")
    try:
        j = json.loads(r.stdout)
    except ValueError:
        j = {}
    check("bmsbridgectl status --json: every gateway property, the pack",
          set(j.get("gateway", {})) == set(GATEWAY) and len(j.get("packs", [])) == 1 and
          set(j["packs"][0]) == set(PACK), r.stdout[-2000:] + r.stderr)
    p = subprocess.Popen([CTL, "watch"], env=bus.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(3.5)
    p.terminate()
    out, err = p.communicate(5)
    lines = [l for l in out.splitlines() if re.match(r"\d\d:\d\d:\d\d (gateway|pack/1) \w+=", l)]
    check("bmsbridgectl watch: the screen, then one line per change",
          "Safety:" in out and len(lines) >= 2 and
          all("Version=" not in l for l in lines), out[-1500:] + err)


def test_no_bus(tmp):
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS="unix:path=" + os.path.join(tmp, "none"))
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
        env.pop(k, None)
    d = Daemon(["--demo"], env)
    time.sleep(4)
    n = len([l for l in d.frames() if " 351#" in l])
    rc = d.stop()
    said = [l for l in d.log() if "system bus" in l]
    check("no bus: said once, and the frames kept coming (%d x 0x351)" % n,
          len(said) == 1 and "No system bus" in said[0] and n >= 3 and rc == 0,
          "\n".join(d.log()))
    conf = os.path.join(tmp, "nodbus.conf")
    with open(os.path.join(SRC, "conf", "demo.conf")) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write("dbus = false;\n" + text)
    d = Daemon(["-c", conf], env)
    time.sleep(3)
    n = len([l for l in d.frames() if " 351#" in l])
    rc = d.stop()
    check("dbus = false: nothing said about a bus, frames sent",
          not any("bus" in l.lower() and "can" not in l.lower() for l in d.log()) and n >= 2,
          "\n".join(d.log()))


# ---- diagnose against staged faults -------------------------------------------------

class Pty:
    def __init__(self, tmp, tag):
        self.mine = os.path.join(tmp, tag + "-mine")
        self.daemon = os.path.join(tmp, tag + "-daemon")
        self.p = subprocess.Popen(["socat", "pty,raw,echo=0,link=" + self.mine,
                                   "pty,raw,echo=0,link=" + self.daemon],
                                  stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(self.mine) and os.path.exists(self.daemon), 5)

    def stop(self):
        self.p.terminate()
        self.p.wait(5)


def rs485_request(adr, cid2, ver=0x20):
    body = b"%02X%02X46%02X0000" % (ver, adr, cid2)
    return b"~" + body + b"%04X" % ((-sum(body)) & 0xFFFF) + b"\r"


def diagnose(env, *args):
    return ctl(env, "diagnose", *args, timeout=30)


def test_diagnose_rs485(bus, tmp):
    pty = Pty(tmp, "inv")
    conf = os.path.join(tmp, "rs485.conf")
    with open(conf, "w") as f:
        f.write('bms: { driver = "sim"; };\n'
                'inverter: { protocol = "pylontech-rs485"; output = "rs485"; port = "%s"; '
                'baud = 9600; };\n' % pty.daemon)
    d = Daemon(["-c", conf], bus.env)
    import serial
    s = serial.Serial(pty.mine, 9600, timeout=0.2)
    try:
        wait_for(lambda: getp(bus, PATH, NAME, "Mode") == "normal", 10)
        r = diagnose(bus.env)
        check("diagnose, RS485, nothing polls: 'nothing heard' and what to check",
              r.returncode == 1 and re.search(r"FAIL \] RS485 polls: nothing heard", r.stdout)
              and "A/B" in r.stdout, r.stdout + r.stderr)
        # a Voltronic set to battery address 2 polls ADR 0x03 (V3.3 §2.5.3), we answer 0x02
        for _ in range(6):
            s.write(rs485_request(0x03, 0x4F, ver=0x00))
            time.sleep(0.2)
        time.sleep(1.8)
        r = diagnose(bus.env)
        check("diagnose: RS485 polls to another address -> that address and rs485_address",
              r.returncode == 1 and re.search(r"polls to address 0x03, none to ours \(0x02\)",
                                              r.stdout) and "rs485_address = 3" in r.stdout,
              r.stdout + r.stderr)
    finally:
        s.close()
        d.stop()
        pty.stop()
    # wrong baud: the inverter at 19200, we at 9600 read the bytes as noise
    pty = Pty(tmp, "baud")
    with open(conf, "w") as f:
        f.write('bms: { driver = "sim"; };\n'
                'inverter: { protocol = "pylontech-rs485"; output = "rs485"; port = "%s"; '
                'baud = 9600; };\n' % pty.daemon)
    d = Daemon(["-c", conf], bus.env)
    try:
        wait_for(lambda: getp(bus, PATH, NAME, "Mode") == "normal", 10)
        with open(pty.mine, "wb", buffering=0) as f:
            # a 19200-baud "~20024F..." as a 9600-baud UART samples it: every
            # other bit lost, bytes with bit 7 set and no '~' frame
            for _ in range(8):
                f.write(bytes([0xF8, 0x80, 0xE0, 0xFE, 0x98, 0x86, 0xF0]) * 4)
                time.sleep(0.2)
        time.sleep(1.8)
        r = diagnose(bus.env)
        check("diagnose: bytes at the wrong baud -> 'wrong baud rate?' and the baud key",
              r.returncode == 1 and "no valid poll" in r.stdout and "inverter { baud }" in r.stdout,
              r.stdout + r.stderr)
    finally:
        d.stop()
        pty.stop()


def test_diagnose_bms(bus, tmp):
    link = os.path.join(tmp, "jk")
    srv = subprocess.Popen([SERVER, link, DATA], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True, bufsize=1)
    srv.stdout.readline()

    def cmd(line):
        srv.stdin.write(line + "\n")
        srv.stdin.flush()
        return srv.stdout.readline()

    cmd("pack 1")
    conf = os.path.join(tmp, "jk.conf")
    with open(conf, "w") as f:
        f.write('bms: { driver = "jk-pb-modbus"; port = "%s"; addresses = [1, 4];\n'
                '       poll_interval_ms = 1000; response_timeout_ms = 150; request_gap_ms = 50; };\n'
                'inverter: { protocol = "pylontech"; output = "candump"; port = "%s"; };\n'
                % (link, os.path.join(tmp, "jk-out.log")))
    d = Daemon(["-c", conf], bus.env)
    try:
        ok = wait_for(lambda: getp(bus, PATH + "/pack/1", "org.bmsbridge.Pack1", "Online"), 15)
        time.sleep(1.5)
        r = diagnose(bus.env)
        check("diagnose: pack #1 online, pack #4 (no such address) 'does not answer'",
              ok and "OK  ] pack #1: online" in r.stdout and
              re.search(r"FAIL \] pack #4: does not answer", r.stdout) and
              "DIP" in r.stdout, r.stdout + r.stderr)
        check("diagnose: its configuration check reads the daemon's file",
              "OK  ] configuration: " + os.path.realpath(conf) in r.stdout, r.stdout)
    finally:
        d.stop()
    cmd("unplug 1")
    d = Daemon(["-c", conf], bus.env)
    try:
        wait_for(lambda: getp(bus, PATH, NAME, "Mode") is not None, 10)
        time.sleep(3)
        r = diagnose(bus.env)
        check("diagnose: BMS silent -> 'no pack ever answered' with baud, A/B, address",
              r.returncode == 1 and re.search(r"FAIL \] BMS: silent", r.stdout) and
              "A/B" in r.stdout and "FAIL ] safety: not ready" in r.stdout,
              r.stdout + r.stderr)
    finally:
        d.stop()
        srv.stdin.close()
        srv.wait(5)


def test_diagnose_no_daemon(bus, tmp):
    conf = os.path.join(tmp, "gone.conf")
    with open(conf, "w") as f:
        f.write('bms: { driver = "pylontech-can"; port = "nocan7"; };\n'
                'inverter: { protocol = "pylontech-rs485"; output = "rs485"; '
                'port = "%s"; };\n' % os.path.join(tmp, "ttyNONE"))
    r = diagnose(bus.env, conf)
    check("diagnose, no daemon: says so, and checks the file, the CAN link, the serial port",
          r.returncode == 1 and "FAIL ] daemon: not running" in r.stdout and
          "OK  ] configuration" in r.stdout and
          "FAIL ] BMS CAN link nocan7: no such interface" in r.stdout and
          re.search(r"FAIL \] inverter serial port \S+ttyNONE: No such file", r.stdout),
          r.stdout + r.stderr)
    with open(conf, "w") as f:
        f.write('bms: { driver = "nonsense"; };\n')
    r = diagnose(bus.env, conf)
    check("diagnose: a bad file -> its line and 'bmsbridged --check-config'",
          r.returncode == 1 and "FAIL ] configuration: " in r.stdout and
          "--check-config" in r.stdout, r.stdout + r.stderr)


def main():
    for f in (DAEMON, CTL, SERVER):
        if not os.access(f, os.X_OK):
            fail_all(f + " is not built")
    pwd.getpwnam("nobody")
    tmp = tempfile.mkdtemp(prefix="bmsbridge-dbus-")
    os.chmod(tmp, 0o755)  # nobody reaches the bus socket
    bus = Bus(tmp, POLICY)
    try:
        check("a private dbus-daemon with our policy", bus.address.startswith("unix:"),
              bus.p.stderr.read() if bus.p.poll() is not None else "")
        d = Daemon(["--demo"], bus.env)
        try:
            ok = wait_for(lambda: any("On the system bus as " + NAME in l for l in d.log()), 10)
            check("the daemon registers %s" % NAME, ok, "\n".join(d.log()))
            test_properties(bus, d)
            test_values(bus, d)
            test_signals(bus)
            test_policy(bus, tmp)
            test_ctl(bus)
            test_flood(bus, d)
        finally:
            rc = d.stop()
        check("the daemon stops cleanly (exit 0)", rc == 0, "\n".join(d.log()[-20:]))
        test_no_bus(tmp)
        test_diagnose_rs485(bus, tmp)
        test_diagnose_bms(bus, tmp)
        test_diagnose_no_daemon(bus, tmp)
    finally:
        bus.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
