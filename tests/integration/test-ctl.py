#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
bmsbridgectl as a user runs it. Every output is checked against values
read here from the published layouts, not through the project's code:

- list: the five CAN protocols, pylontech-rs485, the goodwe/sofar aliases,
  the BMS drivers;
- encode pylontech from a JSON state: 0x351 CVL/CCL/DCL/DVL u16/s16 LE in
  0.1 V / 0.1 A, 0x355 SOC/SOH u16, 0x356 voltage 0.01 V, current 0.1 A,
  temperature 0.1 degC (Pylontech LV CAN V1.2, as in the team's protocols.md);
- encode victron: 0x351 the same scaling, 0x355 SOC, 0x356 (Victron CAN-bus
  BMS frames);
- decode pylontech-can of the real US5000 capture (setfirelabs.com):
  49.86 V, -27.0 A, SOC 88 %, SOH 94 %, CVL 53.2 V, CCL 480 A, DVL 45.0 V;
- decode jk-pb-modbus of the real JK-PB2A16S20P frames: 54.028 V,
  -0.727 A, 16 cells 3.374-3.381 V (syssi/esphome-jk-bms, frames_jk02_32s_v19);
- encode pylontech-rs485: the answer to a 0x42 request is a frame whose
  LCHKSUM and CHKSUM are right, computed here from the V3.3 rules, at the
  requested address;
- bad input: exit 1 with the line (or the JSON path) named; usage: exit 2.

Usage: test-ctl.py BUILD_DIR DATA_DIR (prints TAP)
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyhelpers"))
from tap import check, results, wait_for  # noqa: E402,F401

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
DATA = sys.argv[2] if len(sys.argv) > 2 else os.path.join("tests", "data")
CTL = os.path.join(BUILD, "bmsbridgectl")


def ctl(*args, stdin=""):
    return subprocess.run([CTL] + list(args), input=stdin, capture_output=True, text=True,
                          timeout=20)


def frames(out):
    """{id: bytes} from candump log lines."""
    got = {}
    for line in out.splitlines():
        ident, data = line.split()[2].split("#")
        got[int(ident, 16)] = bytes.fromhex(data)
    return got


def le(d, a, signed=False):
    return int.from_bytes(d[a:a + 2], "little", signed=signed)


STATE = {"bank": {
    "electrical": {"voltage_mv": 52480, "current_ma": -12300},
    "capacity": {"soc_pct": 64, "soh_pct": 97, "remaining_mah": 179200,
                 "full_mah": 280000, "cycles": 88},
    "temps": {"temp_dc": [215, -32]},
    "limits": {"charge_voltage_limit_mv": 55200, "discharge_voltage_limit_mv": 46400,
               "charge_current_limit_ma": 70000, "discharge_current_limit_ma": 150000},
    "status": {"alarms": [], "warnings": [], "requests": ["charge_enable", "discharge_enable"]},
}}


def test_list():
    r = ctl("list")
    names = ["pylontech", "victron", "deye", "luxpower", "growatt", "pylontech-rs485",
             "jk-pb-modbus", "pylontech-can", "replay", "sim"]
    check("list: every protocol and driver", r.returncode == 0 and
          all(any(l.split()[:1] == [n] for l in r.stdout.splitlines()) for n in names), r.stdout)
    check("list: goodwe and sofar shown as aliases of pylontech",
          "goodwe           -> pylontech" in r.stdout and "sofar            -> pylontech" in
          r.stdout, r.stdout)


def test_encode():
    r = ctl("encode", "pylontech", stdin=json.dumps(STATE))
    f = frames(r.stdout) if r.returncode == 0 else {}
    check("encode pylontech: the six frames", set(f) == {0x351, 0x355, 0x356, 0x359, 0x35C,
                                                        0x35E}, r.stdout + r.stderr)
    if 0x351 in f:
        d = f[0x351]
        check("0x351: CVL 55.2 V, CCL 70.0 A, DCL 150.0 A (0.1 V / 0.1 A LE)",
              (le(d, 0), le(d, 2, True), le(d, 4, True)) == (552, 700, 1500), d.hex())
    if 0x355 in f:
        check("0x355: SOC 64 %, SOH 97 %", (le(f[0x355], 0), le(f[0x355], 2)) == (64, 97),
              f[0x355].hex())
    if 0x356 in f:
        d = f[0x356]
        # Pylontech CANBUS V1.2 0x356 bytes 4-5: "Average cell temperature",
        # one pack: (21.5 + -3.2) / 2 = 9.15 -> 9.2 degC
        check("0x356: 52.48 V, -12.3 A, 9.2 degC (the average)",
              (le(d, 0, True), le(d, 2, True), le(d, 4, True)) == (5248, -123, 92), d.hex())
    if 0x35C in f:
        check("0x35C: charge and discharge enabled (bits 7, 6)", f[0x35C][0] & 0xC0 == 0xC0,
              f[0x35C].hex())
    r = ctl("encode", "victron", "--ifname", "can1", stdin=json.dumps(STATE))
    f = frames(r.stdout) if r.returncode == 0 else {}
    check("encode victron: on can1, with 0x351, 0x355, 0x356, 0x35A",
          r.returncode == 0 and " can1 " in r.stdout and {0x351, 0x355, 0x356, 0x35A} <= set(f),
          r.stdout + r.stderr)
    if 0x351 in f:
        check("victron 0x351: CVL 55.2 V, CCL 70.0 A, DCL 150.0 A",
              (le(f[0x351], 0), le(f[0x351], 2), le(f[0x351], 4)) == (552, 700, 1500),
              f[0x351].hex())
    r1 = ctl("encode", "pylontech", "--sim", "3600", "--seed", "4")
    r2 = ctl("encode", "pylontech", "--sim", "3600", "--seed", "4")
    check("encode --sim: deterministic from the seed", r1.returncode == 0 and
          r1.stdout == r2.stdout and len(r1.stdout.splitlines()) == 6, r1.stdout + r1.stderr)


def test_decode():
    r = ctl("decode", "pylontech-can", os.path.join(DATA, "pylontech-us5000-v12.log"))
    try:
        b = json.loads(r.stdout)["bank"]
    except ValueError:
        b = None
    check("decode pylontech-can: JSON out", b is not None, r.stdout + r.stderr)
    if b:
        check("the US5000 capture: 49.86 V, -27.0 A, SOC 88 %, SOH 94 %",
              b["electrical"] == {"voltage_mv": 49860, "current_ma": -27000} and
              b["capacity"]["soc_pct"] == 88 and b["capacity"]["soh_pct"] == 94, b)
        check("the US5000 capture: CVL 53.2 V, CCL 480 A, DVL 45.0 V",
              b["limits"]["charge_voltage_limit_mv"] == 53200 and
              b["limits"]["charge_current_limit_ma"] == 480000 and
              b["limits"]["discharge_voltage_limit_mv"] == 45000, b["limits"])
        check("groups the capture does not carry are null (never received)",
              b["cells"] is None, b)
    r = ctl("decode", "jk-pb-modbus", os.path.join(DATA, "jk-pb-v19.hex"))
    try:
        p = json.loads(r.stdout)["packs"][0]
    except (ValueError, KeyError, IndexError):
        p = None
    check("decode jk-pb-modbus: the JK-PB frames", p is not None, r.stdout + r.stderr)
    if p:
        cells = p["cells"]["cell_mv"]
        check("JK-PB: 54.028 V, -0.727 A, 16 cells, 3.374 V (cell 10) to 3.381 V (cell 1)",
              p["electrical"] == {"voltage_mv": 54028, "current_ma": -727} and len(cells) == 16
              and min(cells) == 3374 and cells.index(3374) == 9 and max(cells) == 3381 and
              cells.index(3381) == 0, p)
    # round trip: what decode prints, encode takes back
    r = ctl("decode", "pylontech", os.path.join(DATA, "pylontech-us5000-v12.log"))
    r2 = ctl("encode", "pylontech", stdin=r.stdout)
    f = frames(r2.stdout) if r2.returncode == 0 else {}
    check("decode then encode gives back the capture's 0x356 and 0x355",
          f.get(0x356, b"").hex().upper() == "7A13F2FE6B01" and
          f.get(0x355, b"").hex().upper().startswith("58005E00"), r2.stdout + r2.stderr)


def test_decode_serial():
    """decode <serial family>: the captures of tests/data (sources in their headers)."""
    cases = [
        # family, file, pack, volts mV, cell count, first cell mV
        ("pylontech-rs485", "pylontech-rs485-us2000bplus.txt", 0, 50408, 15, 3359),
        ("seplos-v2", "bms-serial-seplos-v2.txt", 1, 53340, 16, 3333),
        ("pace", "bms-serial-pace-v25.txt", 0, 52429, 16, 3271),
        ("jbd", "bms-serial-jbd-sp04s034.txt", 0, 15600, 4, 3909),
        ("daly", "bms-serial-daly-r24ts.txt", 0, 53000, 14, 3790),
        ("seplos-v3", "bms-serial-seplos-v3-sp57b.txt", 0, 53240, 16, 3327),
        ("eg4-lifepower4", "bms-serial-eg4-lifepower4.txt", 0, 53970, 16, 3375),
    ]
    for fam, name, i, mv, n, first in cases:
        r = ctl("decode", fam, os.path.join(DATA, name))
        try:
            p = json.loads(r.stdout)["packs"][i]
        except (ValueError, KeyError, IndexError):
            p = None
        cells = p["cells"]["cell_mv"] if p and p["cells"] else []
        check("decode %s %s: %.3f V, %d cells from %d mV" % (fam, name, mv / 1000, n, first),
              r.returncode == 0 and p is not None and p["electrical"]["voltage_mv"] == mv
              and len(cells) == n and cells[0] == first, r.stdout[-300:] + r.stderr)
    r = ctl("decode", "daly", os.path.join(DATA, "bms-serial-daly-r24ts.txt"))
    check("decode daly: the counts on standard error (8 requests, 8 answers, address 1)",
          "8 requests, 8 answers decoded" in r.stderr and "(address 1)" in r.stderr, r.stderr)
    # the same capture with one 0x95 frame's checksum broken: an error with its line
    with open(os.path.join(DATA, "bms-serial-daly-r24ts.txt")) as f:
        text = f.read().replace("0E D1 0E D1 0E D2 00 E4", "0E D1 0E D1 0E D2 00 E5")
    r = ctl("decode", "daly", "-", stdin=text)
    check("decode daly: a broken 0x95 frame is an error naming its line (exit 1)",
          r.returncode == 1 and "line 22:" in r.stderr and r.stdout == "", r.stderr)
    r = ctl("decode", "seplos-v2", os.path.join(DATA, "bms-serial-daly-r24ts.txt"))
    check("decode seplos-v2 of a Daly capture: no request of its own, exit 1",
          r.returncode == 1 and "line" in r.stderr, r.stderr)
    # Daly CAN: real answers of board 1 (dbus-serialbattery issue #212, the file's header)
    r = ctl("decode", "daly-can", os.path.join(DATA, "daly-can-8s-addr1.log"))
    try:
        p = json.loads(r.stdout)["packs"][0]
    except (ValueError, KeyError, IndexError):
        p = None
    check("decode daly-can daly-can-8s-addr1.log: 26.3 V, 0 A, SOC 70 %, cells 3294-3296 mV",
          r.returncode == 0 and p is not None and
          p["electrical"] == {"voltage_mv": 26300, "current_ma": 0} and
          p["capacity"]["soc_pct"] == 70 and p["cells"]["cell_min_mv"] == 3294 and
          p["cells"]["cell_max_mv"] == 3296, r.stdout[-300:] + r.stderr)


def rs485_frame(ver, adr, cid1, cid2, info):
    """A Pylontech RS485 request built from the V3.3 rules."""
    lenid = len(info)
    lchk = (~(sum((lenid >> s) & 0xF for s in (0, 4, 8)) % 16) + 1) & 0xF
    body = "%02X%02X%02X%02X%04X%s" % (ver, adr, cid1, cid2, (lchk << 12) | lenid, info)
    chk = (~sum(body.encode()) + 1) & 0xFFFF
    return "~%s%04X" % (body, chk)


def rs485_valid(frame):
    body, chk = frame[1:-4], int(frame[-4:], 16)
    if (sum(body.encode()) + chk) & 0xFFFF != 0:
        return False
    length = int(body[8:12], 16)
    lenid = length & 0xFFF
    return (sum((lenid >> s) & 0xF for s in (0, 4, 8)) + (length >> 12)) % 16 == 0 and \
        len(body) - 12 == lenid


def test_rs485():
    req = rs485_frame(0x20, 0x02, 0x46, 0x42, "02")  # analog values of pack #1 (ADR 2)
    r = ctl("encode", "pylontech-rs485", "--sim", "0", stdin=req + "\n")
    ans = r.stdout.strip()
    check("pylontech-rs485: a 0x42 request gets one answer", r.returncode == 0 and
          ans.startswith("~"), r.stdout + r.stderr)
    check("the answer's LCHKSUM and CHKSUM hold (V3.3 rules, computed here)",
          ans.startswith("~") and rs485_valid(ans), ans)
    check("the answer is from ADR 02, CID1 46, RTN 00", ans[1:9] == "20024600", ans[:12])
    r = ctl("encode", "pylontech-rs485", "--address", "3", stdin=req + "\n")
    check("another address: no answer, said on stderr", r.returncode == 0 and r.stdout == ""
          and "another address" in r.stderr, r.stdout + r.stderr)
    bad = req[:-1] + ("0" if req[-1] != "0" else "1")
    r = ctl("encode", "pylontech-rs485", stdin=bad + "\n")
    ans = r.stdout.strip()
    check("a bad checksum: the protocol's own error answer, RTN 02 (CHKSUM error)",
          r.returncode == 0 and ans[1:9] == "20024602" and rs485_valid(ans), r.stdout + r.stderr)
    r = ctl("encode", "pylontech-rs485", stdin="~20\n")
    check("a truncated request: exit 1, line 1 named", r.returncode == 1 and
          "stdin:1:" in r.stderr, r.stdout + r.stderr)


def test_errors():
    r = ctl("decode", "pylontech", stdin="(1700000000.000000) can0 351#1402C012C012C201\nnot a line\n")
    check("decode: a bad line -> exit 1, line 2 named", r.returncode == 1 and
          "line 2" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr)
    r = ctl("decode", "pylontech", stdin="(1700000000.000000) can0 351#14\n")
    check("decode: a short 0x351 -> exit 1, malformed, line 1", r.returncode == 1 and
          "line 1" in r.stderr and "malformed" in r.stderr, r.stderr)
    r = ctl("encode", "pylontech", stdin='{"bank": {"capacity": {"soc_pct": 140}}}')
    check("encode: SOC 140 -> exit 1, the JSON path named", r.returncode == 1 and
          "bank.capacity.soc_pct" in r.stderr, r.stderr)
    r = ctl("encode", "pylontech", stdin='{"bank": {"capacity": {"soc_pct": 40}}}')
    check("encode: a state without limits -> exit 1, nothing sent", r.returncode == 1 and
          r.stdout == "" and "nothing to send" in r.stderr, r.stderr)
    r = ctl("decode", "jk-pb-modbus", stdin="55 AA EB 90 zz\n")
    check("decode jk-pb-modbus: not hex -> exit 1, line 1", r.returncode == 1 and
          "line 1" in r.stderr, r.stderr)
    for args in (["frob"], ["encode", "byd"], ["decode"], ["decode", "sim"], []):
        r = ctl(*args)
        check("usage error %s -> exit 2" % (args or "(none)"), r.returncode == 2, r.stderr)
    r = ctl("--version")
    check("--version", r.returncode == 0 and r.stdout.startswith("bmsbridgectl "), r.stdout)


def main():
    if not os.access(CTL, os.X_OK):
        print("1..0 # SKIP no bmsbridgectl")
        return 77
    test_list()
    test_encode()
    test_decode()
    test_decode_serial()
    test_rs485()
    test_errors()
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
