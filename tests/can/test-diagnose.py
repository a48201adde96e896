#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
bmsbridgectl diagnose against the real bmsbridged on vcan, through a
private system bus (tests/pyhelpers/privbus.py) with our policy:

- a CAN inverter that never sends its keep-alive: "inverter: never heard"
  with what to set on the inverter; the link check says vcan0 is up (a
  virtual link has no bit rate to compare);
- the same inverter sending 0x305 every 0.5 s: "inverter: heard", and
  the bus state is read from the daemon (error-active on vcan);
- the BMS link down (`ip link set vcan1 down`), no daemon: diagnose says
  the daemon is not running and names the link down with the exact `ip`
  command at the protocol's 500 kbit/s;
- a link that does not exist: "no such interface".
A wrong bit rate needs a real controller (vcan has none): left to a Pi.

Usage: test-diagnose.py BUILD_DIR (vcan0/vcan1 up; tests/can/run arranges it). TAP.
"""
import os
import subprocess
import time

from canpeer import BUILD, Daemon, Peer, check, finish, ip, tmpdir, wait_for
from privbus import Bus  # tests/pyhelpers, on the path canpeer set

HERE = os.path.dirname(os.path.abspath(__file__))
POLICY = os.path.join(os.path.dirname(os.path.dirname(HERE)), "dbus",
                      "org.bmsbridge.Gateway1.conf")
CTL = os.path.join(BUILD, "bmsbridgectl")


def diagnose(env, *args):
    return subprocess.run([CTL, "diagnose"] + list(args), env=env, capture_output=True,
                          text=True, timeout=30)


def on_bus(env):
    r = subprocess.run([CTL, "status", "--json"], env=env, capture_output=True, text=True,
                       timeout=10)
    return r.returncode == 0 and '"Mode": "normal"' in r.stdout


def test_inverter(tmp, bus):
    inv = Peer("vcan0")
    dm = Daemon('bms: { driver = "sim"; seed = 3; };\n'
                'inverter: { protocol = "pylontech"; port = "vcan0"; inverter_timeout_s = 3; };\n',
                tmp, "diag", env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address})
    try:
        check("the daemon is on the private bus, normal", wait_for(lambda: on_bus(bus.env), 15),
              "\n".join(dm.log()))
        time.sleep(1.5)
        r = diagnose(bus.env)
        check("diagnose: silent CAN inverter -> 'never heard' and the inverter's setting",
              r.returncode == 1 and "FAIL ] inverter: never heard" in r.stdout and
              "battery type" in r.stdout, r.stdout + r.stderr)
        check("diagnose: vcan0 up (no bit rate on a virtual link)",
              "OK  ] inverter CAN link vcan0: up (virtual: no bit rate)" in r.stdout, r.stdout)
        for _ in range(5):
            inv.send(0x305, bytes(8))  # the Pylontech inverter's keep-alive
            time.sleep(0.5)
        time.sleep(1.0)
        r = diagnose(bus.env)
        check("diagnose: 0x305 keep-alives -> 'inverter: heard', the bus state from the daemon",
              r.returncode == 0 and "OK  ] inverter: heard" in r.stdout and
              "OK  ] inverter CAN bus: error-active" in r.stdout, r.stdout + r.stderr)
    finally:
        dm.stop()
        inv.close()


def test_links(tmp, bus):
    conf = os.path.join(tmp, "links.conf")
    with open(conf, "w") as f:
        f.write('bms: { driver = "pylontech-can"; port = "vcan1"; };\n'
                'inverter: { protocol = "pylontech"; port = "vcan0"; };\n')
    ip("link", "set", "vcan1", "down")
    try:
        r = diagnose(bus.env, conf)
        check("diagnose, no daemon, vcan1 down: said, with the ip command at 500 kbit/s",
              r.returncode == 1 and "FAIL ] daemon: not running" in r.stdout and
              "FAIL ] BMS CAN link vcan1: down" in r.stdout and
              "ip link set vcan1 up type can bitrate 500000" in r.stdout, r.stdout + r.stderr)
    finally:
        ip("link", "set", "vcan1", "up")
    with open(conf, "w") as f:
        f.write('bms: { driver = "pylontech-can"; port = "vcan7"; };\n'
                'inverter: { protocol = "pylontech"; port = "vcan0"; };\n')
    r = diagnose(bus.env, conf)
    check("diagnose: a CAN link that does not exist -> 'no such interface'",
          "FAIL ] BMS CAN link vcan7: no such interface" in r.stdout and
          "OK  ] inverter CAN link vcan0: up" in r.stdout, r.stdout + r.stderr)


def main():
    with tmpdir() as tmp:
        os.chmod(tmp, 0o755)
        bus = Bus(tmp, POLICY)
        try:
            check("a private dbus-daemon", bus.address.startswith("unix:"))
            test_inverter(tmp, bus)
            test_links(tmp, bus)
        finally:
            bus.stop()
    return finish()


if __name__ == "__main__":
    raise SystemExit(main())
