#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A simulated bus of EG4-LL packs on their RS485 Modbus port, on a pty.

Answers the one read bmsbridge sends (function 0x03, registers 0-38) for
each pack address given, with the registers of "EG4-LL Battery MODBUS
Protocol" V01.06 section 3 built from the values given (document only: no
real exchange with what the pack showed is published). Address 16 (0x10)
is the master pack of section 1.3. Packs are told apart by their pack
voltage (53.20 V + 10 mV for address 1, + 20 mV for the others) and cells
(+ address mV). A request for another address, function or range gets
nothing, as on a real bus.

Usage: eg4-ll-server.py LINK [--addresses 1,16] [--volts-cv 5320]
Prints "ready PTY" once LINK points at the pty. Commands on stdin, one a
line: "unplug N" (pack N stops answering), "plug N", "count" (reads
answered: "count N"), "quit".
"""
import argparse

from binsim import modbus_crc, serve


def answer(addr, a):
    """Section 3, register by register (0-38)."""
    regs = [0] * 39
    regs[0] = a.volts_cv + (1 if addr == 1 else 2)  # pack voltage, 10 mV
    regs[1] = (-1234) & 0xFFFF        # current, 10 mA: 12.34 A out
    for i in range(16):
        regs[2 + i] = 3320 + addr + (i % 3)  # cells, mV
    regs[18], regs[19], regs[20] = 31, 25, 27  # PCB, avg, max degC
    regs[21], regs[22] = 87, 100      # Cap Remaining, Max charging Current (no unit)
    regs[23], regs[24] = 98, 87       # SOH, SOC %
    regs[25] = 0x0002                 # status: discharging
    regs[29], regs[30] = 0, 123       # cycles, ULONG
    full = 100 * 1000 * 3600          # 100 Ah in mAs
    regs[31], regs[32] = full >> 16, full & 0xFFFF
    regs[33], regs[34], regs[35] = 0x1918, 0x1A17, 0  # sensors 25 24 26 23, two unfitted
    regs[36] = 16                     # cells in the string
    regs[37] = 1000                   # designed capacity, 0.1 Ah
    body = bytes([addr, 0x03, 78]) + b"".join(r.to_bytes(2, "big") for r in regs)
    return body + modbus_crc(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("link")
    ap.add_argument("--addresses", default="1")
    ap.add_argument("--volts-cv", type=int, default=5320)
    a = ap.parse_args()

    addrs = [int(x, 0) for x in a.addresses.split(",")]
    answers = {n: answer(n, a) for n in addrs}

    def reply(req):
        if modbus_crc(req[:6]) != req[6:8]:
            return None
        if req[1:6] != bytes([0x03, 0, 0, 0, 39]):
            return req[0], None, None  # another read: nothing, as on a real bus
        return req[0], 0, answers.get(req[0])

    serve(a.link, addrs, 8, reply)


if __name__ == "__main__":
    main()
