#!/usr/bin/env python3
"""A deliberately slow (or mute) SMTP server for the binding tests.

    slow_smtp.py --port-file FILE [--delay-ms 250] [--mute]

Binds 127.0.0.1 on a free port, writes the port to FILE (atomically, once
it listens) and serves until killed. Every reply, the greeting included, is
sent --delay-ms after the command that asked for it, so a client spends most
of a send waiting on the network: what the event-loop (Node.js) and GVL
(Ruby) gap tests measure. Commands are answered in order, pipelined or not;
DATA's body is read up to the lone "." and discarded. EHLO offers
PIPELINING, 8BITMIME and SIZE; nothing is delivered or stored.

--mute accepts connections and never says anything: what the cancellation
tests need (a call waiting for a greeting that never comes).

Standard library only; runs under any python3 >= 3.7.
"""

import argparse
import asyncio
import os
import sys


async def reply(writer, delay, text):
    await asyncio.sleep(delay)
    writer.write(text.encode() + b"\r\n")
    await writer.drain()


async def serve_client(reader, writer, delay, mute):
    try:
        if mute:
            # Read and drop whatever comes, say nothing, until the peer goes.
            while await reader.read(65536):
                pass
            return
        await reply(writer, delay, "220 slow.test ESMTP slow_smtp.py")
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line.strip().split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"LHLO"):
                await reply(writer, delay, "250-slow.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600")
            elif verb == b"HELO":
                await reply(writer, delay, "250 slow.test")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                await reply(writer, delay, "250 2.0.0 OK")
            elif verb == b"DATA":
                await reply(writer, delay, "354 End data with <CR><LF>.<CR><LF>")
                while True:
                    body = await reader.readline()
                    if not body:
                        return
                    if body in (b".\r\n", b".\n"):
                        break
                await reply(writer, delay, "250 2.0.0 Ok: queued")
            elif verb == b"QUIT":
                await reply(writer, delay, "221 2.0.0 Bye")
                return
            else:
                await reply(writer, delay, "502 5.5.2 Command not recognized")
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port-file", required=True)
    p.add_argument("--delay-ms", type=int, default=250)
    p.add_argument("--mute", action="store_true")
    args = p.parse_args(argv)
    delay = args.delay_ms / 1000.0
    server = await asyncio.start_server(
        lambda r, w: serve_client(r, w, delay, args.mute), "127.0.0.1", 0, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    tmp = f"{args.port_file}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except KeyboardInterrupt:
        pass
