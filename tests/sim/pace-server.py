#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Simulated PACE BMS packs (paceic V2.5, PACE-RS232-TY16S): packs at the
given switch addresses (0-15) answer 0x42 and 0x44 with the values of the
example exchange in nkinnan/esphome-pace-bms components/pace_bms/
pace_bms_protocol_v25.cpp (exampleRead{Analog,Status}InformationResponseV25,
a 16S pack at address 1) -- byte for byte at address 1 (--selftest). At
another address cell 1 and the total voltage are raised by (ADR - 1) mV.
Anything else gets RTN 0x04. Commands: see ydt1363.py.
Usage: pace-server.py [--link PATH] ADDR...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ydt1363 as y  # noqa: E402

CELLS = [3271, 3272, 3271, 3271, 3271, 3269, 3270, 3271, 3271, 3270, 3271, 3270, 3270, 3271,
         3270, 3271]
TEMPS_DC = [241, 239, 239, 239, 265, 274]  # cells 1-4, MOSFET, environment


def analog(adr):
    d = adr - 1
    cells = [CELLS[0] + d] + CELLS[1:]
    info = bytes([0x00, adr, len(cells)]) + b"".join(y.u16(c) for c in cells)
    info += bytes([len(TEMPS_DC)]) + b"".join(y.temp_k(t, 2730) for t in TEMPS_DC)
    # -2.25 A (10 mA), 52.429 V (mV), 48.19 Ah, P = 3, 103.46 Ah, 140 cycles, 100 Ah design
    info += y.u16(-225) + y.u16(52429 + d) + y.u16(4819) + b"\x03" + y.u16(10346)
    return info + y.u16(140) + y.u16(10000)


def warn(adr):
    # Char A.18: all normal, instructions state 0x0E (pack, DFET, CFET)
    return bytes([0x00, adr, 16]) + bytes(16) + bytes([6]) + bytes(6) + bytes(3) + \
        bytes([0x00, 0x00, 0x0E, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00])


ANSWERS = {0x42: analog, 0x44: warn}

CAPTURED = {
    0x42: "~25014600F07A0001100CC70CC80CC70CC70CC70CC50CC60CC70CC70CC60CC70CC60CC60CC70CC60CC7"
          "060B9B0B990B990B990BB30BBCFF1FCCCD12D303286A008C2710E1E4\r",
    0x44: "~25014600004C000110000000000000000000000000000000000600000000000000000000000E0000"
          "00000000EF3A\r",
}


def selftest():
    for cid2, want in CAPTURED.items():
        got = y.frame(0x25, 0x01, 0x00, ANSWERS[cid2](0x01)).decode()
        assert got == want, (hex(cid2), got, want)
    print("selftest ok")


if __name__ == "__main__":
    if sys.argv[1:] == ["--selftest"]:
        selftest()
    else:
        y.serve("pace-server", 0x25, ANSWERS)
