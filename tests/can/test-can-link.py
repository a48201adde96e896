#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The CAN port of the real bmsbridged on vcan, seen from a python-can inverter:

- the periodic set at the protocol's period (0x351 every 1 s);
- keep-alives (0x305) make the inverter "present"; silence past
  inverter_timeout_s makes it "silent", and the daemon keeps sending;
- `ip link set vcan0 down`, then up: reported, and frames resume without
  a restart;
- an interface missing at start: the daemon runs, reports it, and opens
  it when it appears;
- manage_link = true: a link left down is brought up by the daemon;
- error frames: bus-off and the controller's restart are reported; a
  bus-off storm gives a handful of lines, not thousands;
- a held transmit queue (sch_plug): no parked frame reaches the inverter
  once it is older than its age limit or the mode is STOP, and the drops
  are counted in the status line;
- an inverter acking with a 29-bit 0x305 reaches the protocol's hook;
- links followed over rtnetlink: an interface re-created or brought up
  again is noticed within about a second; manage_link = true brings a
  link back up when it goes down at run time;
- READY=1 once both sides are set up, even with a port still missing;
  STATUS= says what is still retrying;
- a reload whose new and old ports both fail ends the daemon with a clear
  message (systemd restarts it) instead of running empty;
- -d takes only real module names;
- a stall (SIGSTOP) is not followed by a burst of old sets.

Usage: test-can-link.py BUILD_DIR (vcan0 up; tests/can/run arranges it). TAP.
"""
import os
import re
import signal
import shutil
import subprocess
import sys
import time

from canpeer import (DAEMON, BmsPeer, Daemon, Notify, Peer, capture, check, finish, ip, tc,
                     tmpdir, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
CAPTURE = os.path.join(SRC, "tests", "data", "pylontech-us5000-v12.log")

SIM = 'bms: { driver = "sim"; seed = 11; };\n'


def periods(frames):
    t = [f[0] for f in frames]
    return [b - a for a, b in zip(t, t[1:])]


def test_period_and_presence(tmp):
    inv = Peer("vcan0")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan0";'
                ' inverter_timeout_s = 2; };\n', tmp, "presence")
    try:
        got = wait_for(lambda: len(inv.frames(0x351)) >= 5, 10)
        p = periods(inv.frames(0x351))
        check("0x351 every 1 s (+-0.2 s) on vcan0", got and all(0.8 <= x <= 1.2 for x in p),
              "periods %s" % p)
        ids = {f[1] for f in inv.frames()}
        check("the whole Pylontech set goes out",
              {0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E} <= ids, sorted(hex(i) for i in ids))
        check("no inverter heard yet: not reported present",
              dm.wait_log("Inverter present", 0.1) is None)
        mark = dm.mark()
        for _ in range(4):
            inv.send(0x305, bytes(8))  # Pylontech inverter ack, 8 zero bytes
            time.sleep(0.5)
        check("0x305 keep-alives: the inverter is reported present",
              dm.wait_log("Inverter present", 3, mark), dm.log(mark))
        mark = dm.mark()
        silent = dm.wait_log("Inverter silent", 6, mark)
        check("no keep-alive for inverter_timeout_s: reported silent", silent, dm.log(mark))
        n = len(inv.frames(0x351))
        check("a silent inverter still gets frames",
              wait_for(lambda: len(inv.frames(0x351)) > n, 3))
        inv.send(0x305, bytes(8))
        check("the inverter back is reported",
              dm.wait_log("Inverter back after", 3, mark), dm.log(mark))
    finally:
        dm.stop()
        inv.close()


def test_down_up(tmp):
    inv = Peer("vcan0")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan0"; };\n', tmp, "downup")
    try:
        wait_for(lambda: inv.frames(0x351), 10)
        mark = dm.mark()
        ip("link", "set", "vcan0", "down")
        down = dm.wait_log("vcan0 is down", 5, mark)
        check("ip link set vcan0 down: reported", down, dm.log(mark))
        time.sleep(1.5)
        ip("link", "set", "vcan0", "up")
        t_up = time.monotonic()
        back = dm.wait_log("vcan0 is back", 5, mark)
        check("vcan0 up again: reported back", back, dm.log(mark))
        resumed = wait_for(lambda: inv.frames(0x351, since=t_up), 5)
        check("frames resume without a restart (same process)", resumed and dm.alive())
        check("the down/up is logged once each",
              sum("vcan0 is down" in l for l in dm.log(mark)) == 1 and
              sum("vcan0 is back" in l for l in dm.log(mark)) == 1, dm.log(mark))
    finally:
        ip("link", "set", "vcan0", "up")
        dm.stop()
        inv.close()


def test_missing_at_start(tmp):
    ip("link", "del", "vcan7")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan7"; };\n', tmp, "missing")
    peer = None
    try:
        warned = dm.wait_log("vcan7: cannot open", 5)
        check("interface missing at start: reported, the daemon keeps running",
              warned and dm.alive(), dm.log())
        ip("link", "add", "dev", "vcan7", "type", "vcan")
        ip("link", "set", "vcan7", "up")
        peer = Peer("vcan7")
        opened = dm.wait_log("vcan7 is back", 12)
        check("vcan7 appears: opened by itself", opened, dm.log())
        check("frames on vcan7", wait_for(lambda: peer.frames(0x351), 5))
    finally:
        dm.stop()
        if peer:
            peer.close()
        ip("link", "del", "vcan7")


def test_manage_link(tmp):
    ip("link", "add", "dev", "vcan6", "type", "vcan")
    ip("link", "set", "vcan6", "down")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan6"; manage_link = true; };\n',
                tmp, "manage")
    try:
        up = wait_for(lambda: "UP" in ip("link", "show", "vcan6").stdout.split(">")[0], 5)
        check("manage_link = true: the daemon brings a down link up", up,
              ip("link", "show", "vcan6").stdout + "\n".join(dm.log()))
        peer = Peer("vcan6")
        check("and sends on it", wait_for(lambda: peer.frames(0x351), 5))
        peer.close()
    finally:
        dm.stop()
        ip("link", "del", "vcan6")


def test_error_frames(tmp):
    inv = Peer("vcan0")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan0"; };\n', tmp, "errors")
    try:
        wait_for(lambda: inv.frames(0x351), 10)
        mark = dm.mark()
        # linux/can/error.h: class CAN_ERR_BUSOFF 0x40, then CAN_ERR_RESTARTED 0x100
        inv.send(0x40, bytes(8), error=True)
        off = dm.wait_log("vcan0: bus-off", 3, mark)
        check("an error frame saying bus-off is reported", off, dm.log(mark))
        check("with the wiring hint: termination, crossed cable, Victron pins 7 and 8",
              off and "120 ohm" in off and "crossed" in off and "pins 7 and 8" in off, off)
        inv.send(0x100, bytes(8), error=True)
        back = dm.wait_log("bus error-active again", 3, mark)
        check("the controller's restart is reported", back, dm.log(mark))
        # controller error passive with counters (data[1] 0x10 rx passive, tx 0, rx 130)
        inv.send(0x04, bytes([0, 0x10, 0, 0, 0, 0, 0, 130]), error=True)
        passive = dm.wait_log("error-passive.*rx errors 130", 3, mark)
        check("error passive with the error counters", passive, dm.log(mark))
        check("error passive after a recovery: a new episode, with the wiring hint",
              passive and "pins 7 and 8" in passive, passive)
        t0 = time.monotonic()
        check("the daemon keeps sending through bus errors",
              wait_for(lambda: inv.frames(0x351, since=t0), 3) and dm.alive())
    finally:
        dm.stop()
        inv.close()


def le(d, a):
    return int.from_bytes(d[a:a + 2], "little")


def test_held_queue(tmp):
    """
    The inverter-side queue held (sch_plug with no room: every write is
    refused, as with a bus nobody acks), the BMS silent, the mode STOP,
    then the queue released: the inverter must see nothing of the old set.
    """
    tc("qdisc", "del", "dev", "vcan0", "root")
    bms_peer = Peer("vcan1")
    inv = Peer("vcan0")
    dm = Daemon('bms: { driver = "pylontech-can"; port = "vcan1"; };\n'
                'inverter: { protocol = "pylontech"; port = "vcan0"; };\n'
                'safety: { comm_loss = "stop"; stale_timeout_ms = 2000; };\n'
                'status_interval_s = 1;\n', tmp, "held")
    bms = BmsPeer(bms_peer, capture(CAPTURE))
    try:
        normal = wait_for(lambda: [f for f in inv.frames(0x351) if le(f[2], 2) > 0], 15)
        check("held queue: the NORMAL set (CCL > 0) reaches the inverter first", normal,
              dm.log()[-10:])
        r = tc("qdisc", "add", "dev", "vcan0", "root", "plug", "limit", "0")
        check("sch_plug holds the vcan0 queue", r.returncode == 0, r.stderr)
        time.sleep(1.5)  # sets are refused and parked
        bms.stop()
        t_silent = bms.last
        stop = dm.wait_log(r"Safety: \S+ -> stop", 8)
        check("the BMS silent: the mode goes to STOP", stop, dm.log()[-10:])
        time.sleep(max(0.0, t_silent + 8.0 - time.monotonic()))
        t_rel = time.monotonic()
        tc("qdisc", "del", "dev", "vcan0", "root")
        time.sleep(2.5)
        late = inv.frames(since=t_rel)
        stale = [f for f in late if f[0] - t_silent > 2.0]
        print("# frames released after STOP: %d%s" % (
            len(stale), ", the first %.1f s past the stale deadline (CCL %.1f A)"
            % (stale[0][0] - t_silent - 2.0, le(stale[0][2], 2) / 10) if stale and stale[0][1] == 0x351
            else ""), flush=True)
        check("released queue: 0 frames reach the inverter after STOP (got %d)" % len(stale),
              not stale, ["%.2f 0x%03x %s" % (f[0] - t_silent, f[1], f[2].hex()) for f in stale])
        dropped = dm.wait_log(r"Status: .*vcan0 [^;]*\b[1-9]\d* dropped", 3, 0)
        check("the status line counts the dropped frames", dropped,
              [l for l in dm.log() if "Status:" in l][-2:])
    finally:
        tc("qdisc", "del", "dev", "vcan0", "root")
        bms.stop()
        dm.stop()
        bms_peer.close()
        inv.close()


def test_held_kernel_queue(tmp, manage):
    """
    The same with room for 6 frames in the kernel (sch_plug limit 96 bytes,
    16 per frame): what the kernel accepted is out of the daemon's hands
    unless it may flush the queue (manage_link). Released with the plug's
    release_indefinite, so whatever the kernel still holds goes out.
    """
    tc("qdisc", "del", "dev", "vcan0", "root")
    bms_peer = Peer("vcan1")
    inv = Peer("vcan0")
    what = "manage_link" if manage else "no manage_link"
    dm = Daemon('bms: { driver = "pylontech-can"; port = "vcan1"; };\n'
                'inverter: { protocol = "pylontech"; port = "vcan0"; manage_link = %s; };\n'
                'safety: { comm_loss = "stop"; stale_timeout_ms = 2000; };\n'
                'status_interval_s = 1;\n' % ("true" if manage else "false"), tmp,
                "held-k-%d" % manage)
    bms = BmsPeer(bms_peer, capture(CAPTURE))
    try:
        normal = wait_for(lambda: [f for f in inv.frames(0x351) if le(f[2], 2) > 0], 15)
        check("held kernel queue (%s): the NORMAL set reaches the inverter first" % what,
              normal, dm.log()[-10:])
        r = tc("qdisc", "add", "dev", "vcan0", "root", "plug", "limit", "96")
        check("sch_plug holds the vcan0 queue with room for 6 frames", r.returncode == 0,
              r.stderr)
        time.sleep(3.5)
        bms.stop()
        t_silent = bms.last
        stop = dm.wait_log(r"Safety: \S+ -> stop", 8)
        check("held kernel queue (%s): the mode goes to STOP" % what, stop, dm.log()[-10:])
        time.sleep(max(0.0, t_silent + 8.0 - time.monotonic()))
        t_rel = time.monotonic()
        tc("qdisc", "change", "dev", "vcan0", "root", "plug", "release_indefinite")
        time.sleep(2.5)
        late = inv.frames(since=t_rel)
        stale = [f for f in late if f[0] - t_silent > 2.0]
        print("# kernel queue held, %s: %d frames released after STOP" % (what, len(stale)),
              flush=True)
        said = dm.wait_log("the kernel has held our frames", 0.1)
        if manage:
            check("held kernel queue, manage_link: 0 frames reach the inverter after STOP "
                  "(got %d)" % len(stale), not stale,
                  ["%.2f 0x%03x %s" % (f[0] - t_silent, f[1], f[2].hex()) for f in stale])
            check("the flushes are counted in the status line",
                  dm.wait_log(r"Status: .*kernel queue flushed [1-9]", 3), dm.log()[-5:])
        else:
            # the kernel's capacity, accepted before the daemon saw it stuck; nothing after
            check("held kernel queue, no manage_link: at most the 6 frames the kernel took "
                  "(got %d), and the daemon said so" % len(stale), len(stale) <= 6 and said,
                  ["%.2f 0x%03x %s" % (f[0] - t_silent, f[1], f[2].hex()) for f in stale]
                  + dm.log()[-5:])
    finally:
        tc("qdisc", "del", "dev", "vcan0", "root")
        ip("link", "set", "vcan0", "up")
        bms.stop()
        dm.stop()
        bms_peer.close()
        inv.close()


def test_held_kernel_queue_managed(tmp):
    test_held_kernel_queue(tmp, True)


def test_held_kernel_queue_unmanaged(tmp):
    test_held_kernel_queue(tmp, False)


def test_extended_ack(tmp):
    inv = Peer("vcan0")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan0"; };\n', tmp, "ext",
                args=("-d", "output_can"))
    try:
        wait_for(lambda: inv.frames(0x351), 10)
        mark = dm.mark()
        inv.send(0x305, bytes(8), ext=True)  # Schneider XW Pro: the ack with a 29-bit id
        got = dm.wait_log(r"inverter frame 0x00000305 \(29-bit\)", 3, mark)
        check("a 29-bit 0x305 passes the socket filter and reaches the protocol hook", got,
              dm.log(mark))
    finally:
        dm.stop()
        inv.close()


def test_link_events(tmp):
    """rtnetlink: an interface back is noticed at once, not at the next back-off step."""
    ip("link", "add", "dev", "vcan5", "type", "vcan")
    ip("link", "set", "vcan5", "up")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan5"; };\n', tmp, "nl")
    try:
        dm.wait_log("vcan5 is open", 5)
        mark = dm.mark()
        ip("link", "del", "vcan5")
        dm.wait_log("vcan5 lost", 3, mark)
        time.sleep(10)  # the back-off would be at 8 s by now
        mark = dm.mark()
        ip("link", "add", "dev", "vcan5", "type", "vcan")
        ip("link", "set", "vcan5", "up")
        t0 = time.monotonic()
        back = dm.wait_log("vcan5 is back", 20, mark)
        dt = time.monotonic() - t0
        print("# re-created interface noticed after %.2f s" % dt, flush=True)
        check("interface deleted for 10 s and re-created: noticed within 1 s (%.2f s)" % dt,
              back and dt <= 1.0, dm.log(mark))
        mark = dm.mark()
        ip("link", "set", "vcan5", "down")
        dm.wait_log("vcan5 is down", 3, mark)
        time.sleep(3)
        ip("link", "set", "vcan5", "up")
        t0 = time.monotonic()
        back = dm.wait_log("vcan5 is back", 10, mark)
        dt = time.monotonic() - t0
        print("# link up again noticed after %.2f s" % dt, flush=True)
        check("link down 3 s then up: noticed within 0.5 s (%.2f s)" % dt, back and dt <= 0.5,
              dm.log(mark))
    finally:
        dm.stop()
        ip("link", "del", "vcan5")


def test_manage_link_runtime(tmp):
    ip("link", "add", "dev", "vcan6", "type", "vcan")
    ip("link", "set", "vcan6", "up")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan6"; manage_link = true; };\n',
                tmp, "manage-rt")
    peer = Peer("vcan6")
    try:
        wait_for(lambda: peer.frames(0x351), 10)
        ip("link", "set", "vcan6", "down")
        t0 = time.monotonic()
        time.sleep(0.2)
        up = wait_for(lambda: "UP" in ip("link", "show", "vcan6").stdout.split(">")[0], 5)
        dt = time.monotonic() - t0
        check("manage_link = true: a link taken down at run time is brought up again (%.2f s)"
              % dt, up, ip("link", "show", "vcan6").stdout + "\n".join(dm.log()[-10:]))
        check("and frames resume on it", wait_for(lambda: peer.frames(0x351, since=t0 + 0.2), 5),
              dm.log()[-15:])
    finally:
        peer.close()
        dm.stop()
        ip("link", "del", "vcan6")


def test_ready_with_missing_ports(tmp):
    ip("link", "del", "vcan8")
    note = Notify(tmp)
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan8"; };\n', tmp, "ready",
                env=note.env())
    try:
        ready = wait_for(lambda: note.find("READY=1"), 5)
        check("CAN interface missing at start: READY=1 all the same (set up, retrying)", ready,
              dm.log())
        st = [s for s in note.statuses() if "vcan8" in s]
        check("STATUS= says the CAN interface is still retrying",
              any(re.search(r"vcan8.*(missing|retrying)", s) for s in st), note.statuses())
    finally:
        dm.stop()
        note.close()
    note = Notify(tmp, "notify-tty.sock")
    tty = "/dev/ttyBMSBRIDGE-NONE"
    dm = Daemon('bms: { driver = "jk-pb-modbus"; port = "%s"; };\n'
                'inverter: { protocol = "pylontech"; port = "vcan0"; };\n' % tty, tmp, "ready-tty",
                env=note.env())
    try:
        ready = wait_for(lambda: note.find("READY=1"), 5)
        check("tty missing at start: READY=1 all the same", ready, dm.log())
        check("STATUS= says the BMS port is still retrying",
              any(tty in s and "retrying" in s for s in note.statuses()), note.statuses())
    finally:
        dm.stop()
        note.close()


def test_failed_rollback(tmp):
    a = os.path.join(tmp, "a.log")
    b = os.path.join(tmp, "b.log")
    shutil.copy(CAPTURE, a)
    shutil.copy(CAPTURE, b)
    conf = ('bms: { driver = "replay"; replay_format = "pylontech-can"; port = "%s";'
            ' replay_loop = true; };\n'
            'inverter: { protocol = "pylontech"; port = "vcan0"; };\n')
    inv = Peer("vcan0")
    dm = Daemon(conf % a, tmp, "rollback")
    try:
        check("rollback: frames with the first file", wait_for(lambda: inv.frames(0x351), 10),
              dm.log())
        dm.write_conf(conf % b)
        os.unlink(a)
        os.unlink(b)
        mark = dm.mark()
        dm.p.send_signal(signal.SIGHUP)
        ended = wait_for(lambda: not dm.alive(), 5)
        check("new and old ports both fail: the daemon exits (systemd restarts it)",
              ended and dm.p.returncode != 0, dm.log(mark))
        check("with a clear message", dm.wait_log("neither the new nor the old configuration",
                                                  1, mark), dm.log(mark))
    finally:
        dm.stop()
        inv.close()


def test_busoff_storm(tmp):
    inv = Peer("vcan0")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan0"; };\n', tmp, "storm",
                args=())
    try:
        wait_for(lambda: inv.frames(0x351), 10)
        mark = dm.mark()
        for _ in range(500):
            inv.send(0x40, bytes(8), error=True)   # CAN_ERR_BUSOFF
            inv.send(0x100, bytes(8), error=True)  # CAN_ERR_RESTARTED
        time.sleep(2)
        lines = dm.log(mark)
        print("# a storm of 500 bus-offs: %d log lines" % len(lines), flush=True)
        check("a storm of 500 bus-offs gives at most 6 log lines (got %d)" % len(lines),
              len(lines) <= 6, lines[:10])
        summary = dm.wait_log(r"vcan0: bus-off entered (\d+) times", 12, mark)
        # every flap the daemon read (a slow guest may lose some to its receive queue)
        n = int(re.search(r"entered (\d+) times", summary).group(1)) if summary else 0
        check("the storm is summed up with its count (%d of 500 read)" % n, n >= 250,
              dm.log(mark)[-5:])
        t0 = time.monotonic()
        check("and the port still sends", dm.alive() and wait_for(
            lambda: inv.frames(0x351, since=t0), 3))
    finally:
        dm.stop()
        inv.close()


def test_busoff_drops(tmp):
    """While the bus is off nothing is parked or sent: nothing old after the restart."""
    inv = Peer("vcan0")
    dm = Daemon(SIM + 'inverter: { protocol = "pylontech"; port = "vcan0"; };\n'
                'status_interval_s = 1;\n', tmp, "busoff-drop")
    try:
        wait_for(lambda: inv.frames(0x351), 10)
        inv.send(0x40, bytes(8), error=True)  # CAN_ERR_BUSOFF
        dm.wait_log("vcan0: bus-off", 3)
        t_off = time.monotonic()
        time.sleep(2.5)
        during = inv.frames(since=t_off + 0.1)
        check("bus-off: no frame goes out while the bus is off (got %d)" % len(during),
              not during, during[:6])
        inv.send(0x100, bytes(8), error=True)  # CAN_ERR_RESTARTED
        t_on = time.monotonic()
        resumed = wait_for(lambda: inv.frames(0x351, since=t_on), 3)
        check("after the restart: frames resume", resumed)
        check("after the restart: no burst of the sets missed while off (%d sets in 0.9 s)"
              % len(inv.frames(0x351, since=t_on)), len([f for f in inv.frames(0x351)
                                                        if t_on <= f[0] <= t_on + 0.9]) <= 1)
        check("the frames dropped while off are counted",
              dm.wait_log(r"Status: .*vcan0 [^;]*\b([6-9]|\d\d+) dropped", 3),
              [l for l in dm.log() if "Status:" in l][-2:])
    finally:
        dm.stop()
        inv.close()


def test_debug_modules(tmp):
    conf = os.path.join(tmp, "dbg.conf")
    with open(conf, "w") as f:
        f.write(SIM + 'inverter: { protocol = "pylontech"; port = "vcan0"; };\n')
    r = subprocess.run([DAEMON, "-d", "nosuchmodule", "--check-config", conf],
                       capture_output=True, text=True)
    check("-d with an unknown module: refused with a clear error",
          r.returncode != 0 and "nosuchmodule" in r.stderr and "can_bus" in r.stderr, r.stderr)
    mods = set()
    for d in ("src", "protocols"):
        for name in os.listdir(os.path.join(SRC, d)):
            if name.endswith(".c"):
                with open(os.path.join(SRC, d, name)) as f:
                    mods.update(re.findall(r'#define LOG_MODULE "([^"]+)"', f.read()))
    r = subprocess.run([DAEMON, "-d", ",".join(sorted(mods)), "--check-config", conf],
                       capture_output=True, text=True)
    check("-d takes every module of the source (%d)" % len(mods), r.returncode == 0, r.stderr)
    r = subprocess.run([DAEMON, "-d", "can_bus,bridge", "--check-config", conf],
                       capture_output=True, text=True)
    check("-d can_bus,bridge (the man page's example) is accepted", r.returncode == 0, r.stderr)


def test_stall(tmp):
    bms_peer = Peer("vcan1")
    inv = Peer("vcan0")
    dm = Daemon('bms: { driver = "pylontech-can"; port = "vcan1"; };\n'
                'inverter: { protocol = "pylontech"; port = "vcan0"; };\n'
                'safety: { stale_timeout_ms = 20000; };\n', tmp, "stall")
    bms = BmsPeer(bms_peer, capture(CAPTURE))
    try:
        wait_for(lambda: inv.frames(0x351), 15)
        dm.p.send_signal(signal.SIGSTOP)
        time.sleep(6)
        dm.p.send_signal(signal.SIGCONT)
        t0 = time.monotonic()
        time.sleep(0.8)
        sets = len(inv.frames(0x351, since=t0))
        kas = len(bms_peer.frames(0x305, since=t0))
        print("# after a 6 s stall: %d sets and %d keep-alives in 0.8 s" % (sets, kas),
              flush=True)
        check("after a 6 s stall: at most one set in 0.8 s, no burst (%d)" % sets, sets <= 1)
        check("after a 6 s stall: at most one BMS keep-alive in 0.8 s (%d)" % kas, kas <= 1)
    finally:
        dm.p.send_signal(signal.SIGCONT)
        bms.stop()
        dm.stop()
        bms_peer.close()
        inv.close()


TESTS = [test_period_and_presence, test_down_up, test_missing_at_start, test_manage_link,
         test_error_frames, test_held_queue, test_held_kernel_queue_managed,
         test_held_kernel_queue_unmanaged, test_extended_ack, test_link_events,
         test_manage_link_runtime, test_ready_with_missing_ports, test_failed_rollback,
         test_busoff_storm, test_busoff_drops, test_debug_modules, test_stall]


def main():
    # CAN_LINK_TESTS=name,name runs a subset (while working on one)
    only = [n for n in os.environ.get("CAN_LINK_TESTS", "").split(",") if n]
    with tmpdir() as tmp:
        for t in TESTS:
            if not only or t.__name__ in only:
                t(tmp)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
