#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The MQTT client of the real bmsbridged against a real broker (Debian's
mosquitto, started here on a free port with a generated configuration) and
against fake brokers, read by a real client (python3-paho-mqtt):

- availability: "online", retained, after the start; "offline" (retained)
  after SIGTERM, within MQTT_STOP_USEC, and as the broker's last will after
  SIGKILL;
- a broker restart: the daemon reconnects with back-off and says "online"
  again (the time from the broker's return to "online" is printed);
- SIGHUP with a new node_id: the old topic goes "offline", the new one
  "online";
- username/password (mosquitto_passwd): accepted from a password file and
  from a systemd credential ($CREDENTIALS_DIRECTORY); a wrong password is
  refused with ONE log line while the daemon keeps retrying with back-off,
  and the right one written to the same file is taken on SIGHUP;
  a password file others can read is refused naming the file and its mode,
  and the gateway runs on without MQTT;
- TLS with a CA, a server and a client certificate made here by openssl:
  accepted by name (the name resolved without blocking, the name checked);
  a wrong CA, and an address the certificate does not name, are refused;
- what the observer publishes (three simulated packs of 16 cells changing
  every second) goes through the client: discovery retained by the broker,
  state at least once a second per pack, nothing dropped;
- a fake broker that accepts TCP and never answers, and one that answers
  CONNACK and then stops reading: the daemon drops each (no CONNACK within
  keepalive_s; no answer to a ping), and all the while, with the observer
  publishing three packs, writes its inverter frames on time (the worst gap
  between 0x351 lines, against the 1 s period, printed and held under
  1.5 s) with a bounded RSS (VmRSS sampled, printed) and a queue that
  drops its oldest messages rather than hold more than queue_max;
- a DNS server that never answers (a namespace of the test's own with its
  /etc/resolv.conf): the lookup gives up, the frames keep their period.
- what an owner sees, with the metrics file on: the bmsbridge_mqtt_*
  families (promtool-clean, each in bmsbridged(8) METRICS), connected 1
  and STATUS= "mqtt: connected, N queued"; after the broker stops,
  connected 0, a disconnect counted and STATUS= "mqtt: retrying in N s (why)".

Usage: test-mqtt.py BUILD_DIR   (prints TAP)
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as paho

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyhelpers"))
from tap import check, finish, wait_for  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BUILD_DIR", "build")
DAEMON = os.path.join(BUILD, "bmsbridged")
KEEPALIVE_S = 5


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


class Broker:
    """mosquitto -c <generated conf>, its log collected"""

    def __init__(self, tmp, name, listeners, extra=""):
        self.conf = os.path.join(tmp, name + ".conf")
        self.ports = [port for port, _ in listeners]
        with open(self.conf, "w") as f:
            # as root it would drop to the user "mosquitto", which cannot read our files
            if os.geteuid() == 0:
                f.write("user root\n")
            f.write("log_dest stderr\nlog_type all\npersistence false\n"
                    "per_listener_settings true\n")
            for port, opts in listeners:
                f.write("listener %d 127.0.0.1\n%s\n" % (port, opts))
            f.write(extra)
        self.start()

    def start(self):
        self.err = []
        self.p = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._pump, daemon=True).start()
        if not wait_for(lambda: all(port_open(p) for p in self.ports), 10):
            raise RuntimeError("mosquitto did not start: %s" % "\n".join(self.err))

    def _pump(self):
        for line in self.p.stderr:
            self.err.append(line.rstrip("\n"))

    def connections(self):
        return sum("New connection from" in line for line in list(self.err))

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(10)


class Sub:
    """a paho client subscribed to everything"""

    def __init__(self, port, topic="#"):
        self.msgs = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.c = paho.Client(client_id="test-sub-%d-%d" % (os.getpid(), time.monotonic_ns()),
                             clean_session=True)
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda c, u, mid, q: self.ready.set()
        self.c.connect("127.0.0.1", port, 30)
        self.c.subscribe(topic, qos=1)
        self.c.loop_start()
        self.ready.wait(5)

    def _on_message(self, c, u, m):
        with self.lock:
            self.msgs.append((time.monotonic(), m.topic, m.payload.decode(errors="replace"),
                              bool(m.retain)))

    def find(self, topic, payload, retain=None, after=0.0):
        with self.lock:
            for t, tp, pl, rt in self.msgs:
                if t >= after and tp == topic and pl == payload and \
                        (retain is None or rt == retain):
                    return (t, tp, pl, rt)
        return None

    def wait(self, topic, payload, timeout, retain=None, after=0.0):
        return wait_for(lambda: self.find(topic, payload, retain, after), timeout)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


class Daemon:
    """bmsbridged on a sim BMS, candump lines to a file, its log collected"""

    def __init__(self, tmp, name, mqtt, env=None, bms='driver = "sim";', extra=""):
        self.frames_path = os.path.join(tmp, name + ".candump")
        self.conf = os.path.join(tmp, name + ".conf")
        self.bms = bms
        self.extra = extra
        self.write_conf(mqtt)
        self.err = []
        self.p = subprocess.Popen([DAEMON, "-c", self.conf, "-d", "mqtt,main"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  env=env)
        threading.Thread(target=self._pump, daemon=True).start()

    def write_conf(self, mqtt):
        with open(self.conf, "w") as f:
            f.write('dbus = false;\nbms: { %s };\n'
                    'inverter: { protocol = "pylontech"; output = "candump"; port = "%s"; };\n'
                    "mqtt: { enabled = true; keepalive_s = %d; %s };\n"
                    % (getattr(self, "bms", 'driver = "sim";'), self.frames_path, KEEPALIVE_S,
                       mqtt))
            f.write(getattr(self, "extra", ""))

    def _pump(self):
        for line in self.p.stderr:
            self.err.append(line.rstrip("\n"))

    def log(self):
        return "\n".join(list(self.err))

    def count(self, text):
        return sum(text in line for line in list(self.err))

    def warnings(self, text):
        """the warning lines saying @text (debug lines repeat what libmosquitto says)"""
        return sum("warning:" in line and text in line for line in list(self.err))

    def counters(self):
        """the client's counters, logged at its stop (-d mqtt)"""
        for line in reversed(list(self.err)):
            m = re.search(r"MQTT: (\d+) connections, (\d+) lost; (\d+) published, (\d+) "
                          r"superseded, (\d+) dropped; (\d+) queued", line)
            if m:
                return dict(zip(("connects", "lost", "published", "superseded", "dropped",
                                 "queued"), map(int, m.groups())))
        return None

    def rss_kb(self):
        try:
            with open("/proc/%d/status" % self.p.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def frame_times(self, can_id=0x351):
        ts = []
        try:
            with open(self.frames_path) as f:
                for line in f:
                    m = re.match(r"\((\d+\.\d+)\) \S+ ([0-9A-F]+)#", line)
                    if m and int(m.group(2), 16) == can_id:
                        ts.append(float(m.group(1)))
        except OSError:
            pass
        return ts

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


def avail(node):
    return "bmsbridge/%s/availability" % node


def mqtt_conf(port, node, extra=""):
    return 'host = "127.0.0.1"; port = %d; node_id = "%s"; %s' % (port, node, extra)


# ---- availability, stop, last will, restart, reload --------------------------------

def test_availability(tmp):
    port = free_port()
    broker = Broker(tmp, "plain", [(port, "allow_anonymous true")])
    try:
        d = Daemon(tmp, "avail", mqtt_conf(port, "t1", "reconnect_max_s = 2;"))
        ok = wait_for(lambda: d.count("connected"), 10)
        sub = Sub(port)
        got = sub.wait(avail("t1"), "online", 5, retain=True)
        check("online, retained, after the start", got and ok, d.log())

        t0 = time.monotonic()
        rc = d.stop(signal.SIGTERM)
        took = time.monotonic() - t0
        got = sub.wait(avail("t1"), "offline", 3, after=t0)
        print("# SIGTERM: exit after %.0f ms, offline seen %.0f ms after the signal"
              % (took * 1000, ((got[0] if got else t0) - t0) * 1000))
        check("SIGTERM: offline published, exit 0 within 1.5 s",
              got and rc == 0 and took < 1.5, d.log())
        sub.close()
        sub = Sub(port)
        check("offline is retained for a new subscriber",
              sub.wait(avail("t1"), "offline", 3, retain=True), d.log())

        d = Daemon(tmp, "will", mqtt_conf(port, "t2"))
        check("second daemon online", sub.wait(avail("t2"), "online", 10), d.log())
        t0 = time.monotonic()
        d.stop(signal.SIGKILL)
        got = sub.wait(avail("t2"), "offline", KEEPALIVE_S * 2, after=t0)
        print("# SIGKILL: the broker's last will after %.0f ms"
              % (((got[0] if got else t0) - t0) * 1000))
        check("SIGKILL: the last will says offline", got, "\n".join(broker.err[-20:]))

        # the broker goes away for 2 s and comes back
        d = Daemon(tmp, "restart", mqtt_conf(port, "t3", "reconnect_max_s = 2;"))
        check("third daemon online", sub.wait(avail("t3"), "online", 10), d.log())
        sub.close()
        broker.stop()
        time.sleep(2)
        broker.start()
        t_back = time.monotonic()
        sub = Sub(port)
        got = sub.wait(avail("t3"), "online", 15, after=t_back - 1)
        back_ms = ((got[0] if got else t_back) - t_back) * 1000
        print("# broker restart: online again %.0f ms after the broker was back "
              "(reconnect_min_s 1, reconnect_max_s 2)" % back_ms)
        check("broker restart: online again within reconnect_max_s + 2 s",
              got and back_ms < 4000, d.log())
        check("broker restart: each reason logged once (lost, refused), the return once",
              d.warnings("retrying every") <= 2 and d.count("connected again") == 1, d.log())

        # SIGHUP with a new node_id: old topic offline, new one online
        t0 = time.monotonic()
        d.write_conf(mqtt_conf(port, "t4", "reconnect_max_s = 2;"))
        d.p.send_signal(signal.SIGHUP)
        check("reload: the old node goes offline",
              sub.wait(avail("t3"), "offline", 5, after=t0), d.log())
        check("reload: the new node comes online",
              sub.wait(avail("t4"), "online", 5, after=t0), d.log())
        d.stop()
        sub.close()
    finally:
        broker.stop()


# ---- what the observer publishes, through the client -------------------------------

def test_content(tmp):
    port = free_port()
    broker = Broker(tmp, "content", [(port, "allow_anonymous true")])
    try:
        sub = Sub(port)
        t0 = time.monotonic()
        d = Daemon(tmp, "content", mqtt_conf(port, "c1"), bms=PACKS3)
        time.sleep(10)
        # a subscriber that comes later gets the discovery the broker retained
        late = Sub(port, "homeassistant/#")
        time.sleep(1.5)
        d.stop()
        with sub.lock:
            msgs = [m for m in sub.msgs if m[0] >= t0]
        disc = [m for m in msgs if m[1].startswith("homeassistant/") and m[1].endswith("/config")]
        state = [m for m in msgs if m[1].startswith("bmsbridge/c1/")
                 and not m[1].endswith("availability")]
        n = d.counters()
        print("# three packs of 16 cells for 10 s: %d discovery messages, %d state messages "
              "(%.1f/s) on %d topics; the client: %s"
              % (len(disc), len(state), len(state) / 10.0, len(set(m[1] for m in state)), n))
        with late.lock:
            kept = set(m[1] for m in late.msgs if m[3] and m[1].endswith("/config"))
        late.close()
        check("discovery: %d configs, all retained by the broker (%d)" % (
              len(set(m[1] for m in disc)), len(kept)),
              disc and kept == set(m[1] for m in disc), d.log())
        check("state: at least one message a second for each of the three packs",
              len(state) >= 3 * 8 and not any(m[3] for m in state), d.log())
        check("healthy broker: nothing dropped, everything handed over",
              n and n["dropped"] == 0 and n["published"] >= len(disc) + len(state), d.log())
        sub.close()
    finally:
        broker.stop()


# ---- username and password ----------------------------------------------------------

def test_auth(tmp):
    port = free_port()
    users = os.path.join(tmp, "users")
    subprocess.run(["mosquitto_passwd", "-c", "-b", users, "gw", "right horse"], check=True,
                   capture_output=True)
    subprocess.run(["mosquitto_passwd", "-b", users, "watcher", "w"], check=True,
                   capture_output=True)
    os.chmod(users, 0o600)
    broker = Broker(tmp, "auth", [(port, "allow_anonymous false\npassword_file %s" % users)])
    good = os.path.join(tmp, "pw-good")
    bad = os.path.join(tmp, "pw-bad")
    loose = os.path.join(tmp, "pw-loose")
    for path, text, mode in ((good, "right horse\n", 0o600), (bad, "wrong\r\n", 0o640),
                             (loose, "right horse\n", 0o644)):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
    try:
        sub = paho.Client(client_id="test-watch-%d" % os.getpid())
        sub.username_pw_set("watcher", "w")
        msgs = []
        sub.on_message = lambda c, u, m: msgs.append((m.topic, m.payload.decode()))
        sub.connect("127.0.0.1", port, 30)
        sub.subscribe("#", 1)
        sub.loop_start()

        d = Daemon(tmp, "auth-good", mqtt_conf(port, "a1", 'username = "gw"; '
                                               'password_file = "%s";' % good))
        check("password file: accepted", wait_for(
            lambda: (avail("a1"), "online") in msgs, 10), d.log())
        check("the password is never logged", "right horse" not in d.log(), d.log())
        d.stop()

        cred = os.path.join(tmp, "creds")
        os.makedirs(cred, exist_ok=True)
        shutil.copy(good, os.path.join(cred, "mqtt-password"))
        os.chmod(os.path.join(cred, "mqtt-password"), 0o400)
        env = dict(os.environ, CREDENTIALS_DIRECTORY=cred)
        d = Daemon(tmp, "auth-cred", mqtt_conf(port, "a2", 'username = "gw";'), env=env)
        check("systemd credential mqtt-password: accepted", wait_for(
            lambda: (avail("a2"), "online") in msgs, 10), d.log())
        d.stop()

        n0 = broker.connections()
        d = Daemon(tmp, "auth-bad", mqtt_conf(port, "a3", 'username = "gw"; password_file '
                                              '= "%s"; reconnect_min_s = 1; reconnect_max_s '
                                              '= 2;' % bad))
        time.sleep(6)
        tries = broker.connections() - n0
        # mosquitto 2.0 answers a wrong password with "not authorised" (CONNACK 5)
        refused = d.warnings("refused the connection")
        print("# wrong password: %d attempts in 6 s, %d log lines about it" % (tries, refused))
        check("wrong password: retried with back-off (3-6 attempts in 6 s)", 3 <= tries <= 6,
              "\n".join(broker.err[-20:]))
        check("wrong password: one clear log line, not one per retry", refused == 1, d.log())
        check("wrong password: never online", (avail("a3"), "online") not in msgs)
        check("wrong password: the inverter frames go on", len(d.frame_times()) >= 4)
        with open(bad, "w") as f:
            f.write("right horse\n")
        d.p.send_signal(signal.SIGHUP)
        check("the right password in the same file, SIGHUP: online", wait_for(
            lambda: (avail("a3"), "online") in msgs, 10), d.log())
        d.stop()

        d = Daemon(tmp, "auth-loose", mqtt_conf(port, "a4", 'username = "gw"; password_file '
                                                '= "%s";' % loose))
        said = wait_for(lambda: d.count("%s: mode 0644 lets others read it" % loose), 5)
        check("password file readable by others: refused naming the file and its mode",
              said and wait_for(lambda: d.count("MQTT is off") == 1, 2), d.log())
        check("... and the gateway runs on without MQTT", wait_for(
            lambda: d.p.poll() is None and len(d.frame_times()) >= 3, 10), d.log())
        d.stop()
        sub.loop_stop()
        sub.disconnect()
    finally:
        broker.stop()


# ---- TLS ---------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_pki(tmp):
    pki = os.path.join(tmp, "pki")
    os.makedirs(pki, exist_ok=True)
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=bmsbridge test %s" % ca, "-keyout", ca + ".key",
                "-out", ca + ".pem", cwd=pki)
    with open(os.path.join(pki, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost\n")
    with open(os.path.join(pki, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, cn in (("server", "localhost"), ("client", "bmsbridge-gw")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn,
                "-keyout", name + ".key", "-out", name + ".csr", cwd=pki)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", name + ".ext",
                "-out", name + ".pem", cwd=pki)
    return pki


def test_tls(tmp):
    pki = make_pki(tmp)
    plain, tls = free_port(), free_port()
    p = lambda n: os.path.join(pki, n)  # noqa: E731
    broker = Broker(tmp, "tls", [
        (plain, "allow_anonymous true"),
        (tls, "allow_anonymous true\ncafile %s\ncertfile %s\nkeyfile %s\n"
              "require_certificate true\ntls_version tlsv1.2"
         % (p("ca.pem"), p("server.pem"), p("server.key")))])
    client = 'cert_file = "%s"; key_file = "%s";' % (p("client.pem"), p("client.key"))
    try:
        sub = Sub(plain)
        d = Daemon(tmp, "tls-good", 'host = "localhost"; port = %d; node_id = "s1"; '
                   'ca_file = "%s"; %s' % (tls, p("ca.pem"), client))
        check("TLS by name, client certificate: online", sub.wait(avail("s1"), "online", 10),
              d.log() + "\n" + "\n".join(broker.err[-10:]))
        check("TLS: the log says so", d.count("(TLS)") == 1, d.log())
        d.stop()

        d = Daemon(tmp, "tls-wrong-ca", 'host = "localhost"; port = %d; node_id = "s2"; '
                   'ca_file = "%s"; %s reconnect_max_s = 2;' % (tls, p("other-ca.pem"), client))
        said = wait_for(lambda: d.count("certificate verify failed"), 10)
        time.sleep(2)
        check("TLS with the wrong CA: refused, said once",
              said and d.warnings("certificate verify failed") == 1 and
              not sub.find(avail("s2"), "online"), d.log())
        d.stop()

        d = Daemon(tmp, "tls-wrong-name", 'host = "127.0.0.1"; port = %d; node_id = "s3"; '
                   'ca_file = "%s"; %s reconnect_max_s = 2;' % (tls, p("ca.pem"), client))
        said = wait_for(lambda: d.count("certificate verify failed"), 10)
        check("TLS to an address the certificate does not name: refused",
              said and not sub.find(avail("s3"), "online"), d.log())
        d.stop()

        d = Daemon(tmp, "tls-no-client-cert", 'host = "localhost"; port = %d; node_id = "s4"; '
                   'ca_file = "%s"; reconnect_max_s = 2;' % (tls, p("ca.pem")))
        time.sleep(4)
        # TLS 1.3 reports the missing certificate after the handshake: as an
        # alert, or (when the socket closes first) as a bare protocol error
        check("TLS without the client certificate the broker requires: never online",
              not sub.find(avail("s4"), "online") and d.warnings("retrying every") <= 2, d.log())
        d.stop()
        sub.close()
    finally:
        broker.stop()


# ---- fake brokers: silent, and deaf after CONNACK -----------------------------------

class FakeBroker:
    """@mode "silent": accepts TCP, never answers; "deaf": answers CONNACK, then
    never reads (nor answers a ping)"""

    def __init__(self, mode):
        self.mode = mode
        self.s = socket.socket()
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(8)
        self.port = self.s.getsockname()[1]
        self.conns = []
        self.done = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.done:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.conns.append(c)
            if self.mode == "deaf":
                try:
                    c.settimeout(5)
                    c.recv(1024)  # CONNECT
                    c.sendall(b"\x20\x02\x00\x00")  # CONNACK, accepted
                except OSError:
                    pass

    def close(self):
        self.done = True
        self.s.close()
        for c in self.conns:
            c.close()


def watch(d, seconds):
    """VmRSS every 0.5 s for @seconds; the samples in kB"""
    rss = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r = d.rss_kb()
        if r:
            rss.append(r)
        time.sleep(0.5)
    return rss


FAKE_QUEUE_MAX = 32
PACKS3 = 'driver = "sim"; sim_packs = 3; sim_cells = 16; sim_speed = 60;'


def worst_gap_ms(ts):
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    return max(gaps) * 1000 if gaps else None


def test_fake_brokers(tmp):
    for mode, says in (("silent", "no CONNACK within %d s" % KEEPALIVE_S),
                       ("deaf", "no answer to a ping within keepalive_s")):
        fb = FakeBroker(mode)
        # three packs changing every second: the observer has plenty to say
        d = Daemon(tmp, "fake-" + mode, mqtt_conf(fb.port, "f-" + mode,
                                                  "reconnect_min_s = 1; reconnect_max_s = 2; "
                                                  "queue_max = %d;" % FAKE_QUEUE_MAX),
                   bms=PACKS3)
        rss = watch(d, 3 * KEEPALIVE_S + 2)
        ts = d.frame_times()
        gap = worst_gap_ms(ts)
        print("# %s broker: %d connections in %d s; worst gap between 0x351 frames %.0f ms "
              "(period 1000 ms) over %d frames; VmRSS %d..%d kB"
              % (mode, len(fb.conns), 3 * KEEPALIVE_S + 2, gap or -1, len(ts),
                 min(rss or [0]), max(rss or [0])))
        check("%s broker: dropped (\"%s\"), said once" % (mode, says),
              d.warnings(says) == 1, d.log())
        check("%s broker: tried again" % mode, len(fb.conns) >= 2, d.log())
        check("%s broker: inverter frames on time, worst gap %.0f ms < 1500 ms"
              % (mode, gap or -1), gap is not None and gap < 1500 and len(ts) >= 12, ts)
        # from the sample at 2 s (the start itself maps the libraries)
        base = rss[4] if len(rss) > 4 else None
        check("%s broker: RSS bounded (grew %d kB < 1024 kB after the first 2 s)"
              % (mode, (max(rss[4:]) - base) if base else -1),
              base and max(rss[4:]) - base < 1024, rss)
        check("%s broker: the daemon stops cleanly" % mode, d.stop() == 0, d.log())
        n = d.counters()
        print("# %s broker: the client's counters at the stop: %s" % (mode, n))
        check("%s broker: the queue full, its oldest messages dropped, never more than "
              "queue_max (%d) waiting" % (mode, FAKE_QUEUE_MAX),
              n and n["dropped"] > 0 and n["queued"] <= FAKE_QUEUE_MAX, d.log())
        fb.close()


# ---- a DNS server that never answers -------------------------------------------------

HOLE = """
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 53))
t = socket.socket()
t.bind(("127.0.0.1", 53))
t.listen(4)
while True:
    u.recvfrom(2048)
"""


def test_dns(tmp):
    """in a mount and network namespace of its own (unshare), /etc/resolv.conf
    names a server on 127.0.0.1 that never answers: a blocking getaddrinfo()
    would hold the loop for the resolver's whole timeout (getent: ~20 s)"""
    resolv = os.path.join(tmp, "resolv.conf")
    with open(resolv, "w") as f:
        f.write("nameserver 127.0.0.1\n")
    hole = os.path.join(tmp, "hole.py")
    with open(hole, "w") as f:
        f.write(HOLE)
    d = Daemon.__new__(Daemon)
    d.frames_path = os.path.join(tmp, "dns.candump")
    d.conf = os.path.join(tmp, "dns.conf")
    d.write_conf('host = "broker.stall.test"; port = 1883; node_id = "dns"; '
                 "reconnect_min_s = 1; reconnect_max_s = 2;")
    script = ("ip link set lo up && mount --bind %s /etc/resolv.conf || exit 1; "
              "%s %s </dev/null >/dev/null 2>&1 & H=$!; sleep 0.5; "
              "%s -c %s -d mqtt </dev/null & D=$!; "
              "sleep 14; kill -TERM $D; wait $D; echo exit=$?; kill $H"
              % (resolv, sys.executable, hole, DAEMON, d.conf))
    r = subprocess.run(["unshare", "--mount", "--net", "--kill-child", "sh", "-c", script],
                       capture_output=True, text=True, timeout=120)
    d.err = r.stderr.splitlines()
    ts = d.frame_times()
    gap = worst_gap_ms(ts)
    print("# DNS that never answers: worst gap between 0x351 frames %.0f ms over %d frames"
          % (gap or -1, len(ts)))
    check("unresponsive DNS: the lookup gives up, said once",
          d.warnings("resolving the name timed out") + d.warnings("cannot resolve the name")
          == 1, r.stdout + r.stderr)
    check("unresponsive DNS: inverter frames on time, worst gap %.0f ms < 1500 ms"
          % (gap or -1), gap is not None and gap < 1500 and len(ts) >= 12, ts)
    check("unresponsive DNS: the daemon stops cleanly", "exit=0" in r.stdout, r.stdout)

# ---- what an owner sees of the client: metrics and STATUS= -------------------------

class Notify:
    """a fake systemd notify socket: the STATUS= lines, in order"""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.statuses = []
        self.done = False
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        while not self.done:
            try:
                msg = self.sock.recv(4096).decode(errors="replace")
            except socket.timeout:
                continue
            except OSError:
                return
            for line in msg.split("\n"):
                if line.startswith("STATUS="):
                    self.statuses.append(line[len("STATUS="):])

    def last(self, pattern, after=0):
        for line in reversed(self.statuses[after:]):
            if re.search(pattern, line):
                return line
        return None

    def close(self):
        self.done = True
        self.sock.close()


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def test_watching(tmp):
    promtool = shutil.which("promtool")
    if not check("promtool is installed (tools/setup --test: prometheus)", promtool):
        return
    port = free_port()
    broker = Broker(tmp, "watch", [(port, "allow_anonymous true")])
    prom = os.path.join(tmp, "watch.prom")
    notify = Notify(os.path.join(tmp, "watch.notify"))
    env = dict(os.environ, NOTIFY_SOCKET=notify.sock.getsockname())
    d = Daemon(tmp, "watch", mqtt_conf(port, "w1", "reconnect_min_s = 4; reconnect_max_s = 8;"),
               env=env, extra='status_interval_s = 1;\n'
               'metrics: { textfile = "%s"; interval_s = 1; };\n' % prom)
    try:
        text = wait_for(lambda: metric(read_text(prom), "bmsbridge_mqtt_connected") == 1
                        and metric(read_text(prom), "bmsbridge_mqtt_published_total") > 0
                        and read_text(prom), 15)
        check("metrics: bmsbridge_mqtt_connected 1, messages published", text, d.log())
        text = text or read_text(prom)
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        check("metrics with MQTT: promtool check metrics clean",
              r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
              r.stdout + r.stderr)
        families = re.findall(r"^# TYPE (bmsbridge_mqtt_\S+) (\S+)$", text, re.M)
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "man",
                               "bmsbridged.8.scd")) as f:
            man = f.read().replace("\\_", "_")
        man = man[man.index("# METRICS"):man.index("# LOGGING")]
        check("metrics: the 8 bmsbridge_mqtt_ families, each in bmsbridged(8) METRICS",
              len(families) == 8 and all(name in man for name, _ in families), families)
        check("metrics: connects_total 1, queued_messages and queued_bytes present",
              metric(text, "bmsbridge_mqtt_connects_total") == 1
              and metric(text, "bmsbridge_mqtt_queued_messages") is not None
              and metric(text, "bmsbridge_mqtt_queued_bytes") is not None, text)
        line = wait_for(lambda: notify.last(r"; mqtt: connected, \d+ queued$"), 5)
        print("# STATUS= connected: %s" % line)
        check("STATUS= ends with \"mqtt: connected, N queued\"", line, notify.statuses[-3:])

        n = len(notify.statuses)
        broker.stop()
        text = wait_for(lambda: metric(read_text(prom), "bmsbridge_mqtt_connected") == 0
                        and read_text(prom), 15)
        check("broker stopped: bmsbridge_mqtt_connected 0", text, d.log())
        text = text or read_text(prom)
        check("broker stopped: disconnects_total 1 and more",
              (metric(text, "bmsbridge_mqtt_disconnects_total") or 0) >= 1, text)
        line = wait_for(lambda: notify.last(r"; mqtt: retrying in [1-9]\d* s \(.+\)$", n), 10)
        print("# STATUS= broker gone: %s" % line)
        check("STATUS= says \"mqtt: retrying in N s (why)\" while the broker is gone", line,
              notify.statuses[n:][-3:])
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        check("broker stopped: promtool check metrics clean", r.returncode == 0
              and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr)
    finally:
        d.stop()
        notify.close()
        broker.stop()


def main():
    if not shutil.which("mosquitto"):
        check("mosquitto installed (tools/setup --test)", False)
        return finish()
    tmp = tempfile.mkdtemp(prefix="bmsbridge-mqtt-")
    try:
        test_availability(tmp)
        test_content(tmp)
        test_auth(tmp)
        test_tls(tmp)
        test_fake_brokers(tmp)
        test_dns(tmp)
        test_watching(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
