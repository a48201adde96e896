# SPDX-License-Identifier: MIT
"""Independent master/checker for the Pylontech low-voltage RS485 protocol.

Written from the manufacturer's document "RS485 protocol pylon low voltage
V3.3" (Pylontech, 2018-08-21) alone; section numbers below are that
document's.  What each part follows:

* Frame (2.2.1, 2.2.2): ``~ VER ADR CID1 CID2 LENGTH INFO CHKSUM \\r``.
  Every field between SOI and EOI is hex written as ASCII, two characters a
  byte (2.3.1; its example sends CID2 4BH as 34H 42H, i.e. upper case, so
  lower-case hex digits are rejected).  CID1 is 46H (2.5.1).
* LENGTH (2.3.2): LCHKSUM (high nibble) + LENID (12 bits, number of INFO
  ASCII characters); LCHKSUM = (~(sum of LENID's three nibbles mod 16) + 1)
  mod 16.  Example: LENID 18 -> "D012".
* CHKSUM (2.3.3): (~(sum of the ASCII codes between SOI and CHKSUM mod
  65536) + 1) mod 65536, four characters.
* Fixed-point types (2.3.4, 2.5.2 "fixed point type"): cell voltage,
  temperature, current, system parameter: signed; module voltage, capacity:
  unsigned; big-endian (high byte first, as LENGTH in 2.3.2).
* Return codes (2.5.2 "response information"); ADR and the command byte
  (2.5.3: "INFO of COMMAND = ADR"; 0xFF for system data of 0x42/0x44).
* 0x4F protocol version (3.1), 0x51 manufacturer info (3.2), 0x42 analog
  values (3.3), 0x47 system parameters (3.4), 0x44 alarm info (3.5), 0x92
  charge/discharge management info (3.6), 0x93 serial number (3.7), 0x94 set
  management info (3.8, empty answer), 0x95 turn off (3.9, empty answer),
  0x96 software version (3.10).  Temperatures are 0.1 K with offset 2731
  (3.3: "25.5 C = 25.5*10+2731 = 2986").  Currents of 3.3/3.4 are in units
  of 100 mA (3.3: "Actual value = transmission value * 100", "-4000mA =
  0xFFD8"); those of 3.6 have "accuracy 1", i.e. 0.1 A.
* System commands 0x60-0x64 come from Pylontech's V3.5 document, whose PDF
  was not at hand; they are decoded after a public text transcription of it
  (repository Fahmula/esphome-pylontech-rs485, "documents/RS485
  protocol/3.5/transcription.md").  That transcription's tables and its
  examples disagree on several scalings; see the notes in the decoders
  (``_decode_61``, ``_decode_63``).  The field *layouts* agree with the
  LENID of its examples; the scalings used here are those of its tables.

Masters (what real inverters poll; taken from the project's shared protocol
facts): Voltronic Axpert VM IV sends 0x4F with VER 0x00 to ADR 0x02 until it
gets a normal answer and reuses the answered VER afterwards; PIP5048GK polls
0x4F, 0x42, 0x92; Vevor EML3500 polls 0x61, 0x63.

Usage::

    python3 pylon_rs485_reader.py --port PORT --baud 9600 \\
        --sequence axpert --adr 2
    python3 pylon_rs485_reader.py --decode '~20024692E00202FD2F' \\
        '~20024600B01402D002B79800FAFF06C0F92D'
    python3 pylon_rs485_reader.py --self-test

Only the Python 3 standard library is needed, plus pyserial (Debian
package python3-serial) for talking to a port.
"""

import argparse
import json
import sys
import time

__all__ = [
    "ProtocolError", "NoAnswer", "build_request", "parse_frame",
    "decode_answer", "Master", "lchksum", "chksum", "main",
]

SOI = 0x7E
EOI = 0x0D
CID1_BATTERY = 0x46          # 2.5.1
TEMP_OFFSET = 2731           # 3.3 (0.1 K units, 0 C = 2731)
_HEX_UPPER = b"0123456789ABCDEF"

# 2.5.2, response information
RTN_NAMES = {
    0x00: "normal",
    0x01: "VER error",
    0x02: "CHKSUM error",
    0x03: "LCHKSUM error",
    0x04: "CID2 invalid",
    0x05: "command format error",
    0x06: "invalid data",
    0x90: "ADR error",
    0x91: "internal communication error",
}

# 2.5.2 command information (0x60-0x64 from the V3.5 transcription)
CID2_NAMES = {
    0x42: "get analog value, fixed point",
    0x44: "get alarm info",
    0x47: "get system parameter, fixed point",
    0x4F: "get protocol version",
    0x51: "get manufacturer info",
    0x92: "get charge/discharge management info",
    0x93: "get SN number",
    0x94: "set charge/discharge management info",
    0x95: "turn off",
    0x96: "get software version",
    0x60: "get system basic info (V3.5)",
    0x61: "get system analog data (V3.5)",
    0x62: "get system alarm info (V3.5)",
    0x63: "get system charge/discharge management info (V3.5)",
    0x64: "system shutdown (V3.5)",
}

# Request INFO size in bytes the document gives for each command (LENID/2).
_REQUEST_INFO_BYTES = {
    0x4F: 0, 0x51: 0, 0x47: 0,            # 3.1, 3.2, 3.4: LENID = 0
    0x42: 1, 0x44: 1, 0x92: 1, 0x93: 1,   # 3.3, 3.5, 3.6, 3.7: LENID = 02H
    0x95: 1, 0x96: 1,                     # 3.9, 3.10: LENID = 02H
    0x94: 9,                              # 3.8: LENID = 12H
    0x60: 0, 0x61: 0, 0x62: 0, 0x63: 0, 0x64: 0,  # V3.5 examples: LENGTH 0000
}


class ProtocolError(Exception):
    """The frame or its INFO breaks the document (hard violation)."""


class NoAnswer(ProtocolError):
    """No answer arrived before the timeout."""


# ---------------------------------------------------------------------------
# Framing (2.2, 2.3)
# ---------------------------------------------------------------------------

def lchksum(lenid):
    """LCHKSUM of a 12-bit LENID (2.3.2)."""
    if not 0 <= lenid <= 0xFFF:
        raise ValueError("LENID out of 12 bits: %r" % (lenid,))
    s = ((lenid >> 8) & 0xF) + ((lenid >> 4) & 0xF) + (lenid & 0xF)
    return ((~(s % 16)) + 1) & 0xF


def chksum(ascii_chars):
    """CHKSUM over the ASCII characters between SOI and CHKSUM (2.3.3)."""
    return ((~(sum(bytes(ascii_chars)) % 65536)) + 1) & 0xFFFF


def _hex(data):
    return bytes(data).hex().upper().encode("ascii")


def build_request(ver, adr, cid2, info=b""):
    """Build a complete command frame ``~...\\r`` (2.2.1, 2.3.2, 2.3.3)."""
    for name, v in (("ver", ver), ("adr", adr), ("cid2", cid2)):
        if not 0 <= int(v) <= 0xFF:
            raise ValueError("%s out of a byte: %r" % (name, v))
    info = bytes(info)
    info_ascii = _hex(info)
    lenid = len(info_ascii)
    if lenid > 0xFFF:
        raise ValueError("INFO too long for a 12-bit LENID")
    length = (lchksum(lenid) << 12) | lenid
    body = b"%02X%02X%02X%02X%04X" % (ver, adr, CID1_BATTERY, cid2, length)
    body += info_ascii
    return b"~" + body + b"%04X" % chksum(body) + b"\r"


def _parse(frame, check_chksum=True, check_lenid=True):
    if isinstance(frame, str):
        frame = frame.encode("latin-1")
    frame = bytes(frame)
    if not frame or frame[0] != SOI:
        raise ProtocolError("missing SOI '~' at the start of the frame")
    if frame[-1] != EOI:
        raise ProtocolError("missing EOI CR (0x0D) at the end of the frame")
    body = frame[1:-1]
    for i, c in enumerate(body):
        if c in _HEX_UPPER:
            continue
        if c in b"abcdef":
            raise ProtocolError(
                "lower-case hex digit %r at offset %d (2.3.1 transfers hex as "
                "upper-case ASCII, e.g. 4BH as 34H 42H)" % (chr(c), i + 1))
        raise ProtocolError("non-hex character 0x%02X at offset %d"
                            % (c, i + 1))
    if len(body) < 16:
        raise ProtocolError("frame too short: %d characters between SOI and "
                            "EOI, at least 16 needed" % len(body))
    ver = int(body[0:2], 16)
    adr = int(body[2:4], 16)
    cid1 = int(body[4:6], 16)
    cid2 = int(body[6:8], 16)
    length = int(body[8:12], 16)
    lenid = length & 0xFFF
    info_ascii = body[12:-4]
    got_ck = int(body[-4:], 16)
    if check_lenid and lenid != len(info_ascii):
        raise ProtocolError("LENID %d does not match the %d INFO characters"
                            % (lenid, len(info_ascii)))
    if (length >> 12) != lchksum(lenid):
        raise ProtocolError("wrong LCHKSUM: LENGTH %04X, expected %X%03X"
                            % (length, lchksum(lenid), lenid))
    if len(info_ascii) % 2:
        raise ProtocolError("odd number (%d) of INFO characters"
                            % len(info_ascii))
    want_ck = chksum(body[:-4])
    if check_chksum and got_ck != want_ck:
        raise ProtocolError("wrong CHKSUM: %04X, expected %04X"
                            % (got_ck, want_ck))
    if cid1 != CID1_BATTERY:
        raise ProtocolError("CID1 0x%02X is not 0x46 (2.5.1)" % cid1)
    return {
        "ver": ver,
        "adr": adr,
        "cid1": cid1,
        "cid2_or_rtn": cid2,
        "info": bytes.fromhex(info_ascii.decode("ascii")),
    }


def parse_frame(frame):
    """Parse one frame (bytes, ``~`` ... ``\\r``) strictly.

    Returns a dict with keys ver, adr, cid1, cid2_or_rtn, info (bytes).
    Raises ProtocolError on any framing violation.
    """
    return _parse(frame)


# ---------------------------------------------------------------------------
# INFO decoding (chapter 3)
# ---------------------------------------------------------------------------

class _Reader(object):
    def __init__(self, data, what):
        self.d = bytes(data)
        self.p = 0
        self.what = what

    def take(self, n, field):
        if self.p + n > len(self.d):
            raise ProtocolError(
                "%s: INFO (%d bytes) ends inside %s (needs %d bytes at "
                "offset %d)" % (self.what, len(self.d), field, n, self.p))
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def u8(self, field):
        return self.take(1, field)[0]

    def u16(self, field):
        return int.from_bytes(self.take(2, field), "big")

    def s16(self, field):
        return int.from_bytes(self.take(2, field), "big", signed=True)

    def u24(self, field):
        return int.from_bytes(self.take(3, field), "big")

    def end(self):
        if self.p != len(self.d):
            raise ProtocolError(
                "%s: INFO has %d bytes, the document's layout gives %d"
                % (self.what, len(self.d), self.p))


def _temp_c(raw):
    """0.1 K with offset 2731 -> degrees C (3.3)."""
    return round((raw - TEMP_OFFSET) / 10.0, 1)


def _mv(raw):
    return round(raw / 1000.0, 3)


def _deci(raw):
    return round(raw / 10.0, 1)


def _ascii(b, field, violations):
    s = bytes(b).rstrip(b"\x00").rstrip(b" ")
    if any(c < 0x20 or c > 0x7E for c in s):
        violations.append("%s has non-printable bytes: %s"
                          % (field, bytes(b).hex().upper()))
    return s.decode("latin-1")


def _flag_violations(flag, violations):
    # 2.2.2 "Data INFO flag format": only bit 4 and bit 0 are defined
    if flag & 0xEE:
        violations.append("INFOFLAG 0x%02X has reserved bits set "
                          "(only bits 4 and 0 are defined, 2.2.2)" % flag)


def _check_command(cmd, request_info, adr, violations, allow_ff=False):
    """3.3/3.5/3.6/3.7/3.10: the command byte should match ADR (2.5.3)."""
    if request_info and cmd != request_info[0]:
        violations.append("answer command value 0x%02X differs from the "
                          "request's 0x%02X" % (cmd, request_info[0]))
    if adr is not None and cmd != adr and not (allow_ff and cmd == 0xFF):
        violations.append("command value 0x%02X does not match ADR 0x%02X "
                          "(\"Command should be matched with ADR\")"
                          % (cmd, adr))


def _decode_4f(r, res, v, ctx):
    # 3.1: the version is carried in VER (e.g. V2.1 -> 21H); the document
    # gives no INFO for the answer (the real US2000B Plus sends LENID 0).
    res["protocol_version"] = "%d.%d" % (ctx["ver"] >> 4, ctx["ver"] & 0xF)
    if r.d:
        v.append("0x4F answer carries %d INFO bytes; 3.1 defines none"
                 % len(r.d))
        r.p = len(r.d)


def _decode_51(r, res, v, ctx):
    # 3.2: LENID = 40H -> 10 + 2 + 20 bytes
    res["battery_name"] = _ascii(r.take(10, "battery name"),
                                 "battery_name", v)
    sw = r.take(2, "software version")
    res["software_version"] = [sw[0], sw[1]]
    res["software_version_str"] = "%d.%d" % (sw[0], sw[1])
    res["manufacturer_name"] = _ascii(r.take(20, "manufacturer name"),
                                      "manufacturer_name", v)


def _decode_42(r, res, v, ctx):
    # 3.3: INFO = INFOFLAG + DATAI; DATAI = command value + data of battery
    flag = r.u8("INFOFLAG")
    res["info_flag"] = flag
    res["unread_switch_change"] = bool(flag & 0x10)
    res["unread_alarm_change"] = bool(flag & 0x01)
    _flag_violations(flag, v)
    cmd = r.u8("command value")
    res["command_value"] = cmd
    _check_command(cmd, ctx["request_info"], ctx["adr"], v, allow_ff=True)
    m = r.u8("number of cells")
    res["cell_count"] = m
    res["cell_voltages_v"] = [_mv(r.s16("cell %d voltage" % (i + 1)))
                              for i in range(m)]
    n = r.u8("number of temperatures")
    res["temperature_count"] = n
    temps = [_temp_c(r.s16("temperature %d" % (i + 1))) for i in range(n)]
    res["temperatures_c"] = temps
    if temps:
        res["bms_board_temperature_c"] = temps[0]
        res["cell_group_temperatures_c"] = temps[1:]
    cur_raw = r.s16("current")
    res["current_raw"] = cur_raw
    res["current_a"] = _deci(cur_raw)
    res["pack_voltage_v"] = _mv(r.u16("module voltage"))
    rem1 = r.u16("remain capacity 1")
    ud = r.u8("user defined items")
    res["user_defined_items"] = ud
    tot1 = r.u16("module total capacity 1")
    res["cycle_count"] = r.u16("cycle number")
    res["remaining_capacity_1_ah"] = _mv(rem1)
    res["total_capacity_1_ah"] = _mv(tot1)
    if ud == 2:
        rem, tot = rem1, tot1
    elif ud == 4:
        rem = r.u24("remain capacity 2")
        tot = r.u24("module total capacity 2")
        res["remaining_capacity_2_ah"] = _mv(rem)
        res["total_capacity_2_ah"] = _mv(tot)
        if rem1 != 0xFFFF or tot1 != 0xFFFF:
            v.append("user defined items = 4 but remain/total capacity 1 "
                     "are %04X/%04X, 3.3 says FFFF" % (rem1, tot1))
    else:
        raise ProtocolError("0x42: user defined items = %d; 3.3 defines only "
                            "2 (<= 65 Ah) and 4 (> 65 Ah)" % ud)
    res["remaining_capacity_ah"] = _mv(rem)
    res["total_capacity_ah"] = _mv(tot)
    if rem > tot:
        v.append("remaining capacity %.3f Ah exceeds total capacity %.3f Ah"
                 % (rem / 1000.0, tot / 1000.0))
    if tot:
        res["soc_derived_percent"] = round(100.0 * rem / tot, 1)
    if m == 0 or m > 16:
        v.append("cell count %d outside 1..16 (3.3/3.5 describe up to 16 "
                 "cells)" % m)


_ALARM_VALUES = {0x00: "normal", 0x01: "below_lower_limit",
                 0x02: "above_upper_limit", 0xF0: "other_error"}


def _alarm_value(b, field, v):
    if b not in _ALARM_VALUES:
        v.append("%s = 0x%02X is not one of 00H/01H/02H/F0H (3.5)"
                 % (field, b))
        return "undefined_0x%02X" % b
    return _ALARM_VALUES[b]


def _bits(byte, names, field, v, reserved_mask):
    out = {}
    for bit, name in names.items():
        out[name] = bool(byte & (1 << bit))
    if byte & reserved_mask:
        v.append("%s = 0x%02X has reserved bits set (mask 0x%02X)"
                 % (field, byte, byte & reserved_mask))
    return out


def _decode_44(r, res, v, ctx):
    # 3.5: INFO = DATAFLAG + WARNSTATE; WARNSTATE = command + alarm info
    flag = r.u8("DATAFLAG")
    res["info_flag"] = flag
    res["unread_switch_change"] = bool(flag & 0x10)
    res["unread_alarm_change"] = bool(flag & 0x01)
    _flag_violations(flag, v)
    cmd = r.u8("command value")
    res["command_value"] = cmd
    _check_command(cmd, ctx["request_info"], ctx["adr"], v, allow_ff=True)
    m = r.u8("number of cells")
    res["cell_count"] = m
    res["cell_voltage_states"] = [
        _alarm_value(r.u8("cell %d state" % (i + 1)),
                     "cell %d voltage state" % (i + 1), v) for i in range(m)]
    n = r.u8("number of temperatures")
    res["temperature_count"] = n
    res["temperature_states"] = [
        _alarm_value(r.u8("temperature %d state" % (i + 1)),
                     "temperature %d state" % (i + 1), v) for i in range(n)]
    res["charge_current_state"] = _alarm_value(
        r.u8("charge current state"), "charge current state", v)
    res["module_voltage_state"] = _alarm_value(
        r.u8("module voltage state"), "module voltage state", v)
    res["discharge_current_state"] = _alarm_value(
        r.u8("discharge current state"), "discharge current state", v)
    s1 = r.u8("status 1")
    s2 = r.u8("status 2")
    s3 = r.u8("status 3")
    s4 = r.u8("status 4")
    s5 = r.u8("status 5")
    res["status_bytes"] = [s1, s2, s3, s4, s5]
    res["status1"] = _bits(s1, {
        7: "module_under_voltage", 6: "charge_over_temperature",
        5: "discharge_over_temperature", 4: "discharge_over_current",
        2: "charge_over_current", 1: "cell_under_voltage",
        0: "module_over_voltage"}, "status 1", v, 0x08)
    res["status2"] = _bits(s2, {
        3: "using_battery_module_power", 2: "discharge_mosfet_on",
        1: "charge_mosfet_on", 0: "pre_mosfet_on"}, "status 2", v, 0xF0)
    res["status3"] = _bits(s3, {
        7: "effective_charge_current", 6: "effective_discharge_current",
        5: "heater_on", 3: "fully_charged", 0: "buzzer_on"},
        "status 3", v, 0x16)
    errs = [i + 1 for i in range(8) if s4 & (1 << i)]
    errs += [i + 9 for i in range(8) if s5 & (1 << i)]
    res["cell_voltage_error_cells"] = errs
    if any(c > m for c in errs):
        v.append("status 4/5 flag cells %s beyond the %d cells reported"
                 % ([c for c in errs if c > m], m))


def _limit_sign_checks(ccl_raw, dcl_raw, v, where):
    if ccl_raw < 0:
        v.append("%s: charge current limit %.1f A is negative (2.5.2: "
                 "current signed, charge is +)" % (where, ccl_raw / 10.0))
    if dcl_raw > 0:
        v.append("%s: discharge current limit %.1f A is positive; with the "
                 "document's convention (2.5.2 charge is +, 3.4 'with "
                 "symbol') and the real US2000B Plus it is negative "
                 "(inferred, not stated in a table)" % (where,
                                                       dcl_raw / 10.0))


def _decode_47(r, res, v, ctx):
    # 3.4: INFO = INFOFLAG + DATAI (12 two-byte values)
    flag = r.u8("INFOFLAG")
    res["info_flag"] = flag
    res["unread_switch_change"] = bool(flag & 0x10)
    res["unread_alarm_change"] = bool(flag & 0x01)
    _flag_violations(flag, v)
    res["cell_high_voltage_limit_v"] = _mv(r.s16("cell high voltage limit"))
    res["cell_low_voltage_limit_v"] = _mv(r.s16("cell low voltage limit"))
    res["cell_under_voltage_limit_v"] = _mv(r.s16("cell under voltage limit"))
    res["charge_high_temperature_limit_c"] = _temp_c(
        r.s16("charge high temperature limit"))
    res["charge_low_temperature_limit_c"] = _temp_c(
        r.s16("charge low temperature limit"))
    ccl = r.s16("charge current limit")
    res["charge_current_limit_a"] = _deci(ccl)
    # module voltages are unsigned (2.5.2), 54.000 V does not fit a s16
    res["module_high_voltage_limit_v"] = _mv(r.u16("module high voltage"))
    res["module_low_voltage_limit_v"] = _mv(r.u16("module low voltage"))
    res["module_under_voltage_limit_v"] = _mv(r.u16("module under voltage"))
    res["discharge_high_temperature_limit_c"] = _temp_c(
        r.s16("discharge high temperature limit"))
    res["discharge_low_temperature_limit_c"] = _temp_c(
        r.s16("discharge low temperature limit"))
    dcl = r.s16("discharge current limit")
    res["discharge_current_limit_a"] = _deci(dcl)
    _limit_sign_checks(ccl, dcl, v, "0x47")
    for a, b in (("cell_under_voltage_limit_v", "cell_low_voltage_limit_v"),
                 ("cell_low_voltage_limit_v", "cell_high_voltage_limit_v"),
                 ("module_under_voltage_limit_v",
                  "module_low_voltage_limit_v"),
                 ("module_low_voltage_limit_v",
                  "module_high_voltage_limit_v"),
                 ("charge_low_temperature_limit_c",
                  "charge_high_temperature_limit_c"),
                 ("discharge_low_temperature_limit_c",
                  "discharge_high_temperature_limit_c")):
        if res[a] > res[b]:
            v.append("%s (%s) above %s (%s)" % (a, res[a], b, res[b]))


_MGMT_BITS = {7: "charge_enable", 6: "discharge_enable",
              5: "charge_immediately_1", 4: "charge_immediately_2",
              3: "full_charge_request"}


def _decode_92(r, res, v, ctx):
    # 3.6: INFO = DATAI = command value + management value (no INFOFLAG)
    cmd = r.u8("command value")
    res["command_value"] = cmd
    _check_command(cmd, ctx["request_info"], ctx["adr"], v)
    cvl = r.u16("charge voltage limit")
    dvl = r.u16("discharge voltage limit")
    ccl = r.s16("charge current limit")
    dcl = r.s16("discharge current limit")
    st = r.u8("charge/discharge status")
    res["charge_voltage_limit_v"] = _mv(cvl)
    res["discharge_voltage_limit_v"] = _mv(dvl)
    res["charge_current_limit_a"] = _deci(ccl)
    res["discharge_current_limit_a"] = _deci(dcl)
    res["status_byte"] = st
    res.update(_bits(st, _MGMT_BITS, "charge/discharge status", v, 0x07))
    _limit_sign_checks(ccl, dcl, v, "0x92")
    if dvl > cvl:
        v.append("discharge voltage limit above charge voltage limit")


def _decode_93(r, res, v, ctx):
    # 3.7: command value + 16 bytes ASCII
    cmd = r.u8("command value")
    res["command_value"] = cmd
    _check_command(cmd, ctx["request_info"], ctx["adr"], v)
    res["serial_number"] = _ascii(r.take(16, "module SN"), "serial_number", v)


def _decode_empty(r, res, v, ctx):
    # 3.8, 3.9 (and V3.5 0x64): answer LENID = 0
    if r.d:
        raise ProtocolError("answer to 0x%02X must have LENID = 0, has %d "
                            "INFO bytes" % (ctx["cid2"], len(r.d)))


def _decode_96(r, res, v, ctx):
    # 3.10: command value + 2 bytes manufacture version + 3 bytes main line
    cmd = r.u8("command value")
    res["command_value"] = cmd
    _check_command(cmd, ctx["request_info"], ctx["adr"], v)
    mv = r.take(2, "manufacture version")
    ml = r.take(3, "main line version")
    res["manufacture_version"] = list(mv)
    res["main_line_version"] = list(ml)
    res["manufacture_version_str"] = ".".join(str(x) for x in mv)
    res["main_line_version_str"] = ".".join(str(x) for x in ml)


_V35_NOTE = ("decoded after a text transcription of Pylontech RS485 V3.5 "
             "(PDF not at hand)")


def _decode_60(r, res, v, ctx):
    # V3.5 2.1: name 10 ASCII, manufacturer 20 ASCII, sw 2, count 1,
    # count x 16 ASCII barcodes
    res["notes"].append(_V35_NOTE)
    res["master_battery_name"] = _ascii(r.take(10, "master battery name"),
                                        "master_battery_name", v)
    res["manufacturer_name"] = _ascii(r.take(20, "manufacturer name"),
                                      "manufacturer_name", v)
    sw = r.take(2, "master software version")
    res["master_software_version"] = list(sw)
    n = r.u8("number of batteries")
    res["battery_count"] = n
    res["battery_barcodes"] = [
        _ascii(r.take(16, "battery %d barcode" % (i + 1)),
               "battery %d barcode" % (i + 1), v) for i in range(n)]


def _decode_61(r, res, v, ctx):
    # V3.5 2.2, 49 bytes.  Scalings follow the transcription's table:
    # voltages 0.001 V, current 0.01 A (signed, 2.5.2), temperatures as 3.3.
    # Its example reads 0x61A8 as "25.00 A", which would be 0.001 A: the
    # raw value is kept as system_current_raw.  The "module containing"
    # fields are kept raw: the table reads 0x0304 as group 3 / module 4,
    # the example frame carries 0x0034 for the same item.
    res["notes"].append(_V35_NOTE)
    res["notes"].append("system_current_a uses the table's 0.01 A; the "
                        "transcription's example implies 0.001 A")
    res["system_voltage_v"] = _mv(r.u16("average system voltage"))
    cur = r.s16("system current")
    res["system_current_raw"] = cur
    res["system_current_a"] = round(cur / 100.0, 2)
    res["soc_percent"] = r.u8("SOC")
    res["average_cycle_count"] = r.u16("average cycle number")
    res["max_cycle_count"] = r.u16("maximum cycle number")
    res["average_soh_percent"] = r.u8("average SOH")
    res["min_soh_percent"] = r.u8("minimum SOH")
    res["max_cell_voltage_v"] = _mv(r.s16("highest cell voltage"))
    res["max_cell_voltage_module_raw"] = r.u16("module of highest cell V")
    res["min_cell_voltage_v"] = _mv(r.s16("lowest cell voltage"))
    res["min_cell_voltage_module_raw"] = r.u16("module of lowest cell V")
    res["average_cell_temperature_c"] = _temp_c(r.s16("avg cell temp"))
    res["max_cell_temperature_c"] = _temp_c(r.s16("max cell temp"))
    res["max_cell_temperature_module_raw"] = r.u16("module of max cell T")
    res["min_cell_temperature_c"] = _temp_c(r.s16("min cell temp"))
    res["min_cell_temperature_module_raw"] = r.u16("module of min cell T")
    res["average_mosfet_temperature_c"] = _temp_c(r.s16("avg MOSFET temp"))
    res["max_mosfet_temperature_c"] = _temp_c(r.s16("max MOSFET temp"))
    res["max_mosfet_temperature_module_raw"] = r.u16("module of max MOS T")
    res["min_mosfet_temperature_c"] = _temp_c(r.s16("min MOSFET temp"))
    res["min_mosfet_temperature_module_raw"] = r.u16("module of min MOS T")
    res["average_bms_temperature_c"] = _temp_c(r.s16("avg BMS temp"))
    res["max_bms_temperature_c"] = _temp_c(r.s16("max BMS temp"))
    res["max_bms_temperature_module_raw"] = r.u16("module of max BMS T")
    res["min_bms_temperature_c"] = _temp_c(r.s16("min BMS temp"))
    res["min_bms_temperature_module_raw"] = r.u16("module of min BMS T")
    if res["soc_percent"] > 100 and res["soc_percent"] != 0xFF:
        v.append("SOC %d %% above 100" % res["soc_percent"])
    for k in ("average_soh_percent", "min_soh_percent"):
        if res[k] > 100 and res[k] != 0xFF:
            v.append("%s %d above 100" % (k, res[k]))
    if res["min_cell_voltage_v"] > res["max_cell_voltage_v"]:
        v.append("lowest cell voltage above highest cell voltage")


def _decode_62(r, res, v, ctx):
    # V3.5 2.3: alarm status 1, 2, protection status 1, 2
    res["notes"].append(_V35_NOTE)
    a1, a2, p1, p2 = (r.u8("alarm status 1"), r.u8("alarm status 2"),
                      r.u8("protection status 1"), r.u8("protection status 2"))
    res["status_bytes"] = [a1, a2, p1, p2]
    res["alarm1"] = _bits(a1, {
        7: "module_voltage_high", 6: "module_voltage_low",
        5: "cell_voltage_high", 4: "cell_voltage_low",
        3: "cell_temperature_high", 2: "cell_temperature_low",
        1: "mosfet_temperature_high", 0: "cell_voltage_imbalance"},
        "system alarm status 1", v, 0x00)
    res["alarm2"] = _bits(a2, {
        7: "cell_temperature_imbalance", 6: "charge_over_current",
        5: "discharge_over_current", 4: "internal_communication_error"},
        "system alarm status 2", v, 0x0F)
    res["protection1"] = _bits(p1, {
        7: "module_over_voltage", 6: "module_under_voltage",
        5: "cell_over_voltage", 4: "cell_under_voltage",
        3: "cell_over_temperature", 2: "cell_under_temperature",
        1: "mosfet_over_temperature"}, "system protection status 1", v, 0x01)
    res["protection2"] = _bits(p2, {
        6: "charge_over_current", 5: "discharge_over_current",
        3: "system_fault"}, "system protection status 2", v, 0x97)


def _decode_63(r, res, v, ctx):
    # V3.5 2.4: the 0x92 layout without the command byte, 9 bytes.
    # Currents: the table says "1 decimal" (0.1 A, as 3.6 of V3.3); the
    # transcription's example reads 0x09C4 as 25.0 A (0.01 A).  0.1 A used.
    # The example sends the discharge limit positive (0x07E4), so no sign
    # check on it here.
    res["notes"].append(_V35_NOTE)
    res["notes"].append("current limits use the table's 0.1 A; the "
                        "transcription's example implies 0.01 A")
    cvl = r.u16("charge voltage limit")
    dvl = r.u16("discharge voltage limit")
    ccl = r.s16("charge current limit")
    dcl = r.s16("discharge current limit")
    st = r.u8("charge/discharge status")
    res["charge_voltage_limit_v"] = _mv(cvl)
    res["discharge_voltage_limit_v"] = _mv(dvl)
    res["charge_current_limit_raw"] = ccl
    res["discharge_current_limit_raw"] = dcl
    res["charge_current_limit_a"] = _deci(ccl)
    res["discharge_current_limit_a"] = _deci(dcl)
    res["status_byte"] = st
    res.update(_bits(st, {7: "charge_enable", 6: "discharge_enable",
                          5: "charge_immediately", 4: "full_charge_request"},
                     "charge/discharge status", v, 0x0F))
    if ccl < 0:
        v.append("0x63: charge current limit negative")
    if dvl > cvl:
        v.append("discharge voltage limit above charge voltage limit")


_DECODERS = {
    0x4F: _decode_4f, 0x51: _decode_51, 0x42: _decode_42, 0x44: _decode_44,
    0x47: _decode_47, 0x92: _decode_92, 0x93: _decode_93,
    0x94: _decode_empty, 0x95: _decode_empty, 0x96: _decode_96,
    0x60: _decode_60, 0x61: _decode_61, 0x62: _decode_62, 0x63: _decode_63,
    0x64: _decode_empty,
}


def _ver_ok(ver):
    # 3.1: VER carries the protocol version as two decimal digits
    # (V2.1 -> 21H); all the document's frames use 20H.
    return ver >= 0x20 and (ver >> 4) <= 9 and (ver & 0xF) <= 9


def decode_answer(cid2_request, request_info, answer, request_ver=None,
                  request_adr=None):
    """Decode the INFO of ``answer`` (a parse_frame dict) to ``cid2_request``.

    Returns a dict of named fields (engineering units in the key names)
    plus ``violations`` (soft issues), ``request_notes`` (the request
    deviating from the document) and ``notes``.  Raises ProtocolError when
    the INFO length does not fit the document's layout.
    """
    request_info = bytes(request_info or b"")
    if cid2_request not in _DECODERS:
        raise ProtocolError("no decoder: CID2 0x%02X is not a command of the "
                            "document" % cid2_request)
    v = []
    req_notes = []
    res = {
        "command": "0x%02X %s" % (cid2_request, CID2_NAMES[cid2_request]),
        "ver": answer["ver"],
        "adr": answer["adr"],
        "rtn": answer["cid2_or_rtn"],
        "rtn_name": RTN_NAMES.get(answer["cid2_or_rtn"], "undefined"),
        "notes": [],
    }
    want = _REQUEST_INFO_BYTES.get(cid2_request)
    if want is not None and len(request_info) != want:
        req_notes.append("request INFO is %d bytes, the document gives %d"
                         % (len(request_info), want))
    if not _ver_ok(answer["ver"]):
        v.append("answer VER 0x%02X is not a protocol version (3.1: V2.1 -> "
                 "21H; the document's frames use 20H)" % answer["ver"])
    if (request_ver is not None and cid2_request != 0x4F
            and answer["ver"] != request_ver):
        v.append("answer VER 0x%02X differs from the request's VER 0x%02X"
                 % (answer["ver"], request_ver))
    if request_adr is not None and answer["adr"] != request_adr:
        v.append("answer ADR 0x%02X differs from the request's ADR 0x%02X"
                 % (answer["adr"], request_adr))
    rtn = answer["cid2_or_rtn"]
    if rtn != 0x00:
        v.append("RTN 0x%02X (%s), not 00H normal"
                 % (rtn, RTN_NAMES.get(rtn, "not a return code of 2.5.2")))
        if cid2_request == 0x4F and rtn == 0x01:
            v.append("VER error for 0x4F: 3.1 says the battery ignores VER")
        res["violations"] = v
        res["request_notes"] = req_notes
        return res
    ctx = {"ver": answer["ver"], "adr": answer["adr"],
           "request_info": request_info, "cid2": cid2_request}
    r = _Reader(answer["info"], "0x%02X answer" % cid2_request)
    _DECODERS[cid2_request](r, res, v, ctx)
    r.end()
    res["violations"] = v
    res["request_notes"] = req_notes
    return res


# ---------------------------------------------------------------------------
# Serial master
# ---------------------------------------------------------------------------

def _describe(ver, adr, cid2, info, frame):
    return "0x%02X %s VER=0x%02X ADR=0x%02X INFO=%s frame=%s" % (
        cid2, CID2_NAMES.get(cid2, "?"), ver, adr,
        bytes(info).hex().upper() or "-",
        frame.decode("ascii").rstrip("\r"))


class Master(object):
    """An RS485 master (the inverter side) talking to one port."""

    # commands the shared facts list for a pack, read after 0x4F
    AXPERT_READS = (0x51, 0x42, 0x44, 0x47, 0x92, 0x93, 0x96)

    def __init__(self, port, baud, timeout_s=1.0, tries=5):
        import serial  # python3-serial
        self.timeout_s = float(timeout_s)
        self.tries = int(tries)
        self.ser = serial.Serial(port, int(baud), bytesize=8, parity="N",
                                 stopbits=1, timeout=0.02)

    def close(self):
        self.ser.close()

    def exchange(self, ver, adr, cid2, info=b""):
        """Send one request; return the parsed answer or None on timeout."""
        req = build_request(ver, adr, cid2, info)
        self.ser.reset_input_buffer()
        self.ser.write(req)
        self.ser.flush()
        deadline = time.monotonic() + self.timeout_s
        buf = bytearray()
        while time.monotonic() < deadline:
            chunk = self.ser.read(self.ser.in_waiting or 1)
            if not chunk:
                continue
            buf += chunk
            while b"\r" in buf:
                i = buf.index(b"\r")
                line, buf = bytes(buf[:i + 1]), buf[i + 1:]
                if line == req:       # local echo of a half-duplex adapter
                    continue
                junk = b""
                j = line.find(b"~")
                if j > 0:
                    junk, line = line[:j], line[j:]
                parsed = parse_frame(line)
                parsed["raw"] = line
                if junk:
                    parsed["leading_bytes"] = junk
                return parsed
        if buf:
            raise ProtocolError("incomplete answer before timeout (no EOI): "
                                "%r" % bytes(buf))
        return None

    def _one(self, out, ver, adr, cid2, info):
        frame = build_request(ver, adr, cid2, info)
        desc = _describe(ver, adr, cid2, info, frame)
        try:
            ans = self.exchange(ver, adr, cid2, info)
        except ProtocolError as e:
            out.append((desc, None, e))
            return None
        if ans is None:
            out.append((desc, None, NoAnswer("no answer within %.2f s"
                                             % self.timeout_s)))
            return None
        try:
            dec = decode_answer(cid2, info, ans, request_ver=ver,
                                request_adr=adr)
        except ProtocolError as e:
            dec = e
        out.append((desc, ans, dec))
        return ans

    def sequence(self, name, adr=2):
        """Run a named master's poll sequence: axpert, pip or vevor.

        Returns a list of (request description, parsed answer or None,
        decoded dict or exception).  In the axpert 0x4F retry loop an
        unanswered try is recorded with ``None`` as its third element.
        """
        out = []
        pc = bytes([adr])   # 2.5.3: INFO of COMMAND = ADR
        if name == "axpert":
            ver = None
            for i in range(self.tries):
                frame = build_request(0x00, adr, 0x4F)
                desc = "try %d: %s" % (i + 1, _describe(0x00, adr, 0x4F, b"",
                                                         frame))
                try:
                    ans = self.exchange(0x00, adr, 0x4F)
                except ProtocolError as e:
                    out.append((desc, None, e))
                    continue
                if ans is None:
                    out.append((desc, None, None))
                    continue
                try:
                    dec = decode_answer(0x4F, b"", ans, request_ver=0x00,
                                        request_adr=adr)
                except ProtocolError as e:
                    dec = e
                out.append((desc, ans, dec))
                if ans["cid2_or_rtn"] == 0x00 and isinstance(dec, dict):
                    ver = ans["ver"]
                    break
            if ver is None:
                out.append(("axpert: 0x4F never answered with RTN 00H in "
                            "%d tries" % self.tries, None,
                            NoAnswer("0x4F not answered normally")))
                return out
            for cid2 in self.AXPERT_READS:
                info = pc if _REQUEST_INFO_BYTES[cid2] == 1 else b""
                self._one(out, ver, adr, cid2, info)
        elif name == "pip":
            ans = self._one(out, 0x20, adr, 0x4F, b"")
            ver = ans["ver"] if ans is not None else 0x20
            self._one(out, ver, adr, 0x42, pc)
            self._one(out, ver, adr, 0x92, pc)
        elif name == "vevor":
            self._one(out, 0x20, adr, 0x61, b"")
            self._one(out, 0x20, adr, 0x63, b"")
        else:
            raise ValueError("unknown sequence %r (axpert, pip, vevor)"
                             % (name,))
        return out


# ---------------------------------------------------------------------------
# JSON output, CLI
# ---------------------------------------------------------------------------

def _jsonable(o):
    if isinstance(o, (bytes, bytearray)):
        return bytes(o).hex().upper()
    if isinstance(o, dict):
        return {k: _jsonable(x) for k, x in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(x) for x in o]
    if isinstance(o, BaseException):
        return {"error": type(o).__name__, "message": str(o)}
    return o


def _entry_json(desc, ans, dec):
    d = {"request": desc}
    if ans is not None:
        a = dict(ans)
        if "raw" in a:
            a["raw"] = a["raw"].decode("latin-1").rstrip("\r")
        d["answer"] = _jsonable(a)
    else:
        d["answer"] = None
    if isinstance(dec, BaseException):
        d["error"] = _jsonable(dec)
    else:
        d["decoded"] = _jsonable(dec)
    return d


def _frame_arg(s):
    s = s.strip()
    if s.endswith("\\r"):
        s = s[:-2]
    b = s.encode("latin-1")
    if not b.endswith(b"\r"):
        b += b"\r"
    return b


def _cli_decode(req_s, ans_s):
    try:
        req = parse_frame(_frame_arg(req_s))
    except ProtocolError as e:
        print(json.dumps({"request": req_s, "error": _jsonable(e)}))
        return 1
    desc = _describe(req["ver"], req["adr"], req["cid2_or_rtn"], req["info"],
                     _frame_arg(req_s))
    try:
        ans = parse_frame(_frame_arg(ans_s))
    except ProtocolError as e:
        print(json.dumps({"request": desc, "answer": ans_s,
                          "error": _jsonable(e)}))
        return 1
    ans["raw"] = _frame_arg(ans_s)
    try:
        dec = decode_answer(req["cid2_or_rtn"], req["info"], ans,
                            request_ver=req["ver"], request_adr=req["adr"])
    except ProtocolError as e:
        dec = e
    print(json.dumps(_entry_json(desc, ans, dec)))
    return 1 if isinstance(dec, BaseException) else 0


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Pylontech RS485 (V3.3) master / checker")
    p.add_argument("--port")
    p.add_argument("--baud", type=int, default=9600)
    p.add_argument("--sequence", choices=("axpert", "pip", "vevor"))
    p.add_argument("--adr", type=lambda x: int(x, 0), default=2)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--tries", type=int, default=5,
                   help="0x4F tries of the axpert sequence")
    p.add_argument("--decode", nargs=2,
                   metavar=("FRAME_REQUEST", "FRAME_ANSWER"))
    p.add_argument("--self-test", action="store_true")
    a = p.parse_args(argv)
    if a.self_test:
        return self_test()
    if a.decode:
        return _cli_decode(*a.decode)
    if not (a.port and a.sequence):
        p.error("need --port and --sequence, or --decode, or --self-test")
    m = Master(a.port, a.baud, a.timeout, a.tries)
    try:
        entries = m.sequence(a.sequence, a.adr)
    finally:
        m.close()
    rc = 0
    for desc, ans, dec in entries:
        print(json.dumps(_entry_json(desc, ans, dec)))
        sys.stdout.flush()
        if isinstance(dec, BaseException):
            rc = 1
    return rc


# ---------------------------------------------------------------------------
# Self-test data
# ---------------------------------------------------------------------------

# Source: public repository Tomcat42/pylontech-python,
# examples/lowLevelRS485/output.txt -- a real US2000B Plus pack.
# (request frame, answer frame)
US2000BPLUS_PAIRS = [
    ("~2002464FC0048520FCB2", "~200246000000FDB2"),
    ("~20024651C0040000FCD5",
     "~20024600C0405553324B42504C000000020350796C6F6E2D2D2D2D2D2D2D2D2D2D2D"
     "2D2D2D2DEF98"),
    ("~20024642C0040202FCD1",
     "~20024600C06E00020F0D1F0D200D200D200D200D200D210D200D200D210D220D200D"
     "220D220D21050BCD0BAF0BAF0BAF0BAF0015C4E88AAC02C350004FE594"),
    ("~20024642C0040201FCD2",
     "~20024600C06E00020F0D1F0D200D200D200D200D200D210D200D200D210D220D200D"
     "220D220D21050BCD0BAF0BAF0BAF0BAF0015C4E88AAC02C350004FE594"),
    ("~20024647C0040000FCD0",
     "~20024600B032110E420BEA0B540D0D0A3D03FCD2F0B3B0ADD40D0D0A3DFC18F23D"),
    ("~20024644C0040201FCD0",
     "~20024600C04000020F000000000000000000000000000000050000000000000000000E"
     "800000F161"),
    ("~20024644C0040202FCCF",
     "~20024600C04000020F000000000000000000000000000000050000000000000000000E"
     "800000F161"),
    ("~20024692C0040201FCCD", "~20024600B01402D002B79800FAFF06C0F92D"),
    ("~20024692C0040202FCCC", "~20024600B01402D002B79800FAFF06C0F92D"),
    ("~20024696C0040201FCC9", "~20024600400C020203000605FB49"),
    ("~20024696C0040202FCC8", "~20024600400C020203000605FB49"),
]

# Source: the V3.3 document, chapter 4 "Example of a 74Ah battery" (bytes
# as printed; its CHKSUM E1A2 does not match its content, see self-test).
DOC33_EXAMPLE_REQUEST = "~20024642E00202FD33"
DOC33_EXAMPLE_ANSWER = (
    "~20024600F07A11020F0D450D440D450D440D450D440D3E0D450D4A0D4A0D4B0D4A0D4A"
    "0D4A0D4A050BC30BC30BC30BCD0BCD0000C725FFFF04FFFF000200CA58012110E1A2")

# Source: transcription of Pylontech RS485 V3.5 (Fahmula/esphome-pylontech-
# rs485, documents/RS485 protocol/3.5/transcription.md), examples of 2.2-2.4.
DOC35_EXAMPLES = {
    0x61: ("~201246610000FDAA",
           "~2012460080622E5361A86209D40B7462610DB800340CBB00140BAA0BB700350B"
           "9D00150BAA0BB800360B9C00160BAA0BB600370B9E0017E862"),
    0x62: ("~201246620000FDA9", "~20124600800800000000FC21"),
    # LENGTH 8008 announces 8 characters, INFO has 18 (printed that way)
    0x63: ("~201246630000FDA8", "~201246008008DCD35DC009C407E4B0F985"),
}


def _fb(s):
    return s.encode("ascii") + b"\r"


def self_test():
    results = []

    def check(name, fn):
        try:
            fn()
            results.append((True, name, None))
        except Exception as e:  # report, don't stop
            results.append((False, name, "%s: %s" % (type(e).__name__, e)))

    def eq(got, want, what=""):
        if got != want:
            raise AssertionError("%s: got %r, want %r" % (what, got, want))

    def raises(fn, what):
        try:
            fn()
        except ProtocolError:
            return
        raise AssertionError("no ProtocolError for %s" % what)

    # --- the document's arithmetic examples (2.3.2, 2.3.3) -------------
    check("2.3.2 LENGTH example: LENID 18 -> D012",
          lambda: eq("%X%03X" % (lchksum(18), 18), "D012"))
    check("2.3.2 LCHKSUM of LENID 0 is 0 (LENGTH 0000)",
          lambda: eq(lchksum(0), 0))

    def t_233():
        # The document prints sum 038EH and CHKSUM FC72H; the ASCII codes of
        # "1203400456ABCEFE" add up to 038FH, so CHKSUM is FC71H.
        s = b"1203400456ABCEFE"
        eq(sum(s), 0x038F, "sum")
        eq(chksum(s), 0xFC71, "chksum")
    check("2.3.3 CHKSUM example (document prints FC72; arithmetic gives "
          "FC71)", t_233)

    # --- build_request ---------------------------------------------------
    check("build_request reproduces chapter 4 send command",
          lambda: eq(build_request(0x20, 0x02, 0x42, b"\x02"),
                     _fb(DOC33_EXAMPLE_REQUEST)))
    check("build_request reproduces Axpert VM IV poll ~0002464F0000FD9A",
          lambda: eq(build_request(0x00, 0x02, 0x4F),
                     _fb("~0002464F0000FD9A")))
    for c2, (rq, _a) in sorted(DOC35_EXAMPLES.items()):
        check("build_request reproduces V3.5 transcription 0x%02X command"
              % c2, lambda rq=rq, c2=c2: eq(build_request(0x20, 0x12, c2),
                                           _fb(rq)))

    # --- chapter 4 example answer ---------------------------------------
    check("chapter 4 example answer: printed CHKSUM E1A2 rejected "
          "(content sums to E27A)",
          lambda: raises(lambda: parse_frame(_fb(DOC33_EXAMPLE_ANSWER)),
                         "bad CHKSUM"))

    def t_doc4():
        ans = _parse(_fb(DOC33_EXAMPLE_ANSWER), check_chksum=False)
        d = decode_answer(0x42, b"\x02", ans, 0x20, 0x02)
        eq(d["info_flag"], 0x11, "INFOFLAG")
        eq(d["command_value"], 2, "command")
        eq(d["cell_count"], 15, "cells")
        eq(d["cell_voltages_v"][0], 3.397, "cell 1")
        eq(d["cell_voltages_v"][1], 3.396, "cell 2")
        eq(d["cell_voltages_v"][14], 3.402, "cell 15")
        eq(d["temperature_count"], 5, "N")
        eq(d["temperatures_c"], [28.0, 28.0, 28.0, 29.0, 29.0], "temps")
        eq(d["current_a"], 0.0, "current")
        eq(d["pack_voltage_v"], 50.981, "voltage")
        eq(d["user_defined_items"], 4, "UD")
        eq(d["cycle_count"], 2, "cycles")
        eq(d["remaining_capacity_ah"], 51.8, "remain 2")
        eq(d["total_capacity_ah"], 74.0, "total 2")
        eq(d["violations"], [], "violations")
    check("chapter 4 example answer decodes to the document's table", t_doc4)

    # --- US2000B Plus capture ------------------------------------------
    def pair(i):
        rq, an = US2000BPLUS_PAIRS[i]
        req = parse_frame(_fb(rq))
        eq(build_request(req["ver"], req["adr"], req["cid2_or_rtn"],
                         req["info"]), _fb(rq), "request rebuild")
        ans = parse_frame(_fb(an))
        return req, ans, decode_answer(req["cid2_or_rtn"], req["info"], ans,
                                       req["ver"], req["adr"])

    def t_4f():
        req, ans, d = pair(0)
        eq(ans["ver"], 0x20, "VER")
        eq(ans["info"], b"", "INFO")
        eq(d["protocol_version"], "2.0")
        eq(d["violations"], [])
        eq(len(d["request_notes"]), 1, "request INFO 8520 noted")
    check("US2000B+ 0x4F: VER 0x20, empty INFO", t_4f)

    def t_51():
        _r, _a, d = pair(1)
        eq(d["battery_name"], "US2KBPL")
        eq(d["software_version"], [2, 3])
        eq(d["manufacturer_name"], "Pylon---------------")
        eq(d["violations"], [])
    check("US2000B+ 0x51: US2KBPL, sw 2.3, Pylon", t_51)

    def t_42(i):
        def f():
            _r, _a, d = pair(i)
            eq(d["command_value"], 2)
            eq(d["cell_count"], 15)
            eq(d["cell_voltages_v"],
               [3.359, 3.36, 3.36, 3.36, 3.36, 3.36, 3.361, 3.36, 3.36,
                3.361, 3.362, 3.36, 3.362, 3.362, 3.361], "cells")
            eq(d["temperatures_c"], [29.0, 26.0, 26.0, 26.0, 26.0], "temps")
            eq(d["bms_board_temperature_c"], 29.0)
            eq(d["current_a"], 2.1, "current (0x0015, 100 mA units)")
            eq(d["pack_voltage_v"], 50.408, "voltage")
            eq(d["remaining_capacity_ah"], 35.5, "remain")
            eq(d["user_defined_items"], 2)
            eq(d["total_capacity_ah"], 50.0, "total")
            eq(d["cycle_count"], 79, "cycles")
            eq(d["violations"], [])
        return f
    check("US2000B+ 0x42 (INFO 0202): 15 cells, 50.408 V, +2.1 A, 35.5/50 Ah",
          t_42(2))
    check("US2000B+ 0x42 (INFO 0201): same answer, command byte 02", t_42(3))

    def t_47():
        _r, _a, d = pair(4)
        eq(d["info_flag"], 0x11)
        eq(d["cell_high_voltage_limit_v"], 3.65)
        eq(d["cell_low_voltage_limit_v"], 3.05)
        eq(d["cell_under_voltage_limit_v"], 2.9)
        eq(d["charge_high_temperature_limit_c"], 61.0)
        eq(d["charge_low_temperature_limit_c"], -11.0)
        eq(d["charge_current_limit_a"], 102.0)
        eq(d["module_high_voltage_limit_v"], 54.0)
        eq(d["module_low_voltage_limit_v"], 46.0)
        eq(d["module_under_voltage_limit_v"], 44.5)
        eq(d["discharge_high_temperature_limit_c"], 61.0)
        eq(d["discharge_low_temperature_limit_c"], -11.0)
        eq(d["discharge_current_limit_a"], -100.0, "DCL sign kept")
        eq(d["violations"], [])
    check("US2000B+ 0x47: CCL +102.0 A, DCL -100.0 A, 54.0/46.0/44.5 V",
          t_47)

    def t_44(i):
        def f():
            _r, _a, d = pair(i)
            eq(d["cell_count"], 15)
            eq(d["cell_voltage_states"], ["normal"] * 15)
            eq(d["temperature_states"], ["normal"] * 5)
            eq(d["status_bytes"], [0x00, 0x0E, 0x80, 0x00, 0x00])
            eq(d["status2"]["charge_mosfet_on"], True)
            eq(d["status2"]["discharge_mosfet_on"], True)
            eq(d["status2"]["using_battery_module_power"], True)
            eq(d["status3"]["effective_charge_current"], True)
            eq(d["cell_voltage_error_cells"], [])
            eq(d["violations"], [])
        return f
    check("US2000B+ 0x44 (INFO 0201): all normal, MOSFETs on, charging",
          t_44(5))
    check("US2000B+ 0x44 (INFO 0202)", t_44(6))

    def t_92(i):
        def f():
            _r, _a, d = pair(i)
            eq(d["charge_voltage_limit_v"], 53.25)
            eq(d["discharge_voltage_limit_v"], 47.0)
            eq(d["charge_current_limit_a"], 25.0)
            eq(d["discharge_current_limit_a"], -25.0, "DCL sign kept")
            eq(d["charge_enable"], True)
            eq(d["discharge_enable"], True)
            eq(d["charge_immediately_1"], False)
            eq(d["charge_immediately_2"], False)
            eq(d["full_charge_request"], False)
            eq(d["violations"], [])
        return f
    check("US2000B+ 0x92 (INFO 0201): 53.25/47.0 V, +25.0/-25.0 A, C0",
          t_92(7))
    check("US2000B+ 0x92 (INFO 0202)", t_92(8))

    def t_96(i):
        def f():
            _r, _a, d = pair(i)
            eq(d["manufacture_version"], [2, 3])
            eq(d["main_line_version"], [0, 6, 5])
            eq(d["violations"], [])
        return f
    check("US2000B+ 0x96 (INFO 0201): 2.3 / 0.6.5", t_96(9))
    check("US2000B+ 0x96 (INFO 0202)", t_96(10))

    # --- V3.5 transcription examples --------------------------------------
    def t_61():
        rq, an = DOC35_EXAMPLES[0x61]
        d = decode_answer(0x61, b"", parse_frame(_fb(an)), 0x20, 0x12)
        eq(d["system_voltage_v"], 11.859)
        eq(d["system_current_raw"], 25000)
        eq(d["soc_percent"], 98)
        eq(d["average_cycle_count"], 2516)
        eq(d["max_cycle_count"], 2932)
        eq(d["average_soh_percent"], 98)
        eq(d["min_soh_percent"], 97)
        eq(d["max_cell_voltage_v"], 3.512)
        eq(d["max_cell_voltage_module_raw"], 0x0034)
        eq(d["min_cell_voltage_v"], 3.259)
        eq(d["average_cell_temperature_c"], 25.5)
        eq(d["max_cell_temperature_c"], 26.8)
        eq(d["min_cell_temperature_c"], 24.2)
        eq(d["max_mosfet_temperature_c"], 26.9)
        eq(d["min_bms_temperature_c"], 24.3)
        eq(d["violations"], [])
    check("V3.5 transcription 0x61 example decodes (49 bytes)", t_61)

    def t_62():
        rq, an = DOC35_EXAMPLES[0x62]
        d = decode_answer(0x62, b"", parse_frame(_fb(an)), 0x20, 0x12)
        eq(d["status_bytes"], [0, 0, 0, 0])
        eq(d["violations"], [])
    check("V3.5 transcription 0x62 example: no alarms", t_62)

    def t_63():
        rq, an = DOC35_EXAMPLES[0x63]
        raises(lambda: parse_frame(_fb(an)), "LENID 8 vs 18 characters")
        ans = _parse(_fb(an), check_lenid=False)
        d = decode_answer(0x63, b"", ans, 0x20, 0x12)
        eq(d["charge_voltage_limit_v"], 56.531)
        eq(d["discharge_voltage_limit_v"], 24.0)
        eq(d["charge_current_limit_raw"], 2500)
        eq(d["discharge_current_limit_raw"], 2020)
        eq(d["charge_enable"], True)
        eq(d["discharge_enable"], False)
        eq(d["charge_immediately"], True)
        eq(d["full_charge_request"], True)
        eq(d["violations"], [])
    check("V3.5 transcription 0x63 example: LENGTH misprint rejected; INFO "
          "decodes B0 flags", t_63)

    # --- parse_frame rejections -------------------------------------------
    good = US2000BPLUS_PAIRS[7][1]            # 0x92 answer

    def body_fix(body):
        # recompute CHKSUM of a tampered body so only the target error shows
        return "~" + body + "%04X" % chksum(body.encode()) + "\r"
    bad = [
        ("missing SOI", "SOI", good[1:] + "\r"),
        ("missing EOI", "EOI", good),
        ("lower-case hex", "lower-case",
         body_fix(good[1:-4].replace("D002", "d002"))),
        ("non-hex character", "non-hex",
         body_fix(good[1:-4].replace("D002", "D0G2"))),
        ("LENID vs INFO length", "does not match",
         body_fix(good[1:9] + "A012" + good[13:-4])),
        ("wrong LCHKSUM", "LCHKSUM",
         body_fix(good[1:9] + "C014" + good[13:-4])),
        ("wrong CHKSUM", "wrong CHKSUM", good[:-4] + "F92E\r"),
        ("odd INFO length", "odd",
         body_fix(good[1:9] + "C013" + good[13:-5])),
        ("CID1 not 46H", "CID1", body_fix(good[1:5] + "47" + good[7:-4])),
        ("too short", "too short", "~2002\r"),
    ]

    def rejects(fr, key):
        try:
            parse_frame(fr.encode("latin-1"))
        except ProtocolError as e:
            if key not in str(e):
                raise AssertionError("rejected for another reason: %s" % e)
            return
        raise AssertionError("accepted")
    for what, key, fr in bad:
        check("parse_frame rejects: %s" % what,
              lambda fr=fr, key=key: rejects(fr, key))

    # --- decode_answer hard and soft violations ---------------------------
    def mk(ver, adr, rtn, info):
        return parse_frame(
            build_request(ver, adr, rtn, info))  # same framing both ways
    check("0x92 INFO one byte short -> ProtocolError",
          lambda: raises(lambda: decode_answer(
              0x92, b"\x02", mk(0x20, 2, 0, bytes.fromhex(
                  "02D002B79800FAFF06")), 0x20, 2), "short 0x92"))
    check("0x42 user defined items 3 -> ProtocolError",
          lambda: raises(lambda: decode_answer(
              0x42, b"\x02", mk(0x20, 2, 0, bytes.fromhex(
                  "0002010D20010BAF0000C4E88AAC03C350004F")), 0x20, 2),
              "UD 3"))
    check("0x51 INFO 31 bytes -> ProtocolError",
          lambda: raises(lambda: decode_answer(
              0x51, b"", mk(0x20, 2, 0, b"\x00" * 31), 0x20, 2), "short 51"))

    def t_soft():
        d = decode_answer(0x92, b"\x02", mk(0x00, 2, 0, bytes.fromhex(
            "02D002B79800FA00FAC7")), 0x00, 2)
        vs = " | ".join(d["violations"])
        for frag in ("VER 0x00", "reserved bits", "positive"):
            if frag not in vs:
                raise AssertionError("missing violation %r in %r"
                                     % (frag, vs))
        eq(d["discharge_current_limit_a"], 25.0, "sign kept as on the wire")
        d = decode_answer(0x42, b"\x02", mk(0x20, 2, 0x04, b""), 0x20, 2)
        if not any("RTN 0x04" in x for x in d["violations"]):
            raise AssertionError("RTN not flagged")
        d = decode_answer(0x42, b"\x02", mk(0x20, 2, 0, bytes.fromhex(
            "00030F0D1F0D200D200D200D200D200D210D200D200D210D220D200D220D220D"
            "21050BCD0BAF0BAF0BAF0BAF0015C4E88AAC02C350004F")), 0x20, 2)
        if not any("does not match ADR" in x for x in d["violations"]):
            raise AssertionError("command/ADR mismatch not flagged")
    check("soft violations: VER 00, reserved bits, positive DCL, RTN, "
          "command vs ADR", t_soft)

    print("1..%d" % len(results))
    fails = 0
    for n, (ok, name, err) in enumerate(results, 1):
        if ok:
            print("ok %d - %s" % (n, name))
        else:
            fails += 1
            print("not ok %d - %s" % (n, name))
            print("# %s" % err)
    print("# %d passed, %d failed" % (len(results) - fails, fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
