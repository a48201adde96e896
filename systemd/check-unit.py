#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The systemd unit: systemd-analyze verify accepts it, `systemctl reload`
fails on a broken file (ExecReload runs --check-config before the HUP,
and that command really exits non-zero on a broken file and 0 on a good
one), and every serial device family we support is allowed.

Usage: check-unit.py SYSTEMD_ANALYZE TEST_UNIT INSTALLED_UNIT  (prints TAP)
TEST_UNIT is the unit configured with this build's daemon and a config
path inside the build directory.
"""
import os
import shlex
import subprocess
import sys

results = []


def check(name, cond, detail=""):
    results.append(cond)
    print(("ok" if cond else "not ok") + " %d - %s" % (len(results), name))
    if not cond and detail:
        for line in str(detail).splitlines():
            print("# " + line)


def directives(path, key):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith(key + "="):
                out.append(line[len(key) + 1:])
    return out


def main():
    analyze, test_unit, unit = sys.argv[1:4]

    r = subprocess.run([analyze, "verify", "--man=no", test_unit], capture_output=True,
                       text=True, timeout=60)
    check("systemd-analyze verify: no complaint", r.returncode == 0 and not r.stderr.strip()
          and not r.stdout.strip(), r.stdout + r.stderr)

    reload_ = directives(unit, "ExecReload")
    start = directives(unit, "ExecStart")
    check("ExecReload: --check-config first, then SIGHUP",
          len(reload_) == 2 and "--check-config" in reload_[0]
          and reload_[1] == "/bin/kill -HUP $MAINPID", reload_)
    conf = shlex.split(start[0])[-1] if start else None
    check("ExecReload checks the file ExecStart runs with",
          conf is not None and shlex.split(reload_[0])[-1] == conf, (start, reload_))

    # run the test unit's check command as systemd would
    cmd = shlex.split(directives(test_unit, "ExecReload")[0])
    path = cmd[-1]
    try:
        with open(path, "w") as f:
            f.write('bms: { driver = "sim"; };\n'
                    'inverter: { protocol = "pylontech"; output = "candump";\n'
                    '  soc_follows_limits = true; };\n')
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        check("reload check on a broken file: non-zero exit, file:line in the message",
              r.returncode != 0 and (os.path.basename(path) + ":3:") in r.stderr, r.stderr)
        with open(path, "w") as f:
            f.write('bms: { driver = "sim"; };\n'
                    'inverter: { protocol = "pylontech"; output = "candump"; };\n')
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        check("reload check on a good file: exit 0", r.returncode == 0, r.stderr)
    finally:
        if os.path.exists(path):
            os.unlink(path)

    allowed = directives(unit, "DeviceAllow")
    want = ["char-ttyS rw", "char-ttyUSB rw", "char-ttyACM rw", "char-ttyAMA rw",
            "char-ttySC rw"]
    check("DeviceAllow: ttyS, ttyUSB, ttyACM, ttyAMA and ttySC (SC16IS7xx HATs)",
          all(w in allowed for w in want), allowed)

    # the metrics file (bmsbridge.conf(5), METRICS GROUP): the textfile
    # directory writable where it exists, and a runtime directory the
    # collector's user can read through a symlink
    rw = directives(unit, "ReadWritePaths")
    check("ReadWritePaths: node_exporter's textfile directory, optional (\"-\")",
          "-/var/lib/prometheus/node-exporter" in rw, rw)
    check("RuntimeDirectory=bmsbridge readable by the collector (0755)",
          directives(unit, "RuntimeDirectory") == ["bmsbridge"]
          and directives(unit, "RuntimeDirectoryMode") == ["0755"],
          directives(unit, "RuntimeDirectory") + directives(unit, "RuntimeDirectoryMode"))
    # IP for MQTT, to this host only unless a drop-in allows the broker
    families = " ".join(directives(unit, "RestrictAddressFamilies")).split()
    check("RestrictAddressFamilies: AF_INET and AF_INET6 (MQTT) beside AF_UNIX AF_CAN "
          "AF_NETLINK", all(a in families for a in ["AF_UNIX", "AF_CAN", "AF_NETLINK",
                                                    "AF_INET", "AF_INET6"]), families)
    check("IPAddressDeny=any with IPAddressAllow=localhost only",
          directives(unit, "IPAddressDeny") == ["any"]
          and directives(unit, "IPAddressAllow") == ["localhost"],
          (directives(unit, "IPAddressDeny"), directives(unit, "IPAddressAllow")))

    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
