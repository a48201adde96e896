# SPDX-License-Identifier: MIT
"""Independent reader/checker for battery->inverter CAN frames (low voltage).

Written from the manufacturers' protocol documents only.  Every frame below
follows exactly one document; the page/table is named next to the decoder.

Documents
---------
pylontech  "PYLON CANBUS Protocol" (CAN-Bus protocol PYLON low voltage) V1.2,
           2018-04-08.  p.2: bus spec, little endian, inverter reply 0x305;
           p.3 0x359 + Tables 1-4, 0x351; p.4 0x355, 0x356, 0x35C + Table 5;
           p.5 notes on Table 5, 0x35E.
deye       "DEYE CANBUS Protocol" V1.2 (same page/table layout as Pylon V1.2;
           0x35E manufacturer name "DEYE").
solark     "Sol-Ark CAN Bus Protocol for LV Battery-Inverter Communications"
           V1.3 (2023-01-20).  p.2 interface configuration, 0x359,
           Tables 1-2; p.3 Tables 3-4, 0x351, 0x355, 0x356; p.4 0x35C +
           Table 5, 0x35E; p.5 0x379.
luxpower   Lux Power "Battery CANBUS Protocol" V04 (2023-09-05) ("V04.2").
           p.3 bus config, inverter response 0x305, remote command 0x300,
           0x359 + Table 1 (Protection and Alarm); p.4 0x351, 0x355, 0x356,
           0x35C; p.5 Table 2 (Request flag), 0x35E.
growatt    "Growatt BMS CAN-Bus-protocol-low-voltage" Rev 04 (V1.04,
           Q/SZQY-20002-2018), Chinese original; the machine translation was
           only used as a reading aid.  Section 1 (p.3): big endian, data
           types, inverter frame 0x301; Section 2: 0x311 + Table1 status bits
           (p.4); 0x312 + Tables 1-4 (p.5); 0x313, 0x314, 0x319 (p.6);
           Table 5, 0x320 + Date & Time bits table (p.7); 0x321 + Table6,
           0x315-0x318 cell voltages (p.8-9).
victron    The "CAN-bus BMS" frame family.  Layout and types follow
           "MG Master LV Communication guide" version 8 (2020-09-07),
           section 1.4 "General BMS protocol" (= SMA protocol + extra frames):
           0x351, 0x355, 0x356 (p.4/7), 0x35A (p.5/8), 0x35B, 0x35E, 0x35F
           (p.5/9), 0x373, 0x378, 0x380 (p.10), 0x381 (p.11).  Origin and
           semantics from SMA "FSS-ConnectingBat-TI-en-10" (Sunny Island
           6.0H external BMS): section 5.1 (little endian, invalid markers),
           5.3 (p.20 frame overview, orange = mandatory 0x351 / 0x355 SOC+SOH /
           0x35A; remote quick stop 0x00F; read-only 0x305/0x306 sent by the
           Sunny Island), section 5.3 tables p.21-29 (scaling, 0x35A bits),
           section 7.1 (2-bit arrive/leave coding).  sma-mapping (GoodWe/SMA
           V1.2 "Table 6-11") only used as a cross-reference.

API
---
PROTOCOLS                       names known
decode(protocol, frames)        -> dict of named fields (unit in key name)
check(protocol, frames, full_set=True) -> list of violation strings
inverter_frames(protocol)       -> [(can_id, data, description)]
CLI: ``python3 can_inverter_reader.py PROTOCOL < candump-L.log``
     ``python3 can_inverter_reader.py --self-test``

Conventions of this reader
--------------------------
* Frames are (can_id, data) with the id stripped of flags.
* Bytes/bits a document leaves blank (or marks "-", "rsvd", "N/A",
  "Reserved") are treated as reserved: check() reports them when non-zero.
* A document's worked value (e.g. Pylon 0x359 byte5 "P" = 0x50) is checked.
* Ids a document does not define go to decoded["unknown_ids"] (ints, sorted);
  check() does not report them.
* Ids the inverter sends (0x305, 0x300, 0x301, SMA 0x305/0x306/0x00F) are
  decoded under "inverter_*" keys; they are never mandatory.

Differences between documents (each implemented per its own document)
--------------------------------------------------------------------
* 0x356 pack voltage: Pylon/Deye 0.01 V signed 16 bit; Sol-Ark 0.1 V
  (signedness not stated, read unsigned); Luxpower 0.01 V for low-voltage
  (0.1 V for high-voltage batteries - this reader assumes low voltage, see
  LUXPOWER_PACK_VOLTAGE_SCALE); MG/Victron un16 0.01 V; SMA S16 0.01 V.
* 0x356 bytes 4-5: Pylon/Deye "average cell temperature"; Sol-Ark "battery
  temperature"; Luxpower "max cell temperature" (+ min cell temperature in
  bytes 6-7); SMA/MG "battery temperature".  Growatt 0x313 bytes 4-5 is
  "cell maximum temperature".
* 0x351 bytes 6-7: blank (undefined) in Pylon/Deye V1.2; "Discharge Voltage
  Limit" 0.1 V in Sol-Ark, "Discharge cut voltage" 0.1 V in Luxpower,
  "Battery discharge voltage" 0.1 V in SMA/MG.
* 0x35C force-charge numbering: Pylon/Deye bit5 = "Request force charge I",
  bit4 = "Request force charge II"; Growatt 0x319 the same; Sol-Ark bit4 =
  "Forced Charge Request 1", bit5 = "Forced Charge Request 2"; Luxpower
  bit4 = "Forced charge request1", bit5 = "request2".  Keys force_charge_1 /
  force_charge_2 follow each document's own numbering; the *_bit4/_bit5 keys
  are document independent.
* 0x359 Table 4 bit 3: Pylon/Deye/Luxpower "Internal communication fail",
  Sol-Ark "Critical System Error".  Luxpower 0x359 bytes 5-6 carry the
  capacity (Ah) where Pylon/Deye/Sol-Ark have "P","N".
* 0x355 bytes 4-7: reserved in Sol-Ark ("00"), blank in Pylon/Deye, max/min
  cell voltage (1 mV) in Luxpower, HiResSOC (0.01 %) in SMA/MG.
* 0x35E: Pylon table spans bytes 0-1 but the value is 5 letters "PYLON";
  Deye gives "DEYE"; Sol-Ark/Luxpower: 8 ASCII chars of free text; MG
  "MG-BMS".
* DLC: only Sol-Ark fixes it ("only recognize ... frames containing 8 bytes
  of data").  Others only get a minimum length (bytes of defined fields).
* Sol-Ark is titled "48Vdc (sub 63V)": voltages >= 63 V are reported.
* 0x35F: MG = master type id (LE), software version (MSB first!), capacity
  Ah, hardware config; SMA = Bat-Type, BMS version, Bat-Capacity, reserved /
  Manufacturer ID; GoodWe/SMA mapping = chemistry, HW version, capacity,
  SW version.  Victron decoding follows MG.
* 0x356 voltage type: MG un16, SMA S16.  0x35A values: MG "1=raised,
  2=cleared" per 2-bit field = SMA bit0 "arrives", bit1 "leaves"; SMA 7.1
  says both bits set is "ignored" and only one should be set -> reported.
* Growatt is big endian (section 1 "数据模式: 大端方式"), all others little
  endian.  Growatt 0x311 types read "Uint16, 2`s complement" (contradictory):
  decoded unsigned.
* Growatt inverter frame 0x301 "11-22-33-44-55-66-77-88" is announced as
  "(标准帧/10 进制)" = "standard frame / decimal"; read here as the bytes
  0x11..0x88 (hex pattern); the decimal reading 11,22,...,88 is given in
  GROWATT_0x301_DECIMAL_READING.
"""

import json
import re
import sys

PROTOCOLS = ("pylontech", "deye", "solark", "luxpower", "growatt", "victron")

# Luxpower 0x356: 0.01 V for low-voltage batteries, 0.1 V for high-voltage.
LUXPOWER_PACK_VOLTAGE_SCALE = 0.01

GROWATT_0x301_DATA = bytes([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88])
GROWATT_0x301_DECIMAL_READING = bytes([11, 22, 33, 44, 55, 66, 77, 88])

# Sol-Ark title: "Protocol for 48Vdc (sub 63V) (low voltage)".
SOLARK_MAX_V = 63.0


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _u16le(d, i):
    return d[i] | (d[i + 1] << 8)


def _s16le(d, i):
    v = _u16le(d, i)
    return v - 0x10000 if v & 0x8000 else v


def _u16be(d, i):
    return (d[i] << 8) | d[i + 1]


def _s16be(d, i):
    v = _u16be(d, i)
    return v - 0x10000 if v & 0x8000 else v


def _u32le(d, i):
    return d[i] | (d[i + 1] << 8) | (d[i + 2] << 16) | (d[i + 3] << 24)


def _u32be(d, i):
    return (d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3]


def _r(x, nd=3):
    return round(x, nd)


def _bits(byte, table):
    """table: {bit: name}; returns set of names whose bit is set."""
    return {name for bit, name in table.items() if byte & (1 << bit)}


def _mask_of(table):
    m = 0
    for bit in table:
        m |= 1 << bit
    return m


def _ascii(d):
    s = bytes(d).rstrip(b"\x00").rstrip(b" ")
    try:
        return s.decode("ascii")
    except UnicodeDecodeError:
        return s.decode("latin-1")


def _printable(d):
    return all(0x20 <= b < 0x7F or b == 0 for b in d)


class _Ctx(object):
    """Collects decoded fields and violations for one frame set."""

    def __init__(self, protocol):
        self.protocol = protocol
        self.out = {}
        self.viol = []

    def v(self, cid, msg):
        self.viol.append("0x%03X: %s" % (cid, msg))


class _F(object):
    """One frame definition.

    min_len   bytes needed for the fields the document defines
    dlc       fixed DLC if the document fixes one
    reserved  {byte_index: mask} bits that must be zero
    mandatory part of the periodic full set
    origin    "battery" or "inverter"
    """

    def __init__(self, name, ref, fn, min_len, dlc=None, reserved=None,
                 mandatory=True, origin="battery"):
        self.name = name
        self.ref = ref
        self.fn = fn
        self.min_len = min_len
        self.dlc = dlc
        self.reserved = reserved or {}
        self.mandatory = mandatory
        self.origin = origin


# --------------------------------------------------------------------------
# Pylontech / Deye / Sol-Ark (the "Pylon family")
# --------------------------------------------------------------------------
# Pylon V1.2 p.3 Tables 1-4 (Deye identical)
PYL_T1 = {1: "Cell or module over voltage", 2: "Cell or module under voltage",
          3: "Cell over temperature", 4: "Cell under temperature",
          7: "Discharge over current"}
PYL_T2 = {0: "Charge over current", 3: "System error"}
PYL_T3 = {1: "Cell or module high voltage", 2: "Cell or module low voltage",
          3: "Cell high temperature", 4: "Cell low temperature",
          7: "Discharge high current"}
PYL_T4 = {0: "Charge high current", 3: "Internal communication fail"}
# Pylon V1.2 p.4 Table 5
PYL_T5 = {7: "Charge enable", 6: "Discharge enable",
          5: "Request force charge I", 4: "Request force charge II",
          3: "Request full charge"}

# Sol-Ark V1.3 Tables 1-5
SOL_T1 = {1: "Cell/Module Over-Voltage", 2: "Cell/Module Under-Voltage",
          3: "Cell Over-Temp", 4: "Cell Under-Temp",
          7: "Discharge Over-Current"}
SOL_T2 = {0: "Charge Over-Current", 3: "System Error"}
SOL_T3 = {1: "Cell / Module High Voltage", 2: "Cell or Module Low Voltage",
          3: "Cell High Temp", 4: "Cell Low Temp", 7: "Discharge High Current"}
SOL_T4 = {0: "Charge High Current", 3: "Critical System Error"}
SOL_T5 = {7: "Charge Enabled", 6: "Discharge Enabled",
          5: "Forced Charge Request 2", 4: "Forced Charge Request 1",
          3: "Full Charge Request"}

# Luxpower V04 Table 1 (Protection and Alarm), Table 2 (Request flag)
LUX_P1 = {1: "Over voltage", 2: "Under voltage", 3: "Over temperature",
          4: "Under temperature", 7: "Discharge over current"}
LUX_P2 = {0: "Charge over current", 3: "System error"}
LUX_A1 = {1: "High voltage", 2: "Low voltage", 3: "High temperature",
          4: "Low temperature", 7: "Discharge high current"}
LUX_A2 = {0: "Charge high current", 3: "Internal communication fail"}
LUX_T2 = {7: "Charge enable", 6: "Discharge enable",
          5: "Forced charge request2", 4: "Forced charge request1",
          3: "Full charge request"}


def _check_pct(ctx, cid, key, val):
    if val is not None and not (0 <= val <= 100):
        ctx.v(cid, "%s = %s outside 0..100 %%" % (key, val))


def _neg_limit(ctx, cid, key, val):
    if val is not None and val < 0:
        ctx.v(cid, "%s = %s is negative (a limit)" % (key, val))


def _request_flags(ctx, cid, b, table, num1_bit, num2_bit):
    o = ctx.out
    o["request_flags"] = _bits(b, table)
    o["charge_enable"] = bool(b & 0x80)
    o["discharge_enable"] = bool(b & 0x40)
    o["force_charge_1"] = bool(b & (1 << num1_bit))
    o["force_charge_2"] = bool(b & (1 << num2_bit))
    o["force_charge_bit5"] = bool(b & 0x20)
    o["force_charge_bit4"] = bool(b & 0x10)
    o["full_charge_request"] = bool(b & 0x08)


def _pylon_359(ctx, cid, d):
    o = ctx.out
    p = ctx.protocol
    t1, t2, t3, t4 = ((SOL_T1, SOL_T2, SOL_T3, SOL_T4) if p == "solark"
                      else (PYL_T1, PYL_T2, PYL_T3, PYL_T4))
    o["protection_flags"] = _bits(d[0], t1) | _bits(d[1], t2)
    o["alarm_flags"] = _bits(d[2], t3) | _bits(d[3], t4)
    o["protection_raw"] = [d[0], d[1]]
    o["alarm_raw"] = [d[2], d[3]]
    o["module_count"] = d[4]
    o["marker_pn"] = _ascii(d[5:7])
    if d[5] != 0x50 or d[6] != 0x4E:
        ctx.v(cid, "bytes 5-6 must be 'P','N' (0x50,0x4E), got 0x%02X,0x%02X"
              % (d[5], d[6]))


def _pylon_351(ctx, cid, d):
    o = ctx.out
    o["charge_voltage_limit_v"] = _r(_u16le(d, 0) * 0.1, 1)
    o["charge_current_limit_a"] = _r(_s16le(d, 2) * 0.1, 1)
    o["discharge_current_limit_a"] = _r(_s16le(d, 4) * 0.1, 1)
    _neg_limit(ctx, cid, "charge_current_limit_a", o["charge_current_limit_a"])
    _neg_limit(ctx, cid, "discharge_current_limit_a",
               o["discharge_current_limit_a"])
    if ctx.protocol in ("solark", "luxpower") and len(d) >= 8:
        o["discharge_voltage_limit_v"] = _r(_u16le(d, 6) * 0.1, 1)
    if ctx.protocol == "solark":
        for k in ("charge_voltage_limit_v", "discharge_voltage_limit_v"):
            if k in o and o[k] >= SOLARK_MAX_V:
                ctx.v(cid, "%s = %s V not below the document's 63 V "
                      "(\"48Vdc (sub 63V)\")" % (k, o[k]))
    if ("discharge_voltage_limit_v" in o and o["discharge_voltage_limit_v"]
            > o["charge_voltage_limit_v"]):
        ctx.v(cid, "discharge_voltage_limit_v %s above charge_voltage_limit_v"
              " %s" % (o["discharge_voltage_limit_v"],
                       o["charge_voltage_limit_v"]))


def _pylon_355(ctx, cid, d):
    o = ctx.out
    o["soc_pct"] = _u16le(d, 0)
    o["soh_pct"] = _u16le(d, 2)
    _check_pct(ctx, cid, "soc_pct", o["soc_pct"])
    _check_pct(ctx, cid, "soh_pct", o["soh_pct"])
    if ctx.protocol == "luxpower" and len(d) >= 8:
        o["max_cell_voltage_v"] = _r(_u16le(d, 4) * 0.001)
        o["min_cell_voltage_v"] = _r(_u16le(d, 6) * 0.001)
        if o["max_cell_voltage_v"] < o["min_cell_voltage_v"]:
            ctx.v(cid, "max cell voltage %s V below min cell voltage %s V"
                  % (o["max_cell_voltage_v"], o["min_cell_voltage_v"]))


def _pylon_356(ctx, cid, d):
    o = ctx.out
    p = ctx.protocol
    if p == "solark":
        o["pack_voltage_v"] = _r(_u16le(d, 0) * 0.1, 1)
        o["temperature_meaning"] = "battery temperature"
    elif p == "luxpower":
        o["pack_voltage_v"] = _r(_u16le(d, 0) * LUXPOWER_PACK_VOLTAGE_SCALE, 2)
        o["temperature_meaning"] = "max cell temperature"
    else:
        o["pack_voltage_v"] = _r(_s16le(d, 0) * 0.01, 2)
        o["temperature_meaning"] = "average cell temperature"
    o["current_a"] = _r(_s16le(d, 2) * 0.1, 1)
    o["temperature_c"] = _r(_s16le(d, 4) * 0.1, 1)
    if p == "luxpower":
        o["max_cell_temperature_c"] = o["temperature_c"]
        if len(d) >= 8:
            o["min_cell_temperature_c"] = _r(_s16le(d, 6) * 0.1, 1)
            if o["min_cell_temperature_c"] > o["max_cell_temperature_c"]:
                ctx.v(cid, "min cell temperature %s C above max %s C"
                      % (o["min_cell_temperature_c"],
                         o["max_cell_temperature_c"]))
    elif p in ("pylontech", "deye"):
        o["average_cell_temperature_c"] = o["temperature_c"]
    if p == "solark" and o["pack_voltage_v"] >= SOLARK_MAX_V:
        ctx.v(cid, "pack_voltage_v = %s V not below the document's 63 V "
              "(0.1 V unit per Sol-Ark 0x356)" % o["pack_voltage_v"])
    if p in ("pylontech", "deye") and o["pack_voltage_v"] < 0:
        ctx.v(cid, "negative pack voltage %s V" % o["pack_voltage_v"])


def _pylon_35c(ctx, cid, d):
    b = d[0]
    p = ctx.protocol
    if p == "solark":
        _request_flags(ctx, cid, b, SOL_T5, 4, 5)
    elif p == "luxpower":
        _request_flags(ctx, cid, b, LUX_T2, 4, 5)
        if len(d) >= 4:
            ctx.out["cycle_count"] = _u16le(d, 2)
    else:
        _request_flags(ctx, cid, b, PYL_T5, 5, 4)


def _pylon_35e(ctx, cid, d):
    ctx.out["manufacturer_name"] = _ascii(d)
    if not _printable(d):
        ctx.v(cid, "manufacturer name not ASCII: %s" % bytes(d).hex())
    want = {"pylontech": "PYLON", "deye": "DEYE"}.get(ctx.protocol)
    if want and ctx.out["manufacturer_name"] != want:
        ctx.v(cid, "manufacturer name %r, document gives %r"
              % (ctx.out["manufacturer_name"], want))


def _solark_379(ctx, cid, d):
    ctx.out["capacity_ah"] = _u16le(d, 0)


def _lux_359(ctx, cid, d):
    o = ctx.out
    o["protection_flags"] = _bits(d[0], LUX_P1) | _bits(d[1], LUX_P2)
    o["alarm_flags"] = _bits(d[2], LUX_A1) | _bits(d[3], LUX_A2)
    o["protection_raw"] = [d[0], d[1]]
    o["alarm_raw"] = [d[2], d[3]]
    o["module_count"] = d[4]
    o["capacity_ah"] = _u16le(d, 5)


def _heartbeat_305(ctx, cid, d):
    ctx.out["inverter_heartbeat"] = bytes(d).hex()
    if bytes(d) != bytes(8):
        ctx.v(cid, "inverter reply must be 00-00-00-00-00-00-00-00, got %s"
              % bytes(d).hex("-"))


def _lux_300(ctx, cid, d):
    ctx.out["inverter_remote_command_raw"] = bytes(d).hex()
    ctx.out["inverter_shutdown_battery"] = bool(d[0] & 0x01)


def _inv_dlc8(ctx, cid, d):
    pass


# reserved masks (bits a table leaves blank)
_PYL_RES_359 = {0: 0xFF & ~_mask_of(PYL_T1), 1: 0xFF & ~_mask_of(PYL_T2),
                2: 0xFF & ~_mask_of(PYL_T3), 3: 0xFF & ~_mask_of(PYL_T4),
                7: 0xFF}
_PYL_RES_35C = {0: 0x07, 1: 0xFF}

_PYLON_FRAMES = {
    0x359: _F("protection & alarm", "p.3 CAN ID 0x359, Tables 1-4",
              _pylon_359, 7, reserved=_PYL_RES_359),
    0x351: _F("charge/discharge limits", "p.3-4 CAN ID 0x351", _pylon_351, 6,
              reserved={6: 0xFF, 7: 0xFF}),
    0x355: _F("SOC/SOH", "p.4 CAN ID 0x355", _pylon_355, 4,
              reserved={4: 0xFF, 5: 0xFF, 6: 0xFF, 7: 0xFF}),
    0x356: _F("voltage/current/temperature", "p.4 CAN ID 0x356", _pylon_356,
              6, reserved={6: 0xFF, 7: 0xFF}),
    0x35C: _F("request flags", "p.4 CAN ID 0x35C, Table 5", _pylon_35c, 1,
              reserved=_PYL_RES_35C),
    0x35E: _F("manufacturer name", "p.5 CAN ID 0x35E", _pylon_35e, 1),
    0x305: _F("inverter reply", "p.2 'Inverter reply every second: 0x305'",
              _heartbeat_305, 8, dlc=8, mandatory=False, origin="inverter"),
}

_SOL_R = {k: 0xFF for k in range(8)}
_SOLARK_FRAMES = {
    0x359: _F("protection & alarm", "p.2-3 CAN ID 0x359, Tables 1-4",
              _pylon_359, 8, dlc=8,
              reserved={0: 0xFF & ~_mask_of(SOL_T1),
                        1: 0xFF & ~_mask_of(SOL_T2),
                        2: 0xFF & ~_mask_of(SOL_T3),
                        3: 0xFF & ~_mask_of(SOL_T4), 7: 0xFF}),
    0x351: _F("setpoints", "p.3 CAN ID 0x351", _pylon_351, 8, dlc=8),
    0x355: _F("SOC/SOH", "p.3 CAN ID 0x355", _pylon_355, 8, dlc=8,
              reserved={4: 0xFF, 5: 0xFF, 6: 0xFF, 7: 0xFF}),
    0x356: _F("voltage/current/temperature", "p.3-4 CAN ID 0x356",
              _pylon_356, 8, dlc=8, reserved={6: 0xFF, 7: 0xFF}),
    0x35C: _F("BMS request flag", "p.4 CAN ID 0x35C, Table 5", _pylon_35c, 8,
              dlc=8, reserved=dict(list(_SOL_R.items()) + [(0, 0x07)])),
    0x35E: _F("manufacturer name", "p.4 CAN ID 0x35E", _pylon_35e, 8, dlc=8),
    0x379: _F("capacity", "p.5 CAN ID 0x379", _solark_379, 8, dlc=8,
              reserved={k: 0xFF for k in range(2, 8)}),
    0x305: _F("inverter heartbeat", "p.2 'Inverter Heartbeat Response'",
              _heartbeat_305, 8, dlc=8, mandatory=False, origin="inverter"),
}

_LUX_FRAMES = {
    0x359: _F("protection & alarm", "p.3 CAN ID 0x359, Table 1", _lux_359, 7,
              reserved={0: 0xFF & ~_mask_of(LUX_P1),
                        1: 0xFF & ~_mask_of(LUX_P2),
                        2: 0xFF & ~_mask_of(LUX_A1),
                        3: 0xFF & ~_mask_of(LUX_A2), 7: 0xFF}),
    0x351: _F("charge/discharge limits", "p.4 CAN ID 0x351", _pylon_351, 8),
    0x355: _F("SOC/SOH/cell voltage extremes", "p.4 CAN ID 0x355",
              _pylon_355, 8),
    0x356: _F("voltage/current/cell temperature extremes", "p.4 CAN ID 0x356",
              _pylon_356, 8),
    0x35C: _F("request flag, cycle count", "p.4 CAN ID 0x35C, p.5 Table 2",
              _pylon_35c, 4,
              reserved={0: 0x07, 1: 0xFF, 4: 0xFF, 5: 0xFF, 6: 0xFF,
                        7: 0xFF}),
    0x35E: _F("battery brand", "p.5 CAN ID 0x35E", _pylon_35e, 1),
    0x305: _F("inverter response", "p.3 'Inverter response 0x305'",
              _heartbeat_305, 8, dlc=8, mandatory=False, origin="inverter"),
    0x300: _F("inverter remote command", "p.3 CAN ID 0x300", _lux_300, 8,
              dlc=8, mandatory=False, origin="inverter",
              reserved={0: 0xFE, 1: 0xFF, 2: 0xFF, 3: 0xFF, 4: 0xFF, 5: 0xFF,
                        6: 0xFF, 7: 0xFF}),
}


# --------------------------------------------------------------------------
# Growatt V1.04 (big endian)
# --------------------------------------------------------------------------
GW_STATE = {0: "soft_starting", 1: "stand by", 2: "charging",
            3: "discharging"}
GW_MODE = {0: "standalone", 1: "parallel", 2: "parallel ready"}  # 单机/并联/并联准备
GW_SP = {0: "none", 1: "stand by", 2: "charging", 3: "discharging"}
GW_T1 = {0: "Soft start fail", 1: "module under voltage",
         2: "module over voltage", 3: "Cell under voltage",
         4: "Cell over voltage", 5: "SCD(Short Circuit Discharge) protection",
         6: "Charge over current", 7: "DisCharge over current"}
GW_T2 = {2: "Delta V Fail", 3: "System error",
         4: "UTC (Under Temperature Charge) protection",
         5: "UTD (Under Temperature Discharge) protection",
         6: "OTC (Over Temperature Charge) protection",
         7: "OTD (Over Temperature Discharge) protection"}
GW_T3 = {1: "module under voltage", 2: "module over voltage",
         3: "Cell under voltage", 4: "Cell over voltage",
         6: "Charge over current", 7: "DisCharge over current"}
GW_T4 = {0: "Internal communication fail", 1: "Pack before turn off",
         2: "Delta V Fail",
         4: "UTC (Under Temperature Charge) protection",
         5: "UTD (Under Temperature Discharge) protection",
         6: "OTC (Over Temperature Charge) protection",
         7: "OTD (Over Temperature Discharge) protection"}
GW_T5 = {7: "Charge enable", 6: "Discharge enable",
         5: "Request force charge I", 4: "Request force charge II"}
GW_TYPE = {0: "lithium iron phosphate", 1: "ternary", 2: "lithium titanate",
           3: "reserved"}
GW_UPD = {0: "normal", 1: "programming", 2: "update successful",
          3: "update fail"}


def _gw_311(ctx, cid, d):
    o = ctx.out
    o["charge_voltage_limit_v"] = _r(_u16be(d, 0) * 0.1, 1)
    o["charge_current_limit_a"] = _r(_u16be(d, 2) * 0.1, 1)
    o["discharge_current_limit_a"] = _r(_u16be(d, 4) * 0.1, 1)
    s = _u16be(d, 6)
    o["status_raw"] = s
    o["state"] = GW_STATE[s & 3]
    o["error_bytes_valid"] = bool(s & (1 << 2))
    o["cell_balancing"] = bool(s & (1 << 3))
    o["sleep"] = bool(s & (1 << 4))
    o["output_discharge_enabled"] = bool(s & (1 << 5))
    o["output_charge_enabled"] = bool(s & (1 << 6))
    o["terminal_open"] = bool(s & (1 << 7))
    o["terminal"] = "terminal open" if s & 0x80 else "terminal connected"
    mode = (s >> 8) & 3
    o["master_box_operation_mode"] = GW_MODE.get(mode, "undefined (11)")
    o["parallel"] = mode == 1
    o["sp_status"] = GW_SP[(s >> 10) & 3]
    if mode == 3:
        ctx.v(cid, "status bits 8-9 (Master box Operation Mode) = 11, "
              "document defines only 00/01/10")
    if s & 0xF000:
        ctx.v(cid, "status bits 12-15 set (document defines Bit0~11 only): "
              "0x%04X" % s)


def _gw_312(ctx, cid, d):
    o = ctx.out
    o["protection_flags"] = _bits(d[0], GW_T1) | _bits(d[1], GW_T2)
    o["warning_flags"] = _bits(d[2], GW_T3) | _bits(d[3], GW_T4)
    o["protection_raw"] = [d[0], d[1]]
    o["warning_raw"] = [d[2], d[3]]
    o["pack_count"] = d[4]
    o["manufacturer_code"] = bytes(d[5:7]).hex().upper()
    o["total_cell_count"] = d[7]
    for k in ("pack_count", "total_cell_count"):
        if not 1 <= o[k] <= 254:
            ctx.v(cid, "%s = %d outside 1~254" % (k, o[k]))


def _gw_313(ctx, cid, d):
    o = ctx.out
    o["pack_voltage_v"] = _r(_s16be(d, 0) * 0.01, 2)
    o["current_a"] = _r(_s16be(d, 2) * 0.1, 1)
    o["temperature_c"] = _r(_s16be(d, 4) * 0.1, 1)
    o["temperature_meaning"] = "cell maximum temperature"
    o["max_cell_temperature_c"] = o["temperature_c"]
    o["soc_pct"] = d[6]
    o["soh_pct"] = d[7] & 0x7F
    o["soh_flag"] = bool(d[7] & 0x80)
    _check_pct(ctx, cid, "soc_pct", o["soc_pct"])
    _check_pct(ctx, cid, "soh_pct", o["soh_pct"])


def _gw_314(ctx, cid, d):
    o = ctx.out
    o["remaining_capacity_ah"] = _r(_u16be(d, 0) * 0.01, 2)
    o["full_charge_capacity_ah"] = _r(_u16be(d, 2) * 0.01, 2)
    o["delta_cell_voltage_v"] = _r(_u16be(d, 4) * 0.001)
    o["cycle_count"] = _u16be(d, 6)
    if o["remaining_capacity_ah"] > o["full_charge_capacity_ah"]:
        ctx.v(cid, "Gauge RM %s Ah above Gauge FCC %s Ah"
              % (o["remaining_capacity_ah"], o["full_charge_capacity_ah"]))


def _gw_319(ctx, cid, d):
    o = ctx.out
    b = d[0]
    o["request_flags"] = _bits(b, GW_T5)
    o["charge_enable"] = bool(b & 0x80)
    o["discharge_enable"] = bool(b & 0x40)
    o["force_charge_1"] = bool(b & 0x20)
    o["force_charge_2"] = bool(b & 0x10)
    o["force_charge_bit5"] = bool(b & 0x20)
    o["force_charge_bit4"] = bool(b & 0x10)
    o["battery_type"] = GW_TYPE[b & 3]
    if b & 3 == 3:
        ctx.v(cid, "byte0 bits 0-1 battery type = 11 (reserved)")
    if b & 0x10:
        ctx.v(cid, "byte0 bit4 (request force charge II) set; document: "
              "'Please use bit 5 ... Bit 4 is NULL'")
    o["max_cell_voltage_v"] = _r(_u16be(d, 1) * 0.001)
    o["min_cell_voltage_v"] = _r(_u16be(d, 3) * 0.001)
    o["max_cell_voltage_number"] = d[5]
    o["min_cell_voltage_number"] = d[6]
    o["protect_pack_id"] = d[7]
    if o["max_cell_voltage_v"] < o["min_cell_voltage_v"]:
        ctx.v(cid, "maximum cell voltage %s V below minimum %s V"
              % (o["max_cell_voltage_v"], o["min_cell_voltage_v"]))


def _gw_320(ctx, cid, d):
    o = ctx.out
    o["manufacturer_name"] = _ascii(d[0:2])
    o["manufacturer_name_raw"] = bytes(d[0:2]).hex().upper()
    o["hardware_version"] = d[2]
    o["software_version"] = d[3]
    for k in ("hardware_version", "software_version"):
        if not 1 <= o[k] <= 9:
            ctx.v(cid, "%s = %d outside range 1~9" % (k, o[k]))
    t = _u32be(d, 4)
    o["date_time_raw"] = t
    sec, mi, hr = t & 0x3F, (t >> 6) & 0x3F, (t >> 12) & 0x1F
    day, mon, yr = (t >> 17) & 0x1F, (t >> 22) & 0x0F, 2000 + ((t >> 26) & 0x3F)
    o["date_time"] = "%04d-%02d-%02d %02d:%02d:%02d" % (yr, mon, day, hr, mi,
                                                        sec)
    for name, val, lo, hi in (("second", sec, 0, 59), ("minute", mi, 0, 59),
                              ("hour", hr, 0, 23), ("day", day, 1, 31),
                              ("month", mon, 1, 12)):
        if not lo <= val <= hi:
            ctx.v(cid, "Date & Time %s = %d outside %d~%d" % (name, val, lo,
                                                             hi))


def _gw_321(ctx, cid, d):
    o = ctx.out
    b = d[0]
    o["update_programming"] = bool(b & 1)
    o["update_master_status"] = "Master " + GW_UPD[(b >> 1) & 3]
    o["update_slave_status"] = "Slave " + GW_UPD[(b >> 3) & 3]
    o["update_progress_pct"] = d[1]
    o["update_pack_id"] = d[2]
    o["update_successful_count"] = d[3]
    if d[1] > 100:
        ctx.v(cid, "update schedule %d outside range 0~100" % d[1])


def _gw_cells(first):
    def fn(ctx, cid, d):
        cells = ctx.out.setdefault("cell_voltages_v", {})
        for i in range(4):
            cells[first + i] = _r(_u16be(d, 2 * i) * 0.001)
    return fn


def _gw_301(ctx, cid, d):
    ctx.out["inverter_request_raw"] = bytes(d).hex()
    if bytes(d) != GROWATT_0x301_DATA:
        ctx.v(cid, "inverter frame data should be 11-22-33-44-55-66-77-88, "
              "got %s" % bytes(d).hex("-"))


_GROWATT_FRAMES = {
    0x311: _F("limits & status", "section 2 CAN ID 0x311, Table1 status bits",
              _gw_311, 8),
    0x312: _F("protection/warning", "section 2 CAN ID 0x312, Tables 1-4",
              _gw_312, 8,
              reserved={1: 0xFF & ~_mask_of(GW_T2),
                        2: 0xFF & ~_mask_of(GW_T3),
                        3: 0xFF & ~_mask_of(GW_T4)}),
    0x313: _F("voltage/current/temp/SOC/SOH", "section 2 CAN ID 0x313",
              _gw_313, 8),
    0x314: _F("capacity/delta V/cycles", "section 2 CAN ID 0x314", _gw_314, 8),
    0x319: _F("request, battery type, cell extremes",
              "section 2 CAN ID 0x319, Table 5", _gw_319, 8,
              reserved={0: 0x0C}),
    0x320: _F("manufacturer/version/date", "section 2 CAN ID 0x320, "
              "Date & Time bits table", _gw_320, 8),
    0x321: _F("remote upgrade (ATL)", "section 2 CAN ID 0x321, Table6",
              _gw_321, 4, mandatory=False, reserved={0: 0xE0}),
    0x315: _F("cell 1-4", "CAN ID 0x315 (optional)", _gw_cells(1), 8,
              mandatory=False),
    0x316: _F("cell 5-8", "CAN ID 0x316 (optional)", _gw_cells(5), 8,
              mandatory=False),
    0x317: _F("cell 9-12", "CAN ID 0x317 (optional)", _gw_cells(9), 8,
              mandatory=False),
    0x318: _F("cell 13-16", "CAN ID 0x318 (optional)", _gw_cells(13), 8,
              mandatory=False),
    0x301: _F("inverter frame", "section 1 '0x301: 11-22-33-44-55-66-77-88'",
              _gw_301, 8, dlc=8, mandatory=False, origin="inverter"),
}


def _growatt_cross(ctx):
    o = ctx.out
    if "error_bytes_valid" in o and "protection_raw" in o:
        if not o["error_bytes_valid"] and any(o["protection_raw"]):
            ctx.viol.append(
                "0x311/0x312: status bit2 'Error bit flag' = 0 (\"Error\" byte "
                "invalid) but 0x312 protection bytes are set: %s"
                % sorted(o["protection_flags"]))
    if "max_cell_voltage_number" in o and "total_cell_count" in o:
        n = o["total_cell_count"]
        for k in ("max_cell_voltage_number", "min_cell_voltage_number"):
            if not 1 <= o[k] <= n:
                ctx.viol.append("0x319: %s = %d outside 1..Total Cell Number "
                                "(%d, 0x312 byte7)" % (k, o[k], n))
    if "delta_cell_voltage_v" in o and "max_cell_voltage_v" in o:
        dv = round((o["max_cell_voltage_v"] - o["min_cell_voltage_v"]) * 1000)
        got = round(o["delta_cell_voltage_v"] * 1000)
        if abs(dv - got) > 1:
            ctx.viol.append("0x314/0x319: Delta V %d mV differs from maximum - "
                            "minimum cell voltage %d mV" % (got, dv))
    cells = o.get("cell_voltages_v")
    if cells and "max_cell_voltage_v" in o:
        for k, nk in (("max_cell_voltage_v", "max_cell_voltage_number"),
                      ("min_cell_voltage_v", "min_cell_voltage_number")):
            num = o[nk]
            if num in cells and abs(cells[num] - o[k]) > 0.0015:
                ctx.viol.append("0x319/0x315-0x318: %s %s V but cell %d reads "
                                "%s V" % (k, o[k], num, cells[num]))
        if "total_cell_count" in o and o["total_cell_count"] <= 16:
            n = o["total_cell_count"]
            present = {c: v for c, v in cells.items() if c <= n}
            if n and len(present) == n:
                mx = max(present.values())
                mn = min(present.values())
                if abs(mx - o["max_cell_voltage_v"]) > 0.0015 or \
                        abs(mn - o["min_cell_voltage_v"]) > 0.0015:
                    ctx.viol.append(
                        "0x319/0x315-0x318: cell extremes %s/%s V differ from "
                        "cells 1..%d (max %s, min %s V)"
                        % (o["max_cell_voltage_v"], o["min_cell_voltage_v"], n,
                           mx, mn))


# --------------------------------------------------------------------------
# Victron CAN-bus BMS (MG Master LV v8 section 1.4; SMA origin)
# --------------------------------------------------------------------------
VIC_ALARMS = [  # (byte, shift, name) MG p.5/8, SMA p.22-29
    (0, 0, "General alarm"), (0, 2, "Battery high voltage alarm"),
    (0, 4, "Battery low voltage alarm"),
    (0, 6, "Battery high temperature alarm"),
    (1, 0, "Battery low temperature alarm"),
    (1, 2, "Battery high temperature charge alarm"),
    (1, 4, "Battery low temperature charge alarm"),
    (1, 6, "Battery high current alarm"),
    (2, 0, "Battery high charge current alarm"), (2, 2, "Contactor alarm"),
    (2, 4, "Short circuit alarm"), (2, 6, "BMS internal alarm"),
    (3, 0, "Cell imbalance alarm"),
]
VIC_WARNINGS = [(b + 4, s, n.replace("alarm", "warning"))
                for b, s, n in VIC_ALARMS]
VIC_EVENTS = {0: "Start of SOC Recalibration", 1: "Stop of SOC Recalibration",
              2: "Start of Power limitation", 3: "Stop of Power limitation",
              4: "Preventive battery shutdown"}


def _inv(ctx, cid, key, raw, marker):
    if raw == marker:
        ctx.out.setdefault("invalid_fields", set()).add(key)
        return True
    return False


def _vic_u16(ctx, cid, d, i, key, scale, nd):
    raw = _u16le(d, i)
    if _inv(ctx, cid, key, raw, 0xFFFF):
        return None
    ctx.out[key] = _r(raw * scale, nd)
    return ctx.out[key]


def _vic_s16(ctx, cid, d, i, key, scale, nd):
    raw = _u16le(d, i)
    if _inv(ctx, cid, key, raw, 0x8000):
        return None
    ctx.out[key] = _r(_s16le(d, i) * scale, nd)
    return ctx.out[key]


def _vic_351(ctx, cid, d):
    _vic_u16(ctx, cid, d, 0, "charge_voltage_limit_v", 0.1, 1)
    for i, k in ((2, "charge_current_limit_a"),
                 (4, "discharge_current_limit_a")):
        val = _vic_s16(ctx, cid, d, i, k, 0.1, 1)
        _neg_limit(ctx, cid, k, val)
    _vic_u16(ctx, cid, d, 6, "discharge_voltage_limit_v", 0.1, 1)
    o = ctx.out
    if o.get("discharge_voltage_limit_v") is not None and \
            o.get("charge_voltage_limit_v") is not None and \
            o["discharge_voltage_limit_v"] > o["charge_voltage_limit_v"]:
        ctx.v(cid, "discharge voltage %s V above charge voltage %s V"
              % (o["discharge_voltage_limit_v"], o["charge_voltage_limit_v"]))


def _vic_355(ctx, cid, d):
    _check_pct(ctx, cid, "soc_pct", _vic_u16(ctx, cid, d, 0, "soc_pct", 1, 0))
    _check_pct(ctx, cid, "soh_pct", _vic_u16(ctx, cid, d, 2, "soh_pct", 1, 0))
    if len(d) >= 6:
        _check_pct(ctx, cid, "soc_hires_pct",
                   _vic_u16(ctx, cid, d, 4, "soc_hires_pct", 0.01, 2))


def _vic_356(ctx, cid, d):
    _vic_u16(ctx, cid, d, 0, "pack_voltage_v", 0.01, 2)
    _vic_s16(ctx, cid, d, 2, "current_a", 0.1, 1)
    if _vic_s16(ctx, cid, d, 4, "temperature_c", 0.1, 1) is not None:
        ctx.out["temperature_meaning"] = "battery temperature"


def _vic_35a(ctx, cid, d):
    o = ctx.out
    for table, raised_k, cleared_k in ((VIC_ALARMS, "alarms", "alarms_cleared"),
                                       (VIC_WARNINGS, "warnings",
                                        "warnings_cleared")):
        raised, cleared = set(), set()
        for b, s, name in table:
            val = (d[b] >> s) & 3
            if val == 1:
                raised.add(name)
            elif val == 2:
                cleared.add(name)
            elif val == 3:
                ctx.v(cid, "byte %d bits %d-%d (%s) = 11: both 'arrive' and "
                      "'leave' set (SMA 7.1: only one should be set)"
                      % (b, s, s + 1, name))
        o[raised_k] = raised
        o[cleared_k] = cleared
    o["alarm_warning_raw"] = bytes(d).hex()


def _vic_35b(ctx, cid, d):
    ctx.out["events"] = _bits(d[0], VIC_EVENTS)


def _vic_35e(ctx, cid, d):
    ctx.out["manufacturer_name"] = _ascii(d)
    if not _printable(d):
        ctx.v(cid, "manufacturer name not ASCII: %s" % bytes(d).hex())


def _vic_35f(ctx, cid, d):
    o = ctx.out
    o["master_type_id"] = _u16le(d, 0)
    o["software_version_raw"] = _u16be(d, 2)       # "note: MSB first"
    o["software_version"] = "%d.%02d" % (d[2], d[3])
    if len(d) >= 6:
        _vic_u16(ctx, cid, d, 4, "capacity_ah", 1, 0)
    if len(d) >= 8:
        o["hardware_config"] = _u16le(d, 6)


def _vic_373(ctx, cid, d):
    o = ctx.out
    _vic_u16(ctx, cid, d, 0, "min_cell_voltage_v", 0.001, 3)
    _vic_u16(ctx, cid, d, 2, "max_cell_voltage_v", 0.001, 3)
    for i, k in ((4, "min_cell_temperature"), (6, "max_cell_temperature")):
        raw = _u16le(d, i)
        if not _inv(ctx, cid, k + "_k", raw, 0xFFFF):
            o[k + "_k"] = raw
            o[k + "_c"] = _r(raw - 273.15, 2)
    if o.get("min_cell_voltage_v") is not None and \
            o.get("max_cell_voltage_v") is not None and \
            o["min_cell_voltage_v"] > o["max_cell_voltage_v"]:
        ctx.v(cid, "lowest cell voltage %s V above highest %s V"
              % (o["min_cell_voltage_v"], o["max_cell_voltage_v"]))
    if "min_cell_temperature_k" in o and "max_cell_temperature_k" in o and \
            o["min_cell_temperature_k"] > o["max_cell_temperature_k"]:
        ctx.v(cid, "lowest cell temperature above highest")


def _vic_378(ctx, cid, d):
    for i, k in ((0, "energy_charged_kwh"), (4, "energy_discharged_kwh")):
        raw = _u32le(d, i)
        if not _inv(ctx, cid, k, raw, 0xFFFFFFFF):
            ctx.out[k] = _r(raw * 0.01, 2)


def _vic_380(ctx, cid, d):
    ctx.out["serial_number_high"] = _ascii(d)


def _vic_381(ctx, cid, d):
    ctx.out["serial_number_low"] = _ascii(d)


def _sma_305(ctx, cid, d):
    o = ctx.out
    o["inverter_battery_voltage_v"] = _r(_u16le(d, 0) * 0.1, 1)
    o["inverter_battery_current_a"] = _r(_s16le(d, 2) * 0.1, 1)
    o["inverter_battery_temperature_c"] = _r(_s16le(d, 4) * 0.1, 1)
    o["inverter_soc_pct"] = _r(_s16le(d, 6) * 0.1, 1)


def _sma_306(ctx, cid, d):
    o = ctx.out
    o["inverter_soh_pct"] = _u16le(d, 0)
    o["inverter_charging_procedure"] = d[2]
    o["inverter_operating_state"] = d[3]
    o["inverter_error_message"] = _u16le(d, 4)
    o["inverter_charge_voltage_setpoint_v"] = _r(_u16le(d, 6) * 0.1, 1)


def _sma_00f(ctx, cid, d):
    ctx.out["inverter_remote_quick_stop"] = True


_VICTRON_FRAMES = {
    0x351: _F("BMS limits", "MG v8 1.4.2 CAN-ID 0x351; SMA p.21", _vic_351, 8),
    0x355: _F("battery status", "MG v8 1.4.2 CAN-ID 0x355; SMA p.21",
              _vic_355, 4),
    0x356: _F("battery basic info", "MG v8 1.4.2 CAN-ID 0x356; SMA p.21",
              _vic_356, 6, mandatory=False),
    0x35A: _F("alarm and warning", "MG v8 1.4.2 CAN-ID 0x35A; SMA p.22-29, 7.1",
              _vic_35a, 8, reserved={3: 0xFC, 7: 0xFC}),
    0x35B: _F("events", "MG v8 1.4.2 CAN-ID 0x35B", _vic_35b, 1,
              mandatory=False, reserved={0: 0xE0}),
    0x35E: _F("manufacturer name", "MG v8 1.4.2 CAN-ID 0x35E", _vic_35e, 1,
              mandatory=False),
    0x35F: _F("system information", "MG v8 1.4.2 CAN-ID 0x35F", _vic_35f, 4,
              mandatory=False),
    0x373: _F("battery cell info", "MG v8 1.4.2 CAN-ID 0x373", _vic_373, 8,
              mandatory=False),
    0x378: _F("energy charged/discharged", "MG v8 1.4.2 CAN-ID 0x378",
              _vic_378, 8, mandatory=False),
    0x380: _F("serial number high part", "MG v8 1.4.2 CAN-ID 0x380",
              _vic_380, 1, mandatory=False),
    0x381: _F("serial number low part", "MG v8 1.4.2 CAN-ID 0x381",
              _vic_381, 1, mandatory=False),
    0x305: _F("Sunny Island process values", "SMA section 6 CAN ID 0x305",
              _sma_305, 8, mandatory=False, origin="inverter"),
    0x306: _F("Sunny Island process values", "SMA section 6 CAN ID 0x306",
              _sma_306, 8, mandatory=False, origin="inverter"),
    0x307: _F("Sunny Island relay state", "SMA section 6 CAN ID 0x307",
              _inv_dlc8, 0, mandatory=False, origin="inverter"),
    0x00F: _F("remote quick stop", "SMA p.20 'Remote Quick Stopp' 0x00F",
              _sma_00f, 0, mandatory=False, origin="inverter"),
}

_SPECS = {
    "pylontech": _PYLON_FRAMES,
    "deye": _PYLON_FRAMES,
    "solark": _SOLARK_FRAMES,
    "luxpower": _LUX_FRAMES,
    "growatt": _GROWATT_FRAMES,
    "victron": _VICTRON_FRAMES,
}

INVERTER_IDS = {p: sorted(i for i, f in s.items() if f.origin == "inverter")
                for p, s in _SPECS.items()}


# --------------------------------------------------------------------------
# core
# --------------------------------------------------------------------------
def _spec(protocol):
    try:
        return _SPECS[protocol]
    except KeyError:
        raise ValueError("unknown protocol %r (known: %s)"
                         % (protocol, ", ".join(PROTOCOLS)))


def _run(protocol, frames, full_set=True):
    spec = _spec(protocol)
    ctx = _Ctx(protocol)
    last = {}
    unknown = set()
    for cid, data in frames:
        data = bytes(data)
        if cid > 0x7FF:
            ctx.viol.append("0x%X: not an 11-bit standard identifier (all "
                            "documents use standard frames)" % cid)
        if len(data) > 8:
            ctx.v(cid, "DLC %d > 8 (CAN FD not used by the document)"
                  % len(data))
        if cid in spec:
            last[cid] = data
        else:
            unknown.add(cid)
    for cid in sorted(last):
        f = spec[cid]
        d = last[cid]
        if f.dlc is not None and len(d) != f.dlc:
            ctx.v(cid, "DLC %d, document requires %d" % (len(d), f.dlc))
        if len(d) < f.min_len:
            ctx.v(cid, "DLC %d too short for the fields the document defines "
                  "(needs %d)" % (len(d), f.min_len))
            continue
        for bi, mask in sorted(f.reserved.items()):
            if bi < len(d) and d[bi] & mask:
                ctx.v(cid, "reserved/undefined bits set in byte %d: 0x%02X "
                      "(mask 0x%02X)" % (bi, d[bi] & mask, mask))
        f.fn(ctx, cid, d)
    if protocol == "growatt":
        _growatt_cross(ctx)
    if full_set:
        for cid, f in sorted(spec.items()):
            if f.mandatory and cid not in last:
                ctx.viol.append("0x%03X: mandatory frame (%s, %s) missing from "
                                "set" % (cid, f.name, f.ref))
    ctx.out["unknown_ids"] = sorted(unknown)
    return ctx


def decode(protocol, frames):
    """Decode frames [(can_id, data)] per the protocol's document.

    Keys carry the unit (_v, _a, _c, _pct, _ah, _kwh); flags are sets of the
    document's own wording.  Absent frames leave their keys out.  Ids the
    document does not define are listed (ints) under "unknown_ids".
    If an id occurs more than once, the last occurrence is decoded.
    """
    return _run(protocol, frames, full_set=False).out


def check(protocol, frames, full_set=True):
    """List every violation of the document in this frame set ([] = ok).

    full_set=False skips the "mandatory frame missing" test (partial sets).
    """
    return _run(protocol, frames, full_set=full_set).viol


def inverter_frames(protocol):
    """Frames the inverter sends per the document: [(id, data, description)]."""
    _spec(protocol)
    zero = bytes(8)
    if protocol in ("pylontech", "deye"):
        return [(0x305, zero, "inverter reply every second: 0x305 "
                 "00-00-00-00-00-00-00-00 (Pylon/Deye V1.2 p.2)")]
    if protocol == "solark":
        return [(0x305, zero, "inverter heartbeat response each time it "
                 "correctly receives data: 0x305 00 00 00 00 00 00 00 00 "
                 "(Sol-Ark V1.3 p.2)")]
    if protocol == "luxpower":
        return [(0x305, zero, "inverter response: 0x305 00 00 00 00 00 00 00 "
                 "00 (Luxpower V04 p.3)"),
                (0x300, bytes([1, 0, 0, 0, 0, 0, 0, 0]),
                 "remote command from storage inverter: 0x300 byte0 bit0 RSD "
                 "battery = 0x01 'Shutdown battery' (Luxpower V04 p.3)")]
    if protocol == "growatt":
        return [(0x301, GROWATT_0x301_DATA, "inverter replies every second "
                 "(standard frame): 0x301: 11-22-33-44-55-66-77-88 "
                 "(Growatt V1.04 section 1; bytes read as hex)")]
    return []  # victron: BMS broadcasts; the MG guide defines no inverter frame


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------
_LINE = re.compile(r"^\s*\(([^)]*)\)\s+(\S+)\s+([0-9A-Fa-f]+)(#{1,2})(\S*)")


def _parse_line(line):
    """candump -L line -> (ts, id, data, notes) or None."""
    m = _LINE.match(line)
    if not m:
        return None
    ts, _iface, sid, sep, rest = m.groups()
    notes = []
    cid = int(sid, 16)
    if len(sid) > 3:
        notes.append("0x%X: extended (29-bit) identifier; documents use "
                     "standard frames" % cid)
    cid &= 0x1FFFFFFF
    if sep == "##":
        notes.append("0x%03X: CAN FD frame; documents use classic CAN" % cid)
        rest = rest[1:]
    if rest[:1] in ("R", "r"):
        notes.append("0x%03X: remote frame" % cid)
        return ts, cid, b"", notes
    rest = rest.replace(".", "")
    try:
        data = bytes.fromhex(rest)
    except ValueError:
        return None
    return ts, cid, data, notes


def _jsonable(o):
    if isinstance(o, set):
        return sorted(o)
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_jsonable(x) for x in o]
    return o


def _emit(protocol, n, s, complete, only_set):
    viol = check(protocol, s["frames"], full_set=complete or only_set)
    viol = s["notes"] + viol
    out = {"set": n, "start": s["start"], "complete": complete,
           "ids": ["0x%03X" % c for c, _ in s["frames"]],
           "decoded": _jsonable(decode(protocol, s["frames"])),
           "violations": viol}
    print(json.dumps(out, sort_keys=True))
    return bool(viol)


def main_cli(protocol, stream):
    _spec(protocol)
    inv = set(INVERTER_IDS[protocol])
    sets = []
    cur = None
    for line in stream:
        p = _parse_line(line)
        if p is None:
            continue
        ts, cid, data, notes = p
        if cur is None:
            cur = {"start": ts, "frames": [], "seen": set(), "notes": []}
        if cid in cur["seen"] and cid not in inv:
            sets.append((cur, True))
            cur = {"start": ts, "frames": [], "seen": set(), "notes": []}
        cur["frames"].append((cid, data))
        cur["notes"].extend(notes)
        if cid not in inv:
            cur["seen"].add(cid)
    if cur is not None and cur["frames"]:
        sets.append((cur, False))
    bad = False
    for n, (s, complete) in enumerate(sets, 1):
        bad |= _emit(protocol, n, s, complete, len(sets) == 1)
    return 1 if bad else 0


# --------------------------------------------------------------------------
# self-test (worked examples from the documents + table-derived frames)
# --------------------------------------------------------------------------
def _le16(v):
    return bytes([v & 0xFF, (v >> 8) & 0xFF])


def _be16(v):
    return bytes([(v >> 8) & 0xFF, v & 0xFF])


def _good_sets():
    pyl = [
        (0x359, bytes([0, 0, 0, 0, 1, 0x50, 0x4E, 0])),
        (0x351, _le16(560) + _le16(1000) + _le16(1500) + bytes(2)),
        (0x355, _le16(87) + _le16(99) + bytes(4)),
        (0x356, _le16(5234) + _le16(0xFFCE) + _le16(251) + bytes(2)),
        (0x35C, bytes([0xC0, 0])),
        (0x35E, b"PYLON\x00\x00\x00"),
    ]
    deye = pyl[:-1] + [(0x35E, b"DEYE\x00\x00\x00\x00")]
    sol = [
        (0x359, bytes([0, 0, 0, 0, 2, 0x50, 0x4E, 0])),
        (0x351, _le16(560) + _le16(1000) + _le16(1500) + _le16(480)),
        (0x355, _le16(87) + _le16(99) + bytes(4)),
        (0x356, _le16(523) + _le16(0xFFCE) + _le16(251) + bytes(2)),
        (0x35C, bytes([0xC0]) + bytes(7)),
        (0x35E, b"SOLARKBT"),
        (0x379, _le16(200) + bytes(6)),
    ]
    lux = [
        (0x359, bytes([0, 0, 0, 0, 1]) + _le16(100) + bytes(1)),
        (0x351, _le16(560) + _le16(1000) + _le16(1500) + _le16(480)),
        (0x355, _le16(87) + _le16(99) + _le16(3350) + _le16(3310)),
        (0x356, _le16(5234) + _le16(0xFFCE) + _le16(251) + _le16(230)),
        (0x35C, bytes([0xC0, 0]) + _le16(123) + bytes(4)),
        (0x35E, b"LUXBATT\x00"),
    ]
    gws = (2 | (1 << 2) | (1 << 5) | (1 << 6))  # charging, err valid, out en
    gw = [
        (0x311, _be16(560) + _be16(1000) + _be16(1500) + _be16(gws)),
        (0x312, bytes([0, 0, 0, 0, 1, 0xAA, 0xBB, 16])),
        (0x313, _be16(5234) + _be16(0x0032) + _be16(251) + bytes([87, 99])),
        (0x314, _be16(8700) + _be16(10000) + _be16(40) + _be16(12)),
        (0x319, bytes([0xC0]) + _be16(3350) + _be16(3310) + bytes([3, 7, 0])),
        (0x320, b"GW" + bytes([1, 2]) + (
            (24 << 26) | (5 << 22) | (17 << 17) | (13 << 12) | (45 << 6) | 30
        ).to_bytes(4, "big")),
    ]
    vic = [
        (0x351, _le16(560) + _le16(1000) + _le16(1500) + _le16(480)),
        (0x355, _le16(87) + _le16(99) + _le16(8712) + bytes(2)),
        (0x356, _le16(5234) + _le16(0xFFCE) + _le16(251) + bytes(2)),
        (0x35A, bytes(8)),
        (0x35E, b"MG-BMS\x00\x00"),
        (0x35F, bytes([0x9B, 0x3A, 0x01, 0x18]) + _le16(200) + _le16(1)),
    ]
    return {"pylontech": pyl, "deye": deye, "solark": sol, "luxpower": lux,
            "growatt": gw, "victron": vic}


def self_test():
    tests = []

    def t(desc, fn):
        tests.append((desc, fn))

    D = decode
    # ---- worked examples given in the documents -------------------------
    t("pylon-can-v1.2 p.2: inverter reply 0x305 00-00-00-00-00-00-00-00",
      lambda: check("pylontech", [(0x305, bytes(8))], False) == [] and
      D("pylontech", [(0x305, bytes(8))])["inverter_heartbeat"] == "00" * 8)
    t("pylon-can-v1.2 p.2: inverter_frames gives 0x305 zeros",
      lambda: inverter_frames("pylontech")[0][:2] == (0x305, bytes(8)))
    t("pylon-can-v1.2 p.3 0x359 byte5 'P'=0x50, byte6 'N'=0x4E",
      lambda: D("pylontech", [(0x359, bytes([0, 0, 0, 0, 3, 0x50, 0x4E, 0]))]
                )["marker_pn"] == "PN" and
      check("pylontech", [(0x359, bytes([0, 0, 0, 0, 3, 0x50, 0x4E, 0]))],
            False) == [])
    t("pylon-can-v1.2 p.5 0x35E manufacturer name 'PYLON' (ASCII)",
      lambda: D("pylontech", [(0x35E, b"PYLON\0\0\0")])["manufacturer_name"]
      == "PYLON")
    t("deye-v1.2 p.2: inverter reply 0x305 zeros accepted",
      lambda: check("deye", [(0x305, bytes(8))], False) == [])
    t("deye-v1.2 p.3 0x359 'P','N' = 0x50,0x4E",
      lambda: check("deye", [(0x359, bytes([0, 0, 0, 0, 1, 0x50, 0x4E, 0]))],
                    False) == [])
    t("deye-v1.2 p.5 0x35E manufacturer name 'DEYE'",
      lambda: D("deye", [(0x35E, b"DEYE")])["manufacturer_name"] == "DEYE" and
      check("deye", [(0x35E, b"DEYE")], False) == [])
    t("solark-v1.3 p.2: inverter heartbeat 0x305 '00 00 00 00 00 00 00 00'",
      lambda: check("solark", [(0x305, bytes(8))], False) == [] and
      inverter_frames("solark")[0][:2] == (0x305, bytes(8)))
    t("solark-v1.3 p.2 0x359 bytes 5-6 'P', 0x50 / 'N', 0x4E, byte7 '00'",
      lambda: D("solark", [(0x359, bytes([0, 0, 0, 0, 1, 0x50, 0x4E, 0]))]
                )["marker_pn"] == "PN")
    t("luxpower-v04.2 p.3: inverter response 0x305 00 00 00 00 00 00 00 00",
      lambda: check("luxpower", [(0x305, bytes(8))], False) == [])
    t("luxpower-v04.2 p.3: 0x300 byte0 0x01 'Shutdown battery', bytes1-7 0x00",
      lambda: D("luxpower", [(0x300, bytes([1] + [0] * 7))])
      ["inverter_shutdown_battery"] is True and
      check("luxpower", [(0x300, bytes([1] + [0] * 7))], False) == [] and
      inverter_frames("luxpower")[1][:2] == (0x300, bytes([1] + [0] * 7)))
    t("growatt-v1.04 section 1: inverter 0x301: 11-22-33-44-55-66-77-88",
      lambda: check("growatt", [(0x301, GROWATT_0x301_DATA)], False) == [] and
      inverter_frames("growatt")[0][:2] == (0x301, GROWATT_0x301_DATA))
    t("growatt-v1.04 0x312 bytes 5-6 manufacturer code example 0xAA, 0xBB",
      lambda: D("growatt", [(0x312, bytes([0, 0, 0, 0, 1, 0xAA, 0xBB, 16]))])
      ["manufacturer_code"] == "AABB")
    t("growatt-v1.04 0x320 manufacturer name note 'Byte 0 = 0x00, Byte 1 = "
      "0x01' (raw bytes kept)",
      lambda: D("growatt", [(0x320, bytes([0, 1, 1, 1, 0, 0x42, 0, 0]))])
      ["manufacturer_name_raw"] == "0001")
    t("mg-master-lv-v8 p.5 0x35F master type ID 0x3A9B -> 15003",
      lambda: D("victron", [(0x35F, bytes([0x9B, 0x3A, 1, 0x18]) + bytes(4))])
      ["master_type_id"] == 15003)
    t("mg-master-lv-v8 p.5 0x35F software version 0x0118 -> V1.24 (MSB first)",
      lambda: D("victron", [(0x35F, bytes([0x9B, 0x3A, 1, 0x18]) + bytes(4))])
      ["software_version"] == "1.24")
    t("mg-master-lv-v8 p.5 0x35E manufacturer name 'MG-BMS'",
      lambda: D("victron", [(0x35E, b"MG-BMS\0\0")])["manufacturer_name"]
      == "MG-BMS")
    t("sma-mapping Table 10: 0x35E 'GoodWe'",
      lambda: D("victron", [(0x35E, b"GoodWe\0\0")])["manufacturer_name"]
      == "GoodWe")
    t("sma-can 7.1 table: bits (1,0) raised, (0,1) cleared, (0,0) ignored",
      lambda: (lambda o: o["alarms"] == {"General alarm"} and
               o["alarms_cleared"] == {"Battery high voltage alarm"} and
               o["warnings"] == set())(
          D("victron", [(0x35A, bytes([0b1001, 0, 0, 0, 0, 0, 0, 0]))])))
    t("sma-can 7.1 table: bits (1,1) 'ignored' -> reported by check",
      lambda: len(check("victron", [(0x35A, bytes([3, 0, 0, 0, 0, 0, 0, 0]))],
                        False)) == 1)
    # SMA p.21 default values encoded with the table's scaling
    t("sma-can p.21 defaults: 0x351 54 V / 0 A / 0 A / 41 V",
      lambda: (lambda o: (o["charge_voltage_limit_v"],
                          o["charge_current_limit_a"],
                          o["discharge_current_limit_a"],
                          o["discharge_voltage_limit_v"]) ==
               (54.0, 0.0, 0.0, 41.0))(
          D("victron", [(0x351, _le16(540) + _le16(0) + _le16(0) +
                         _le16(410))])))
    t("sma-can p.21 defaults: 0x355 SOC 0 %, SOH 100 %; 0x356 25.0 degC",
      lambda: (lambda o: (o["soc_pct"], o["soh_pct"], o["temperature_c"]) ==
               (0, 100, 25.0))(
          D("victron", [(0x355, _le16(0) + _le16(100) + _le16(0)),
                        (0x356, _le16(0) + _le16(0) + _le16(250))])))
    t("sma-can 5.1 / mg 1.4: invalid markers 0xFFFF / 0x8000 -> invalid_fields",
      lambda: D("victron", [(0x351, b"\xff\xff\x00\x80" + _le16(10) +
                             _le16(410))])["invalid_fields"] ==
      {"charge_voltage_limit_v", "charge_current_limit_a"})

    # ---- table-derived decoding -----------------------------------------
    t("pylon 0x351/0x355/0x356 scaling and sign (Table p.3-4)",
      lambda: (lambda o: (o["charge_voltage_limit_v"],
                          o["charge_current_limit_a"],
                          o["discharge_current_limit_a"], o["soc_pct"],
                          o["soh_pct"], o["pack_voltage_v"], o["current_a"],
                          o["temperature_c"]) ==
               (56.0, 100.0, 150.0, 87, 99, 52.34, -5.0, 25.1))(
          D("pylontech", _good_sets()["pylontech"])))
    t("pylon 0x35C Table 5 bits: 0xF8 all request flags",
      lambda: (lambda o: o["charge_enable"] and o["discharge_enable"] and
               o["force_charge_1"] and o["force_charge_2"] and
               o["full_charge_request"] and len(o["request_flags"]) == 5)(
          D("pylontech", [(0x35C, bytes([0xF8, 0]))])))
    t("pylon 0x35C bit5 = 'Request force charge I' (force_charge_1)",
      lambda: (lambda o: o["force_charge_1"] and not o["force_charge_2"])(
          D("pylontech", [(0x35C, bytes([0x20, 0]))])))
    t("solark 0x35C bit4 = 'Forced Charge Request 1' (force_charge_1)",
      lambda: (lambda o: o["force_charge_1"] and not o["force_charge_2"])(
          D("solark", [(0x35C, bytes([0x10]) + bytes(7))])))
    t("pylon 0x359 Tables 1-4 names",
      lambda: (lambda o: o["protection_flags"] ==
               {"Cell or module over voltage", "Charge over current"} and
               o["alarm_flags"] == {"Discharge high current",
                                    "Internal communication fail"})(
          D("pylontech", [(0x359, bytes([0x02, 0x01, 0x80, 0x08, 1, 0x50,
                                         0x4E, 0]))])))
    t("solark 0x356 pack voltage unit 0.1 V (523 -> 52.3 V)",
      lambda: D("solark", _good_sets()["solark"])["pack_voltage_v"] == 52.3)
    t("solark 0x379 capacity 200 Ah, 0x351 discharge voltage 48.0 V",
      lambda: (lambda o: (o["capacity_ah"], o["discharge_voltage_limit_v"]) ==
               (200, 48.0))(D("solark", _good_sets()["solark"])))
    t("luxpower 0x355 cell extremes, 0x356 temps, 0x359 capacity, cycle cnt",
      lambda: (lambda o: (o["max_cell_voltage_v"], o["min_cell_voltage_v"],
                          o["max_cell_temperature_c"],
                          o["min_cell_temperature_c"], o["capacity_ah"],
                          o["cycle_count"]) ==
               (3.35, 3.31, 25.1, 23.0, 100, 123))(
          D("luxpower", _good_sets()["luxpower"])))
    t("growatt big endian decoding 0x311/0x313/0x314/0x319",
      lambda: (lambda o: (o["charge_voltage_limit_v"], o["pack_voltage_v"],
                          o["current_a"], o["temperature_c"],
                          o["remaining_capacity_ah"],
                          o["full_charge_capacity_ah"],
                          o["delta_cell_voltage_v"], o["max_cell_voltage_v"],
                          o["max_cell_voltage_number"]) ==
               (56.0, 52.34, 5.0, 25.1, 87.0, 100.0, 0.04, 3.35, 3))(
          D("growatt", _good_sets()["growatt"])))
    t("growatt 0x311 status word fields (Table1)",
      lambda: (lambda o: (o["state"], o["error_bytes_valid"],
                          o["cell_balancing"], o["sleep"],
                          o["output_discharge_enabled"],
                          o["output_charge_enabled"], o["terminal"],
                          o["master_box_operation_mode"], o["sp_status"]) ==
               ("charging", True, False, False, True, True,
                "terminal connected", "standalone", "none"))(
          D("growatt", _good_sets()["growatt"])))
    t("growatt 0x320 Date & Time bits -> 2024-05-17 13:45:30",
      lambda: D("growatt", _good_sets()["growatt"])["date_time"] ==
      "2024-05-17 13:45:30")
    t("growatt 0x313 SOH bits0-6 + bit7 SOH flag",
      lambda: (lambda o: (o["soh_pct"], o["soh_flag"]) == (95, True))(
          D("growatt", [(0x313, bytes(6) + bytes([50, 0x80 | 95]))])))
    t("victron 0x373 Kelvin -> C, 0x378 0.01 kWh",
      lambda: (lambda o: (o["min_cell_voltage_v"], o["max_cell_temperature_c"],
                          o["energy_charged_kwh"]) == (3.3, 26.85, 12.34))(
          D("victron", [(0x373, _le16(3300) + _le16(3350) + _le16(298) +
                         _le16(300)),
                        (0x378, (1234).to_bytes(4, "little") + bytes(4))])))
    # ---- conforming full sets --------------------------------------------
    for p, fs in sorted(_good_sets().items()):
        t("%s: conforming full set gives no violations" % p,
          (lambda p=p, fs=fs: check(p, fs) == []))
    # ---- violations caught -----------------------------------------------
    g = _good_sets()
    t("pylon: missing 0x35E reported as mandatory",
      lambda: any("0x35E" in v and "missing" in v
                  for v in check("pylontech", g["pylontech"][:-1])))
    t("pylon: unknown id listed, not a violation",
      lambda: D("pylontech", g["pylontech"] + [(0x370, bytes(8))])
      ["unknown_ids"] == [0x370] and
      check("pylontech", g["pylontech"] + [(0x370, bytes(8))]) == [])
    t("pylon: 0x351 bytes 6-7 set (blank in V1.2) reported",
      lambda: len(check("pylontech", [(0x351, _le16(560) + _le16(1) +
                                       _le16(1) + _le16(480))], False)) == 2)
    t("solark: DLC 6 reported as wrong DLC and too short",
      lambda: len(check("solark", [(0x356, _le16(523) + _le16(0) +
                                    _le16(250))], False)) == 2)
    t("solark: 0x356 with Pylon 0.01 V scaling (52.34 V -> 523.4 V) reported",
      lambda: any("63 V" in v for v in check(
          "solark", [(0x356, _le16(5234) + _le16(0) + _le16(250) + bytes(2))],
          False)))
    t("solark: reserved bit 0 of 0x35C reported",
      lambda: len(check("solark", [(0x35C, bytes([0xC1]) + bytes(7))],
                        False)) == 1)
    t("growatt: error flag 0 with protection set is inconsistent",
      lambda: any("Error bit flag" in v for v in check("growatt", [
          (0x311, _be16(560) + _be16(0) + _be16(0) + _be16(0)),
          (0x312, bytes([0x10, 0, 0, 0, 1, 0xAA, 0xBB, 16]))], False)))
    t("growatt: Delta V vs cell extremes mismatch reported",
      lambda: any("Delta V" in v for v in check("growatt", [
          (0x314, _be16(1) + _be16(2) + _be16(90) + _be16(0)),
          (0x319, bytes([0xC0]) + _be16(3350) + _be16(3310) +
           bytes([1, 2, 0]))], False)))
    t("growatt: SOC 101 and HW version 0 reported",
      lambda: len(check("growatt", [
          (0x313, bytes(6) + bytes([101, 100])),
          (0x320, b"GW" + bytes([0, 1]) + ((1 << 17) | (1 << 22)
                                           ).to_bytes(4, "big"))],
          False)) == 2)
    t("victron: reserved alarm pair (byte3 bits2-3) reported",
      lambda: len(check("victron", [(0x35A, bytes([0, 0, 0, 0x04, 0, 0, 0,
                                                    0]))], False)) == 1)
    t("victron: SOC 120 % reported",
      lambda: len(check("victron", [(0x355, _le16(120) + _le16(100))],
                        False)) == 1)
    t("CLI parser: candump -L line",
      lambda: _parse_line("(1700000000.000000) can0 351#3002E803DC05E001")
      [1:3] == (0x351, bytes.fromhex("3002E803DC05E001")))

    print("1..%d" % len(tests))
    failed = 0
    for i, (desc, fn) in enumerate(tests, 1):
        try:
            ok = bool(fn())
            err = ""
        except Exception as e:  # pragma: no cover
            ok = False
            err = " # %s: %s" % (type(e).__name__, e)
        if not ok:
            failed += 1
        print("%s %d - %s%s" % ("ok" if ok else "not ok", i, desc, err))
    return 1 if failed else 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) != 2 or argv[1] not in PROTOCOLS:
        sys.stderr.write("usage: %s {%s} < candump.log\n       %s --self-test\n"
                         % (argv[0], "|".join(PROTOCOLS), argv[0]))
        return 2
    return main_cli(argv[1], sys.stdin)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
