# SPDX-License-Identifier: MIT
"""
Shared pieces of the CAN integration tests: TAP output, the real daemon
with its log, and a python-can peer that records what it hears.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

import can  # python3-can

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyhelpers"))
from tap import check, finish, results, wait_for  # noqa: E402,F401

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BUILD_DIR", "build"))
DAEMON = os.path.join(BUILD, "bmsbridged")


class Daemon:
    """bmsbridged with CONF, its stderr collected line by line."""

    def __init__(self, conf_text, tmp, name="test", env=None, args=("-v",)):
        self.conf = os.path.join(tmp, name + ".conf")
        self.write_conf(conf_text)
        penv = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
            penv.pop(k, None)
        penv.update(env or {})
        self.lines = []
        self.lock = threading.Lock()
        self.p = subprocess.Popen([DAEMON, "-c", self.conf] + list(args),
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  env=penv)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def write_conf(self, conf_text):
        with open(self.conf, "w") as f:
            f.write(conf_text)

    def _read(self):
        for line in self.p.stderr:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def log(self, since=0):
        with self.lock:
            return list(self.lines[since:])

    def mark(self):
        with self.lock:
            return len(self.lines)

    def wait_log(self, pattern, timeout, since=0):
        rx = re.compile(pattern)
        return wait_for(lambda: next((l for l in self.log(since) if rx.search(l)), None), timeout)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        rc = None
        if self.p.poll() is None:
            self.p.terminate()
            try:
                rc = self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        else:
            rc = self.p.returncode
        self.t.join(timeout=5)
        return rc


class Peer:
    """A python-can node on IFACE that records every frame it receives."""

    def __init__(self, iface, filters=None):
        self.iface = iface
        self.bus = can.interface.Bus(interface="socketcan", channel=iface, can_filters=filters)
        self.got = []
        self.lock = threading.Lock()
        self.running = True
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        while self.running:
            try:
                m = self.bus.recv(0.1)
            except can.CanError:
                time.sleep(0.1)  # the interface is down for a while
                continue
            if m is not None and not m.is_error_frame:
                with self.lock:
                    self.got.append((time.monotonic(), m.arbitration_id, bytes(m.data)))

    def frames(self, ident=None, since=0.0):
        with self.lock:
            return [f for f in self.got if (ident is None or f[1] == ident) and f[0] >= since]

    def send(self, ident, data, error=False, ext=False):
        self.bus.send(can.Message(arbitration_id=ident, data=data, is_extended_id=ext,
                                  is_error_frame=error))

    def close(self):
        self.running = False
        self.t.join(timeout=2)
        self.bus.shutdown()


class Notify:
    """A NOTIFY_SOCKET of our own: what the daemon tells systemd (sd_notify(3))."""

    def __init__(self, tmp, name="notify.sock"):
        self.path = os.path.join(tmp, name)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.msgs = []

    def env(self):
        return {"NOTIFY_SOCKET": self.path}

    def poll(self):
        while True:
            try:
                self.msgs.append((time.monotonic(), self.sock.recv(4096).decode()))
            except (socket.timeout, BlockingIOError):
                return self.msgs

    def find(self, key):
        """The first message with a line KEY (e.g. "READY=1"), or None."""
        return next((m for m in self.poll() if key in m[1].split("\n")), None)

    def statuses(self):
        return [l[7:] for _, m in self.poll() for l in m.split("\n") if l.startswith("STATUS=")]

    def close(self):
        self.sock.close()


class BmsPeer:
    """A CAN BMS on PEER: sends FRAMES [(id, data)] once a second until stopped."""

    def __init__(self, peer, frames):
        self.peer = peer
        self.frames = frames
        self.last = 0.0
        self.running = True
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while self.running:
            for ident, data in self.frames:
                self.peer.send(ident, data)
            self.last = time.monotonic()
            time.sleep(1.0)

    def stop(self):
        self.running = False
        self.t.join(timeout=3)


def capture(path):
    """(id, data) of each frame of a candump -L log."""
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("("):
                ident, data = line.split()[2].split("#")
                out.append((int(ident, 16), bytes.fromhex(data)))
    return out


def tc(*args):
    return subprocess.run(["tc"] + list(args), capture_output=True, text=True)


def tmpdir():
    return tempfile.TemporaryDirectory(prefix="bmsbridge-can-")


def ip(*args):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True)
