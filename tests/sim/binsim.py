# SPDX-License-Identifier: MIT
"""Shared core of the simulated binary BMS buses (JBD, Daly, Seplos V3,
Pace Modbus, EG4-LL), and the Modbus CRC of the Modbus ones, as tests/sim/ydt1363.py is for the "~...\\r" ones: the pty,
the symlink, the loop over the bus and stdin, the plug state and the
counts. A family script gives the request length and one function:

    reply(req) -> None                 not a request: drop one byte, resync
               -> (address, key, ans)  a request for @address; @ans the bytes
                                       to answer (None: stay silent), @key
                                       what "count" counts it under

Commands on stdin, one a line:

    unplug ADDR | plug ADDR   the pack stops / resumes answering ("ok ...")
    count [KEY]               answers sent, in all or under KEY (0x-hex or
                              decimal): "count [KEY] N"
    quit

serve() prints "ready PTY" once LINK points at the pty. python3 stdlib only.
"""
import os
import select
import sys
import tty


def modbus_crc(b):
    """The Modbus CRC-16 of @b ("MODBUS over Serial Line" V1.02 §6.2.2),
    as the two bytes that follow it on the wire, low byte first."""
    crc = 0xFFFF
    for x in b:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return bytes([crc & 0xFF, crc >> 8])


def serve(link, addresses, request_len, reply):
    plugged = set(addresses)
    answered = {}

    master, slave = os.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    try:
        os.unlink(link)
    except FileNotFoundError:
        pass
    os.symlink(name, link)
    print("ready", name, flush=True)

    buf = b""
    stdin_open = True
    try:
        while True:
            fds = [master] + ([sys.stdin] if stdin_open else [])
            rd, _, _ = select.select(fds, [], [], 1.0)
            if sys.stdin in rd:
                line = sys.stdin.readline()
                if not line:
                    stdin_open = False
                    continue
                w = line.split()
                if not w:
                    continue
                try:
                    arg = int(w[1], 0) if len(w) == 2 else None
                except ValueError:
                    arg = None
                if w[0] == "quit":
                    break
                if w[0] == "count" and len(w) == 1:
                    print("count", sum(answered.values()), flush=True)
                elif w[0] == "count" and arg is not None:
                    print("count", w[1], answered.get(arg, 0), flush=True)
                elif w[0] in ("unplug", "plug") and arg in addresses:
                    if w[0] == "plug":
                        plugged.add(arg)
                    else:
                        plugged.discard(arg)
                    print("ok", w[0], arg, flush=True)
                else:
                    print("error", line.strip(), flush=True)
            if master in rd:
                try:
                    buf += os.read(master, 256)
                except OSError:
                    buf = b""
                    continue
                while len(buf) >= request_len:
                    r = reply(buf[:request_len])
                    if r is None:
                        buf = buf[1:]
                        continue
                    buf = buf[request_len:]
                    addr, key, ans = r
                    if addr in plugged and ans is not None:
                        os.write(master, ans)
                        answered[key] = answered.get(key, 0) + 1
    finally:
        try:
            os.unlink(link)
        except FileNotFoundError:
            pass
