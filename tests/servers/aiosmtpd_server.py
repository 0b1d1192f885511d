#!/usr/bin/env python3
"""Scriptable SMTP/LMTP test server for the libsmtpc harness (aiosmtpd 1.4.6).

Run with <repo>/.venv/bin/python.  Binds --host/--port (0 = any free port),
writes the bound port to --port-file (atomically, once it accepts
connections) and runs until SIGTERM/SIGINT.

Every accepted message is captured in --capture-dir as
    NNNN.eml   the exact bytes received after DATA, dot-unstuffed
    NNNN.json  {"mail_from", "rcpt_tos", "mail_options", "rcpt_options", "smtp_utf8"}
written .eml first, then .json (the .json appearing means the message is
complete).  Both are written to a temporary name and renamed.

AUTH: PLAIN and LOGIN (aiosmtpd built-ins, checked by an authenticator),
CRAM-MD5 (RFC 2195) and XOAUTH2 (Gmail style) are offered.  Credentials come
from --auth-user USER:PASS and --xoauth2-token USER:TOKEN.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import signal
import ssl
import sys
import time

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

log = logging.getLogger("aiosmtpd_server")


def split_pair(value, what):
    if ":" not in value:
        raise argparse.ArgumentTypeError(f"{what} must be NAME:SECRET, got {value!r}")
    a, b = value.split(":", 1)
    return a, b


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--capture-dir", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--implicit-tls", action="store_true",
                   help="the whole listener speaks TLS (no STARTTLS)")
    p.add_argument("--tls-client-ca", metavar="FILE",
                   help="require a client certificate signed by a CA in FILE "
                        "(the handshake fails without one); its subject's CN goes "
                        "to the capture's metadata as client_cert_cn")
    p.add_argument("--auth-user", action="append", default=[], metavar="USER:PASS",
                   type=lambda v: split_pair(v, "--auth-user"))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--auth-require-tls", dest="auth_require_tls", action="store_true", default=True,
                   help="offer/accept AUTH only after STARTTLS (default)")
    g.add_argument("--no-auth-require-tls", dest="auth_require_tls", action="store_false",
                   help="offer/accept AUTH in cleartext too")
    p.add_argument("--lmtp", action="store_true", help="speak LMTP (LHLO, one reply per recipient)")
    p.add_argument("--known-user", action="append", default=[], metavar="ADDR",
                   help="VRFY answers 250 for these and 550 for others "
                        "(without any --known-user, VRFY answers aiosmtpd's default 252)")
    p.add_argument("--xoauth2-token", action="append", default=[], metavar="USER:TOKEN",
                   type=lambda v: split_pair(v, "--xoauth2-token"))
    p.add_argument("--reject-rcpt", action="append", default=[], metavar="ADDR",
                   help="RCPT TO for this address gets 550 5.1.1")
    p.add_argument("--lmtp-fail-rcpt", action="append", default=[], metavar="ADDR",
                   help="in LMTP mode, the per-recipient reply after DATA is 550 5.2.1 for this address")
    p.add_argument("--data-size-limit", type=int, default=32 * 1024 * 1024,
                   help="SIZE advertised and enforced (0 = no limit)")
    p.add_argument("--hostname", default="localhost", help="name in the greeting/EHLO reply")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.implicit_tls and not args.tls_cert:
        p.error("--implicit-tls needs --tls-cert/--tls-key")
    if args.tls_client_ca and not args.tls_cert:
        p.error("--tls-client-ca needs --tls-cert/--tls-key")
    return args


def write_atomic(path, data):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
    os.replace(tmp, path)


def norm(addr):
    return (addr or "").strip().strip("<>").lower()


class Handler:
    def __init__(self, args):
        self.capture_dir = args.capture_dir
        self.counter = 0
        self.known = {norm(a) for a in args.known_user}
        self.vrfy_configured = bool(args.known_user)
        self.reject = {norm(a) for a in args.reject_rcpt}
        self.lmtp = args.lmtp
        self.lmtp_fail = {norm(a) for a in args.lmtp_fail_rcpt}
        self.client_ca = bool(args.tls_client_ca)

    async def handle_VRFY(self, server, session, envelope, address):
        if not self.vrfy_configured:
            return "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery"
        if norm(address) in self.known:
            return f"250 2.1.5 <{address}>"
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if norm(address) in self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        # aiosmtpd keeps one flat list for all recipients; keep them per recipient.
        per = getattr(envelope, "per_rcpt_options", None)
        if per is None:
            per = envelope.per_rcpt_options = []
        per.append(list(rcpt_options))
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.counter += 1
        base = os.path.join(self.capture_dir, f"{self.counter:04d}")
        content = envelope.original_content
        if content is None:  # cannot happen with decode_data=False; be safe
            content = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode("utf-8", "surrogateescape")
        meta = {
            # the null reverse-path is "" (as nodemailer reports it), not "<>"
            "mail_from": "" if envelope.mail_from in ("<>", None) else envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": getattr(envelope, "per_rcpt_options", [[] for _ in envelope.rcpt_tos]),
            "smtp_utf8": bool(envelope.smtp_utf8),
        }
        if self.client_ca:
            meta["client_cert_cn"] = client_cert_cn(server)
        write_atomic(base + ".eml", content)
        write_atomic(base + ".json", json.dumps(meta).encode("utf-8"))
        log.info("captured %s (%d bytes) from=%r to=%r", base, len(content), envelope.mail_from, envelope.rcpt_tos)
        if self.lmtp:
            lines = []
            for rcpt in envelope.rcpt_tos:
                if norm(rcpt) in self.lmtp_fail:
                    lines.append(f"550 5.2.1 <{rcpt}> mailbox unavailable")
                else:
                    lines.append(f"250 2.0.0 <{rcpt}> delivered")
            return "\r\n".join(lines)
        return "250 2.0.0 OK: queued"


def client_cert_cn(server):
    """The CN of the certificate the client presented (None without one)."""
    cert = server.transport.get_extra_info("peercert") if server.transport else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def make_server_class(base, args):
    cram_users = dict(args.auth_user)
    xoauth2_tokens = dict(args.xoauth2_token)

    class TestServer(base):
        # aiosmtpd names mechanisms after auth_* methods: "__" becomes "-".
        async def auth_CRAM__MD5(self, server, args):
            if len(args) != 1:
                await self.push("501 5.5.4 CRAM-MD5 takes no initial response")
                return AuthResult(success=False, handled=True)
            challenge = f"<{secrets.randbelow(10**10)}.{int(time.time())}@{self.hostname}>".encode()
            resp = await self.challenge_auth(challenge)
            if not isinstance(resp, bytes):
                return AuthResult(success=False, handled=True)  # '*' or bad base64: already answered
            try:
                user, digest = resp.decode("utf-8").rsplit(" ", 1)
            except ValueError:
                await self.push("501 5.5.2 Bad CRAM-MD5 response")
                return AuthResult(success=False, handled=True)
            pw = cram_users.get(user)
            if pw is not None:
                want = hmac.new(pw.encode("utf-8"), challenge, hashlib.md5).hexdigest()
                if hmac.compare_digest(want, digest.lower()):
                    return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
            return AuthResult(success=False, handled=False)

        async def auth_XOAUTH2(self, server, args):
            if len(args) == 2:
                try:
                    raw = base64.b64decode(args[1].encode(), validate=True)
                except Exception:
                    await self.push("501 5.5.2 Can't decode base64")
                    return AuthResult(success=False, handled=True)
            else:
                raw = await self.challenge_auth(b"")
                if not isinstance(raw, bytes):
                    return AuthResult(success=False, handled=True)
            user = token = None
            for part in raw.split(b"\x01"):
                if part.startswith(b"user="):
                    user = part[5:].decode("utf-8", "replace")
                elif part.startswith(b"auth="):
                    v = part[5:].decode("utf-8", "replace")
                    if v.lower().startswith("bearer "):
                        token = v[7:]
            well_formed = raw.endswith(b"\x01\x01") and user is not None and token is not None
            if well_formed and user in xoauth2_tokens and hmac.compare_digest(xoauth2_tokens[user], token):
                return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
            # Gmail: a 334 with a base64 JSON error, the client answers with an
            # empty line, then the final 535.
            err = json.dumps({"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"})
            reply = await self.challenge_auth(err.encode())
            if not isinstance(reply, bytes):
                return AuthResult(success=False, handled=True)
            await self.push("535 5.7.8 Username and Password not accepted.")
            return AuthResult(success=False, handled=True)

    return TestServer


def make_authenticator(users):
    table = {u.encode("utf-8"): p.encode("utf-8") for u, p in users}

    def authenticator(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            pw = table.get(auth_data.login)
            if pw is not None and hmac.compare_digest(pw, auth_data.password):
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    return authenticator


async def main_async(args):
    os.makedirs(args.capture_dir, exist_ok=True)
    tls_ctx = None
    if args.tls_cert:
        tls_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            tls_ctx.verify_mode = ssl.CERT_REQUIRED
            tls_ctx.load_verify_locations(cafile=args.tls_client_ca)

    handler = Handler(args)
    base = LMTP if args.lmtp else SMTP
    cls = make_server_class(base, args)
    kwargs = dict(
        hostname=args.hostname,
        data_size_limit=args.data_size_limit or None,
        enable_SMTPUTF8=True,
        decode_data=False,
        authenticator=make_authenticator(args.auth_user),
        # implicit TLS: the connection is encrypted, but aiosmtpd only tracks
        # STARTTLS, so it must not insist on TLS itself.
        auth_require_tls=False if args.implicit_tls else args.auth_require_tls,
        tls_context=None if args.implicit_tls else tls_ctx,
        timeout=300,
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: cls(handler, loop=loop, **kwargs),
        host=args.host,
        port=args.port,
        ssl=tls_ctx if args.implicit_tls else None,
        reuse_address=True,
    )
    port = server.sockets[0].getsockname()[1]
    write_atomic(args.port_file, f"{port}\n".encode())
    log.info("listening on %s:%d (%s%s)", args.host, port, "LMTP" if args.lmtp else "SMTP",
             ", implicit TLS" if args.implicit_tls else (", STARTTLS" if tls_ctx else ""))

    stop = asyncio.Event()
    # SIGTERM stops cleanly; SIGINT (interactive use) raises KeyboardInterrupt.
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    log.info("stopping")
    server.close()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
