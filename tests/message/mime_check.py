#!/usr/bin/env python3
"""Independent checks for tests/message.rs, with Python's own mail code.

Run with <repo>/.venv/bin/python (dkimpy lives there).

  parse FILE
      Parses the message with email.policy.default and prints JSON:
      {"headers": [[name, decoded value], ...],
       "addresses": {field: [[display name, addr-spec], ...]},
       "defects": [...], "max_line": longest line in octets,
       "eight_bit": whether any byte is >= 0x80,
       "tree": {"type", "params", "disposition", "filename", "cid", "cte",
                "len", "sha256", "text" (text parts), "children"}}
      `len`/`sha256` are those of the decoded part (get_payload(decode=True)).

  dkim MANIFEST
      MANIFEST has one line per message: FILE, DOMAIN, SELECTOR and TXT,
      tab-separated. Verifies every DKIM-Signature of each FILE with dkimpy,
      answering the DNS query for SELECTOR._domainkey.DOMAIN with TXT
      (nothing else resolves); prints one JSON list, one entry per line:
      {"file", "signatures": n, "results": [true/false...], "log": "..."}.

  smtplib HOST PORT FILE
      Sends FILE with smtplib's send_message (the message parsed with
      email.message_from_bytes, smtplib's usual path).
"""

import email
import email.policy
import hashlib
import io
import json
import logging
import smtplib
import sys

ADDRESS_FIELDS = ("From", "Sender", "Reply-To", "To", "Cc", "Bcc",
                  "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc", "Resent-Bcc")


def fix(s):
    """Header text parsed from bytes keeps UTF-8 (RFC 6532) as surrogate
    escapes: decode it."""
    if s is None:
        return None
    try:
        return s.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeError:
        return s


def tree(part):
    node = {
        "type": part.get_content_type(),
        "params": {k: v for k, v in part.get_params(header="content-type", failobj=[])[1:]},
        "disposition": part.get_content_disposition(),
        "filename": part.get_filename(),
        "cid": part.get("Content-ID"),
        "cte": part.get("Content-Transfer-Encoding"),
    }
    if part.is_multipart():
        node["children"] = [tree(p) for p in part.iter_parts()]
        node["boundary"] = part.get_boundary()
    else:
        data = part.get_payload(decode=True) or b""
        node["len"] = len(data)
        node["sha256"] = hashlib.sha256(data).hexdigest()
        if part.get_content_maintype() == "text":
            node["text"] = part.get_content()
    return node


def all_defects(msg):
    out = []
    for part in msg.walk():
        out.extend(type(d).__name__ for d in part.defects)
        for _, v in part.items():
            out.extend(type(d).__name__ for d in getattr(v, "defects", ()))
    return out


def parse(path):
    with open(path, "rb") as f:
        raw = f.read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    addresses = {}
    for field in ADDRESS_FIELDS:
        values = msg.get_all(field)
        if values:
            addresses[field] = [[fix(a.display_name), fix(a.addr_spec)]
                                for v in values for a in v.addresses]
    result = {
        "headers": [[k, fix(str(v))] for k, v in msg.items()],
        "addresses": addresses,
        "defects": all_defects(msg),
        "max_line": max((len(l) for l in raw.split(b"\r\n")), default=0),
        "eight_bit": any(b >= 0x80 for b in raw),
        "tree": tree(msg),
    }
    print(json.dumps(result))


def dkim_verify(path, domain, selector, txt):
    import dkim
    with open(path, "rb") as f:
        raw = f.read()
    want = f"{selector}._domainkey.{domain}."

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        if name.rstrip(".").lower() == want.rstrip(".").lower():
            return txt.encode()
        return None

    log = io.StringIO()
    logger = logging.getLogger("dkimcheck." + path)
    logger.addHandler(logging.StreamHandler(log))
    logger.setLevel(logging.DEBUG)
    msg = email.message_from_bytes(raw)
    n = len(msg.get_all("DKIM-Signature") or [])
    d = dkim.DKIM(raw, logger=logger)
    results = []
    for i in range(n):
        try:
            results.append(bool(d.verify(idx=i, dnsfunc=dnsfunc)))
        except dkim.DKIMException as e:  # e.g. "body hash mismatch"
            log.write(f"signature {i}: {e}\n")
            results.append(False)
    return {"file": path, "signatures": n, "results": results, "log": log.getvalue()}


def dkim_manifest(manifest):
    with open(manifest, encoding="utf-8") as f:
        lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    print(json.dumps([dkim_verify(*l) for l in lines]))


def send(host, port, path):
    with open(path, "rb") as f:
        msg = email.message_from_bytes(f.read())
    with smtplib.SMTP(host, int(port), timeout=20) as s:
        s.send_message(msg)


def main(argv):
    if argv[1] == "parse":
        parse(argv[2])
    elif argv[1] == "dkim":
        dkim_manifest(argv[2])
    elif argv[1] == "smtplib":
        send(*argv[2:5])
    else:
        raise SystemExit(f"unknown mode {argv[1]!r}")


if __name__ == "__main__":
    main(sys.argv)
