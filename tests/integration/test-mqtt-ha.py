#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The real bmsbridged publishing to a real broker (mosquitto, on a free port
of its own), read by a paho subscriber on '#', judged by an independent
reader of Home Assistant's documented schema (tests/readers/ha_mqtt_reader.py)
and its model of what HA would build from the messages:

- every discovery message passes ha_mqtt_reader.check_discovery();
- the entities HA would create: one gateway device and one device per pack
  (sim_packs = 3, 16 cells), the count, each one's unit, device class and
  state class as bmsbridged(8) "MQTT" lists them; all available, with a state;
- the state follows the sim as the inverter sees it: the limits on the
  bank's state topic are those of the last 0x351 the daemon wrote
  (candump on stdout, decoded by tests/readers/can_inverter_reader.py),
  SOC and voltage those of 0x355 / 0x356 around the same time;
- the rate: no state topic twice within min_interval, none silent for more
  than max_silence; publishes and bytes per minute (printed);
- a reload with fewer packs removes pack 3: empty retained payloads on all
  its discovery topics and its availability, gone from the model;
- the daemon stops: the gateway "offline", every entity unavailable;
- two JK-PB packs on a simulated RS485 bus (tests/integration/jk-pb-server):
  one stops answering: its availability "offline", its entities
  unavailable in HA, the other pack's still available; it answers again:
  "online", its state published again.

Usage: test-mqtt-ha.py BUILD_DIR SRC_DIR JK_PB_SERVER JK_PB_HEX   (prints TAP)
"""
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pyhelpers"))
sys.path.insert(0, os.path.join(HERE, "..", "readers"))
from tap import check, finish, wait_for  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BUILD_DIR", "build")
SRC = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("SRC_DIR", ".")
SERVER = sys.argv[3] if len(sys.argv) > 3 else os.path.join(BUILD, "tests", "jk-pb-server")
JK_HEX = sys.argv[4] if len(sys.argv) > 4 else os.path.join(SRC, "tests", "data", "jk-pb-v19.hex")
DAEMON = os.path.join(BUILD, "bmsbridged")
NODE = "itest"
BASE = "bmsbridge/" + NODE
PACKS, CELLS = 3, 16
MIN_INTERVAL_S, MAX_SILENCE_S = 1.0, 10


def fail_all(why):
    print("not ok 1 - " + why)
    print("1..1")
    sys.exit(1)


if not shutil.which("mosquitto"):
    fail_all("mosquitto not installed (tools/setup --test)")
try:
    import paho.mqtt.client as mqtt  # python3-paho-mqtt
    from paho.mqtt.subscribeoptions import SubscribeOptions
except ImportError:
    fail_all("python3-paho-mqtt not installed")
try:
    import ha_mqtt_reader as ha
    import can_inverter_reader as inv
except ImportError as e:
    fail_all("a reader is missing: %s" % e)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    def __init__(self, tmp):
        self.port = free_port()
        conf = os.path.join(tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    % self.port)
        self.log = open(os.path.join(tmp, "mosquitto.log"), "w+")
        self.p = subprocess.Popen(["mosquitto", "-c", conf], stdout=self.log,
                                  stderr=subprocess.STDOUT)
        ok = wait_for(lambda: self._listening(), 5)
        if not ok:
            self.log.seek(0)
            fail_all("mosquitto did not start: " + self.log.read())

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return self.p.poll() is not None and False

    def stop(self):
        self.p.terminate()
        self.p.wait(5)


class Subscriber:
    """everything on '#', with the publisher's retain flag (MQTT 5 retain-as-published)"""

    def __init__(self, port):
        self.msgs = []  # (time.time(), topic, payload bytes, retain)
        self.lock = threading.Lock()
        self.c = mqtt.Client(client_id="itest-sub", protocol=mqtt.MQTTv5)
        self.c.on_message = self._on_message
        self.subscribed = threading.Event()
        self.c.on_subscribe = lambda *a, **k: self.subscribed.set()
        self.c.on_connect = self._on_connect
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        if not self.subscribed.wait(5):
            fail_all("the subscriber did not subscribe")

    def _on_connect(self, c, userdata, flags, rc, props=None):
        c.subscribe("#", options=SubscribeOptions(qos=1, retainAsPublished=True))

    def _on_message(self, c, userdata, m):
        with self.lock:
            self.msgs.append((time.time(), m.topic, bytes(m.payload), bool(m.retain)))

    def all(self):
        with self.lock:
            return list(self.msgs)

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()


class Daemon:
    def __init__(self, conf):
        self.p = subprocess.Popen([DAEMON, "-c", conf], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        self.out, self.err = [], []
        self.lock = threading.Lock()
        threading.Thread(target=self._pump, args=(self.p.stdout, self.out), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.p.stderr, self.err), daemon=True).start()

    def _pump(self, f, into):
        for line in f:
            with self.lock:
                into.append(line.rstrip("\n"))

    def frames(self):
        """candump lines as (time, can_id, data)"""
        res = []
        with self.lock:
            lines = list(self.out)
        for line in lines:
            parts = line.split()
            if len(parts) == 3 and "#" in parts[2]:
                i, d = parts[2].split("#")
                res.append((float(parts[0].strip("()")), int(i, 16), bytes.fromhex(d)))
        return res

    def log(self):
        with self.lock:
            return "\n".join(self.err)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


def write_conf(path, port, packs):
    with open(path, "w") as f:
        f.write('dbus = false;\n'
                'bms: { driver = "sim"; seed = 7; sim_packs = %d; sim_cells = %d; };\n'
                'inverter: { protocol = "pylontech"; output = "candump"; port = "-"; '
                'candump_ifname = "can0"; };\n'
                'mqtt: { enabled = true; host = "127.0.0.1"; port = %d; node_id = "%s"; '
                'min_interval_ms = %d; max_silence_s = %d; };\n'
                % (packs, CELLS, port, NODE, int(MIN_INTERVAL_S * 1000), MAX_SILENCE_S))


def model_of(msgs):
    m = ha.HAModel()
    for t, topic, payload, retain in msgs:
        m.feed(topic, payload, retain, t)
    return m


# what bmsbridged(8) "MQTT" promises, per JSON key: (component, device_class, unit, state_class)
SENSOR = "sensor"
EXPECT = {
    "soc": (SENSOR, "battery", "%", "measurement"),
    "soh": (SENSOR, None, "%", "measurement"),
    "voltage": (SENSOR, "voltage", "V", "measurement"),
    "current": (SENSOR, "current", "A", "measurement"),
    "power": (SENSOR, "power", "W", "measurement"),
    "temp_min": (SENSOR, "temperature", "°C", "measurement"),
    "temp_max": (SENSOR, "temperature", "°C", "measurement"),
    "cell_min": (SENSOR, "voltage", "V", "measurement"),
    "cell_max": (SENSOR, "voltage", "V", "measurement"),
    "cell_delta": (SENSOR, "voltage", "mV", "measurement"),
    "remaining": (SENSOR, None, "Ah", "measurement"),
    "full": (SENSOR, None, "Ah", "measurement"),
    "cycles": (SENSOR, None, None, "total_increasing"),
}
BANK_ONLY = {
    "cvl": (SENSOR, "voltage", "V", "measurement"),
    "dvl": (SENSOR, "voltage", "V", "measurement"),
    "ccl": (SENSOR, "current", "A", "measurement"),
    "dcl": (SENSOR, "current", "A", "measurement"),
    "mode": (SENSOR, "enum", None, None),
    "mode_reason": (SENSOR, None, None, None),
    "packs_online": (SENSOR, None, None, "measurement"),
    "inverter": ("binary_sensor", "connectivity", None, None),
}
ALARMS = 17  # enum battery_alarm: protection_<name> and warning_<name> each


def expected_entity(uid):
    """(component, device_class, unit, state_class) for a unique_id, or None"""
    rest = uid[len("bmsbridge_%s_" % NODE):]
    if rest.startswith("bank_"):
        key = rest[5:]
        if key.startswith("protection_") or key.startswith("warning_"):
            return ("binary_sensor", "problem", None, None)
        return EXPECT.get(key) or BANK_ONLY.get(key)
    key = rest.split("_", 1)[1]
    if key.startswith("cell_") and key[5:].isdigit():
        return (SENSOR, "voltage", "V", "measurement")
    return EXPECT.get(key)


def states(msgs, topic):
    return [(t, json.loads(p)) for t, tp, p, r in msgs if tp == topic]


def main():
    tmp = tempfile.mkdtemp(prefix="bmsbridge-mqtt-")
    broker = Broker(tmp)
    sub = Subscriber(broker.port)
    conf = os.path.join(tmp, "bmsbridge.conf")
    write_conf(conf, broker.port, PACKS)
    d = Daemon(conf)
    try:
        run(d, sub, conf, broker)
    finally:
        d.stop()
        sub.stop()
        broker.stop()
    try:
        run_jk(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finish()


def run(d, sub, conf, broker):
    n_ent = (19 + 1 + 1 + 2 * ALARMS) + PACKS * (13 + CELLS)
    got = wait_for(lambda: len(model_of(sub.all()).entities()) >= n_ent, 20)
    check("the daemon connects and announces %d entities" % n_ent, got,
          d.log())
    t0 = time.time()
    # a minute's worth of traffic at the sim's pace, for the rate and the figures
    time.sleep(30)
    msgs = sub.all()

    # ---- discovery: HA's schema ----
    configs = [(tp, p) for t, tp, p, r in msgs if tp.startswith("homeassistant/")]
    bad = []
    for tp, p in configs:
        v = ha.check_discovery(tp, p)
        if v:
            bad.append("%s: %s" % (tp, "; ".join(v)))
    check("every discovery message (%d) passes ha_mqtt_reader.check_discovery" % len(configs),
          configs and not bad, "\n".join(bad))
    not_retained = [tp for t, tp, p, r in msgs if tp.startswith("homeassistant/") and not r]
    check("discovery is retained", not not_retained, "\n".join(not_retained[:10]))

    # ---- the entities HA would create ----
    model = model_of(msgs)
    ents = model.entities()
    devs = model.devices()
    check("HA would create %d entities (%d)" % (n_ent, len(ents)), len(ents) == n_ent,
          "\n".join(sorted(ents)) + "\n" + "\n".join(model.log[-20:]))
    gw = "bmsbridge_" + NODE
    packs = ["%s_pack%d" % (gw, a) for a in range(1, PACKS + 1)]
    ok = gw in devs and all(p in devs and devs[p]["via_device"] == gw for p in packs) \
        and len(devs) == 1 + PACKS
    check("devices: the gateway, and %d packs via it" % PACKS, ok, json.dumps(devs, indent=1,
                                                                              default=str)[:3000])
    wrong = []
    for uid, e in ents.items():
        want = expected_entity(uid)
        have = (e["component"], e["device_class"], e["unit"], e["state_class"])
        if want is None or tuple(want) != have:
            wrong.append("%s: %s, want %s" % (uid, have, want))
    check("each entity's component, device class, unit and state class as documented", not wrong,
          "\n".join(wrong))
    unavailable = [uid for uid, e in ents.items() if not e["available"]]
    check("all available", not unavailable, "\n".join(unavailable[:20]))
    unknown = [uid for uid, e in ents.items()
               if e["state"] in ("unknown", "unsupported-template")]
    check("all with a state", not unknown, "\n".join(unknown[:20]))
    cells = [float(ents["%s_pack1_cell_%d" % (gw, c)]["state"]) for c in range(1, CELLS + 1)]
    cmin = float(ents["%s_pack1_cell_min" % gw]["state"])
    # the cells and the extremes come in the same message: the minimum is cell_min
    check("pack 1's cells: %d LFP voltages, the lowest its cell_min (%s)" % (CELLS, cmin),
          all(2.5 < v < 3.65 for v in cells) and abs(min(cells) - cmin) < 0.0005,
          str(cells))

    # ---- the state follows what the inverter is told ----
    frames = d.frames()
    f351 = [(t, inv.decode("pylontech", [(i, b)])) for t, i, b in frames if i == 0x351]
    f355 = [(t, inv.decode("pylontech", [(i, b)])) for t, i, b in frames if i == 0x355]
    f356 = [(t, inv.decode("pylontech", [(i, b)])) for t, i, b in frames if i == 0x356]
    bank = states(msgs, BASE + "/state")
    mism = []
    first = f351[0][0] if f351 else 0
    for t, s in bank:
        before = [f for ft, f in f351 if ft <= t + 0.05][-2:]
        if not before:
            if s["cvl"] is not None:
                mism.append("limits %s before any 0x351" % s["cvl"])
            continue
        if s["cvl"] is None:
            # published before the first frame, delivered once connected
            if t > first + 2:
                mism.append("%.3f: no limits, %.3f s after the first 0x351" % (t, t - first))
            continue
        ok = any(abs(s["cvl"] - f["charge_voltage_limit_v"]) < 0.001 and
                 abs(s["ccl"] - f["charge_current_limit_a"]) < 0.001 and
                 abs(s["dcl"] - f["discharge_current_limit_a"]) < 0.001 for f in before)
        if not ok:
            mism.append("%.3f: cvl %s ccl %s dcl %s, wire %s" % (t, s["cvl"], s["ccl"], s["dcl"],
                                                              before))
    check("the limits on the state topic are the last 0x351's (%d states, %d frames)"
          % (len(bank), len(f351)), bank and f351 and not mism, "\n".join(mism[:10]))
    mism = []
    for t, s in bank:
        if t < first + 2:
            continue  # published before the connection (or the first frame), delivered later
        near355 = [f["soc_pct"] for ft, f in f355 if abs(ft - t) < 1.5]
        near356 = [f["pack_voltage_v"] for ft, f in f356 if abs(ft - t) < 1.5]
        if not near355 or not near356:
            continue
        if not any(abs(s["soc"] - v) <= 1 for v in near355) or \
                not any(abs(s["voltage"] - v) <= 0.1 for v in near356):
            mism.append("%.3f: soc %s voltage %s; 0x355 %s 0x356 %s"
                        % (t, s["soc"], s["voltage"], near355, near356))
    check("SOC and voltage follow 0x355 / 0x356", not mism, "\n".join(mism[:10]))

    # ---- the rate ----
    window = [m for m in msgs if m[0] >= t0]
    topics = sorted({tp for t, tp, p, r in window if tp.endswith("/state")})
    too_fast, too_slow = [], []
    for tp in topics:
        ts = [t for t, x, p, r in window if x == tp]
        for a, b in zip(ts, ts[1:]):
            if b - a < MIN_INTERVAL_S - 0.2:
                too_fast.append("%s: %.3f s" % (tp, b - a))
            if b - a > MAX_SILENCE_S + 1.5:
                too_slow.append("%s: %.3f s" % (tp, b - a))
    check("%d state topics, none faster than min_interval" % len(topics),
          len(topics) == 1 + PACKS and not too_fast, "\n".join(too_fast[:10]))
    check("none silent for more than max_silence", not too_slow, "\n".join(too_slow[:10]))
    span = max(m[0] for m in window) - t0
    n_pub = len(window)
    n_bytes = sum(len(p) + len(tp) for t, tp, p, r in window)
    disc_bytes = sum(len(p) + len(tp) for tp, p in configs)
    print("# measured: %d packs x %d cells: %.0f publishes/min, %.0f bytes/min (payload + topic)"
          " at min_interval %.0f ms; discovery %d messages, %d bytes per connection"
          % (PACKS, CELLS, n_pub * 60 / span, n_bytes * 60 / span, MIN_INTERVAL_S * 1000,
             len(configs), disc_bytes), flush=True)
    check("the rate is bounded: at most one per state topic per min_interval",
          n_pub <= (1 + PACKS) * (span / MIN_INTERVAL_S + 1), "%d in %.1f s" % (n_pub, span))

    # ---- a reload with fewer packs removes pack 3 ----
    mark = len(sub.all())
    write_conf(conf, broker.port, PACKS - 1)
    d.p.send_signal(signal.SIGHUP)
    gone = "homeassistant/sensor/%s/pack%d_" % (NODE, PACKS)

    def removed():
        new = sub.all()[mark:]
        return [tp for t, tp, p, r in new if tp.startswith(gone) and p == b"" and r]
    got = wait_for(lambda: len(removed()) >= 13 + CELLS, 15)
    check("reload with %d packs: pack %d's %d entities removed (empty retained payloads)"
          % (PACKS - 1, PACKS, 13 + CELLS), got and len(removed()) == 13 + CELLS,
          "%s\n%s" % (removed(), d.log()))
    new = sub.all()[mark:]
    avail = [(p, r) for t, tp, p, r in new if tp == "%s/pack/%d/availability" % (BASE, PACKS)]
    check("... and its retained availability cleared", avail and avail[-1] == (b"", True),
          str(avail))
    time.sleep(2)
    model = model_of(sub.all())
    ents = model.entities()
    left = [u for u in ents if "_pack%d_" % PACKS in u]
    check("... gone from what HA shows (%d entities left)" % len(ents),
          not left and len(ents) == n_ent - 13 - CELLS and
          "%s_pack%d" % (gw, PACKS) not in model.devices(), "\n".join(left[:10]))
    stale = [u for u, e in ents.items() if not e["available"]]
    check("the others still available", not stale, "\n".join(stale[:10]))

    # ---- the daemon stops ----
    rc = d.stop()
    check("the daemon stops cleanly", rc == 0, d.log())
    wait_for(lambda: any(tp == BASE + "/availability" and p == b"offline"
                         for t, tp, p, r in sub.all()), 5)
    msgs = sub.all()
    last_avail = [p for t, tp, p, r in msgs if tp == BASE + "/availability"]
    check("the gateway's availability: offline", last_avail and last_avail[-1] == b"offline",
          str(last_avail))
    packs_last = {a: [p for t, tp, p, r in msgs if tp == "%s/pack/%d/availability" % (BASE, a)]
                  for a in range(1, PACKS)}
    order = [i for i, (t, tp, p, r) in enumerate(msgs) if p == b"offline" and
             tp.endswith("/availability")]
    gw_at = max([i for i in order if msgs[i][1] == BASE + "/availability"] or [-1])
    check("every pack's availability: offline, before the gateway's",
          all(v and v[-1] == b"offline" for v in packs_last.values()) and
          all(i < gw_at for i in order if msgs[i][1] != BASE + "/availability"),
          str({a: v[-3:] for a, v in packs_last.items()}))
    model = model_of(msgs)
    up = [u for u, e in model.entities().items() if e["available"]]
    check("every entity unavailable in HA", not up, "\n".join(up[:10]))


class JkServer:
    """jk-pb-server: simulated JK-PB packs on a pty, driven by one-line commands"""

    def __init__(self, link):
        self.p = subprocess.Popen([SERVER, link, JK_HEX], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.q.get(timeout=5)  # ready

    def _read(self):
        for line in self.p.stdout:
            self.q.put(line.strip())

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.q.get(timeout=5)
        if out != "ok":
            raise RuntimeError("jk-pb-server: %s -> %s" % (line, out))

    def stop(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            self.p.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()


def run_jk(tmp):
    node = "itestjk"
    base = "bmsbridge/" + node
    broker = Broker(tmp)
    sub = Subscriber(broker.port)
    link = os.path.join(tmp, "ttyJK")
    srv = JkServer(link)
    for a in (1, 2):
        srv.cmd("pack %d" % a)
    conf = os.path.join(tmp, "jk.conf")
    with open(conf, "w") as f:
        f.write('dbus = false;\n'
                'bms: { driver = "jk-pb-modbus"; port = "%s"; addresses = [1, 2];\n'
                '       read_method = "trigger"; poll_interval_ms = 500;\n'
                '       response_timeout_ms = 150; request_gap_ms = 20; };\n'
                'inverter: { protocol = "pylontech"; output = "candump"; port = "-"; '
                'candump_ifname = "can0"; };\n'
                'safety: { stale_timeout_ms = 3000; };\n'
                'mqtt: { enabled = true; host = "127.0.0.1"; port = %d; node_id = "%s"; '
                'max_silence_s = %d; };\n' % (link, broker.port, node, MAX_SILENCE_S))
    d = Daemon(conf)

    def avail(a):
        v = [p for t, tp, p, r in sub.all() if tp == "%s/pack/%d/availability" % (base, a)]
        return v[-1] if v else None

    def pack_ents(a):
        ents = model_of(sub.all()).entities()
        return {u: e for u, e in ents.items() if "_pack%d_" % a in u}

    try:
        ok = wait_for(lambda: avail(1) == b"online" and avail(2) == b"online", 20)
        check("JK-PB, 2 packs: both online", ok, d.log())
        wait_for(lambda: pack_ents(2) and all(e["available"] for e in pack_ents(2).values()), 5)
        srv.cmd("unplug 2")
        t_unplug = time.time()
        ok = wait_for(lambda: avail(2) == b"offline", 15)
        check("a pack that stops answering: its availability offline (%.1f s after, "
              "stale_timeout 3 s)" % (time.time() - t_unplug), ok,
              d.log())
        e1, e2 = pack_ents(1), pack_ents(2)
        check("... its %d entities unavailable in HA, the other pack's %d available"
              % (len(e2), len(e1)),
              e2 and e1 and not any(e["available"] for e in e2.values()) and
              all(e["available"] for e in e1.values()),
              json.dumps({u: e["available"] for u, e in list(e2.items())[:5]}))
        mark = len(sub.all())
        time.sleep(2)
        quiet = [tp for t, tp, p, r in sub.all()[mark:] if tp == base + "/pack/2/state"]
        check("... and its stale state not published", not quiet, str(len(quiet)))
        srv.cmd("plug 2")
        ok = wait_for(lambda: avail(2) == b"online", 15)
        mark2 = len(sub.all())
        ok2 = wait_for(lambda: any(tp == base + "/pack/2/state"
                                   for t, tp, p, r in sub.all()[mark2 - 5:]), 5)
        check("it answers again: online, its state published again, available in HA",
              ok and ok2 and all(e["available"] for e in pack_ents(2).values()), d.log())
    finally:
        d.stop()
        srv.stop()
        sub.stop()
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
