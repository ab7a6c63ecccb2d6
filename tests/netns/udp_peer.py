#!/usr/bin/env python3
"""UDP peer for tests/packets.rs: `udp_peer.py sink PORT...` binds [::]:PORT
(dual-stack) and swallows datagrams, so that no ICMP port-unreachable
errors appear on the link; `udp_peer.py send HOST PORT PAYLOAD` sends one
datagram and exits."""
import socket
import sys
import time

if sys.argv[1] == "sink":
    socks = []
    for p in sys.argv[2:]:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", int(p)))
        socks.append(s)
    while True:
        time.sleep(3600)
elif sys.argv[1] == "send":
    host, port, payload = sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.sendto(payload, (host, port))
