#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The Prometheus metrics file of the real bmsbridged (bms sim, 2 packs,
luxpower frames as candump lines on stdout: its 0x351 carries all four
limits), read by the real tools:

- --check-config refuses a relative textfile and one not ending in .prom,
  with file:line, and accepts a good metrics group;
- the file passes `promtool check metrics` (Debian prometheus), lint
  included;
- its values follow the state: 2 packs of 16 cells, mode normal, and the
  four limits and SOC "on the wire" are those of the frames sent at that
  time, decoded by tests/readers/can_inverter_reader.py (independent of
  the daemon's encoders);
- the file is replaced atomically: a reader opening and reading it as
  fast as it can for several rewrites never sees a part of one;
- a directory the daemon cannot write: one error line (not one per
  interval), the daemon keeps sending frames, and a line when it works
  again;
- node_exporter (Debian prometheus-node-exporter) with the textfile
  collector on that directory serves our series, node_textfile_scrape_error 0;
- GET /metrics on metrics { listen } (libmicrohttpd on the daemon's loop)
  serves the same text, promtool-clean, with the format's content type;
  404 for another path, 405 for another method; clients that stall (a
  request never finished, a response never read) do not delay the
  inverter's frames (the worst gap between two 0x351 frames is printed);
- every family in the file is listed in bmsbridged(8), "METRICS";
- a clean stop removes the file;
- the render + write time per interval, from the daemon's debug lines, is
  printed.

Usage: test-metrics.py BUILD_DIR   (prints TAP)
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pyhelpers"))
sys.path.insert(0, os.path.join(HERE, "..", "readers"))
from tap import check, finish, wait_for  # noqa: E402
import can_inverter_reader as CAN  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BUILD_DIR", "build")
DAEMON = os.path.join(BUILD, "bmsbridged")
PROMTOOL = shutil.which("promtool")
SRC = os.environ.get("SRC_DIR", os.path.join(HERE, "..", ".."))
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


class Daemon:
    """bmsbridged with stdout (candump lines) and stderr (the log) collected"""

    def __init__(self, args, user=None):
        cmd = [DAEMON] + args
        if user:
            cmd = ["setpriv", "--reuid=" + user, "--regid=nogroup", "--clear-groups"] + cmd
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, bufsize=1)
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


def write_conf(path, textfile, interval=1, extra=""):
    with open(path, "w") as f:
        f.write('dbus = false;\n'
                'bms: { driver = "sim"; sim_packs = 2; };\n'
                'inverter: { protocol = "luxpower"; output = "candump"; port = "-"; };\n'
                'metrics: { textfile = "%s"; interval_s = %d; %s};\n' % (textfile, interval, extra))


def parse(text):
    """{(name, labels): value}; labels as a sorted tuple of (key, value)"""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = ()
        if m.group(2):
            labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2))))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def test_check_config(tmp):
    conf = os.path.join(tmp, "check.conf")
    for textfile, what in (("metrics.prom", "a relative path"),
                           ("/var/lib/prometheus/node-exporter/bmsbridge.txt", "not .prom")):
        write_conf(conf, textfile)
        r = subprocess.run([DAEMON, "--check-config", conf], capture_output=True, text=True,
                           timeout=30)
        check("--check-config refuses %s, at check.conf:4, metrics.textfile" % what,
              r.returncode != 0 and "check.conf:4" in r.stderr
              and "metrics.textfile" in r.stderr, r.stderr)
    write_conf(conf, "/var/lib/prometheus/node-exporter/bmsbridge.prom", 1,
               'listen = "localhost:9585"; ')
    r = subprocess.run([DAEMON, "--check-config", conf], capture_output=True, text=True,
                       timeout=30)
    check("--check-config refuses listen = \"localhost:9585\" (numeric only), at "
          "check.conf:4", r.returncode != 0 and "check.conf:4" in r.stderr
          and "metrics.listen" in r.stderr, r.stderr)
    write_conf(conf, "/var/lib/prometheus/node-exporter/bmsbridge.prom", 15,
               'cells = false; listen = "[::1]:9585"; ')
    r = subprocess.run([DAEMON, "--check-config", conf], capture_output=True, text=True,
                       timeout=30)
    check("--check-config accepts a good metrics group and prints it",
          r.returncode == 0 and "metrics" in r.stdout and "interval_s = 15" in r.stdout,
          r.stdout + r.stderr)


def frames_351(lines):
    """[(unix time, decoded 0x351 + 0x355)] in order"""
    out, soc = [], None
    for line in lines:
        p = CAN._parse_line(line)
        if not p:
            continue
        ts, cid, data, _ = p
        if cid == 0x355:
            soc = CAN.decode("luxpower", [(cid, data)]).get("soc_pct")
        if cid == 0x351:
            d = CAN.decode("luxpower", [(cid, data)])
            out.append([float(ts), d, None])
        if cid == 0x355 and out and abs(out[-1][0] - float(ts)) < 0.01:
            out[-1][2] = soc
    return out


def test_values(d, path):
    text = wait_for(lambda: "bmsbridge_wire_charge_voltage_limit_volts" in read(path)
                    and read(path), 20)
    check("the file appears with the limits on the wire", text, "\n".join(d.log()))
    if not text:
        return
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    check("promtool check metrics: no error, no lint", r.returncode == 0
          and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr)
    m = parse(text)
    check("2 packs, both online, mode normal",
          m.get(("bmsbridge_packs", ())) == 2 and m.get(("bmsbridge_packs_online", ())) == 2
          and m.get(("bmsbridge_safety_mode", (("mode", "normal"),))) == 1
          and m.get(("bmsbridge_safety_mode", (("mode", "not-ready"),))) == 0,
          text[:1500])
    cells = [k for k in m if k[0] == "bmsbridge_pack_cell_voltage_volts"]
    check("16 cells per pack, 3.0-3.6 V, labelled pack 1 and 2",
          len(cells) == 32 and {dict(k[1])["pack"] for k in cells} == {"1", "2"}
          and all(3.0 <= m[k] <= 3.6 for k in cells), cells)
    v1 = m.get(("bmsbridge_pack_voltage_volts", (("pack", "1"),)), 0)
    cell_sum = sum(m[k] for k in cells if dict(k[1])["pack"] == "1")
    check("pack 1's voltage is its cells' sum (within 0.1 V)", abs(v1 - cell_sum) < 0.1,
          (v1, cell_sum))

    # the wire's limits are those of the frames the daemon wrote at that time
    sent = m.get(("bmsbridge_wire_last_sent_timestamp_seconds", ()))
    sets = frames_351(d.frames())
    near = [s for s in sets if sent is not None and abs(s[0] - sent) < 0.1]
    check("a 0x351 went out at bmsbridge_wire_last_sent_timestamp_seconds (within 0.1 s)",
          near, (sent, [s[0] for s in sets[-5:]]))
    if near:
        frame, soc = near[-1][1], near[-1][2]
        pairs = (("bmsbridge_wire_charge_voltage_limit_volts", "charge_voltage_limit_v"),
                 ("bmsbridge_wire_discharge_voltage_limit_volts", "discharge_voltage_limit_v"),
                 ("bmsbridge_wire_charge_current_limit_amperes", "charge_current_limit_a"),
                 ("bmsbridge_wire_discharge_current_limit_amperes",
                  "discharge_current_limit_a"))
        # the frame carries 0.1 V / 0.1 A, the metric the state's mV / mA
        got = [(mk, m.get((mk, ())), frame.get(fk)) for mk, fk in pairs]
        check("the four limits on the wire = 0x351 decoded by the reader (0.1 V/A steps)",
              all(a is not None and b is not None and abs(a - b) < 0.1 + 1e-9
                  for _, a, b in got), got)
        check("the SOC on the wire = 0x355 decoded by the reader",
              soc is not None
              and abs(m.get(("bmsbridge_wire_state_of_charge_ratio", ()), -1) * 100 - soc)
              < 0.5, (m.get(("bmsbridge_wire_state_of_charge_ratio", ())), soc))
    tx = m.get(("bmsbridge_wire_transmissions_total", (("kind", "set"),)), 0)
    check("bmsbridge_wire_transmissions_total{kind=set} counts the sets sent (>= 1, <= "
          "0x351 frames)", 1 <= tx <= len(sets), (tx, len(sets)))


def test_documented(text):
    """each family's name, less bmsbridge_ and bank_/pack_, in the METRICS table"""
    with open(os.path.join(SRC, "man", "bmsbridged.8.scd")) as f:
        man = f.read().replace("\\_", "_")
    man = man[man.index("# METRICS"):man.index("# LOGGING")]
    families = re.findall(r"^# TYPE (\S+) ", text, re.M)
    missing = [fam for fam in families
               if re.sub(r"^bmsbridge_((bank|pack)_)?", "", fam) not in man]
    check("all %d families in bmsbridged(8) METRICS" % len(families),
          len(families) > 40 and not missing, missing)


def test_atomic(path):
    """a reader as fast as it can across rewrites: every read a whole file"""
    stop = time.monotonic() + 4.5
    reads, partial, versions = 0, [], set()
    while time.monotonic() < stop:
        try:
            with open(path) as f:
                t = f.read()
        except FileNotFoundError:
            partial.append("missing")
            continue
        reads += 1
        last = t.rstrip("\n").rsplit("\n", 1)[-1]
        whole = (t.startswith("# HELP bmsbridge_build_info ") and t.endswith("\n")
                 and last.startswith('bmsbridge_pack_temperature_celsius{pack="2"'))
        if not whole:
            partial.append(t[-200:])
        versions.add(os.stat(path).st_ino)
    check("%d reads over %d rewrites, none partial or missing" % (reads, len(versions)),
          reads > 200 and len(versions) >= 3 and not partial, partial[:3])


def test_node_exporter(tmp):
    if not check("prometheus-node-exporter is installed (tools/setup --test)", NODE_EXPORTER):
        return
    port = free_port()
    ne = subprocess.Popen([NODE_EXPORTER, "--collector.disable-defaults", "--collector.textfile",
                           "--collector.textfile.directory=" + tmp,
                           "--web.listen-address=127.0.0.1:%d" % port],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    body = ""
    try:
        def scrape():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                            timeout=5) as r:
                    return r.read().decode()
            except OSError:
                return ""
        body = wait_for(scrape, 10, 0.2)
    finally:
        ne.terminate()
        ne.wait(10)
    m = parse(body)
    check("node_exporter serves our series from the textfile directory",
          m.get(("bmsbridge_packs", ())) == 2
          and m.get(("bmsbridge_safety_mode", (("mode", "normal"),))) == 1
          and ("bmsbridge_pack_cell_voltage_volts", (("cell", "16"), ("pack", "2"))) in m,
          body[-1500:])
    check("node_textfile_scrape_error 0", m.get(("node_textfile_scrape_error", ())) == 0,
          [ln for ln in body.splitlines() if "textfile" in ln])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port, path, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()
    except OSError as e:
        return None, None, str(e)


def gaps_351(lines, since):
    ts = [float(p[0]) for p in map(CAN._parse_line, lines) if p and p[1] == 0x351]
    ts = [t for t in ts if t >= since]
    return [b - a for a, b in zip(ts, ts[1:])]


def test_http(d, port, path):
    status, ctype, body = http_get(port, "/metrics")
    check("GET /metrics: 200, text/plain; version=0.0.4",
          status == 200 and ctype and ctype.startswith("text/plain; version=0.0.4"),
          (status, ctype, body[:200]))
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True,
                       text=True, timeout=30)
    check("promtool check metrics on the HTTP answer: clean", status == 200 and r.returncode == 0
          and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr)
    m, f = parse(body), parse(read(path))
    check("the HTTP answer is the text of the file (the same interval, or the next)",
          m.get(("bmsbridge_packs", ())) == 2 and set(m) == set(f), set(m) ^ set(f))
    st404 = http_get(port, "/")[0], http_get(port, "/metrics/x")[0]
    check("404 for other paths", st404 == (404, 404), st404)
    st405 = http_get(port, "/metrics", "POST")[0]
    check("405 for POST", st405 == 405, st405)

    # stalled clients: requests never finished and responses never read
    base_since = time.time()
    time.sleep(5)
    idle = gaps_351(d.frames(), base_since)
    socks = []
    for i in range(8):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" if i % 2 else b"GET /met")
        socks.append(s)
    since = time.time()
    end = since + 6
    while time.time() < end:
        for s in socks[::2]:
            try:
                s.send(b"r")  # one byte now and then, never the end of the request
            except OSError:
                pass
        time.sleep(0.5)
    stalled = gaps_351(d.frames(), since)
    for s in socks:
        s.close()
    period = sorted(idle)[len(idle) // 2] if idle else 0
    check("8 stalled HTTP clients: the worst gap between 0x351 frames stays within the "
          "period + 250 ms", idle and stalled and max(stalled) <= period + 0.25,
          (period, max(idle or [0]), max(stalled or [0])))
    if idle and stalled:
        print("# 0x351 gaps: period %.3f s, worst idle %.3f s, worst with 8 stalled HTTP "
              "clients %.3f s" % (period, max(idle), max(stalled)), flush=True)
    status = wait_for(lambda: http_get(port, "/metrics")[0] == 200, 5)
    check("after them, GET /metrics answers again", status)


def test_unwritable(tmp):
    """a directory the daemon cannot write: said once, frames keep going"""
    rodir = os.path.join(tmp, "ro")
    os.mkdir(rodir)
    os.chmod(rodir, 0o555)
    os.chmod(tmp, 0o755)
    conf = os.path.join(tmp, "ro.conf")
    write_conf(conf, os.path.join(rodir, "bmsbridge.prom"))
    os.chmod(conf, 0o644)
    # root writes anywhere: run as nobody, as the unit runs as its own user
    d = Daemon(["-c", conf], user="nobody" if os.geteuid() == 0 else None)
    try:
        said = wait_for(lambda: [ln for ln in d.log() if "Cannot write the metrics file" in ln],
                        20)
        n0 = len(d.frames())
        time.sleep(4)  # four more intervals
        errors = [ln for ln in d.log() if "metrics file" in ln]
        check("an unwritable directory: one error line in 4 intervals, with the path",
              said and len(errors) == 1 and rodir in errors[0], d.log()[-10:])
        check("... and the daemon keeps sending frames", d.p.poll() is None
              and len(d.frames()) > n0 + 8, (n0, len(d.frames())))
        os.chmod(rodir, 0o777)
        again = wait_for(lambda: [ln for ln in d.log() if "written again" in ln], 5)
        check("once writable: \"written again\" and the file is there",
              again and os.path.exists(os.path.join(rodir, "bmsbridge.prom")), d.log()[-5:])
    finally:
        d.stop()


def main():
    if not check("promtool is installed (tools/setup --test: prometheus)", PROMTOOL):
        return finish()
    tmp = tempfile.mkdtemp(prefix="bmsbridge-metrics-")
    try:
        test_check_config(tmp)
        prom = os.path.join(tmp, "bmsbridge.prom")
        conf = os.path.join(tmp, "metrics.conf")
        port = free_port()
        write_conf(conf, prom, 1, 'listen = "127.0.0.1:%d"; ' % port)
        d = Daemon(["-c", conf, "-d", "metrics"])
        try:
            test_values(d, prom)
            st = os.stat(prom)
            check("the file is mode 0644 whatever the umask", st.st_mode & 0o777 == 0o644,
                  oct(st.st_mode))
            test_documented(read(prom))
            test_atomic(prom)
            test_node_exporter(tmp)
            test_http(d, port, prom)
            leftovers = [f for f in os.listdir(tmp) if f.endswith(".tmp")]
            check("no temporary file left beside it", not leftovers, leftovers)
        finally:
            rc = d.stop()
        check("clean stop (exit 0) removes the file", rc == 0 and not os.path.exists(prom),
              (rc, d.log()[-5:]))
        us = [int(x) for x in re.findall(r"Metrics: \d+ bytes to \S+ in (\d+) us",
                                          "\n".join(d.log()))]
        size = re.findall(r"Metrics: (\d+) bytes", "\n".join(d.log()))
        check("render + write times logged", us, d.log()[-5:])
        if us:
            us.sort()
            print("# render + write, 2 packs x 16 cells, %s bytes: median %d us, max %d us "
                  "over %d writes (this build: sanitizers on)"
                  % (size[-1] if size else "?", us[len(us) // 2], us[-1], len(us)), flush=True)
        test_unwritable(tmp)
    finally:
        os.chmod(tmp, 0o700)
        shutil.rmtree(tmp, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
