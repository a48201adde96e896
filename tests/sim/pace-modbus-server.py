#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A simulated bus of Pace BMS packs with the Modbus firmware, on a pty.

Answers the one read bmsbridge sends (function 0x03, registers 0-36) for
each pack address given, with the registers of "PACE BMS Modbus Protocol
for RS485" V1.3 section 4.1 built from the values given (document only:
no real exchange is published). Packs are told apart by their pack
voltage (+ address x 10 mV) and cells (+ address mV). A request for
another address, function or range gets nothing, as on a real bus.

Usage: pace-modbus-server.py LINK [--addresses 1,2] [--volts-cv 5290]
Prints "ready PTY" once LINK points at the pty. Commands on stdin, one a
line: "unplug N" (pack N stops answering), "plug N", "count" (reads
answered: "count N"), "quit".
"""
import argparse

from binsim import modbus_crc, serve


def answer(addr, a):
    """Section 4.1, register by register (0-36)."""
    regs = [0] * 37
    regs[0] = (-1234) & 0xFFFF        # current, 10 mA: 12.34 A out
    regs[1] = a.volts_cv + addr       # pack voltage, 10 mV
    regs[2], regs[3] = 87, 98         # SOC, SOH %
    regs[4], regs[5], regs[6] = 8700, 10000, 10500  # remaining, full, design, 10 mAh
    regs[7] = 123                     # cycles
    regs[11] = 0x0C00                 # charging and discharging MOSFET on
    for i in range(16):
        regs[15 + i] = 3300 + addr + (i % 3)  # cells, mV
    regs[31:35] = [250, 251, 249, 252]  # cell sensors, 0.1 degC
    regs[35], regs[36] = 300, 280     # MOSFET, environment
    body = bytes([addr, 0x03, 74]) + b"".join(r.to_bytes(2, "big") for r in regs)
    return body + modbus_crc(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("link")
    ap.add_argument("--addresses", default="1")
    ap.add_argument("--volts-cv", type=int, default=5290)
    a = ap.parse_args()

    addrs = [int(x, 0) for x in a.addresses.split(",")]
    answers = {n: answer(n, a) for n in addrs}

    def reply(req):
        if modbus_crc(req[:6]) != req[6:8]:
            return None
        if req[1:6] != bytes([0x03, 0, 0, 0, 37]):
            return req[0], None, None  # another read: nothing, as on a real bus
        return req[0], 0, answers.get(req[0])

    serve(a.link, addrs, 8, reply)

if __name__ == "__main__":
    main()
