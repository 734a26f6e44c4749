#!/usr/bin/env python3
"""Writes a capture for tests/router_test.sh from real ones: every frame of the input captures
(Ethernet, microsecond pcap) in order, with one in four changed as the router's edge cases need:
frame k % 4 == 1 gets TTL / hop limit 1 (the IPv4 header checksum recomputed), k % 8 == 2 a wrong
IPv4 header checksum, k % 8 == 6 an IPv4 header length of 16 bytes, k % 4 == 3 loses its last 10
captured bytes. Whatever the router makes of them is checked against tshark's reading of this file,
not against what this script meant to do.
With --as-is, the frames are written unchanged (the real captures as one file).
Usage: router_derive.py [--as-is] OUT.pcap IN.pcap..."""
import struct
import sys


def ipv4_checksum(header):
    s = sum(struct.unpack("!%dH" % (len(header) // 2), header))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return 0xFFFF - s


def change(k, frame):
    frame = bytearray(frame)
    ethertype = struct.unpack("!H", frame[12:14])[0] if len(frame) >= 14 else 0
    if ethertype == 0x0800 and len(frame) >= 34:
        ihl = (frame[14] & 15) * 4
        if k % 4 == 1 and len(frame) >= 14 + ihl:
            frame[22] = 1
            frame[24:26] = b"\0\0"
            frame[24:26] = struct.pack("!H", ipv4_checksum(bytes(frame[14:14 + ihl])))
        elif k % 8 == 2:
            frame[24] ^= 0x5A
        elif k % 8 == 6:
            frame[14] = 0x44
    elif ethertype == 0x86DD and len(frame) >= 54 and k % 4 == 1:
        frame[21] = 1
    if k % 4 == 3:
        frame = frame[:-10]
    return bytes(frame)


def main():
    args = sys.argv[1:]
    as_is = args[0] == "--as-is"
    if as_is:
        args = args[1:]
    out = open(args[0], "wb")
    k = 0
    for i, name in enumerate(args[1:]):
        data = open(name, "rb").read()
        magic = struct.unpack("<I", data[:4])[0]
        assert magic == 0xA1B2C3D4, "%s: not a little-endian microsecond pcap" % name
        if i == 0:
            out.write(data[:24])
        at = 24
        while at < len(data):
            sec, usec, caplen, length = struct.unpack("<IIII", data[at:at + 16])
            frame = data[at + 16:at + 16 + caplen]
            if not as_is:
                frame = change(k, frame)
            out.write(struct.pack("<IIII", sec, usec, len(frame), length))
            out.write(frame)
            at += 16 + caplen
            k += 1


main()
