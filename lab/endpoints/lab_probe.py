"""Steady syslog for the failover and bridge benchmarks (bench/failover.py, bench/bridge_rate.py).

Runs on a lab exporter (python3, stdlib only):

    python3 lab_probe.py send --target 10.10.1.1 --name exporter1 --run RUN \
        [--udp-rate 100] [--tcp-rate 20] [--tcp-format rfc5424|rfc3164] [--duration S]

Sends numbered syslog messages ("LFP run=RUN exp=NAME p=udp|tcp seq=N") at a fixed rate over UDP
to TARGET:514 and over TCP to TARGET:514 (newline framing, like most devices). It stops after
--duration seconds or when its stdin closes, then prints one JSON line: what was sent, when it
started, and every TCP reconnect (time, reason). The TCP side behaves like a device's syslog
client: when the connection breaks it reconnects every 0.1 s and sends what queued meanwhile
(messages already written into the broken connection are gone; the collectors show how many).
"""

import argparse
import json
import os
import select
import socket
import sys
import threading
import time

BACKLOG = 100000


def message(args, proto, seq, fmt):
    body = "LFP run=%s exp=%s p=%s seq=%d" % (args.run, args.name, proto, seq)
    if fmt == "rfc3164":
        return "<134>%s %s lfprobe: %s" % (time.strftime("%b %e %H:%M:%S"), args.name, body)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%06dZ" % (time.time() % 1 * 1e6)
    return "<134>1 %s %s lfprobe - - - %s" % (stamp, args.name, body)


class Tcp:
    def __init__(self, args, stop):
        self.args, self.stop = args, stop
        self.sock = None
        self.pending = []
        self.sent = 0          # messages written into a connection without an error
        self.dropped = 0       # backlog overflow while disconnected
        self.reconnects = []   # [time, reason]
        self.lock = threading.Lock()

    def queue(self, line):
        with self.lock:
            if len(self.pending) >= BACKLOG:
                self.dropped += 1
            else:
                self.pending.append(line)

    def broken(self, reason):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            self.reconnects.append([round(time.time(), 3), reason])

    def connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            s.connect((self.args.target, self.args.tcp_port))
        except OSError:
            s.close()
            return False
        s.setblocking(True)
        s.settimeout(2.0)
        self.sock = s
        return True

    def run(self):
        first = True
        while not self.stop.is_set() or self.pending:
            if self.sock is None:
                if not self.connect():
                    if self.stop.is_set():
                        break
                    time.sleep(0.1)
                    continue
                if not first:
                    self.reconnects[-1].append(round(time.time(), 3))  # when it was back
                first = False
            # a reset or close from the peer shows as readable
            readable = select.select([self.sock], [], [], 0)[0]
            if readable:
                try:
                    data = self.sock.recv(512)
                except OSError as exc:
                    self.broken(type(exc).__name__)
                    continue
                if not data:
                    self.broken("closed by peer")
                    continue
            with self.lock:
                batch, self.pending = self.pending, []
            if not batch:
                time.sleep(0.005)
                continue
            try:
                self.sock.sendall("".join(batch).encode())
                self.sent += len(batch)
            except OSError as exc:
                self.broken(type(exc).__name__)
                with self.lock:       # resend: a device keeps what it could not write
                    self.pending = batch + self.pending


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("send")
    p.add_argument("--target", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--udp-port", type=int, default=514)
    p.add_argument("--tcp-port", type=int, default=514)
    p.add_argument("--udp-rate", type=float, default=100)
    p.add_argument("--tcp-rate", type=float, default=20)
    p.add_argument("--tcp-format", choices=["rfc5424", "rfc3164"], default="rfc5424")
    p.add_argument("--duration", type=float, default=3600)
    p.add_argument("--no-stdin", action="store_true", help="run for --duration, ignore stdin")
    args = ap.parse_args()

    stop = threading.Event()

    def watch_stdin():
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop.set()

    if not args.no_stdin:
        threading.Thread(target=watch_stdin, daemon=True).start()
    tcp = Tcp(args, stop) if args.tcp_rate > 0 else None
    if tcp:
        tcp_thread = threading.Thread(target=tcp.run)
        tcp_thread.start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = time.time()
    udp_sent = udp_errors = tcp_queued = 0
    next_udp = next_tcp = start
    while not stop.is_set() and time.time() - start < args.duration:
        now = time.time()
        while args.udp_rate > 0 and next_udp <= now:
            try:
                udp.sendto(message(args, "udp", udp_sent + 1, "rfc5424").encode(),
                           (args.target, args.udp_port))
            except OSError:
                udp_errors += 1
            udp_sent += 1
            next_udp += 1.0 / args.udp_rate
        while tcp and next_tcp <= now:
            tcp_queued += 1
            tcp.queue(message(args, "tcp", tcp_queued, args.tcp_format) + "\n")
            next_tcp += 1.0 / args.tcp_rate
        wake = min(t for t in (next_udp if args.udp_rate > 0 else None,
                               next_tcp if tcp else None, start + args.duration) if t is not None)
        time.sleep(max(0.0, min(0.05, wake - time.time())))
    end = time.time()
    stop.set()
    if tcp:
        tcp_thread.join(timeout=120)
    json.dump({"name": args.name, "run": args.run, "start": round(start, 3), "end": round(end, 3),
               "done": round(time.time(), 3),
               "udp_rate": args.udp_rate, "udp_sent": udp_sent, "udp_errors": udp_errors,
               "tcp_rate": args.tcp_rate, "tcp_queued": tcp_queued,
               "tcp_sent": tcp.sent if tcp else 0, "tcp_unsent": len(tcp.pending) if tcp else 0,
               "tcp_dropped": tcp.dropped if tcp else 0,
               "tcp_reconnects": tcp.reconnects if tcp else []}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
