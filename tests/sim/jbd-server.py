#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A simulated JBD / LLT BMS on a pty, for the integration tests.

Answers the 0xDD read requests 0x03 (basic information), 0x04 (cell
voltages) and 0x05 (hardware name) of the Jiabaida "General Protocol V4"
(syssi/esphome-jbd-bms docs/Jiabaida.communication.protocol.pdf, sections
2 and 3). The JBD UART carries no address: one BMS per port, so the
address in the unplug/plug commands is accepted and must be 1.

By default the answers are the real ones of a JBD-SP04S034-L4S-200A-B-U
(sw 8.0) in esphome-jbd-bms docs/pdus/JBD-SP04S034-L4S-200A-B-U.txt. With
--encode the server builds its answers from the values given instead.

Usage: jbd-server.py LINK [--encode] [--cells N] [--cell-mv MV]
                      [--current-ma MA] [--soc PCT] [--temps-dc T,T..]
Prints "ready PTY" once LINK points at the pty. Commands on stdin, one a
line: "unplug 1" (stop answering), "plug 1", "quit".
"""
import argparse

from binsim import serve

CAPTURE = {
    0x03: "DD 03 00 1D 06 18 00 00 01 F2 01 F4 00 00 2C 7C 00 00 00 00 00 00 80 64 "
          "03 04 03 0B 8B 0B 8A 0B 84 FA 8D 77",
    0x04: "DD 04 00 08 0F 45 0F 3D 0F 37 0F 3D FE C6 77",
    0x05: "DD 05 00 19 4A 42 44 2D 53 50 30 34 53 30 33 34 2D 4C 34 53 2D 32 30 30 "
          "41 2D 42 2D 55 FA 08 77",
}


def checksum(span):
    """V4 section 2: two's complement of the byte sum, big endian."""
    s = (-sum(span)) & 0xFFFF
    return bytes([s >> 8, s & 0xFF])


def frame(cmd, data):
    body = bytes([0x00, len(data)]) + data
    return bytes([0xDD, cmd]) + body + checksum(body) + b"\x77"


def encoded(args):
    """Answers built from values, V4 section 3 field by field."""
    cells = [args.cell_mv] * args.cells
    temps = [int(t) for t in args.temps_dc.split(",")] if args.temps_dc else []
    volt_10mv = sum(cells) // 10
    full = 100000 // 10  # 100 Ah in 10 mAh
    basic = b"".join([
        volt_10mv.to_bytes(2, "big"),
        (args.current_ma // 10).to_bytes(2, "big", signed=True),
        (full * args.soc // 100).to_bytes(2, "big"),
        full.to_bytes(2, "big"),
        (12).to_bytes(2, "big"),      # cycles
        (0x2C7C).to_bytes(2, "big"),  # production date
        bytes(4),                     # balance bits 1-16, 17-32
        bytes(2),                     # protection status
        bytes([0x80, args.soc, 0x03, len(cells), len(temps)]),
        b"".join((t + 2731).to_bytes(2, "big") for t in temps),
    ])
    return {
        0x03: frame(0x03, basic),
        0x04: frame(0x04, b"".join(c.to_bytes(2, "big") for c in cells)),
        0x05: frame(0x05, b"BMSBRIDGE-SIM"),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("link")
    ap.add_argument("--encode", action="store_true")
    ap.add_argument("--cells", type=int, default=16)
    ap.add_argument("--cell-mv", type=int, default=3300)
    ap.add_argument("--current-ma", type=int, default=-12340)
    ap.add_argument("--soc", type=int, default=55)
    ap.add_argument("--temps-dc", default="215,223")
    args = ap.parse_args()

    if args.encode:
        answers = encoded(args)
    else:
        answers = {k: bytes.fromhex(v) for k, v in CAPTURE.items()}

    def reply(req):
        # requests: DD A5 cmd 00 chk chk 77 (V4 section 3)
        if (req[0] != 0xDD or req[1] != 0xA5 or req[3] != 0 or req[6] != 0x77
                or req[4:6] != checksum(req[2:4])):
            return None
        return 1, req[2], answers.get(req[2])

    serve(args.link, [1], 7, reply)

if __name__ == "__main__":
    main()
