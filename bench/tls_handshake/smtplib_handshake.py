#!/usr/bin/env python3
"""The cost of one STARTTLS with Python's smtplib, for bench/tls_handshake.sh.

  smtplib_handshake.py plain|starttls HOST PORT CAFILE N

As tls_handshake.c: connect, EHLO, [STARTTLS with an SSLContext made once
from the CA file (ssl.create_default_context(cafile=...): only that file is
loaded), EHLO,] QUIT; one warm-up connection first. Prints
"n=N cpu_s=USER+SYS wall_s=WALL".
"""
import resource
import smtplib
import ssl
import sys
import time


def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def one(host, port, ctx):
    s = smtplib.SMTP(host, port, timeout=20)
    s.ehlo()
    if ctx is not None:
        code, _ = s.starttls(context=ctx)
        assert code == 220, code
        s.ehlo()
    s.quit()


def main():
    mode, host, port, ca, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    ctx = ssl.create_default_context(cafile=ca) if mode == "starttls" else None
    one(host, port, ctx)
    c0, w0 = cpu(), time.perf_counter()
    for _ in range(n):
        one(host, port, ctx)
    print("n=%d cpu_s=%.6f wall_s=%.6f" % (n, cpu() - c0, time.perf_counter() - w0))


if __name__ == "__main__":
    main()
