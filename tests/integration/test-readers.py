#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
Our output read by the independent readers (tests/readers/), which were
written from the manufacturers' documents alone by people who had not read
our encoders:

- can_inverter_reader.py: Pylontech CAN V1.2, Deye V1.2, Luxpower V04.2,
  Growatt LV V1.04, SMA/MG Master LV (Victron);
- pylon_rs485_reader.py: Pylontech RS485 V3.3 (and the V3.5 system
  commands), with the poll sequences of real masters.

Part 1 (pure): for edge-case and seeded random battery states
(tests/readers/states.py), `bmsbridgectl encode` (the daemon's own encoders)
produces every CAN protocol's set and answers every RS485 command; the
reader decodes them and must find no violation of its document, and every
value must be the state's value at the wire's resolution, rounded so that a
limit is never loosened (CVL, CCL, DCL not above the state's, DVL not below).

Part 2 (the real daemon on a pty, 9600 and 19200 baud): the reader's Master
drives bmsbridged the way captured masters do: the Axpert VM IV's 0x4F with
VER 0x00 until answered, then its reads with the answered VER; a PIP5048GK's
0x4F/0x42/0x92; a Vevor EML3500's 0x61/0x63. Every exchange must be answered,
parse, and decode without a violation.

Usage: test-readers.py BUILD_DIR. Prints TAP.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "readers"))

import can_inverter_reader as CAN  # noqa: E402
import pylon_rs485_reader as RS  # noqa: E402
import states  # noqa: E402
from accepted import accepted  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyhelpers"))
from tap import check, results, wait_for  # noqa: E402,F401

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BUILD_DIR", "build"))
CTL = os.path.join(BUILD, "bmsbridgectl")
DAEMON = os.path.join(BUILD, "bmsbridged")
ADR = 0x02  # what real masters poll for the first pack (V3.3 chapter 4, real captures)


# ---- what the state says, in the readers' units ----------------------------------

def bank_of(st):
    return st["bank"]


def requests(b):
    return set(b["status"]["requests"])


def temps_dc(st):
    b = bank_of(st)
    t = list(b["temps"]["temp_dc"])
    if not t:
        t = [b["temps"]["temp_min_dc"], b["temps"]["temp_max_dc"]]
    return t


def limit_errors(dec, b, step_v=0.1, step_a=0.1, dvl=True):
    """upper bounds at most the state's and within one step; DVL at least"""
    err = []
    lim = b["limits"]
    eps = 1e-6

    def upper(key, state_milli, step):
        if key not in dec:
            err.append("%s missing" % key)
            return
        v, s = dec[key], state_milli / 1000.0
        if not (v <= s + eps and v > s - step - eps):
            err.append("%s %.3f for a state of %.3f (step %g, never above)" % (key, v, s, step))

    upper("charge_voltage_limit_v", lim["charge_voltage_limit_mv"], step_v)
    upper("charge_current_limit_a", lim["charge_current_limit_ma"], step_a)
    upper("discharge_current_limit_a", lim["discharge_current_limit_ma"], step_a)
    if dvl and "discharge_voltage_limit_v" in dec:
        v, s = dec["discharge_voltage_limit_v"], lim["discharge_voltage_limit_mv"] / 1000.0
        if not (v >= s - eps and v < s + step_v + eps):
            err.append("discharge_voltage_limit_v %.3f for a state of %.3f (never below)" % (v, s))
    return err


def measured_errors(dec, st, temp_step=0.1):
    b = bank_of(st)
    err = []
    if dec.get("soc_pct") != b["capacity"]["soc_pct"]:
        err.append("soc_pct %r, state %r" % (dec.get("soc_pct"), b["capacity"]["soc_pct"]))
    if dec.get("soh_pct") != b["capacity"]["soh_pct"]:
        err.append("soh_pct %r, state %r" % (dec.get("soh_pct"), b["capacity"]["soh_pct"]))
    v = b["electrical"]["voltage_mv"] / 1000.0
    if abs(dec.get("pack_voltage_v", -1) - v) > 0.01 + 1e-6:
        err.append("pack_voltage_v %r, state %.3f" % (dec.get("pack_voltage_v"), v))
    i = b["electrical"]["current_ma"] / 1000.0
    if abs(dec.get("current_a", -1e9) - i) > 0.1 + 1e-6:
        err.append("current_a %r, state %.3f" % (dec.get("current_a"), i))
    t = [x / 10.0 for x in temps_dc(st)]
    meaning = dec.get("temperature_meaning", "")
    got = dec.get("temperature_c")
    if got is None:
        err.append("no temperature")
    elif "average" in meaning and st["pack_count"] > 1:
        # a bank keeps its hottest pack's sensor list and the bank's
        # extremes: the encoders send their midpoint (bmsbridge-protocols(7))
        if not (min(t) - temp_step - 1e-6 <= got <= max(t) + temp_step + 1e-6):
            err.append("bank average temperature %r outside the state's %r" % (got, t))
    elif "average" in meaning:
        if abs(got - sum(t) / len(t)) > temp_step + 1e-6:
            err.append("average temperature %r, state mean %.2f of %r" % (got, sum(t) / len(t), t))
    elif "max" in meaning or "highest" in meaning:
        if abs(got - max(t)) > temp_step + 1e-6:
            err.append("max temperature %r, state max %r" % (got, max(t)))
    elif not (min(t) - temp_step - 1e-6 <= got <= max(t) + temp_step + 1e-6):
        err.append("%s %r outside the state's %r" % (meaning, got, t))
    req = requests(b)
    for key, name in (("charge_enable", "charge_enable"), ("discharge_enable", "discharge_enable")):
        if key in dec and dec[key] != (name in req):
            err.append("%s %r, state requests %r" % (key, dec[key], sorted(req)))
    return err


# state alarms every one of these documents has a bit for
UNIVERSAL = {"cell_overvoltage", "cell_undervoltage", "charge_overtemp", "discharge_overtemp",
             "charge_undertemp", "discharge_undertemp", "charge_overcurrent",
             "discharge_overcurrent"}


def alarm_errors(protocol, dec, b):
    """nothing on the wire without a cause in the state, and the other way round:
    state alarms (protection active) are the documents' "protection" (Pylontech
    family, Growatt) or "alarm" (SMA/Victron) bits, state warnings their
    "alarm" / "warning" bits"""
    err = []
    if protocol == "victron":
        pairs = (("alarms", "alarms"), ("warnings", "warnings"))
    elif protocol == "growatt":
        pairs = (("alarms", "protection_flags"), ("warnings", "warning_flags"))
    else:
        pairs = (("alarms", "protection_flags"), ("warnings", "alarm_flags"))
    for state_key, wire_key in pairs:
        have = set(b["status"][state_key])
        on = set(dec.get(wire_key, []))
        if not have and on:
            err.append("%s %r on the wire for a state without %s" % (wire_key, sorted(on), state_key))
        if have & UNIVERSAL and not on:
            err.append("state %s %r, no %s on the wire" % (state_key, sorted(have), wire_key))
    return err


def growatt_errors(dec, st):
    b = bank_of(st)
    req = requests(b)
    err = []
    # Growatt LV V1.04 0x311 status (Table 1): bit 5 output discharge enabled,
    # bit 6 output charge enabled, bits 8-9 standalone / parallel, bits 10-11
    # the storage machine's state, which the battery leaves at 00.
    if dec.get("output_charge_enabled") != ("charge_enable" in req):
        err.append("output_charge_enabled %r, requests %r" % (dec.get("output_charge_enabled"),
                                                              sorted(req)))
    if dec.get("output_discharge_enabled") != ("discharge_enable" in req):
        err.append("output_discharge_enabled %r, requests %r"
                   % (dec.get("output_discharge_enabled"), sorted(req)))
    if dec.get("parallel") != (st["packs_online"] > 1):
        err.append("parallel %r with %d packs online" % (dec.get("parallel"), st["packs_online"]))
    if (dec.get("status_raw", 0) >> 10) & 3:
        err.append("SP status bits 10-11 are %d, not 00" % ((dec["status_raw"] >> 10) & 3))
    return err


# ---- part 1: CAN, every protocol, through bmsbridgectl encode --------------------

CAN_PROTOCOLS = ("pylontech", "deye", "luxpower", "growatt", "victron")


def encode_can(protocol, st):
    r = subprocess.run([CTL, "encode", protocol], input=json.dumps(st), capture_output=True,
                       text=True, timeout=20)
    frames = []
    for line in r.stdout.splitlines():
        ident, data = line.split()[2].split("#")
        frames.append((int(ident, 16), bytes.fromhex(data)))
    return r, frames


def part_can(all_states):
    for protocol in CAN_PROTOCOLS:
        bad = {}
        for name, st in all_states.items():
            r, frames = encode_can(protocol, st)
            if r.returncode != 0 or not frames:
                bad[name] = ["encode failed: " + r.stderr.strip()]
                continue
            dec = CAN.decode(protocol, frames)
            b = bank_of(st)
            err = ["violation: " + v for v in CAN.check(protocol, frames)
                   if not accepted(protocol, bool(bank_of(st)["cells"]["cell_mv"]), v)]
            err += limit_errors(dec, b)
            err += measured_errors(dec, st)
            err += alarm_errors(protocol, dec, b)
            if protocol == "growatt":
                err += growatt_errors(dec, st)
            if err:
                bad[name] = err
        check("%s: %d states, every set conforms to its document and carries the state "
              "(limits never loosened)" % (protocol, len(all_states)), not bad,
              "\n".join("%s: %s" % (n, "; ".join(e)) for n, e in sorted(bad.items())))


# ---- part 1: RS485, every command, through bmsbridgectl encode pylontech-rs485 ---

def rs485_answers(st, reqs):
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(st, f)
        f.flush()
        inp = b"".join(RS.build_request(ver, ADR, cid2, info).rstrip(b"\r") + b"\n"
                       for ver, cid2, info in reqs)
        r = subprocess.run([CTL, "--address", "1", "--state", f.name, "encode",
                            "pylontech-rs485"], input=inp, capture_output=True, timeout=20)
    return r, r.stdout.split(b"\n")


RS485_READS = [(0x00, 0x4F, b""), (0x20, 0x51, b""), (0x20, 0x42, bytes([ADR])),
               (0x20, 0x44, bytes([ADR])), (0x20, 0x47, b""), (0x20, 0x92, bytes([ADR])),
               (0x20, 0x93, bytes([ADR])), (0x20, 0x96, bytes([ADR])), (0x20, 0x61, b""),
               (0x20, 0x62, b""), (0x20, 0x63, b"")]


def rs485_errors(st, cid2, dec):
    b = bank_of(st)
    lim = b["limits"]
    err = []
    if cid2 == 0x42:
        cells = [c / 1000.0 for c in b["cells"]["cell_mv"]]
        if cells and [round(c, 3) for c in dec.get("cell_voltages_v", [])] != cells:
            err.append("cells %r, state %r" % (dec.get("cell_voltages_v"), cells))
        if abs(dec.get("pack_voltage_v", 0) - b["electrical"]["voltage_mv"] / 1000.0) > 0.001:
            err.append("pack voltage %r" % dec.get("pack_voltage_v"))
        if abs(dec.get("current_a", 1e9) - b["electrical"]["current_ma"] / 1000.0) > 0.1 + 1e-6:
            err.append("current %r" % dec.get("current_a"))
        if dec.get("cycle_count") != b["capacity"]["cycles"]:
            err.append("cycles %r" % dec.get("cycle_count"))
    elif cid2 in (0x47, 0x92, 0x63):
        ccl = dec.get("charge_current_limit_a")
        dcl = dec.get("discharge_current_limit_a")
        s_ccl, s_dcl = lim["charge_current_limit_ma"] / 1000.0, lim["discharge_current_limit_ma"] / 1000.0
        if ccl is None or not (s_ccl - 0.1 - 1e-6 < ccl <= s_ccl + 1e-6):
            err.append("0x%02X CCL %r for %.3f A (0.1 A, never above)" % (cid2, ccl, s_ccl))
        # V3.3 3.4 / 3.6 and real US2000B Plus answers: discharge limit negative
        want = -s_dcl if cid2 != 0x63 else s_dcl
        if dcl is None or abs(dcl) > s_dcl + 1e-6 or abs(dcl) <= s_dcl - 0.1 - 1e-6 or \
                (dcl != 0 and (dcl < 0) != (want < 0)):
            err.append("0x%02X DCL %r for %.3f A" % (cid2, dcl, want))
        if cid2 in (0x92, 0x63):
            if abs(dec.get("charge_voltage_limit_v", 0) * 1000 - lim["charge_voltage_limit_mv"]) > 0.5:
                err.append("CVL %r" % dec.get("charge_voltage_limit_v"))
            if abs(dec.get("discharge_voltage_limit_v", 0) * 1000 - lim["discharge_voltage_limit_mv"]) > 0.5:
                err.append("DVL %r" % dec.get("discharge_voltage_limit_v"))
            req = requests(b)
            if dec.get("charge_enable") != ("charge_enable" in req) or \
                    dec.get("discharge_enable") != ("discharge_enable" in req):
                err.append("enables %r/%r for %r" % (dec.get("charge_enable"),
                                                     dec.get("discharge_enable"), sorted(req)))
        if cid2 == 0x47:
            if dec.get("module_high_voltage_limit_v", 1e9) * 1000 > lim["charge_voltage_limit_mv"] + 0.5:
                err.append("0x47 module high voltage %r above CVL" % dec.get("module_high_voltage_limit_v"))
    return err


def part_rs485(all_states):
    bad = {}
    for name, st in all_states.items():
        r, answers = rs485_answers(st, RS485_READS)
        err = []
        for (ver, cid2, info), ans in zip(RS485_READS, answers):
            try:
                a = RS.parse_frame(ans.strip() + b"\r")
                dec = RS.decode_answer(cid2, info, a, request_ver=ver, request_adr=ADR)
            except Exception as e:  # ProtocolError, or nothing answered
                err.append("0x%02X: %s" % (cid2, e))
                continue
            viol = dec.get("violations", [])
            if not bank_of(st)["cells"]["cell_mv"]:
                # V3.3 3.3 states no minimum for M; a BMS that gives only the
                # extremes has no cell list, and we send M = 0 rather than
                # invent cells (the reader's 1..16 is its own inference)
                viol = [v for v in viol if not v.startswith("cell count 0")]
            err += ["0x%02X: %s" % (cid2, v) for v in viol]
            err += rs485_errors(st, cid2, dec)
        if len(answers) < len(RS485_READS):
            err.append("only %d answers: %s" % (len(answers), r.stderr.decode().strip()))
        if err:
            bad[name] = err
    check("pylontech-rs485: %d states x %d commands, every answer conforms to V3.3/V3.5 and "
          "carries the state" % (len(all_states), len(RS485_READS)), not bad,
          "\n".join("%s: %s" % (n, "; ".join(e)) for n, e in sorted(bad.items())))


# ---- part 2: the real daemon, driven as captured masters drive it -----------------

def part_daemon():
    if not shutil.which("socat"):
        check("socat is installed (tools/setup)", False)
        return
    for baud in (9600, 19200):
        with tempfile.TemporaryDirectory(prefix="bmsbridge-readers-") as tmp:
            inv, bat = os.path.join(tmp, "inv"), os.path.join(tmp, "bat")
            socat = subprocess.Popen(["socat", "pty,raw,echo=0,link=" + inv,
                                      "pty,raw,echo=0,link=" + bat],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            conf = os.path.join(tmp, "rs485.conf")
            with open(conf, "w") as f:
                f.write('bms: { driver = "sim"; seed = 7; };\n'
                        'inverter: { protocol = "pylontech-rs485"; output = "rs485"; '
                        'port = "%s"; baud = %d; };\n' % (bat, baud))
            end = time.monotonic() + 5
            while time.monotonic() < end and not (os.path.exists(inv) and os.path.exists(bat)):
                time.sleep(0.02)
            env = {k: v for k, v in os.environ.items()
                   if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
            log = open(os.path.join(tmp, "daemon.log"), "w+")
            d = subprocess.Popen([DAEMON, "-c", conf, "-v"], stdout=subprocess.DEVNULL,
                                 stderr=log, env=env)
            try:
                time.sleep(1.5)  # the sim's first read
                m = RS.Master(inv, baud, timeout_s=1.0, tries=5)
                for seq in ("axpert", "pip", "vevor"):
                    out = m.sequence(seq, adr=ADR)
                    err = []
                    for desc, parsed, dec in out:
                        if parsed is None:
                            err.append("%s: no answer" % desc)
                        elif isinstance(dec, Exception):
                            err.append("%s: %s" % (desc, dec))
                        else:
                            err += ["%s: %s" % (desc, v) for v in dec.get("violations", [])]
                    tries_4f = sum(1 for desc, _, _ in out if "4F" in desc.upper())
                    if seq == "axpert" and tries_4f != 1:
                        err.append("0x4F VER 0x00 needed %d polls, a real pack answers the "
                                   "first" % tries_4f)
                    check("%d baud, %s sequence (%d exchanges): all answered, all conform"
                          % (baud, seq, len(out)), out and not err,
                          "\n".join(err) or "no exchange")
                m.close()
            finally:
                d.send_signal(signal.SIGTERM)
                try:
                    d.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    d.kill()
                socat.terminate()
                socat.wait()
                log.seek(0)
                tail = log.read().splitlines()[-5:]
                log.close()
            check("%d baud: the daemon ran throughout and stopped cleanly" % baud,
                  d.returncode == 0, "\n".join(tail))


def main():
    all_states = dict(states.named_states())
    all_states.update(states.random_states(20261202, 40))
    part_can(all_states)
    part_rs485(all_states)
    part_daemon()
    print("1..%d" % len(results), flush=True)
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
