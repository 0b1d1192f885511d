//! Tests of the Dovecot harness (tests/support/dovecot.rs,
//! tests/servers/dovecot.sh, `postfix.sh start-dovecot-sasl`) without
//! libsmtpc: the servers are spoken to with Python's smtplib (from the venv),
//! a SCRAM-SHA-256 client written here with hashlib/hmac, and a bare TCP
//! client.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::dovecot::{strip_dovecot_headers, Dovecot, DovecotOpts, PostfixWithDovecotSasl};
use support::*;

const WAIT: Duration = Duration::from_secs(20);

/// Runs a Python snippet with the venv's interpreter, `stdin` as its input;
/// returns stdout, panics (with stderr) when it fails.
fn python(script: &str, args: &[String], stdin: &[u8]) -> String {
    let py = repo_root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/install-deps.sh",
        py.display()
    );
    let mut child = Command::new(&py)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin)
        .expect("write python stdin");
    let out = child.wait_with_output().expect("wait for python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn lines_with<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines()
        .filter_map(|l| l.strip_prefix(prefix).map(str::trim))
        .collect()
}

fn pid_alive(pid: u32) -> bool {
    support::dovecot::process_running(pid)
}

/// Python: LMTP over a UNIX-domain socket (argv: socket path, recipients…),
/// the message on stdin. Prints the LHLO keywords, refused recipients and the
/// reply to the end of data.
const PY_LMTP_UNIX: &str = r#"
import smtplib, sys
path, rcpts = sys.argv[1], sys.argv[2:]
msg = sys.stdin.buffer.read()
s = smtplib.LMTP(path, timeout=20)   # a host starting with "/" is a UNIX socket
code, _ = s.ehlo("client.test")      # smtplib's LMTP sends LHLO here
print("LHLO", code, " ".join(sorted(k.upper() for k in s.esmtp_features)))
s.mail("sender@client.test")
for r in rcpts:
    code, text = s.rcpt(r)
    print("RCPT", r, code, text.decode())
code, text = s.data(msg)
print("DATA", code, text.decode())
s.quit()
"#;

/// Python: SCRAM-SHA-256 (RFC 5802/7677) by hand, PLAIN through smtplib.
/// argv: port cafile. Prints one line per check.
const PY_SASL: &str = r#"
import base64, hashlib, hmac, os, smtplib, ssl, sys
port_submit, port_encrypt, port_implicit, ca, user, password = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)

def b64(b): return base64.b64encode(b).decode()

def scram(s, user, password):
    """Returns (final code, text, verified server signature or None)."""
    nonce = b64(os.urandom(18))
    gs2 = "n,,"
    cfb = "n=" + user.replace("=", "=3D").replace(",", "=2C") + ",r=" + nonce
    code, resp = s.docmd("AUTH", "SCRAM-SHA-256 " + b64((gs2 + cfb).encode()))
    if code != 334:
        return code, resp.decode(), None
    sf = base64.b64decode(resp).decode()
    attrs = dict(kv.split("=", 1) for kv in sf.split(","))
    assert attrs["r"].startswith(nonce) and len(attrs["r"]) > len(nonce), sf
    salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    cfwp = "c=" + b64(gs2.encode()) + ",r=" + attrs["r"]
    auth_msg = (cfb + "," + sf + "," + cfwp).encode()
    sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    code, resp = s.docmd(b64((cfwp + ",p=" + b64(proof)).encode()))
    verified = None
    if code == 334:
        # server-final-message as a challenge; RFC 4954: answer with an empty line
        server_final = base64.b64decode(resp).decode()
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        want = "v=" + b64(hmac.new(server_key, auth_msg, hashlib.sha256).digest())
        assert server_final == want, (server_final, want)
        verified = "ok"
        code, resp = s.docmd("")
    return code, resp.decode(), verified

def auth_kw(s):
    a = s.esmtp_features.get("auth")
    return "(none)" if a is None else a.strip().upper()

# submit: AUTH in clear text
s = smtplib.SMTP("127.0.0.1", int(port_submit), timeout=20); s.ehlo("client.test")
print("SUBMIT-AUTH", auth_kw(s))
print("SUBMIT-SCRAM", *scram(s, user, password))
s.quit()
s = smtplib.SMTP("127.0.0.1", int(port_submit), timeout=20); s.ehlo("client.test")
print("SUBMIT-SCRAM-WRONG", *scram(s, user, password + "x"))
s.quit()
s = smtplib.SMTP("127.0.0.1", int(port_submit), timeout=20); s.ehlo("client.test")
s.user, s.password = user, password
code, text = s.auth("PLAIN", s.auth_plain)
print("SUBMIT-PLAIN", code)
s.quit()
s = smtplib.SMTP("127.0.0.1", int(port_submit), timeout=20); s.ehlo("client.test")
s.user, s.password = user, "wrong"
try:
    s.auth("PLAIN", s.auth_plain)
    print("SUBMIT-PLAIN-WRONG 235")
except smtplib.SMTPAuthenticationError as e:
    print("SUBMIT-PLAIN-WRONG", e.smtp_code)
s.quit()

# encrypt: AUTH only after STARTTLS
s = smtplib.SMTP("localhost", int(port_encrypt), timeout=20); s.ehlo("client.test")
print("ENCRYPT-AUTH-BEFORE", auth_kw(s))
s.starttls(context=ctx); s.ehlo("client.test")
print("ENCRYPT-AUTH-AFTER", auth_kw(s))
print("ENCRYPT-SCRAM", *scram(s, user, password))
code, _ = s.mail("sender@client.test"); print("ENCRYPT-MAIL", code)
code, _ = s.rcpt("alice@example.test"); print("ENCRYPT-RCPT", code)
code, _ = s.data(b"Subject: after scram\r\n\r\nhello over TLS\r\n"); print("ENCRYPT-DATA", code)
s.quit()

# implicit TLS
s = smtplib.SMTP_SSL("localhost", int(port_implicit), context=ctx, timeout=20); s.ehlo("client.test")
print("IMPLICIT-AUTH", auth_kw(s))
print("IMPLICIT-SCRAM", *scram(s, user, password))
s.quit()
"#;

#[test]
fn lmtp_over_unix_socket_delivers_to_maildir() {
    let dc = Dovecot::start();
    let sock = dc.lmtp_socket();
    assert!(sock.exists(), "no socket at {}", sock.display());
    let msg: &[u8] = b"From: sender@client.test\r\nTo: alice@example.test\r\nSubject: over a UNIX socket\r\n\r\nline one\r\n.leading dot\r\n\r\nlast line\r\n";
    let out = python(
        PY_LMTP_UNIX,
        &[
            sock.display().to_string(),
            "alice@example.test".into(),
            "nosuchuser@example.test".into(),
        ],
        msg,
    );
    let lhlo = lines_with(&out, "LHLO");
    assert_eq!(
        lhlo,
        ["250 8BITMIME CHUNKING ENHANCEDSTATUSCODES PIPELINING STARTTLS"],
        "{out}"
    );
    let rcpt = lines_with(&out, "RCPT");
    assert_eq!(rcpt[0], "alice@example.test 250 2.1.5 OK", "{out}");
    assert!(
        rcpt[1].starts_with(
            "nosuchuser@example.test 550 5.1.1 <nosuchuser@example.test> User doesn't exist"
        ),
        "{out}"
    );
    let data = lines_with(&out, "DATA");
    assert!(
        data[0].starts_with("250 2.0.0 <alice@example.test> ") && data[0].ends_with(" Saved"),
        "{out}"
    );

    let got = dc.wait_delivered("alice", 1, WAIT);
    assert_eq!(got.len(), 1);
    let stored = String::from_utf8_lossy(&got[0]).into_owned();
    // exactly the headers documented on strip_dovecot_headers, one recipient:
    let head: Vec<&str> = stored.lines().take(7).collect();
    assert_eq!(head[0], "Return-Path: <sender@client.test>", "{stored}");
    assert_eq!(head[1], "Delivered-To: alice@example.test", "{stored}");
    assert_eq!(head[2], "Received: from client.test", "{stored}");
    assert_eq!(head[3], "\tby lmtp.smtpc.test with LMTP", "{stored}");
    assert!(head[4].starts_with("\tid "), "{stored}");
    assert_eq!(
        head[5], "\t(envelope-from <sender@client.test>)",
        "{stored}"
    );
    assert!(
        head[6].starts_with("\tfor <alice@example.test>; "),
        "{stored}"
    );
    assert!(!stored.contains('\r'), "Dovecot stores LF line endings");
    assert_eq!(lf_to_crlf(strip_dovecot_headers(&got[0])), msg);
    assert!(dc.delivered("bob").is_empty());
    assert!(dc.delivered("bob@example.test").is_empty());
    assert!(dc.log().contains("saved mail to INBOX"), "{}", dc.log());
}

#[test]
fn lmtp_over_tcp_lhlo_rcpt_and_bdat() {
    let dc = Dovecot::start();
    let (mut c, greeting) = RawSmtp::connect(dc.lmtp_port());
    assert_eq!(greeting.code, 220);
    assert!(
        greeting.text().starts_with("lmtp.smtpc.test "),
        "{greeting:?}"
    );
    let ehlo = c.cmd("EHLO client.test");
    assert_eq!(ehlo.code, 500, "LMTP speaks LHLO: {ehlo:?}");
    let lhlo = c.cmd("LHLO client.test");
    assert_eq!(lhlo.code, 250);
    assert_eq!(lhlo.lines[0], "lmtp.smtpc.test");
    assert_eq!(
        lhlo.keywords(),
        [
            "8BITMIME",
            "CHUNKING",
            "ENHANCEDSTATUSCODES",
            "PIPELINING",
            "STARTTLS"
        ],
        "{lhlo:?}"
    );
    for absent in ["SIZE", "DSN", "SMTPUTF8", "AUTH", "VRFY"] {
        assert!(!lhlo.has(absent), "{absent} offered: {lhlo:?}");
    }

    // Two recipients and one unknown; the body in one BDAT LAST chunk.
    assert_eq!(c.cmd("MAIL FROM:<sender@client.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.test>").code, 250);
    let unknown = c.cmd("RCPT TO:<carol@example.test>");
    assert_eq!(unknown.code, 550, "{unknown:?}");
    assert!(unknown.text().starts_with("5.1.1 "), "{unknown:?}");
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>").code, 250);
    let body: &[u8] = b"Subject: chunked\r\n\r\n.not stuffed in BDAT\r\nend\r\n";
    c.send(format!("BDAT {} LAST\r\n", body.len()).as_bytes());
    c.send(body);
    let r1 = c.read_reply();
    let r2 = c.read_reply();
    assert_eq!((r1.code, r2.code), (250, 250), "{r1:?} {r2:?}");
    assert!(r1.text().contains("<alice@example.test>"), "{r1:?}");
    assert!(r2.text().contains("<bob@example.test>"), "{r2:?}");
    assert_eq!(c.cmd("QUIT").code, 221);

    for user in ["alice", "bob@example.test"] {
        let got = dc.wait_delivered(user, 1, WAIT);
        let stored = String::from_utf8_lossy(&got[0]).into_owned();
        assert!(
            stored.starts_with(
                "Return-Path: <sender@client.test>\nReceived: from client.test ([127.0.0.1])\n"
            ),
            "two recipients: no Delivered-To, and the TCP peer in Received:\n{stored}"
        );
        assert!(!stored.contains("\tfor <"), "{stored}");
        assert_eq!(lf_to_crlf(strip_dovecot_headers(&got[0])), body);
    }
}

#[test]
fn postfix_negotiates_scram_sha_256_with_dovecot() {
    let pf = PostfixWithDovecotSasl::start();
    let out = python(
        PY_SASL,
        &[
            pf.submit.to_string(),
            pf.encrypt.to_string(),
            pf.implicit.to_string(),
            certs().ca.display().to_string(),
            PostfixWithDovecotSasl::USER.to_string(),
            PostfixWithDovecotSasl::PASS.to_string(),
        ],
        b"",
    );
    let one = |k: &str| -> String {
        let v = lines_with(&out, &format!("{k} "));
        assert_eq!(v.len(), 1, "{k}:\n{out}");
        v[0].to_string()
    };
    let mechs = "PLAIN LOGIN SCRAM-SHA-256";
    assert_eq!(one("SUBMIT-AUTH"), mechs, "{out}");
    assert_eq!(
        one("SUBMIT-SCRAM"),
        "235 2.7.0 Authentication successful ok",
        "{out}"
    );
    assert!(one("SUBMIT-SCRAM-WRONG").starts_with("535 5.7.8 "), "{out}");
    assert_eq!(one("SUBMIT-PLAIN"), "235", "{out}");
    assert_eq!(one("SUBMIT-PLAIN-WRONG"), "535", "{out}");
    assert_eq!(one("ENCRYPT-AUTH-BEFORE"), "(none)", "{out}");
    assert_eq!(one("ENCRYPT-AUTH-AFTER"), mechs, "{out}");
    assert_eq!(
        one("ENCRYPT-SCRAM"),
        "235 2.7.0 Authentication successful ok",
        "{out}"
    );
    assert_eq!(one("ENCRYPT-MAIL"), "250", "{out}");
    assert_eq!(one("ENCRYPT-RCPT"), "250", "{out}");
    assert_eq!(one("ENCRYPT-DATA"), "250", "{out}");
    assert_eq!(one("IMPLICIT-AUTH"), mechs, "{out}");
    assert_eq!(
        one("IMPLICIT-SCRAM"),
        "235 2.7.0 Authentication successful ok",
        "{out}"
    );

    // Dovecot (not Cyrus) judged the logins.
    let log = pf.dovecot.log();
    assert!(
        log.contains("auth: Info: scram-sha-256(tester,127.0.0.1): Password mismatch")
            && log.contains("auth: Info: passwd-file(tester,127.0.0.1): Password mismatch"),
        "dovecot log:\n{log}"
    );
    assert!(
        pf.maillog()
            .contains("SASL SCRAM-SHA-256 authentication failed"),
        "maillog:\n{}",
        pf.maillog()
    );
    let got = pf.wait_delivered("alice", 1, WAIT);
    assert_eq!(
        lf_to_crlf(strip_trace_headers(&got[0])),
        b"Subject: after scram\r\n\r\nhello over TLS\r\n"
    );

    // Dropping stops both servers and removes their folders.
    let (pf_pid, dc_pid) = (pf.master_pid().unwrap(), pf.dovecot.master_pid().unwrap());
    let (pf_dir, dc_dir) = (pf.dir.clone(), pf.dovecot.dir.clone());
    drop(pf);
    assert!(!pid_alive(pf_pid), "postfix master {pf_pid} still runs");
    assert!(!pid_alive(dc_pid), "dovecot master {dc_pid} still runs");
    if std::env::var_os("SMTPC_KEEP_TEST_DIRS").is_none() {
        assert!(!pf_dir.exists() && !dc_dir.exists());
    }
}

#[test]
fn dovecot_instances_are_separate_and_stop_on_drop() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(Dovecot::start);
        let b = s.spawn(Dovecot::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.lmtp_port(), b.lmtp_port());
    assert_ne!(a.lmtp_socket(), b.lmtp_socket());
    let (mut c, _) = RawSmtp::connect(a.lmtp_port());
    assert_eq!(c.cmd("LHLO t").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    let r = c.cmd("Subject: a\r\n\r\nonly in a\r\n.");
    assert_eq!(r.code, 250, "{r:?}");
    c.cmd("QUIT");
    let got = a.wait_delivered("bob", 1, WAIT);
    assert!(String::from_utf8_lossy(&got[0]).starts_with("Return-Path: <>\n"));
    assert!(b.delivered("bob").is_empty());

    let pid = a.master_pid().expect("dovecot master runs");
    let dir = a.dir.clone();
    let port = a.lmtp_port();
    drop(a);
    assert!(!pid_alive(pid), "dovecot master {pid} still runs");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still answers"
    );
    if std::env::var_os("SMTPC_KEEP_TEST_DIRS").is_none() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    // b is unaffected
    let (_c, g) = RawSmtp::connect(b.lmtp_port());
    assert_eq!(g.code, 220);
}

/// Python: Dovecot's auth protocol straight on the auth socket (argv: path).
/// Prints the MECH list, then OK/FAIL for a right and a wrong password per
/// mechanism (the SCRAM server signature is checked).
const PY_AUTH_SOCKET: &str = r#"
import base64, hashlib, hmac, os, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])
f = s.makefile("rb")
s.sendall(b"VERSION\t1\t2\nCPID\t%d\n" % os.getpid())
mechs = []
while True:
    l = f.readline().decode().rstrip("\n")
    assert l, "auth socket closed"
    if l == "DONE": break
    if l.startswith("MECH\t"): mechs.append(l.split("\t")[1])
print("MECHS", " ".join(mechs))
n = 0
def b64(b): return base64.b64encode(b).decode()
def req(line):
    s.sendall(line.encode() + b"\n")
    return f.readline().decode().rstrip("\n").split("\t")
def plain(user, pw):
    global n; n += 1
    return req("AUTH\t%d\tPLAIN\tservice=smtp\tresp=%s" % (n, b64(b"\0" + user.encode() + b"\0" + pw.encode())))[0]
def cram(user, pw):
    global n; n += 1
    r = req("AUTH\t%d\tCRAM-MD5\tservice=smtp" % n)
    assert r[0] == "CONT", r
    d = hmac.new(pw.encode(), base64.b64decode(r[2]), hashlib.md5).hexdigest()
    return req("CONT\t%d\t%s" % (n, b64(("%s %s" % (user, d)).encode())))[0]
def scram(user, pw, h):
    global n; n += 1
    nonce = b64(os.urandom(18)); cfb = "n=%s,r=%s" % (user, nonce)
    name = {"sha1": "SCRAM-SHA-1", "sha256": "SCRAM-SHA-256"}[h]
    r = req("AUTH\t%d\t%s\tservice=smtp\tresp=%s" % (n, name, b64(("n,," + cfb).encode())))
    assert r[0] == "CONT", r
    sf = base64.b64decode(r[2]).decode()
    a = dict(kv.split("=", 1) for kv in sf.split(","))
    salted = hashlib.pbkdf2_hmac(h, pw.encode(), base64.b64decode(a["s"]), int(a["i"]))
    ck = hmac.new(salted, b"Client Key", h).digest()
    cfwp = "c=biws,r=" + a["r"]
    am = (cfb + "," + sf + "," + cfwp).encode()
    sig = hmac.new(hashlib.new(h, ck).digest(), am, h).digest()
    r = req("CONT\t%d\t%s" % (n, b64((cfwp + ",p=" + b64(bytes(x ^ y for x, y in zip(ck, sig)))).encode())))
    if r[0] != "CONT":
        return r[0]
    sk = hmac.new(salted, b"Server Key", h).digest()
    assert base64.b64decode(r[2]).decode() == "v=" + b64(hmac.new(sk, am, h).digest())
    return req("CONT\t%d\t" % n)[0]
for name, fn in [("PLAIN", plain), ("CRAM-MD5", cram),
                 ("SCRAM-SHA-1", lambda u, p: scram(u, p, "sha1")),
                 ("SCRAM-SHA-256", lambda u, p: scram(u, p, "sha256"))]:
    if name in mechs:
        print(name, fn("tester", "s3cret"), fn("tester", "wrong"))
"#;

#[test]
fn dovecot_auth_socket_default_and_plain_password_mechanisms() {
    // The default: {SCRAM-SHA-256} hashes, PLAIN LOGIN SCRAM-SHA-256.
    let dc = Dovecot::start();
    let out = python(
        PY_AUTH_SOCKET,
        &[dc.auth_socket().display().to_string()],
        b"",
    );
    assert_eq!(
        out,
        "MECHS PLAIN LOGIN SCRAM-SHA-256\nPLAIN OK FAIL\nSCRAM-SHA-256 OK FAIL\n"
    );
    // Plain-text passwords: every mechanism can work.
    let dc2 = Dovecot::start_with(DovecotOpts {
        auth_mechanisms: ["plain", "login", "cram-md5", "scram-sha-1", "scram-sha-256"]
            .map(String::from)
            .to_vec(),
        plain_passwords: true,
        verbose: false,
    });
    let out = python(
        PY_AUTH_SOCKET,
        &[dc2.auth_socket().display().to_string()],
        b"",
    );
    assert_eq!(
        out,
        "MECHS PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256\nPLAIN OK FAIL\n\
         CRAM-MD5 OK FAIL\nSCRAM-SHA-1 OK FAIL\nSCRAM-SHA-256 OK FAIL\n"
    );
}

#[test]
fn strip_dovecot_headers_removes_exactly_dovecot_lines() {
    let stored = b"Return-Path: <s@x>\nDelivered-To: alice@example.test\nReceived: from c.test ([127.0.0.1])\n\tby lmtp.smtpc.test with LMTP\n\tid abc\n\t(envelope-from <s@x>)\n\tfor <alice@example.test>; Wed, 02 Dec 2026 17:55:22 +0000\nReceived: by client\nSubject: s\n\nbody\n";
    assert_eq!(
        strip_dovecot_headers(stored),
        b"Received: by client\nSubject: s\n\nbody\n"
    );
    let multi = b"Return-Path: <>\nReceived: from c\n\tby h with LMTP\n\tid x\n\t(envelope-from <>); date\nSubject: s\n\nb\n";
    assert_eq!(strip_dovecot_headers(multi), b"Subject: s\n\nb\n");
    assert_eq!(
        strip_dovecot_headers(b"Subject: s\n\nb\n"),
        b"Subject: s\n\nb\n"
    );
}
