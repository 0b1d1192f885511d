#!/usr/bin/env python3
"""Python smtplib peer for the libsmtpc benchmark.

  smtplib_peer.py msgs PORT N FILE   N copies of FILE over one connection
  smtplib_peer.py bulk PORT FILE     FILE as one message

Prints elapsed=SECONDS (connect to QUIT, file reading excluded).
"""
import smtplib
import sys
import time

FROM = "bench@example.org"
TO = ["sink@example.net"]


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "msgs":
        n, path = int(sys.argv[3]), sys.argv[4]
    else:
        n, path = 1, sys.argv[3]
    with open(path, "rb") as f:
        msg = f.read()
    t0 = time.perf_counter()
    s = smtplib.SMTP("127.0.0.1", port)
    s.ehlo()
    for _ in range(n):
        refused = s.sendmail(FROM, TO, msg)
        if refused:
            sys.exit("refused: %r" % (refused,))
    s.quit()
    print("elapsed=%.6f" % (time.perf_counter() - t0))


if __name__ == "__main__":
    main()
