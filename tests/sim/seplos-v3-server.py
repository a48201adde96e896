#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A simulated bus of Seplos V3 packs (XZH Modbus RTU) on a pty.

Answers function 0x04 reads of PIA (0x1000, 17 registers) and PIB
(0x1100, 26 registers) and function 0x01 reads of PIC (0x1200, 144 coils)
of the XZH "BMS Modbus RTU Protocol" V0.1 (syssi/esphome-seplos-bms
docs/, sections 2.2, 2.4 and 3) for each node address given; any other
read gets the exception answer "illegal data address" (section 2.6), as
the real boards do.

By default PIA and PIB are the real answers of an SG16S200A-SP57B-A in
esphome-seplos-bms docs/pdus/v3/SG16S200A-SP57B-A-all-frames.txt (lines
26 and 29; for other addresses the address byte and CRC are rewritten)
and PIC says "both FETs on, no event" (built per section 3, TB07). With
--encode all three are built from the values given.

Usage: seplos-v3-server.py LINK [--addresses 1,2] [--encode] [--cells N]
                            [--cell-mv MV] [--current-ma MA] [--soc PCT]
                            [--temp-c C]
Prints "ready PTY" once LINK points at the pty. Commands on stdin, one a
line: "unplug N", "plug N", "quit".
"""
import argparse

from binsim import modbus_crc, serve

PIA = ("01.04.22.14.CD.FF.77.6B.40.80.E8.01.22.03.40.03.E7.00.0A.0C.FF.0B.7F.0D.00.0C.FF."
       "0B.81.0B.7E.00.00.00.B4.00.B4.D3.2E")
PIB = ("01.04.34.0C.FF.0C.FF.0D.00.0D.00.0D.00.0C.FF.0D.00.0C.FF.0D.00.0D.00.0D.00.0D.00."
       "0D.00.0C.FF.0C.FF.0D.00.0B.82.0B.7F.0B.81.0B.7E.0A.AB.0A.AB.0A.AB.0A.AB.0B.8C.0B.7F."
       "01.13")


def answer(addr, fn, data):
    b = bytes([addr, fn, len(data)]) + data
    return b + modbus_crc(b)


def pic(fets):
    data = bytearray(18)
    data[15] = fets  # 0x1278 TB07: bit 0 discharge FET, bit 1 charge FET
    return bytes(data)


def regs(values):
    return b"".join((v & 0xFFFF).to_bytes(2, "big") for v in values)


def captured(addr):
    pia = bytes.fromhex(PIA.replace(".", " "))[3:-2]
    pib = bytes.fromhex(PIB.replace(".", " "))[3:-2]
    return {(0x04, 0x1000, 0x11): answer(addr, 0x04, pia),
            (0x04, 0x1100, 0x1A): answer(addr, 0x04, pib),
            (0x01, 0x1200, 0x90): answer(addr, 0x01, pic(0x03))}


def encoded(addr, a):
    cells = [a.cell_mv + addr] * a.cells + [0] * (16 - a.cells)
    k = a.temp_c * 10 + 2731
    full = 10000  # 100 Ah in 10 mAh
    pia = regs([sum(cells) // 10, a.current_ma // 10, full * a.soc // 100, full, 0,
                a.soc * 10, 1000, 7, a.cell_mv, k, max(cells), min(c for c in cells if c),
                k, k, 0, 100, 100])
    pib = regs(cells + [k, k, k, k, 2731, 2731, 2731, 2731, k, k])
    return {(0x04, 0x1000, 0x11): answer(addr, 0x04, pia),
            (0x04, 0x1100, 0x1A): answer(addr, 0x04, pib),
            (0x01, 0x1200, 0x90): answer(addr, 0x01, pic(0x03))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("link")
    ap.add_argument("--addresses", default="1")
    ap.add_argument("--encode", action="store_true")
    ap.add_argument("--cells", type=int, default=16)
    ap.add_argument("--cell-mv", type=int, default=3300)
    ap.add_argument("--current-ma", type=int, default=-4560)
    ap.add_argument("--soc", type=int, default=66)
    ap.add_argument("--temp-c", type=int, default=22)
    a = ap.parse_args()

    addrs = [int(x, 0) for x in a.addresses.split(",")]
    answers = {n: (encoded(n, a) if a.encode else captured(n)) for n in addrs}

    def reply(req):
        # requests: addr, fn, start, count, CRC (section 2.2.1 / 2.4.1)
        if req[1] not in (0x01, 0x04) or modbus_crc(req[:6]) != req[6:8]:
            return None
        n = req[0]
        if n not in answers:
            return n, None, None
        key = (req[1], int.from_bytes(req[2:4], "big"), int.from_bytes(req[4:6], "big"))
        if key in answers[n]:
            return n, key[1], answers[n][key]
        exc = bytes([n, req[1] | 0x80, 0x02])
        return n, None, exc + modbus_crc(exc)

    serve(a.link, addrs, 8, reply)

if __name__ == "__main__":
    main()
