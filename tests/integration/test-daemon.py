#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The real bmsbridged, end to end, without CAN hardware:

- the embedded demo (sim BMS -> pylontech -> candump on stdout): the frame
  set, its 1 s period and plausible values, decoded here with an
  independent table written from the Pylontech LV CAN layout
  (the team's protocols.md; Battery-Emulator PYLON-LV-CAN.cpp);
- sd_notify through a fake NOTIFY_SOCKET: READY=1, STATUS=, WATCHDOG=1,
  RELOADING=1 on SIGHUP, STOPPING=1 on SIGTERM, then a clean exit 0;
- SIGHUP with an invalid file keeps the old configuration running, also
  when the path became a FIFO or a directory (no blocking open);
- --check-config: one precise line per bad file, non-zero exit;
- the default path is the configured sysconfdir's;
- the periodic status goes to STATUS= only, not to the log.

Usage: test-daemon.py BUILD_DIR   (prints TAP)
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyhelpers"))
from tap import check, results, wait_for  # noqa: E402,F401

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BUILD_DIR", "build")
DAEMON = os.path.join(BUILD, "bmsbridged")


def parse_candump(line):
    # "(1700000000.123456) can0 351#2802E803DC050000"
    ts, ifname, frame = line.split()
    can_id, data = frame.split("#")
    return float(ts.strip("()")), ifname, int(can_id, 16), bytes.fromhex(data)


def le16(d, o, signed=False):
    return int.from_bytes(d[o:o + 2], "little", signed=signed)


class Notify:
    """A fake systemd notify socket (AF_UNIX datagrams)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []

    def drain(self, until, want=None):
        """Collect messages until the deadline or until one contains want."""
        while time.monotonic() < until:
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            self.messages.append(msg)
            if want and want in msg:
                return True
        return False

    def seen(self, key):
        return any(key in m for m in self.messages)


def start(args, tmp, extra_env=None):
    env = dict(os.environ)
    env["NOTIFY_SOCKET"] = os.path.join(tmp, "notify")
    env["WATCHDOG_USEC"] = "1000000"  # ping expected every 0.5 s
    env.pop("WATCHDOG_PID", None)
    env.pop("JOURNAL_STREAM", None)
    if extra_env:
        env.update(extra_env)
    return subprocess.Popen([DAEMON] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)


def read_frames(proc, seconds):
    """Read candump lines from the daemon's stdout for a while."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    frames = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if sel.select(timeout=0.2):
            line = proc.stdout.readline()
            if not line:
                break
            frames.append(parse_candump(line))
    sel.close()
    return frames


def test_demo(tmp):
    notify = Notify(os.path.join(tmp, "notify"))
    proc = start(["--demo"], tmp)
    try:
        ready = notify.drain(time.monotonic() + 5, "READY=1")
        check("demo: READY=1 reaches the notify socket", ready, notify.messages)
        frames = read_frames(proc, 3.5)
        ids = {f[2] for f in frames}
        want = {0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E}
        check("demo: the Pylontech frame set is on stdout", want <= ids,
              "ids seen: %s" % sorted(hex(i) for i in ids))
        check("demo: lines carry the interface name can0",
              all(f[1] == "can0" for f in frames), frames[:3])

        # period: successive 0x351 about 1 s apart (wall clock stamps)
        t351 = [f[0] for f in frames if f[2] == 0x351]
        gaps = [b - a for a, b in zip(t351, t351[1:])]
        check("demo: 0x351 every 1 s (+-0.2 s)",
              len(gaps) >= 2 and all(0.8 <= g <= 1.2 for g in gaps), gaps)

        # values, decoded with the layout from the spec, against the sim pack
        last = {f[2]: f[3] for f in frames}
        d = last.get(0x351, b"")
        if len(d) >= 6:
            cvl_v = le16(d, 0) / 10
            ccl_a = le16(d, 2, True) / 10
            dcl_a = le16(d, 4, True) / 10
            check("demo: 0x351 CVL 55.2 V for 16 cells x 3.45 V", abs(cvl_v - 55.2) < 0.05,
                  cvl_v)
            check("demo: 0x351 CCL/DCL within 0..100 A / 0..150 A",
                  0 <= ccl_a <= 100 and 0 <= dcl_a <= 150, (ccl_a, dcl_a))
        else:
            check("demo: 0x351 has 6+ bytes", False, d.hex())
        d = last.get(0x355, b"")
        check("demo: 0x355 SOC 0-100 %, SOH 98 %",
              len(d) >= 4 and 0 <= le16(d, 0) <= 100 and le16(d, 2) == 98, d.hex())
        d = last.get(0x356, b"")
        if len(d) >= 6:
            volt = le16(d, 0, True) / 100
            temp = le16(d, 4, True) / 10
            check("demo: 0x356 pack voltage of a 16s LFP pack (40-58.4 V)", 40 <= volt <= 58.4,
                  volt)
            check("demo: 0x356 temperature 10-60 degC", 10 <= temp <= 60, temp)
        else:
            check("demo: 0x356 has 6 bytes", False, d.hex())
        d = last.get(0x35E, b"")
        check("demo: 0x35E manufacturer is printable ASCII",
              len(d) > 0 and all(32 <= c < 127 for c in d), d)

        notify.drain(time.monotonic() + 1.5)
        check("demo: WATCHDOG=1 pings from the loop", notify.seen("WATCHDOG=1"), notify.messages)
        check("demo: a STATUS= line", notify.seen("STATUS=BMS"), notify.messages)

        proc.send_signal(signal.SIGHUP)
        got = notify.drain(time.monotonic() + 3, "RELOADING=1")
        got = got and notify.drain(time.monotonic() + 3, "READY=1")
        check("demo: SIGHUP -> RELOADING=1 then READY=1", got, notify.messages[-4:])
        more = read_frames(proc, 1.5)
        check("demo: frames keep flowing after SIGHUP", any(f[2] == 0x351 for f in more))

        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = None
        notify.drain(time.monotonic() + 0.5)
        check("demo: SIGTERM -> STOPPING=1", notify.seen("STOPPING=1"), notify.messages[-3:])
        check("demo: clean exit status 0 on SIGTERM", rc == 0, proc.stderr.read())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


GOOD = """
bms: { driver = "sim"; seed = 3; };
inverter: { protocol = "pylontech"; output = "candump"; port = "-"; };
"""


def test_reload_keeps_old_on_error(tmp):
    conf = os.path.join(tmp, "reload.conf")
    write(conf, GOOD)
    notify = Notify(os.path.join(tmp, "notify"))
    proc = start(["-c", conf], tmp)
    try:
        notify.drain(time.monotonic() + 5, "READY=1")
        read_frames(proc, 1.2)
        write(conf, GOOD + "\nbogus_key = 1;\n")
        proc.send_signal(signal.SIGHUP)
        notify.drain(time.monotonic() + 3, "READY=1")
        frames = read_frames(proc, 2.2)
        check("reload: an invalid file keeps the daemon running on the old one",
              proc.poll() is None and sum(1 for f in frames if f[2] == 0x351) >= 1,
              "frames after SIGHUP: %d" % len(frames))
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=5)[1]
        check("reload: the error names the file, the line and the setting",
              ("reload.conf:" in err and "bogus_key" in err and "keeping the running" in err),
              err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


BAD = {
    "typo": ("bms: { driver = \"sim\"; sede = 3; };\n"
             "inverter: { protocol = \"pylontech\"; output = \"candump\"; port = \"-\"; };\n",
             ":1:", "sede"),
    "type": ("bms: { driver = \"sim\"; seed = \"three\"; };\n"
             "inverter: { protocol = \"pylontech\"; output = \"candump\"; port = \"-\"; };\n",
             ":1:", "seed"),
    "range": ("bms: { driver = \"sim\"; };\n"
              "inverter: { protocol = \"pylontech\"; output = \"candump\"; port = \"-\";\n"
              "  baud = 12345; };\n",
              ":3:", "baud"),
    "syntax": ("bms: { driver = \"sim\"; seed = ; };\n"
               "inverter: { protocol = \"pylontech\"; output = \"candump\"; port = \"-\"; };\n",
               ":1:", ""),
}


def test_check_config(tmp):
    for name, (text, where, setting) in BAD.items():
        path = os.path.join(tmp, name + ".conf")
        write(path, text)
        r = subprocess.run([DAEMON, "--check-config", path], capture_output=True, text=True,
                           timeout=10)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check("check-config %s: non-zero exit, one line naming %s%s" % (name, where, setting),
              r.returncode != 0 and len(lines) == 1 and (name + ".conf" + where) in lines[0]
              and setting in lines[0], r.stderr)
    path = os.path.join(tmp, "good.conf")
    write(path, GOOD)
    r = subprocess.run([DAEMON, "--check-config", path], capture_output=True, text=True,
                       timeout=10)
    check("check-config good file: exit 0 and the effective settings printed",
          r.returncode == 0 and "pylontech" in r.stdout and "sim" in r.stdout,
          r.stdout + r.stderr)
    r = subprocess.run([DAEMON, "--check-config", os.path.join(tmp, "missing.conf")],
                       capture_output=True, text=True, timeout=10)
    check("check-config missing file: non-zero exit, names the file",
          r.returncode != 0 and "missing.conf" in r.stderr, r.stderr)


def default_config_path():
    """prefix/sysconfdir/bmsbridge.conf as this build was configured (meson-info)."""
    import json
    with open(os.path.join(BUILD, "meson-info", "intro-buildoptions.json")) as f:
        opts = {o["name"]: o["value"] for o in json.load(f)}
    return os.path.join(opts["prefix"], opts["sysconfdir"], "bmsbridge.conf")


def test_default_path():
    """The default configuration is the configured sysconfdir's, not a fixed /etc."""
    want = default_config_path()
    r = subprocess.run([DAEMON, "--help"], capture_output=True, text=True, timeout=10)
    check("--help names the configured sysconfdir's file (%s)" % want,
          r.returncode == 0 and ("(default %s)" % want) in r.stdout, r.stdout)


def test_no_config_runs_demo(tmp):
    """No -c: the file at the configured place, or the embedded demo when there is none."""
    path = default_config_path()
    r = subprocess.run([DAEMON, "--check-config"], capture_output=True, text=True, timeout=10)
    if os.path.exists(path):
        # a file is installed here: --check-config reads exactly that one
        check("--check-config without a file reads %s" % path,
              path in r.stderr and ("effective settings of %s" % path in r.stdout
                                    or r.returncode != 0), r.stdout[:300] + r.stderr)
        return
    check("--check-config without a file fails and names %s" % path,
          r.returncode != 0 and path in r.stderr, r.stderr)
    proc = start([], tmp)
    try:
        frames = read_frames(proc, 2.5)
        check("no config file: the embedded demo runs (frames on stdout)",
              any(f[2] == 0x351 for f in frames), "%d frames" % len(frames))
    finally:
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=5)[1]
    check("no config file: one warning says so",
          ("No %s: running the embedded demo" % path) in err, err)


def test_reload_not_a_file(tmp):
    """SIGHUP while the path is a FIFO or a directory: one error, the loop keeps running,
    SIGTERM still stops it at once (a blocking open used to hang the loop)."""
    conf = os.path.join(tmp, "swap.conf")
    write(conf, GOOD)
    notify = Notify(os.path.join(tmp, "notify"))
    proc = start(["-c", conf], tmp)
    try:
        notify.drain(time.monotonic() + 5, "READY=1")
        for kind in ("fifo", "directory"):
            os.unlink(conf)
            if kind == "fifo":
                os.mkfifo(conf)
            else:
                os.mkdir(conf)
            proc.send_signal(signal.SIGHUP)
            got = notify.drain(time.monotonic() + 3, "READY=1")
            frames = read_frames(proc, 1.5)
            check("reload with a %s: the loop answers and frames keep flowing" % kind,
                  got and proc.poll() is None and any(f[2] == 0x351 for f in frames),
                  "READY after HUP: %s, frames: %d" % (got, len(frames)))
            if kind == "fifo":
                os.unlink(conf)
            else:
                os.rmdir(conf)
            write(conf, GOOD)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=5)[1]
        check("SIGTERM after those reloads: exit 0 within 2 s",
              proc.returncode == 0 and time.monotonic() - t0 < 2, err)
        check("the errors say what the path is",
              "not a regular file (a FIFO)" in err and "is a directory" in err, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for name, make in (("fifo", os.mkfifo), ("dir", os.mkdir)):
        path = os.path.join(tmp, "check-" + name)
        make(path)
        r = subprocess.run([DAEMON, "--check-config", path], capture_output=True, text=True,
                           timeout=10)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check("--check-config on a %s: exit 1, one line" % name,
              r.returncode == 1 and len(lines) == 1 and path in lines[0], r.stderr)


def test_heartbeat_not_logged(tmp):
    """The periodic status goes to STATUS= only: 8,640 journal lines a day otherwise."""
    conf = os.path.join(tmp, "status.conf")
    write(conf, "status_interval_s = 1;\n" + GOOD)
    notify = Notify(os.path.join(tmp, "notify"))
    proc = start(["-c", conf], tmp)
    try:
        notify.drain(time.monotonic() + 5, "READY=1")
        read_frames(proc, 3.5)
        notify.drain(time.monotonic() + 0.5)
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=5)[1]
        statuses = [m for m in notify.messages if "STATUS=BMS" in m and "READY=1" not in m]
        check("heartbeat: STATUS= refreshed while running", len(statuses) >= 1,
              notify.messages)
        check("heartbeat: no status line in the log", "Status:" not in err, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    if not os.access(DAEMON, os.X_OK):
        print("1..0 # SKIP no daemon at %s" % DAEMON)
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        test_demo(tmp)
        os.unlink(os.path.join(tmp, "notify"))
        test_reload_keeps_old_on_error(tmp)
        os.unlink(os.path.join(tmp, "notify"))
        test_check_config(tmp)
        test_default_path()
        test_no_config_runs_demo(tmp)
        test_reload_not_a_file(tmp)
        os.unlink(os.path.join(tmp, "notify"))
        test_heartbeat_not_logged(tmp)
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
