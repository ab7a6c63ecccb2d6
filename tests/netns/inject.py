#!/usr/bin/env python3
"""Send hand-built Ethernet frames (one hex string per stdin line) out of an
interface through an AF_PACKET socket. Used by tests/packets.rs for VLAN,
QinQ, IPv6 extension-header and malformed frames: the test kernel has no
802.1Q devices, so tagged frames can only be made by hand."""
import socket
import sys
import time

iface = sys.argv[1]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    s.send(bytes.fromhex(line))
    time.sleep(0.01)
