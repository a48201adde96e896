#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A Daly smart BMS board on a CAN bus, written from the manufacturer's
document alone, by someone who had not read bmsbridge's daly-can driver.

Document
--------
"DALY CAN Communications Protocol" V1.0 (Dongguan Daly Electronics,
2019-06-11).  Its PDF could not be found; the text followed is the public
transcription in jblance/powermon docs/protocol_docs/daly_can.md (also at
jblance.github.io/powermon/protocol_docs/daly_can/), which breaks off at
its "Notes" and gives 0x98 by byte only.  Sections below are V1.0's:
§1 physical layer, §2.1 basic timing, §2.2 address assignment, §2.3.1
host -> slave, §2.3.2 slave -> host, §3 one paragraph per data id
(0x90 ... 0x98).

Where V1.0 is cut short, the same data ids of Daly's "UART/485
Communications Protocol" V1.2 (2020-12-22, §3 table, read here from its
PDF with pdftotext) are used: the 0x98 bit table and the words of
0x94-0x97.  Daly says the content of the two is the same ("Communication
Content Information: Same as CAN", dalybms.com "DALY Three Communication
Protocols Explanation"); that page (Daly's own, secondary) is also cited
where it adds to V1.0.  V1.2 was read for this file; the Daly UART pack in
bms_pack_reader.py was not reused (its choices agree, see below).

What the board does
-------------------
* receives every frame on its interface, checks each against §2.3.1 (a
  request of the host), counts valid and invalid ones with the reason,
* answers (§2.1: "respond only if the slave address matches") only valid
  requests addressed to its own board number, per §2.3.2 and §3,
* encodes its state (see State) as §3 says, big endian (see Choices).

Checks of a request (§2.3.1 "Priority + Data ID + BMS Address + PC
Address", example 0x18 10 01 40; 8 bytes):
  - a 29-bit extended id (the example needs 29 bits; Daly's page: "Generally,
    the Extended Frame is used"); not remote, not an error frame, not CAN FD;
  - bits 24-28 priority = 0x18 (the example's, the only one given);
  - bits 16-23 data id one of §3's 0x90-0x98 (Daly's page: "Data IDs from
    0x90 to 0x98 are accessible to customers");
  - bits 8-15 the BMS address: a board number, not a host address of §2.2
    (0x20, 0x40, 0x80) and not 0;
  - bits 0-7 the PC address 0x40 (§2.2 "Upper Computer 0x40", §2.3.1);
  - DLC 8 (§2.3.1 "8 bytes"), data all 0x00 (§3 every id: "Send:
    Byte0~7: Reserved").
A frame shaped like an answer (§2.3.2: destination a host address, source
not) is another board's answer: counted as such, neither valid nor invalid.

Choices (the document does not settle these)
--------------------------------------------
C1 Byte order: big endian (high byte first).  V1.0 does not say.  Daly's
   page reads bits "high-left, low-right"; the real UART answers below are
   big endian beyond doubt (0x90 SOC 0x0338 = 82.4 %, 0x91 0x0CB7 =
   3255 mV).  A CAN capture of a real board would show the same bytes.
C2 Current sign around the 30000 offset (§3 0x90 "Current (offset 30000,
   0.1 A)"): raw = 30000 - 10 x I, I positive while charging, i.e. above
   30000 is discharge.  The document does not say; real UART answers do:
   tomatensaus/bms test_daly.py "a5 01 90 08 02 03 00 00 77 24 03 38"
   (raw 30500) with 0x93 "02 01 01 71 ..." (state 2, "discharge"); all five
   reads there are discharging (raw 30187-30526, state 2).  A read while
   charging (raw below 30000 with state 1) would settle the other half.
C3 Which voltage is the pack voltage: §3 0x90 gives "Cumulative total
   voltage" (bytes 0-1) and "Gather total voltage" (bytes 2-3).  The board
   reads cumulative as the sum of the cells and gather as the pack
   terminal measurement, 0 where the board measures none (the real reads
   above have gather = 0).  Either is a fair pack voltage when non-zero.
C4 "BMS life (0~255 cycles)" (§3 0x93 byte 3) is read as a life counter
   that cycles through 0-255, not a charge-cycle count: the real reads
   above carry 0x71, 0x95, 0xAD, 0x91, 0xA8 minutes apart.  The board
   advances it by one at each 0x93 answer from the state's value.
   V1.0 has no charge-cycle count at all.
C5 Cell and sensor numbers (0x91 bytes 2/5, 0x92 bytes 1/3) count from 1,
   as "cell 1~48" of 0x95/0x97 (the real reads: cell 7 and 5, sensor 1).
C6 0x95/0x96 frame numbers start at 0, as §3 says ("Frame number (0-15,
   0xFF = invalid)", "starts at 0").  The real 0x95 read above starts at 1:
   the document is followed here (the daemon does not ask for 0x95).
   A 0x95/0x96 answer is ceil(cells/3) / ceil(sensors/7) frames; unused
   slots of the last frame are 0.
C7 0x97 "Bit0-47: cell 1-48": bit n is bit n%8 of byte n//8 (cell 1 =
   byte 0 bit 0).  0x98 bit k of byte b is (byte >> k) & 1 (V1.2 §3;
   Daly's page: byte0 0x80 = bit 7 "Sum volt low level 2").
C8 Reserved bytes of an answer are 0 (real boards leave old bytes there).
C9 The answer's id is §2.3.2 with the request's PC address as destination
   (0x18 DID 40 BB).  Only the requester's own 0x40 is accepted (C10).
C10 Only 0x40 is a valid requester (§2.3.1 "PC Address", §2.2 "Upper
   Computer"); 0x20 (GPRS) and 0x80 (Bluetooth APP) are other modules.
C11 0x93 byte 0 (0 stationary, 1 charge, 2 discharge) follows the current's
   sign unless the state sets it; MOS states 1 = on, 0 = off.

Usage
-----
  daly_can_board.py --self-test                    (TAP, no CAN needed)
  daly_can_board.py IFACE [--board N] [--seconds S]  (a board on IFACE)
As a module: State, Board (pure: handle(frame) -> answers), BoardOnBus
(a Board on a python-can socketcan bus, in a thread).
"""
import os
import struct
import sys
import threading
import time

# §2.2 Address Assignment
BMS_MASTER = 0x01
HOSTS = {0x80: "Bluetooth App", 0x20: "GPRS", 0x40: "Upper Computer"}
PC_ADDRESS = 0x40
# §2.3.1/§2.3.2 the example ids 0x18 10 01 40 / 0x18 10 40 01
PRIORITY = 0x18
# §3 the data ids
DATA_IDS = {0x90: "total voltage, current, SOC", 0x91: "max/min cell voltage",
            0x92: "max/min temperature", 0x93: "MOS status", 0x94: "status information 1",
            0x95: "cell voltages", 0x96: "cell temperatures", 0x97: "cell balance state",
            0x98: "battery failure status"}
CURRENT_OFFSET = 30000   # §3 0x90 bytes 4-5 "offset 30000, 0.1 A"
TEMP_OFFSET = 40         # §3 0x92, 0x96 "offset 40, °C"

# §3 0x98 (V1.2 §3 bit table): (byte, bit) -> name; byte 7 is the fault code
FAILURES = {
    (0, 0): "Cell volt high level 1", (0, 1): "Cell volt high level 2",
    (0, 2): "Cell volt low level 1", (0, 3): "Cell volt low level 2",
    (0, 4): "Sum volt high level 1", (0, 5): "Sum volt high level 2",
    (0, 6): "Sum volt low level 1", (0, 7): "Sum volt low level 2",
    (1, 0): "Chg temp high level 1", (1, 1): "Chg temp high level 2",
    (1, 2): "Chg temp low level 1", (1, 3): "Chg temp low level 2",
    (1, 4): "Dischg temp high level 1", (1, 5): "Dischg temp high level 2",
    (1, 6): "Dischg temp low level 1", (1, 7): "Dischg temp low level 2",
    (2, 0): "Chg overcurrent level 1", (2, 1): "Chg overcurrent level 2",
    (2, 2): "Dischg overcurrent level 1", (2, 3): "Dischg overcurrent level 2",
    (2, 4): "SOC high level 1", (2, 5): "SOC high level 2",
    (2, 6): "SOC Low level 1", (2, 7): "SOC Low level 2",
    (3, 0): "Diff volt level 1", (3, 1): "Diff volt level 2",
    (3, 2): "Diff temp level 1", (3, 3): "Diff temp level 2",
    (4, 0): "Chg MOS temp high alarm", (4, 1): "Dischg MOS temp high alarm",
    (4, 2): "Chg MOS temp sensor err", (4, 3): "Dischg MOS temp sensor err",
    (4, 4): "Chg MOS adhesion err", (4, 5): "Dischg MOS adhesion err",
    (4, 6): "Chg MOS open circuit err", (4, 7): "Discrg MOS open circuit err",
    (5, 0): "AFE collect chip err", (5, 1): "Voltage collect dropped",
    (5, 2): "Cell temp sensor err", (5, 3): "EEPROM err", (5, 4): "RTC err",
    (5, 5): "Precharge failure", (5, 6): "Communication failure",
    (5, 7): "Internal communication failure",
    (6, 0): "Current module fault", (6, 1): "Sum voltage detect fault",
    (6, 2): "Short circuit protect fault", (6, 3): "Low volt forbidden chg fault",
}
FAILURE_BITS = {v: k for k, v in FAILURES.items()}


class Frame(object):
    """A CAN frame as the board sees it (python-can is not needed for it)."""

    def __init__(self, ident, data, ext=True, rtr=False, err=False, fd=False, dlc=None):
        self.ident, self.data = ident, bytes(data)
        self.ext, self.rtr, self.err, self.fd = ext, rtr, err, fd
        self.dlc = len(self.data) if dlc is None else dlc

    def __repr__(self):
        return "%s#%s" % (("%08X" if self.ext else "%03X") % self.ident, self.data.hex().upper())


def make_id(data_id, dst, src, priority=PRIORITY):
    """§2.3.1/§2.3.2: Priority + Data ID + destination + source, a byte each
    (0x18 10 01 40: priority 0x18, data id 0x10, BMS 0x01, PC 0x40)."""
    return (priority << 24) | (data_id << 16) | (dst << 8) | src


def split_id(ident):
    """(priority, data id, destination, source) of a 29-bit id (§2.3)."""
    return (ident >> 24) & 0x1F, (ident >> 16) & 0xFF, (ident >> 8) & 0xFF, ident & 0xFF


def request_problem(f):
    """None if @f is a valid host request per §2.3.1 and §3, else the reason."""
    if f.err:
        return "an error frame"
    if f.fd:
        return "a CAN FD frame (§1: CAN)"
    if not f.ext:
        return "11-bit id 0x%03X: §2.3.1 ids are 29-bit (0x18100140)" % f.ident
    if f.rtr:
        return "a remote frame: §2.3.1 requests carry 8 data bytes"
    prio, did, dst, src = split_id(f.ident)
    if prio != PRIORITY:
        return "priority 0x%02X, §2.3.1 gives 0x18" % prio
    if did not in DATA_IDS:
        return "data id 0x%02X not among §3's 0x90-0x98" % did
    if dst == 0 or dst in HOSTS:
        return "BMS address 0x%02X is %s" % (dst, "0" if dst == 0 else
                                              "a host address of §2.2 (%s)" % HOSTS[dst])
    if src != PC_ADDRESS:
        return "PC address 0x%02X, §2.2/§2.3.1: upper computer 0x40" % src
    if f.dlc != 8:
        return "DLC %d, §2.3.1: 8 bytes" % f.dlc
    if f.data != bytes(8):
        return "data %s: §3 'Send: Byte0~7: Reserved' (0x00)" % f.data.hex()
    return None


def is_answer(f):
    """§2.3.2 shape: a board's answer to a host (seen when several boards share a bus)."""
    if not f.ext or f.rtr or f.err:
        return False
    prio, did, dst, src = split_id(f.ident)
    return prio == PRIORITY and dst in HOSTS and src not in HOSTS and src != 0


class State(object):
    """What a board knows, in the document's units; every field one of §3."""

    FIELDS = dict(
        cumulative_v=52.8,   # §3 0x90 bytes 0-1 "Cumulative total voltage (0.1 V)"
        gather_v=52.8,       # §3 0x90 bytes 2-3 "Gather total voltage (0.1 V)" (C3)
        current_a=0.0,       # §3 0x90 bytes 4-5 "Current (offset 30000, 0.1 A)", + = charge (C2)
        soc_pct=50.0,        # §3 0x90 bytes 6-7 "SOC, 0.1%"
        cell_max_mv=3300,    # §3 0x91 bytes 0-1 "Max cell voltage (mV)"
        cell_max_no=1,       # §3 0x91 byte 2 "Cell number with max voltage" (C5)
        cell_min_mv=3300,    # §3 0x91 bytes 3-4 "Min cell voltage (mV)"
        cell_min_no=1,       # §3 0x91 byte 5 "Cell number with min voltage"
        temp_max_c=25,       # §3 0x92 byte 0 "Max temperature (offset 40, °C)"
        temp_max_no=1,       # §3 0x92 byte 1 "Cell number with max temperature"
        temp_min_c=25,       # §3 0x92 byte 2 "Min temperature (offset 40, °C)"
        temp_min_no=1,       # §3 0x92 byte 3 "Cell number with min temperature"
        state=None,          # §3 0x93 byte 0 (0 stationary, 1 charge, 2 discharge); None: C11
        charge_mos=1,        # §3 0x93 byte 1 "Charge MOS status"
        discharge_mos=1,     # §3 0x93 byte 2 "Discharge MOS status"
        life=0,              # §3 0x93 byte 3 "BMS life (0-255 cycles)" (C4)
        remaining_mah=100000,  # §3 0x93 bytes 4-7 "Remaining capacity (mAh)"
        cells=16,            # §3 0x94 byte 0 "Number of battery strings"
        sensors=1,           # §3 0x94 byte 1 "Number of temperature sensors"
        charger=0,           # §3 0x94 byte 2 "Charger status (0 disconnected, 1 connected)"
        load=0,              # §3 0x94 byte 3 "Load status (0 disconnected, 1 connected)"
        dio=0,               # §3 0x94 byte 4 bits 0-3 DI1-DI4, 4-7 DO1-DO4
        cell_mv=None,        # §3 0x95 every cell (1 mV); None: derived from the extremes
        temps_c=None,        # §3 0x96 every sensor (offset 40); None: derived from the extremes
        balance=(),          # §3 0x97 cell numbers (1-48) balancing
        failures=(),         # §3 0x98 names of FAILURES
        fault_code=0,        # §3 0x98 byte 7 "Fault code"
    )

    def __init__(self, **kw):
        for k in kw:
            if k not in self.FIELDS:
                raise TypeError("unknown field %s" % k)
        for k, v in self.FIELDS.items():
            setattr(self, k, kw.get(k, v))

    def all_cells(self):
        if self.cell_mv is not None:
            return list(self.cell_mv)
        c = [(self.cell_max_mv + self.cell_min_mv) // 2] * self.cells
        c[self.cell_max_no - 1] = self.cell_max_mv
        c[self.cell_min_no - 1] = self.cell_min_mv
        return c

    def all_temps(self):
        if self.temps_c is not None:
            return list(self.temps_c)
        t = [(self.temp_max_c + self.temp_min_c) // 2] * self.sensors
        t[self.temp_max_no - 1] = self.temp_max_c
        t[self.temp_min_no - 1] = self.temp_min_c
        return t

    def mode(self):
        if self.state is not None:
            return self.state
        return 1 if self.current_a > 0 else 2 if self.current_a < 0 else 0


def _u16(v, what):
    v = int(round(v))
    if not 0 <= v <= 0xFFFF:
        raise ValueError("%s = %d does not fit 2 bytes" % (what, v))
    return v


def _u8(v, what):
    v = int(round(v))
    if not 0 <= v <= 0xFF:
        raise ValueError("%s = %d does not fit 1 byte" % (what, v))
    return v


def encode(data_id, s, life=None):
    """The answer data (a list of 8-byte blocks) of @data_id for State @s (§3)."""
    if data_id == 0x90:
        return [struct.pack(">HHHH", _u16(s.cumulative_v * 10, "cumulative voltage"),
                            _u16(s.gather_v * 10, "gather voltage"),
                            _u16(CURRENT_OFFSET - s.current_a * 10, "current"),  # C2
                            _u16(s.soc_pct * 10, "SOC"))]
    if data_id == 0x91:
        return [struct.pack(">HBHBxx", _u16(s.cell_max_mv, "max cell"), _u8(s.cell_max_no, "no"),
                            _u16(s.cell_min_mv, "min cell"), _u8(s.cell_min_no, "no"))]
    if data_id == 0x92:
        return [bytes([_u8(s.temp_max_c + TEMP_OFFSET, "max temperature"),
                       _u8(s.temp_max_no, "no"),
                       _u8(s.temp_min_c + TEMP_OFFSET, "min temperature"),
                       _u8(s.temp_min_no, "no"), 0, 0, 0, 0])]
    if data_id == 0x93:
        return [bytes([s.mode(), _u8(s.charge_mos, "charge MOS"),
                       _u8(s.discharge_mos, "discharge MOS"),
                       _u8(s.life if life is None else life, "life")]) +
                struct.pack(">I", s.remaining_mah)]
    if data_id == 0x94:
        return [bytes([_u8(s.cells, "cells"), _u8(s.sensors, "sensors"), _u8(s.charger, "c"),
                       _u8(s.load, "l"), _u8(s.dio, "dio"), 0, 0, 0])]
    if data_id == 0x95:   # 3 cells a frame, frame number from 0 (C6), at most 16 frames
        c = s.all_cells()[:48]
        out = []
        for n in range(0, len(c), 3):
            part = c[n:n + 3] + [0] * (3 - len(c[n:n + 3]))
            out.append(bytes([n // 3]) + struct.pack(">HHH", *[_u16(x, "cell") for x in part]) +
                       b"\0")
        return out
    if data_id == 0x96:   # 7 sensors a frame, frame number from 0, at most 3 frames
        t = s.all_temps()[:21]
        out = []
        for n in range(0, len(t), 7):
            part = [_u8(x + TEMP_OFFSET, "temperature") for x in t[n:n + 7]]
            out.append(bytes([n // 7] + part + [0] * (7 - len(part))))
        return out
    if data_id == 0x97:   # C7
        bits = 0
        for cell in s.balance:
            if not 1 <= cell <= 48:
                raise ValueError("balance cell %d outside 1-48" % cell)
            bits |= 1 << (cell - 1)
        return [bits.to_bytes(8, "little")]
    if data_id == 0x98:
        b = bytearray(8)
        for name in s.failures:
            byte, bit = FAILURE_BITS[name]
            b[byte] |= 1 << bit
        b[7] = _u8(s.fault_code, "fault code")
        return [bytes(b)]
    raise ValueError("data id 0x%02X not in §3" % data_id)


def decode(data_id, blocks):
    """The reverse of encode() for 0x90-0x94 and 0x98 (for the self-test and
    for reading another board): a dict in the document's units."""
    d = blocks[0]
    if data_id == 0x90:
        cum, gat, cur, soc = struct.unpack(">HHHH", d)
        return {"cumulative_v": cum / 10, "gather_v": gat / 10,
                "current_a": (CURRENT_OFFSET - cur) / 10, "soc_pct": soc / 10}
    if data_id == 0x91:
        hi, hin, lo, lon = struct.unpack(">HBHB", d[:6])
        return {"cell_max_mv": hi, "cell_max_no": hin, "cell_min_mv": lo, "cell_min_no": lon}
    if data_id == 0x92:
        return {"temp_max_c": d[0] - TEMP_OFFSET, "temp_max_no": d[1],
                "temp_min_c": d[2] - TEMP_OFFSET, "temp_min_no": d[3]}
    if data_id == 0x93:
        return {"state": d[0], "charge_mos": d[1], "discharge_mos": d[2], "life": d[3],
                "remaining_mah": struct.unpack(">I", d[4:8])[0]}
    if data_id == 0x94:
        return {"cells": d[0], "sensors": d[1], "charger": d[2], "load": d[3], "dio": d[4]}
    if data_id == 0x98:
        return {"failures": sorted(n for (b, k), n in FAILURES.items() if d[b] >> k & 1),
                "fault_code": d[7]}
    raise ValueError("no decoder for 0x%02X" % data_id)


class Board(object):
    """The board's logic, without a bus: handle() a received frame, get the
    answers (Frames) to send.  Thread-safe; the state may be replaced."""

    def __init__(self, state, board=BMS_MASTER):
        if board == 0 or board in HOSTS or not 0 < board <= 0xFF:
            raise ValueError("board number %d is no BMS address" % board)
        self.board = board
        self.lock = threading.Lock()
        self.state = state
        self.life = state.life
        self.valid = 0           # valid requests, any board
        self.mine = 0            # ... of them to this board (answered)
        self.other_board = 0     # ... of them to another board (not answered, §2.1)
        self.answers_seen = 0    # §2.3.2 answers of other boards
        self.invalid = []        # (time, reason, frame)
        self.requests = []       # (time, data id, destination) of each valid request
        self.sent = 0            # frames sent

    def set_state(self, state):
        with self.lock:
            self.state = state
            self.life = state.life

    def handle(self, f, now=None):
        now = time.monotonic() if now is None else now
        with self.lock:
            if is_answer(f):
                self.answers_seen += 1
                return []
            why = request_problem(f)
            if why is not None:
                self.invalid.append((now, why, repr(f)))
                return []
            _, did, dst, src = split_id(f.ident)
            self.valid += 1
            self.requests.append((now, did, dst))
            if dst != self.board:
                self.other_board += 1
                return []
            self.mine += 1
            life = None
            if did == 0x93:     # C4: the life counter moves at each answer
                life = self.life
                self.life = (self.life + 1) & 0xFF
            blocks = encode(did, self.state, life)
            ident = make_id(did, src, self.board)    # §2.3.2, C9
            self.sent += len(blocks)
            return [Frame(ident, b) for b in blocks]

    def counts(self):
        with self.lock:
            return {"valid": self.valid, "mine": self.mine, "other_board": self.other_board,
                    "invalid": len(self.invalid), "answers_seen": self.answers_seen,
                    "sent": self.sent}


class BoardOnBus(object):
    """A Board on a python-can socketcan interface, answering in a thread."""

    def __init__(self, iface, state, board=BMS_MASTER):
        import can   # python3-can; only needed on a bus
        self.can = can
        self.board = Board(state, board)
        self.bus = can.interface.Bus(interface="socketcan", channel=iface)
        self.running = True
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while self.running:
            try:
                m = self.bus.recv(0.1)
            except self.can.CanError:
                time.sleep(0.1)
                continue
            if m is None:
                continue
            f = Frame(m.arbitration_id, bytes(m.data), ext=m.is_extended_id,
                      rtr=m.is_remote_frame, err=m.is_error_frame,
                      fd=getattr(m, "is_fd", False), dlc=m.dlc)
            for a in self.board.handle(f):
                try:
                    self.bus.send(self.can.Message(arbitration_id=a.ident, data=a.data,
                                                   is_extended_id=True))
                except self.can.CanError:
                    pass

    def close(self):
        self.running = False
        self.t.join(timeout=2)
        self.bus.shutdown()


# ---------------------------------------------------------------------------
# self-test
# ---------------------------------------------------------------------------
def self_test():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyhelpers"))
    from tap import check, finish

    # §2.3.1/§2.3.2 the document's own example ids
    check("§2.3.1 example 0x18100140 = priority 0x18, data id 0x10, BMS 0x01, PC 0x40",
          split_id(0x18100140) == (0x18, 0x10, 0x01, 0x40))
    check("§2.3.2 example 0x18104001 = make_id(0x10, PC 0x40, BMS 0x01)",
          make_id(0x10, 0x40, 0x01) == 0x18104001)
    # Daly's page: "PC Software to BMS ... e.g. 0x18100140": its data id 0x10 is none of
    # §3's, so it is no request this board can answer
    check("the example's data id 0x10 is not a §3 data id (invalid)",
          "data id" in (request_problem(Frame(0x18100140, bytes(8))) or ""))

    # real answers (UART, same content, C1/C2/C4): tomatensaus/bms test_daly.py
    s = State(cumulative_v=51.5, gather_v=0, current_a=-50.0, soc_pct=82.4, cell_max_mv=3255,
              cell_max_no=7, cell_min_mv=3091, cell_min_no=5, temp_max_c=31, temp_max_no=1,
              temp_min_c=31, temp_min_no=1, charge_mos=1, discharge_mos=1, life=0x71,
              remaining_mah=0x000486C0, cells=16, sensors=1, dio=0x02)
    real = {0x90: "0203000077240338", 0x91: "0cb7070c1305", 0x92: "47014701",
            0x93: "02010171000486c0", 0x94: "1001000002"}
    for did, hexs in sorted(real.items()):
        got = encode(did, s)[0]
        want = bytes.fromhex(hexs)
        check("0x%02X encodes the real answer's defined bytes %s (tomatensaus/bms test_daly.py)"
              % (did, hexs), got[:len(want)] == want, got.hex())
    # ForrestFire0/GenericBMSArduino issue #4: "a5 01 90 08 01 01 00 00 75 30 01 46 2c"
    d = decode(0x90, [bytes.fromhex("0101000075300146")])
    check("0x90 '01 01 00 00 75 30 01 46' (GenericBMSArduino #4) = 25.7 V, 0 A, 32.6 %",
          d == {"cumulative_v": 25.7, "gather_v": 0.0, "current_a": 0.0, "soc_pct": 32.6}, d)
    # Daly's page: "secondary warning of low total voltage, Byte0 will display as 80"
    b = encode(0x98, State(failures=("Sum volt low level 2",)))[0]
    check("0x98 'Sum volt low level 2' = byte0 0x80 (Daly's page)", b == bytes([0x80] + [0] * 7),
          b.hex())
    b = encode(0x98, State(failures=("Diff volt level 1", "Low volt forbidden chg fault"),
                           fault_code=7))[0]
    check("0x98 bytes 3/6 bits and byte 7 fault code", b == bytes([0, 0, 0, 1, 0, 0, 8, 7]),
          b.hex())
    t = encode(0x92, State(temp_max_c=-3, temp_min_c=-15, temp_min_no=2, sensors=2))[0]
    check("0x92 sub-zero: -3 C -> 37, -15 C -> 25 (offset 40)", t[:4] == bytes([37, 1, 25, 2]))
    c = encode(0x90, State(current_a=12.3))[0]
    check("0x90 charging 12.3 A -> raw 29877 (C2)", c[4:6] == struct.pack(">H", 29877), c.hex())
    cells = [3300 + i for i in range(16)]
    fr = encode(0x95, State(cell_mv=cells))
    check("0x95 16 cells: 6 frames numbered 0-5, cell 16 in frame 5 slot 1, rest 0",
          [f[0] for f in fr] == list(range(6)) and fr[5][1:3] == struct.pack(">H", 3315) and
          fr[5][3:] == bytes(5), [f.hex() for f in fr])
    fr = encode(0x96, State(temps_c=list(range(-5, 4))))
    check("0x96 9 sensors: 2 frames, 7 + 2 temperatures", len(fr) == 2 and fr[1][:3] ==
          bytes([1, 42, 43]) and fr[0][1] == 35, [f.hex() for f in fr])
    fr = encode(0x97, State(balance=(1, 10, 48)))[0]
    check("0x97 cells 1, 10, 48 -> bits 0, 9, 47", fr == bytes([1, 2, 0, 0, 0, 0x80, 0, 0]),
          fr.hex())

    # the checks of a request: a board that accepts anything fails these
    brd = Board(State(cumulative_v=53.1, gather_v=53.1, soc_pct=77.7))
    good = Frame(make_id(0x90, 1, 0x40), bytes(8))
    out = brd.handle(good)
    check("a valid 0x90 request to board 1 is answered once, id 0x18904001, DLC 8",
          len(out) == 1 and out[0].ident == 0x18904001 and len(out[0].data) == 8,
          out)
    check("... with the state (53.1 V, 77.7 %)", decode(0x90, [out[0].data])["soc_pct"] == 77.7)
    bad = [
        ("11-bit id", Frame(0x190, bytes(8), ext=False)),
        ("priority 0x10", Frame(make_id(0x90, 1, 0x40, priority=0x10), bytes(8))),
        ("data id 0x99", Frame(make_id(0x99, 1, 0x40), bytes(8))),
        ("data id 0x10 (§2.3 example)", Frame(0x18100140, bytes(8))),
        ("PC address 0x41", Frame(make_id(0x90, 1, 0x41), bytes(8))),
        ("BMS address 0x00", Frame(make_id(0x90, 0, 0x40), bytes(8))),
        ("BMS address 0x40 (a host)", Frame(make_id(0x90, 0x40, 0x40), bytes(8))),
        ("DLC 7", Frame(make_id(0x90, 1, 0x40), bytes(7))),
        ("DLC 0", Frame(make_id(0x90, 1, 0x40), b"")),
        ("data not reserved 0", Frame(make_id(0x90, 1, 0x40), bytes([0, 0, 0, 0, 0, 0, 0, 1]))),
        ("remote frame", Frame(make_id(0x90, 1, 0x40), b"", rtr=True, dlc=8)),
        ("CAN FD", Frame(make_id(0x90, 1, 0x40), bytes(8), fd=True)),
    ]
    for name, f in bad:
        before = len(brd.invalid)
        out = brd.handle(f)
        check("invalid request (%s): counted invalid, not answered" % name,
              out == [] and len(brd.invalid) == before + 1, (out, brd.invalid[-1:]))
    out = brd.handle(Frame(make_id(0x90, 2, 0x40), bytes(8)))
    check("a valid request to board 2 is valid, not answered by board 1 (§2.1)",
          out == [] and brd.counts()["other_board"] == 1, brd.counts())
    out = brd.handle(Frame(make_id(0x90, 0x40, 2), bytes(8)))
    check("board 2's answer (0x18904002) is an answer seen: not invalid, not answered",
          out == [] and brd.counts()["answers_seen"] == 1, brd.counts())
    b2 = Board(State(), board=2)
    out = b2.handle(Frame(make_id(0x91, 2, 0x40), bytes(8)))
    check("board 2 answers its own request as 0x18914002", [o.ident for o in out] == [0x18914002])
    l1 = [b2.handle(Frame(make_id(0x93, 2, 0x40), bytes(8)))[0].data[3] for _ in range(3)]
    check("0x93 byte 3 life counter moves by one at each answer (C4)", l1 == [0, 1, 2], l1)
    out = b2.handle(Frame(make_id(0x95, 2, 0x40), bytes(8)))
    check("0x95 to a 16-cell board: 6 answers", len(out) == 6 and
          all(o.ident == 0x18954002 for o in out))
    c = brd.counts()
    check("counts: %d valid, %d invalid, %d answered" % (c["valid"], c["invalid"], c["mine"]),
          c == {"valid": 2, "mine": 1, "other_board": 1, "invalid": len(bad),
                "answers_seen": 1, "sent": 1}, c)
    try:
        encode(0x90, State(current_a=3001))
        ok = False
    except ValueError:
        ok = True
    check("a current beyond the 2-byte field is refused, not wrapped", ok)
    return finish()


def main(argv):
    if len(argv) >= 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) < 2 or argv[1].startswith("-"):
        sys.stderr.write("usage: %s IFACE [--board N] [--seconds S]\n       %s --self-test\n"
                         % (argv[0], argv[0]))
        return 2
    board, seconds = BMS_MASTER, 10.0
    args = argv[2:]
    while args:
        if args[0] == "--board" and len(args) > 1:
            board = int(args[1], 0)
        elif args[0] == "--seconds" and len(args) > 1:
            seconds = float(args[1])
        else:
            sys.stderr.write("unknown argument %s\n" % args[0])
            return 2
        args = args[2:]
    b = BoardOnBus(argv[1], State(cumulative_v=53.2, gather_v=53.1, current_a=-12.5,
                                  soc_pct=64.2, cell_max_mv=3340, cell_max_no=3,
                                  cell_min_mv=3310, cell_min_no=11, temp_max_c=24,
                                  temp_min_c=21, temp_min_no=2, sensors=2), board)
    try:
        time.sleep(seconds)
    finally:
        b.close()
    print(b.board.counts())
    for t, why, f in b.board.invalid[:20]:
        print("invalid: %s (%s)" % (f, why))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
