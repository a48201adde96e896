# SPDX-License-Identifier: MIT
"""Shared core of the simulated "~...\\r" BMS buses (YD/T 1363 framing:
Pylontech RS485 V3.3 §2, Seplos V2.0 Tables 1-2, PACE-RS232-TY16S §2).

A family script gives a table {CID2: answer(pack) -> INFO bytes}; this
module opens a pty, answers polls for the configured addresses and reads
commands on stdin, one a line, each answered "ok" (or "error ..."):

    unplug ADDR | plug ADDR   the pack stops / resumes answering
    crc ADDR N                the next N answers of ADDR carry a bad CHKSUM
    garbage N                 N bytes of noise on the line now
    stats                     "stats ADDR:polls:answers ..."
    quit

Usage: <family>-server.py [--link PATH] ADDR [ADDR ...]  (prints "ready PTY")
Addresses are the wire ADR, decimal or 0x-hex. python3 stdlib only.
"""
import argparse
import os
import select
import sys
import termios
import tty


def chksum(body: bytes) -> int:
    """CHKSUM: two's complement of the sum of the characters, mod 65536."""
    return (-sum(body)) & 0xFFFF


def length_field(lenid: int) -> int:
    """LENGTH: LCHKSUM (two's complement of LENID's nibble sum, mod 16) | LENID."""
    lch = (-((lenid >> 8 & 15) + (lenid >> 4 & 15) + (lenid & 15))) & 15
    return lch << 12 | lenid


def frame(ver: int, adr: int, cid2: int, info: bytes = b"", cid1: int = 0x46) -> bytes:
    body = b"%02X%02X%02X%02X%04X" % (ver, adr, cid1, cid2, length_field(2 * len(info)))
    body += info.hex().upper().encode()
    return b"~" + body + b"%04X" % chksum(body) + b"\r"


def parse(fr: bytes):
    """(ver, adr, cid1, cid2, info bytes) of a complete, intact frame, or None."""
    if len(fr) < 18 or fr[:1] != b"~" or fr[-1:] != b"\r":
        return None
    body = fr[1:-5]
    try:
        ck = int(fr[-5:-1], 16)
        ver, adr, cid1, cid2 = (int(body[i:i + 2], 16) for i in range(0, 8, 2))
        length = int(body[8:12], 16)
        info = bytes.fromhex(body[12:].decode())
    except ValueError:
        return None
    if ck != chksum(body) or length != length_field(len(body) - 12):
        return None
    return ver, adr, cid1, cid2, info


def u16(v: int) -> bytes:
    return (v & 0xFFFF).to_bytes(2, "big")


def temp_k(dc: int, offset: int) -> bytes:
    """0.1 degC as 0.1 K with the family's offset (2731, Pace 2730)."""
    return u16(dc + offset)


def serve(name: str, ver: int, answers, argv=None, cid1: int = 0x46):
    """Serve the bus; @cid1: the family's CID1 (0x46 battery; EG4 LifePower4 0x4A)."""
    ap = argparse.ArgumentParser(prog=name)
    ap.add_argument("--link", help="symlink pointing at the pty slave")
    ap.add_argument("addrs", nargs="+", type=lambda s: int(s, 0))
    args = ap.parse_args(argv)

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    if args.link:
        try:
            os.unlink(args.link)
        except FileNotFoundError:
            pass
        os.symlink(path, args.link)
    plugged = {a: True for a in args.addrs}
    bad_crc = {a: 0 for a in args.addrs}
    polls = {a: 0 for a in args.addrs}
    sent = {a: 0 for a in args.addrs}
    buf = b""
    print("ready", args.link or path, flush=True)

    while True:
        r, _, _ = select.select([master, sys.stdin], [], [])
        if sys.stdin in r:
            line = sys.stdin.readline()
            if not line:
                break
            w = line.split()
            try:
                if not w:
                    continue
                if w[0] == "quit":
                    print("ok", flush=True)
                    break
                if w[0] in ("unplug", "plug"):
                    a = int(w[1], 0)
                    if a not in plugged:
                        raise ValueError("no pack %d" % a)
                    plugged[a] = w[0] == "plug"
                elif w[0] == "crc":
                    bad_crc[int(w[1], 0)] = int(w[2])
                elif w[0] == "garbage":
                    os.write(master, os.urandom(int(w[1])).replace(b"~", b"?"))
                elif w[0] == "stats":
                    print("stats", " ".join("%d:%d:%d" % (a, polls[a], sent[a])
                                            for a in sorted(polls)), flush=True)
                    continue
                else:
                    raise ValueError("unknown command")
                print("ok", flush=True)
            except (ValueError, IndexError, KeyError) as e:
                print("error", e, flush=True)
        if master in r:
            try:
                buf += os.read(master, 4096)
            except OSError:
                continue
            while True:
                start = buf.find(b"~")
                if start < 0:
                    buf = b""
                    break
                end = buf.find(b"\r", start)
                if end < 0:
                    buf = buf[start:][-4096:]
                    break
                fr, buf = buf[start:end + 1], buf[end + 1:]
                req = parse(fr)
                if req is None:
                    continue
                _, adr, req_cid1, cid2, info = req
                if adr not in plugged or req_cid1 != cid1:
                    continue
                polls[adr] += 1
                if not plugged[adr]:
                    continue
                fn = answers.get(cid2)
                ans = (frame(ver, adr, 0x04, cid1=cid1) if fn is None
                       else frame(ver, adr, 0x00, fn(adr), cid1=cid1))
                if bad_crc[adr] > 0:
                    bad_crc[adr] -= 1
                    ans = ans[:-2] + (b"0" if ans[-2:-1] != b"0" else b"1") + b"\r"
                os.write(master, ans)
                sent[adr] += 1
    if args.link:
        try:
            os.unlink(args.link)
        except FileNotFoundError:
            pass
