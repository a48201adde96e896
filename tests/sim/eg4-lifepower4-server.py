#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Simulated EG4 LifePower4 packs (LifePower4 Battery Communication
Protocol: VER 0x20, CID1 0x4A, requests without INFO): packs at the given
DIP addresses (1-15) answer 0x42 (§2.1) and 0x44 (§2.2) with the values of
the real exchange in nkinnan/esphome-pace-bms components/pace_bms/
pace_bms_protocol_v20.cpp ("EG4 variant", exampleRead{Analog,Status}
InformationResponseV20, a 16S pack at address 1) -- byte for byte at
address 1 (--selftest). At another address cell 1 is raised by (ADR - 1)
mV and the pack voltage by (ADR - 1) x 10 mV. Anything else gets RTN 0x04.
Commands: see ydt1363.py.
Usage: eg4-lifepower4-server.py [--link PATH] ADDR...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ydt1363 as y  # noqa: E402

CID1 = 0x4A
CELLS = [3375, 3372, 3372, 3373, 3373, 3375, 3375, 3375, 3372, 3373, 3373, 3375, 3376, 3372,
         3376, 3372]
TEMPS_DC = [240, 250, 240, 240]  # the four cell sensors (§2.1 items 21-24)
ENV_DC, MOSFET_DC = 270, 260     # items 25, 26


def u32(v):
    return (v & 0xFFFFFFFF).to_bytes(4, "big")


def analog(adr):
    d = adr - 1
    cells = [CELLS[0] + d] + CELLS[1:]
    # items 1-3: DATA_FLAG as the real pack sends it (0x10), PACK Group 1, M
    info = bytes([0x10, 0x01, len(cells)]) + b"".join(y.u16(c) for c in cells)
    info += bytes([len(TEMPS_DC)]) + b"".join(y.temp_k(t, 2731) for t in TEMPS_DC)
    info += y.temp_k(ENV_DC, 2731) + y.temp_k(MOSFET_DC, 2731)
    # 6.69 A (10 mA), 53.97 V (10 mV), 86.17 Ah, 98.60 Ah, 84 cycles, UD 15, SOC 87, SOH 98
    info += y.u16(669) + y.u16(5397 + d) + y.u16(8617) + y.u16(9860) + y.u16(84) + b"\x0f"
    info += y.u16(87) + y.u16(98)
    # items 35-39: max / min cell, difference, max / min temperature
    info += y.u16(max(cells)) + y.u16(min(cells)) + y.u16(max(cells) - min(cells))
    info += y.temp_k(max(TEMPS_DC), 2731) + y.temp_k(min(TEMPS_DC), 2731)
    # items 40-47, the real pack's counters
    for v in (0x000ADAC0, 0x000A5455, 0x0005D473, 0x000570A6, 0x00000680, 0x000004CA):
        info += u32(v)
    return info + y.u16(0x5689) + y.u16(0x7E24)


def alarm(adr):
    # §2.2: no alarm, user-defined 9, FET status 03 (both MOS on), system status 02 (charging)
    return bytes([0x10, 0x01, 16]) + bytes(16) + bytes([4]) + bytes(4) + bytes(4) + \
        bytes([0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x02]) + bytes(5)


ANSWERS = {0x42: analog, 0x44: alarm}

CAPTURED = {
    0x42: "~20014A00A0CA1001100D2F0D2C0D2C0D2D0D2D0D2F0D2F0D2F0D2C0D2D0D2D0D2F0D300D2C0D300D2C"
          "040B9B0BA50B9B0B9B0BB90BAF029D151521A9268400540F005700620D300D2C00040BA50B9B000ADAC0"
          "000A54550005D473000570A600000680000004CA56897E24D1A5\r",
    0x44: "~20014A007054100110000000000000000000000000000000000400000000000000000900000000000003"
          "020000000000EDC3\r",
}


def selftest():
    for cid2, want in CAPTURED.items():
        got = y.frame(0x20, 0x01, 0x00, ANSWERS[cid2](0x01), cid1=CID1).decode()
        assert got == want, (hex(cid2), got, want)
    print("selftest ok")


if __name__ == "__main__":
    if sys.argv[1:] == ["--selftest"]:
        selftest()
    else:
        y.serve("eg4-lifepower4-server", 0x20, ANSWERS, cid1=CID1)
