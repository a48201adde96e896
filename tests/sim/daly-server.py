#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A simulated bus of Daly BMS boards on a pty, for the integration tests.

Answers the 13-byte read requests of Daly's "UART/485 Communications
Protocol" V1.2 (maland16/daly-bms-uart docs/, sections 2.3 and 3) for
each board address given: a request to board n carries host address
0x3F + n, its answer address byte n (multi-board addressing as in
mr-manuel/venus-os_dbus-serialbattery dbus-serialbattery/bms/daly.py).

By default every board answers 0x90-0x98 with one real poll round of a
Daly R24TS, 14 cells, 2 sensors (the "live R24TS capture" in
20233332choi/DJY_EvTLMT tests/test_daly_bms.py: 53.0 V; 0x95 is five
frames, 0x96 one; for boards other than 1 the address byte and checksum
are rewritten). With --encode the answers are built from the values
given, 0x95 and 0x96 as the multi-frame answers V1.2 section 3 describes
(frames numbered from 1, as every real board does).

Usage: daly-server.py LINK [--addresses 1,2] [--encode] [--cells N]
                       [--cell-mv MV] [--current-ma MA] [--soc PCT]
                       [--temp-c C]
Prints "ready PTY" once LINK points at the pty. Commands on stdin, one a
line: "unplug N" (board N stops answering), "plug N", "count ID" (how
many requests with data ID ID, e.g. 0x95, were answered: "count ID N"),
"quit".
"""
import argparse

from binsim import serve

CAPTURE = {
    0x90: ["A5 01 90 08 02 12 00 00 75 30 02 00 F9"],
    0x91: ["A5 01 91 08 0E D2 02 0E CE 01 00 00 FE"],
    0x92: ["A5 01 92 08 38 01 38 01 00 00 00 00 B2"],
    0x93: ["A5 01 93 08 00 01 01 ED 00 00 A0 00 D0"],
    0x94: ["A5 01 94 08 0E 02 00 00 00 00 00 3A 8C"],
    0x95: ["A5 01 95 08 01 0E CE 0E D2 0E D1 00 DF",
           "A5 01 95 08 02 0E CF 0E D1 0E D1 00 E0",
           "A5 01 95 08 03 0E D1 0E D1 0E D2 00 E4",
           "A5 01 95 08 04 0E D2 0E D2 0E CF 00 E4",
           "A5 01 95 08 05 0E D1 0E CF 00 00 00 04"],
    0x96: ["A5 01 96 08 01 38 38 00 00 FF FF FF B2"],
    0x97: ["A5 01 97 08 00 00 00 00 00 00 00 00 45"],
    0x98: ["A5 01 98 08 00 00 00 00 00 00 00 00 46"],
}


def frame(addr, cmd, data):
    """V1.2 section 2.3: A5, address, ID, 8, data, low byte of the sum."""
    b = bytes([0xA5, addr, cmd, 8]) + bytes(data).ljust(8, b"\0")[:8]
    return b + bytes([sum(b) & 0xFF])


def captured(addr):
    out = {}
    for cmd, frames in CAPTURE.items():
        out[cmd] = b"".join(frame(addr, cmd, bytes.fromhex(h)[4:12]) for h in frames)
    return out


def encoded(addr, a):
    """Answers built from values, V1.2 section 3 field by field."""
    cells = [a.cell_mv + addr] * a.cells  # boards told apart by 1 mV
    total_dv = sum(cells) // 100
    raw_current = 30000 - a.current_ma // 100  # below 30000: charging
    temp = a.temp_c + 40
    out = {
        0x90: frame(addr, 0x90, total_dv.to_bytes(2, "big") + bytes(2)
                    + raw_current.to_bytes(2, "big") + (a.soc * 10).to_bytes(2, "big")),
        0x91: frame(addr, 0x91, max(cells).to_bytes(2, "big") + bytes([1])
                    + min(cells).to_bytes(2, "big") + bytes([a.cells])),
        0x92: frame(addr, 0x92, bytes([temp, 1, temp, 1])),
        0x93: frame(addr, 0x93, bytes([1 if a.current_ma > 0 else 2 if a.current_ma < 0
                                       else 0, 1, 1, 0])
                    + (100000 * a.soc // 100).to_bytes(4, "big")),
        0x94: frame(addr, 0x94, bytes([a.cells, 1, 0, 0, 0]) + (12).to_bytes(2, "big")),
        0x97: frame(addr, 0x97, bytes(8)),
        0x98: frame(addr, 0x98, bytes(8)),
    }
    cell_frames = b""
    for i in range(0, a.cells, 3):
        data = bytes([i // 3 + 1]) + b"".join(c.to_bytes(2, "big") for c in cells[i:i + 3])
        cell_frames += frame(addr, 0x95, data)
    out[0x95] = cell_frames
    out[0x96] = frame(addr, 0x96, bytes([1, temp]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("link")
    ap.add_argument("--addresses", default="1")
    ap.add_argument("--encode", action="store_true")
    ap.add_argument("--cells", type=int, default=16)
    ap.add_argument("--cell-mv", type=int, default=3300)
    ap.add_argument("--current-ma", type=int, default=-12300)
    ap.add_argument("--soc", type=int, default=55)
    ap.add_argument("--temp-c", type=int, default=21)
    a = ap.parse_args()

    addrs = [int(x, 0) for x in a.addresses.split(",")]
    answers = {n: (encoded(n, a) if a.encode else captured(n)) for n in addrs}

    def reply(req):
        if req[0] != 0xA5 or req[3] != 8 or (sum(req[:12]) & 0xFF) != req[12]:
            return None
        n = req[1] - 0x3F
        return n, req[2], answers[n].get(req[2]) if n in answers else None

    serve(a.link, addrs, 13, reply)

if __name__ == "__main__":
    main()
