#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Simulated Seplos V2 packs on RS485 (Seplos V2.0 protocol): packs at the
given DIP addresses (0-15) answer 0x42 telemetry with the values of the
real answer in syssi/esphome-seplos-bms README.md ("Protocol"; decoded in
its tests/components/seplos_bms/frames.h) -- byte for byte at address 0
(--selftest) -- and 0x44 with the all-normal answer of pack 1 of a real
12-pack system, firmware 16.06 (privatecoder/openbms-monitor
crates/openbms-proto/tests/captures.rs; byte for byte at address 1). At
another address cell 1 and the total voltage are raised by ADR mV / 10 mV.
Anything else gets RTN 0x04. Commands: see ydt1363.py.
Usage: seplos-v2-server.py [--link PATH] ADDR...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ydt1363 as y  # noqa: E402

CELLS = [3287, 3305, 3316, 3286, 3311, 3301, 3297, 3292, 3305, 3312, 3304, 3311, 3306, 3290,
         3294, 3288]
TEMPS_DC = [251, 245, 236, 251, 250, 247]  # cells 1-4, environment, power (Table 8)


def telemetry(adr):
    cells = [CELLS[0] + adr] + CELLS[1:]
    info = bytes([0x00, 0x01, len(cells)]) + b"".join(y.u16(c) for c in cells)
    info += bytes([len(TEMPS_DC)]) + b"".join(y.temp_k(t, 2731) for t in TEMPS_DC)
    # -6.76 A, 52.80 V, 133.90 Ah, P = 10, 170 Ah, SOC 78.7 %, 180 Ah, 70 cycles,
    # SOH 100.0 %, port 52.79 V, 4 reserved (Table 8, units Table 9)
    info += y.u16(-676) + y.u16(5280 + adr) + y.u16(13390) + b"\x0A" + y.u16(17000)
    info += y.u16(787) + y.u16(18000) + y.u16(70) + y.u16(1000) + y.u16(5279) + bytes(8)
    return info


def alarms(adr):
    # Table 11: 16 cell bytes, 6 temperature bytes, current, voltage, P = 20 bit fields
    ev = bytearray(20)
    ev[6] = 0x03  # on-off state: discharge and charge switch on
    ev[9] = 0x02  # system state: charge
    ev[19] = 0x02  # the last reserved byte, as the fw 16.06 pack sends it
    return bytes([0x00, 0x01, 16]) + bytes(16) + bytes([6]) + bytes(6) + bytes(2) + \
        bytes([20]) + bytes(ev)


ANSWERS = {0x42: telemetry, 0x44: alarms}

CAPTURED_42 = ("~2000460010960001100CD70CE90CF40CD60CEF0CE50CE10CDC0CE90CF00CE80CEF0CEA0CDA0CDE"
               "0CD8060BA60BA00B970BA60BA50BA2FD5C14A0344E0A426803134650004603E8149F000000000000"
               "0000DC6C\r")


CAPTURED_44_ADR1 = ("~20014600806200011000000000000000000000000000000000060000000000000000140000"
                    "000000000300000200000000000000000002EB2F\r")


def selftest():
    got = y.frame(0x20, 0x00, 0x00, telemetry(0)).decode()
    assert got == CAPTURED_42, got
    got = y.frame(0x20, 0x01, 0x00, alarms(1)).decode()
    assert got == CAPTURED_44_ADR1, got
    assert len(alarms(0)) == 49  # §4.2.2 "INFO is 49 bytes"
    print("selftest ok")


if __name__ == "__main__":
    if sys.argv[1:] == ["--selftest"]:
        selftest()
    else:
        y.serve("seplos-v2-server", 0x20, ANSWERS)
