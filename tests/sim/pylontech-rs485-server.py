#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Simulated Pylontech stack on RS485 (V3.3): packs at the given ADRs
(pack #1 = 0x02) answer 0x4F, 0x42, 0x44, 0x47 and 0x92 with the values of
the real US2000B Plus exchange in tests/data/pylontech-rs485-us2000bplus.txt
(Tomcat42/pylontech-python examples/lowLevelRS485/output.txt); at ADR 0x02
every answer is the captured frame byte for byte (--selftest checks it),
at another ADR cell 1 and the module voltage are raised by (ADR - 2) mV so
that two packs tell apart. Anything else gets RTN 0x04. Commands: see
ydt1363.py. Usage: pylontech-rs485-server.py [--link PATH] ADDR...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ydt1363 as y  # noqa: E402

CELLS = [3359, 3360, 3360, 3360, 3360, 3360, 3361, 3360, 3360, 3361, 3362, 3360, 3362, 3362,
         3361]
TEMPS_DC = [290, 260, 260, 260, 260]  # BMS board first (V3.3 §3.3)


def analog(adr):
    d = adr - 2
    cells = [CELLS[0] + d] + CELLS[1:]
    info = bytes([0x00, adr, len(cells)]) + b"".join(y.u16(c) for c in cells)
    info += bytes([len(TEMPS_DC)]) + b"".join(y.temp_k(t, 2731) for t in TEMPS_DC)
    # current 2.1 A (100 mA), voltage mV, remain 35.5 Ah, P = 2, total 50 Ah, 79 cycles
    return info + y.u16(21) + y.u16(50408 + d) + y.u16(35500) + b"\x02" + y.u16(50000) + y.u16(79)


def alarms(adr):
    # all normal; Status 2 0x0E (MOSFETs on, using battery), Status 3 0x80 (charging)
    return bytes([0x00, adr, 15]) + bytes(15) + bytes([5]) + bytes(5) + bytes(3) + \
        bytes([0x00, 0x0E, 0x80, 0x00, 0x00])


def parameters(adr):
    # the captured 0x47 DATAI as it is (V3.3 §3.4)
    return bytes.fromhex("110E420BEA0B540D0D0A3D03FCD2F0B3B0ADD40D0D0A3DFC18")


def management(adr):
    # 53.25 V, 47.0 V, 25.0 A, -25.0 A, charge + discharge enable (V3.3 §3.6)
    return bytes([adr]) + y.u16(53250) + y.u16(47000) + y.u16(250) + y.u16(-250) + b"\xC0"


ANSWERS = {0x4F: lambda adr: b"", 0x42: analog, 0x44: alarms, 0x47: parameters,
           0x92: management}

CAPTURED = {
    0x4F: "~200246000000FDB2\r",
    0x42: "~20024600C06E00020F0D1F0D200D200D200D200D200D210D200D200D210D220D200D220D220D21"
          "050BCD0BAF0BAF0BAF0BAF0015C4E88AAC02C350004FE594\r",
    0x44: "~20024600C04000020F000000000000000000000000000000050000000000000000000E800000F161\r",
    0x47: "~20024600B032110E420BEA0B540D0D0A3D03FCD2F0B3B0ADD40D0D0A3DFC18F23D\r",
    0x92: "~20024600B01402D002B79800FAFF06C0F92D\r",
}


def selftest():
    for cid2, want in CAPTURED.items():
        got = y.frame(0x20, 0x02, 0x00, ANSWERS[cid2](0x02)).decode()
        assert got == want, (hex(cid2), got, want)
    print("selftest ok")


if __name__ == "__main__":
    if sys.argv[1:] == ["--selftest"]:
        selftest()
    else:
        y.serve("pylontech-rs485-server", 0x20, ANSWERS)
