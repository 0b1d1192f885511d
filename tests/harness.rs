//! Tests of the test-server harness itself (tests/support, tests/servers),
//! without libsmtpc: each server is started and spoken to with a bare TCP
//! client, Python's smtplib (from the venv) or `openssl s_client`.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(20);

fn b64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let n = chunk.len();
        let v = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= n {
                out.push(T[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs a Python snippet with the venv's interpreter; returns stdout, panics
/// (with stderr) when it fails.
fn python(script: &str, args: &[String]) -> String {
    let py = repo_root().join(".venv/bin/python");
    let out = Command::new(&py)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Python: connect with TLS checks against CA (argv: mode port cafile [user pass]),
/// print the EHLO keywords after TLS, one per line; "VERIFY-FAILED <reason>" if
/// the certificate was refused.
const PY_TLS_PROBE: &str = r#"
import smtplib, ssl, sys
mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
try:
    if mode == "implicit":
        s = smtplib.SMTP_SSL("localhost", port, context=ctx, timeout=20)
    else:
        s = smtplib.SMTP("localhost", port, timeout=20)
        s.ehlo()
        print("BEFORE", " ".join(sorted(s.esmtp_features)))
        s.starttls(context=ctx)
    s.ehlo()
except ssl.SSLCertVerificationError as e:
    print("VERIFY-FAILED", e.verify_message)
    sys.exit(0)
print("AFTER", " ".join(sorted(s.esmtp_features)))
print("CIPHER", s.sock.version())
if len(sys.argv) > 5:
    code, _ = s.login(sys.argv[4], sys.argv[5])
    print("LOGIN", code)
s.quit()
"#;

// ---------------------------------------------------------------------------
// certificates
// ---------------------------------------------------------------------------

fn openssl_verify(ca: &std::path::Path, cert: &std::path::Path) -> (bool, String) {
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ca)
        .arg(cert)
        .output()
        .expect("run openssl verify");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn certs_are_what_they_claim() {
    let c = certs();
    assert!(std::ptr::eq(c, certs()), "certs() is generated once");
    let (ok, out) = openssl_verify(&c.ca, &c.server_cert);
    assert!(ok, "server cert must verify against ca: {out}");
    let (ok, out) = openssl_verify(&c.other_ca, &c.server_cert);
    assert!(!ok, "server cert must not verify against other-ca: {out}");
    let (ok, out) = openssl_verify(&c.ca, &c.expired_cert);
    assert!(!ok && out.contains("expired"), "expired cert: {out}");
    let (ok, out) = openssl_verify(&c.ca, &c.wronghost_cert);
    assert!(ok, "wronghost cert is signed by ca: {out}");
    let san = |p: &std::path::Path| {
        let o = Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(p)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let s = san(&c.server_cert);
    assert!(
        s.contains("DNS:localhost")
            && s.contains("IP Address:127.0.0.1")
            && s.contains("IP Address:0:0:0:0:0:0:0:1"),
        "{s}"
    );
    let s = san(&c.wronghost_cert);
    assert!(
        s.contains("DNS:wrong.example") && !s.contains("localhost") && !s.contains("127.0.0.1"),
        "{s}"
    );
    for k in [&c.server_key, &c.expired_key, &c.wronghost_key] {
        assert!(k.is_file(), "{}", k.display());
    }
}

// ---------------------------------------------------------------------------
// aiosmtpd
// ---------------------------------------------------------------------------

#[test]
fn aiosmtpd_captures_bytes_exactly() {
    let srv = Aiosmtpd::start(AioOpts::default());
    let (mut c, greet) = RawSmtp::connect(srv.port);
    assert_eq!(greet.code, 220);
    let ehlo = c.cmd("EHLO client.test");
    assert_eq!(ehlo.code, 250);
    for k in ["SIZE", "8BITMIME", "SMTPUTF8"] {
        assert!(ehlo.has(k), "aiosmtpd EHLO lacks {k}: {ehlo:?}");
    }
    assert!(
        !ehlo.has("STARTTLS"),
        "no STARTTLS without a certificate: {ehlo:?}"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<sender@example.org> SMTPUTF8 BODY=8BITMIME")
            .code,
        250
    );
    assert_eq!(c.cmd("RCPT TO:<alice@example.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    // On the wire: dot-stuffed lines, 8-bit bytes, a line with only spaces.
    c.send(b"Subject: caf\xc3\xa9\r\n\r\n..leading dot\r\n...two dots\r\n  \r\n\xff\xfe raw\r\nend\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);
    // Second message in the same session.
    assert_eq!(c.cmd("MAIL FROM:<>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<carol@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"no headers\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);
    assert_eq!(c.cmd("QUIT").code, 221);

    let m = srv.wait_messages(2, WAIT);
    assert_eq!(m.len(), 2);
    assert_eq!(
        m[0].data,
        b"Subject: caf\xc3\xa9\r\n\r\n.leading dot\r\n..two dots\r\n  \r\n\xff\xfe raw\r\nend\r\n"
    );
    assert_eq!(m[0].mail_from, "sender@example.org");
    assert_eq!(
        m[0].rcpt_tos,
        vec!["alice@example.test", "bob@example.test"]
    );
    assert_eq!(m[0].mail_options, vec!["SMTPUTF8", "BODY=8BITMIME"]);
    assert_eq!(m[0].rcpt_options, vec![Vec::<String>::new(), Vec::new()]);
    assert!(m[0].smtp_utf8);
    assert_eq!(m[0].id, "0001");
    assert_eq!(m[1].mail_from, "");
    assert_eq!(m[1].rcpt_tos, vec!["carol@example.test"]);
    assert_eq!(m[1].data, b"no headers\r\n");
    assert!(!m[1].smtp_utf8);
}

#[test]
fn aiosmtpd_auth_vrfy_and_rejects() {
    let srv = Aiosmtpd::start(AioOpts {
        auth_users: vec![("user".into(), "pa55".into())],
        known_users: vec!["alice@example.test".into()],
        xoauth2: vec![("user@example.test".into(), "tok-123".into())],
        reject_rcpts: vec!["nobody@example.test".into()],
        data_size_limit: Some(1000),
        ..Default::default()
    });
    let (mut c, _) = RawSmtp::connect(srv.port);
    let ehlo = c.cmd("EHLO client.test");
    let auth_line = ehlo
        .lines
        .iter()
        .find(|l| l.starts_with("AUTH "))
        .expect("AUTH offered in clear");
    for m in ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"] {
        assert!(
            auth_line.split_whitespace().any(|w| w == m),
            "{m} missing in {auth_line}"
        );
    }
    assert!(ehlo.lines.iter().any(|l| l == "SIZE 1000"), "{ehlo:?}");
    // VRFY
    assert_eq!(c.cmd("VRFY alice@example.test").code, 250);
    assert_eq!(c.cmd("VRFY eve@example.test").code, 550);
    // Wrong password, then right one.
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0user\0wrong"))).code,
        535
    );
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0user\0pa55"))).code,
        235
    );
    assert_eq!(c.cmd("AUTH PLAIN x").code, 503, "already authenticated");
    // RCPT reject and SIZE.
    assert_eq!(c.cmd("MAIL FROM:<a@b> SIZE=5000").code, 552);
    assert_eq!(c.cmd("MAIL FROM:<a@b>").code, 250);
    let r = c.cmd("RCPT TO:<nobody@example.test>");
    assert_eq!(
        (r.code, r.text().starts_with("5.1.1")),
        (550, true),
        "{r:?}"
    );
    assert_eq!(
        c.cmd("RCPT TO:<alice@example.test> NOTIFY=NEVER").code,
        555,
        "aiosmtpd refuses RCPT parameters"
    );
    c.cmd("QUIT");

    // LOGIN with the server's prompts.
    let (mut c, _) = RawSmtp::connect(srv.port);
    c.cmd("EHLO x");
    let r = c.cmd("AUTH LOGIN");
    assert_eq!(r.code, 334);
    assert_eq!(r.text(), b64(b"User Name\0"), "aiosmtpd's LOGIN prompt");
    assert_eq!(c.cmd(&b64(b"user")).code, 334);
    assert_eq!(c.cmd(&b64(b"pa55")).code, 235);
    c.cmd("QUIT");

    // XOAUTH2: good token, then a bad one (334 JSON challenge, empty line, 535).
    let (mut c, _) = RawSmtp::connect(srv.port);
    c.cmd("EHLO x");
    let r = c.cmd(&format!(
        "AUTH XOAUTH2 {}",
        b64(b"user=user@example.test\x01auth=Bearer tok-123\x01\x01")
    ));
    assert_eq!(r.code, 235, "{r:?}");
    let (mut c, _) = RawSmtp::connect(srv.port);
    c.cmd("EHLO x");
    let r = c.cmd(&format!(
        "AUTH XOAUTH2 {}",
        b64(b"user=user@example.test\x01auth=Bearer nope\x01\x01")
    ));
    assert_eq!(r.code, 334, "{r:?}");
    assert_eq!(
        r.text(),
        b64(br#"{"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"}"#)
    );
    assert_eq!(c.cmd("").code, 535);

    // CRAM-MD5 through smtplib (it computes the HMAC).
    let out = python(
        r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo()
s.user, s.password = "user", "pa55"
print(s.auth("CRAM-MD5", s.auth_cram_md5, initial_response_ok=False)[0])
s.close()
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo()
s.user, s.password = "user", "bad"
try:
    s.auth("CRAM-MD5", s.auth_cram_md5, initial_response_ok=False)
except smtplib.SMTPAuthenticationError as e:
    print(e.smtp_code)
"#,
        &[srv.port.to_string()],
    );
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["235", "535"]);
    assert!(srv.messages().is_empty());
}

#[test]
fn aiosmtpd_starttls_and_implicit_tls() {
    let c = certs();
    let ca = c.ca.display().to_string();
    let srv = Aiosmtpd::start(AioOpts {
        tls: true,
        auth_users: vec![("u".into(), "p".into())],
        auth_require_tls: true,
        ..Default::default()
    });
    let out = python(
        PY_TLS_PROBE,
        &[
            "starttls".into(),
            srv.port.to_string(),
            ca.clone(),
            "u".into(),
            "p".into(),
        ],
    );
    let before = out.lines().find(|l| l.starts_with("BEFORE")).unwrap();
    let after = out.lines().find(|l| l.starts_with("AFTER")).unwrap();
    assert!(
        before.contains("starttls") && !before.contains("auth"),
        "{out}"
    );
    assert!(
        after.contains("auth") && !after.contains("starttls"),
        "{out}"
    );
    assert!(out.contains("CIPHER TLSv1."), "{out}");
    assert!(out.contains("LOGIN 235"), "{out}");
    // The same server checked against the other CA: refused.
    let out = python(
        PY_TLS_PROBE,
        &[
            "starttls".into(),
            srv.port.to_string(),
            c.other_ca.display().to_string(),
        ],
    );
    assert!(out.contains("VERIFY-FAILED"), "{out}");

    let imp = Aiosmtpd::start(AioOpts {
        implicit_tls: true,
        auth_users: vec![("u".into(), "p".into())],
        ..Default::default()
    });
    let out = python(
        PY_TLS_PROBE,
        &[
            "implicit".into(),
            imp.port.to_string(),
            ca.clone(),
            "u".into(),
            "p".into(),
        ],
    );
    assert!(
        out.contains("AFTER") && out.contains("auth") && out.contains("LOGIN 235"),
        "{out}"
    );
    // Plain text on the implicit port gets no SMTP greeting.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", imp.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 3];
    let got = std::io::Read::read(&mut s, &mut buf);
    assert!(
        !matches!(got, Ok(3) if &buf == b"220"),
        "implicit TLS port greeted in cleartext"
    );

    // Expired and wrong-host certificates are refused by a verifying client.
    let exp = Aiosmtpd::start(AioOpts {
        tls: true,
        cert: Some((c.expired_cert.clone(), c.expired_key.clone())),
        ..Default::default()
    });
    let out = python(
        PY_TLS_PROBE,
        &["starttls".into(), exp.port.to_string(), ca.clone()],
    );
    assert!(
        out.contains("VERIFY-FAILED") && out.contains("expired"),
        "{out}"
    );
    let wrong = Aiosmtpd::start(AioOpts {
        tls: true,
        cert: Some((c.wronghost_cert.clone(), c.wronghost_key.clone())),
        ..Default::default()
    });
    let out = python(
        PY_TLS_PROBE,
        &["starttls".into(), wrong.port.to_string(), ca],
    );
    assert!(
        out.contains("VERIFY-FAILED") && out.to_lowercase().contains("hostname"),
        "{out}"
    );
}

#[test]
fn aiosmtpd_lmtp_replies_per_recipient() {
    let srv = Aiosmtpd::start(AioOpts {
        lmtp: true,
        lmtp_fail_rcpts: vec!["full@example.test".into()],
        ..Default::default()
    });
    let (mut c, greet) = RawSmtp::connect(srv.port);
    assert_eq!(greet.code, 220);
    assert_eq!(c.cmd("EHLO x").code, 500, "LMTP refuses EHLO");
    assert_eq!(c.cmd("LHLO x").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@b>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<ok@example.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<full@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: lmtp\r\n\r\nhi\r\n.\r\n");
    let r1 = c.read_reply();
    let r2 = c.read_reply();
    assert_eq!((r1.code, r2.code), (250, 550), "{r1:?} {r2:?}");
    assert!(r1.text().contains("ok@example.test") && r2.text().contains("full@example.test"));
    let m = srv.wait_messages(1, WAIT);
    assert_eq!(m[0].data, b"Subject: lmtp\r\n\r\nhi\r\n");
}

#[test]
fn aiosmtpd_parallel_instances_are_separate() {
    let a = Aiosmtpd::start(AioOpts::default());
    let b = Aiosmtpd::start(AioOpts::default());
    assert_ne!(a.port, b.port);
    assert_ne!(a.capture_dir, b.capture_dir);
    let dir = a.dir().to_path_buf();
    assert!(dir.exists());
    drop(a);
    assert!(
        !dir.exists() || std::env::var_os("SMTPC_KEEP_TEST_DIRS").is_some(),
        "drop removes the folder"
    );
    // b still answers
    let (mut c, g) = RawSmtp::connect(b.port);
    assert_eq!(g.code, 220);
    assert_eq!(c.cmd("NOOP").code, 250);
}

// ---------------------------------------------------------------------------
// nodemailer smtp-server
// ---------------------------------------------------------------------------

#[test]
fn nodemailer_offers_extensions_and_captures_dsn() {
    let srv = Nodemailer::start(NodeOpts {
        tls: true,
        auth: vec![("user".into(), "pa55".into())],
        xoauth2: vec![("user@example.test".into(), "tok-123".into())],
        ..Default::default()
    });
    let (mut c, greet) = RawSmtp::connect(srv.port);
    assert_eq!(greet.code, 220);
    let ehlo = c.cmd("EHLO client.test");
    for k in [
        "PIPELINING",
        "DSN",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "STARTTLS",
        "SIZE",
        "AUTH",
    ] {
        assert!(ehlo.has(k), "nodemailer EHLO lacks {k}: {ehlo:?}");
    }
    assert!(!ehlo.has("CHUNKING"));
    let auth = ehlo.lines.iter().find(|l| l.starts_with("AUTH ")).unwrap();
    for m in ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"] {
        assert!(
            auth.split_whitespace().any(|w| w == m),
            "{m} missing in {auth}"
        );
    }
    assert!(ehlo.lines.iter().any(|l| l == "SIZE 10485760"), "{ehlo:?}");
    // XOAUTH2: bad token -> 334 JSON, empty line -> 535; then the good one.
    let r = c.cmd(&format!(
        "AUTH XOAUTH2 {}",
        b64(b"user=user@example.test\x01auth=Bearer nope\x01\x01")
    ));
    assert_eq!(r.code, 334, "{r:?}");
    assert_eq!(c.cmd("").code, 535);
    let r = c.cmd(&format!(
        "AUTH XOAUTH2 {}",
        b64(b"user=user@example.test\x01auth=Bearer tok-123\x01\x01")
    ));
    assert_eq!(r.code, 235, "{r:?}");
    assert!(
        r.text().starts_with("2.7.0"),
        "enhanced status codes: {r:?}"
    );
    // Pipelined transaction with DSN parameters.
    c.send(
        b"MAIL FROM:<s@example.org> RET=HDRS ENVID=env-1 SMTPUTF8\r\n\
          RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test\r\n\
          RCPT TO:<bob@example.test>\r\n\
          DATA\r\n",
    );
    let codes: Vec<u16> = (0..4).map(|_| c.read_reply().code).collect();
    assert_eq!(codes, [250, 250, 250, 354]);
    c.send(b"Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);
    assert_eq!(c.cmd("QUIT").code, 221);
    let m = srv.wait_messages(1, WAIT);
    let m = &m[0];
    assert_eq!(m.data, b"Subject: x\r\n\r\n.dot\r\nbody\r\n");
    assert_eq!(m.mail_from, "s@example.org");
    assert_eq!(m.rcpt_tos, vec!["alice@example.test", "bob@example.test"]);
    assert_eq!(m.mail_options, vec!["RET=HDRS", "ENVID=env-1", "SMTPUTF8"]);
    assert_eq!(
        m.rcpt_options[0],
        vec!["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;alice@example.test"]
    );
    assert!(m.rcpt_options[1].is_empty());
    assert!(m.smtp_utf8);
    assert_eq!(
        m.meta.get("user").and_then(Json::as_str),
        Some("user@example.test")
    );
    let dsn = m
        .meta
        .get("envelope")
        .and_then(|e| e.get("dsn"))
        .expect("envelope.dsn");
    assert_eq!(dsn.get("envid").and_then(Json::as_str), Some("env-1"));

    // A port probe that hangs up must not kill the server.
    drop(std::net::TcpStream::connect(("127.0.0.1", srv.port)).unwrap());
    std::thread::sleep(Duration::from_millis(100));
    let out = python(
        PY_TLS_PROBE,
        &[
            "starttls".into(),
            srv.port.to_string(),
            certs().ca.display().to_string(),
            "user".into(),
            "pa55".into(),
        ],
    );
    assert!(out.contains("LOGIN 235"), "{out}");
}

#[test]
fn nodemailer_implicit_tls() {
    let srv = Nodemailer::start(NodeOpts {
        secure: true,
        auth: vec![("u".into(), "p".into())],
        ..Default::default()
    });
    let out = python(
        PY_TLS_PROBE,
        &[
            "implicit".into(),
            srv.port.to_string(),
            certs().ca.display().to_string(),
            "u".into(),
            "p".into(),
        ],
    );
    assert!(
        out.contains("AFTER") && out.contains("pipelining") && out.contains("LOGIN 235"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// Postfix
// ---------------------------------------------------------------------------

#[test]
fn postfix_delivers_rejects_and_vrfy() {
    let pf = Postfix::start();
    let (mut c, greet) = RawSmtp::connect(pf.submit);
    assert_eq!(greet.code, 220);
    let ehlo = c.cmd("EHLO client.test");
    for k in [
        "PIPELINING",
        "SIZE",
        "VRFY",
        "STARTTLS",
        "AUTH",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "DSN",
        "SMTPUTF8",
        "CHUNKING",
    ] {
        assert!(ehlo.has(k), "postfix EHLO lacks {k}: {ehlo:?}");
    }
    let auth = ehlo.lines.iter().find(|l| l.starts_with("AUTH ")).unwrap();
    for m in ["PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5"] {
        assert!(
            auth.split_whitespace().any(|w| w == m),
            "{m} missing in {auth}"
        );
    }
    let r = c.cmd("VRFY alice@example.test");
    assert_eq!(r.code, 252, "{r:?}");
    let r = c.cmd("VRFY unknown@example.test");
    assert_eq!(r.code, 550, "{r:?}");
    // AUTH in cleartext, login name "tester".
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0tester\0wrong")))
            .code,
        535
    );
    assert_eq!(
        c.cmd(&format!(
            "AUTH PLAIN {}",
            b64(format!("\0{}\0{}", Postfix::USER, Postfix::PASS).as_bytes())
        ))
        .code,
        235
    );
    assert_eq!(c.cmd("MAIL FROM:<sender@example.org>").code, 250);
    let r = c.cmd("RCPT TO:<unknown@example.test>");
    assert_eq!(r.code, 550, "{r:?}");
    assert!(r.text().starts_with("5.1.1"), "{r:?}");
    assert_eq!(c.cmd("RCPT TO:<alice@example.test>").code, 250);
    assert_eq!(
        c.cmd("RCPT TO:<someone@elsewhere.test>").code,
        250,
        "other domains are accepted (and discarded)"
    );
    assert_eq!(c.cmd("DATA").code, 354);
    let body = b"From: sender@example.org\r\nTo: alice@example.test\r\nSubject: harness\r\nReceived: by client.test; kept\r\n\r\n..dotted\r\nline two\r\n";
    let mut wire = b"From: sender@example.org\r\nTo: alice@example.test\r\nSubject: harness\r\nReceived: by client.test; kept\r\n\r\n...dotted\r\nline two\r\n".to_vec();
    wire.extend_from_slice(b".\r\n");
    c.send(&wire);
    let r = c.read_reply();
    assert_eq!(r.code, 250, "{r:?}");
    assert_eq!(c.cmd("QUIT").code, 221);

    let got = pf.wait_delivered("alice", 1, WAIT);
    assert_eq!(got.len(), 1);
    let raw = &got[0];
    assert!(
        raw.starts_with(b"Return-Path: <sender@example.org>\n"),
        "{}",
        String::from_utf8_lossy(raw)
    );
    let stripped = strip_trace_headers(raw);
    assert_eq!(
        lf_to_crlf(stripped),
        body.to_vec(),
        "delivered:\n{}",
        String::from_utf8_lossy(raw)
    );
    assert!(pf.delivered("bob").is_empty());
    assert!(pf.maillog().contains("status=sent"), "{}", pf.maillog());
}

#[test]
fn postfix_tls_ports() {
    let pf = Postfix::start();
    let ca = certs().ca.display().to_string();
    // Submit: STARTTLS offered and verifies against the CA; AUTH after TLS.
    let out = python(
        PY_TLS_PROBE,
        &[
            "starttls".into(),
            pf.submit.to_string(),
            ca.clone(),
            Postfix::USER.into(),
            Postfix::PASS.into(),
        ],
    );
    assert!(
        out.contains("LOGIN 235") && out.contains("CIPHER TLSv1."),
        "{out}"
    );
    // Encrypt: no MAIL and no AUTH before STARTTLS.
    let (mut c, _) = RawSmtp::connect(pf.encrypt);
    let ehlo = c.cmd("EHLO x");
    assert!(ehlo.has("STARTTLS") && !ehlo.has("AUTH"), "{ehlo:?}");
    assert_eq!(c.cmd("MAIL FROM:<a@b>").code, 530);
    c.cmd("QUIT");
    let out = python(
        PY_TLS_PROBE,
        &[
            "starttls".into(),
            pf.encrypt.to_string(),
            ca.clone(),
            Postfix::USER.into(),
            Postfix::PASS.into(),
        ],
    );
    assert!(out.contains("LOGIN 235"), "{out}");
    // Implicit: TLS from the first byte, checked by openssl s_client.
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", pf.implicit),
            "-CAfile",
            &ca,
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
            "-servername",
            "localhost",
            "-ign_eof",
            "-crlf",
            "-quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"EHLO x\nQUIT\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "s_client failed: {so}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        so.starts_with("220 ")
            && so.contains("250-AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5")
            && so.contains("221 "),
        "{so}"
    );
    let out = python(
        PY_TLS_PROBE,
        &[
            "implicit".into(),
            pf.implicit.to_string(),
            certs().other_ca.display().to_string(),
        ],
    );
    assert!(out.contains("VERIFY-FAILED"), "{out}");
}

// ---------------------------------------------------------------------------
// smtp-sink
// ---------------------------------------------------------------------------

#[test]
fn smtp_sink_answers_and_logs() {
    let sink = SmtpSink::start_with(&["-v"]);
    let (mut c, greet) = RawSmtp::connect(sink.port);
    assert_eq!(greet.code, 220);
    let ehlo = c.cmd("EHLO client.test");
    assert!(
        ehlo.has("PIPELINING") && ehlo.has("8BITMIME") && ehlo.has("DSN"),
        "{ehlo:?}"
    );
    assert!(
        !ehlo.has("SIZE") && !ehlo.has("STARTTLS") && !ehlo.has("CHUNKING"),
        "{ehlo:?}"
    );
    assert_eq!(c.cmd("MAIL FROM:<a@b>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<c@d>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: s\r\n\r\nx\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);
    assert_eq!(c.cmd("QUIT").code, 221);
    let deadline = std::time::Instant::now() + WAIT;
    while !sink.log().to_ascii_uppercase().contains("RCPT TO:<C@D>") {
        assert!(
            std::time::Instant::now() < deadline,
            "smtp-sink -v did not log the RCPT: {}",
            sink.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// helpers of the support module
// ---------------------------------------------------------------------------

#[test]
fn strip_trace_headers_removes_exactly_postfix_lines() {
    let m = b"Return-Path: <a@b>\nX-Original-To: alice@example.test\nDelivered-To: alice@example.test\nReceived: from x\n\tby y;\n\tdate\nReceived: by client\nSubject: s\n\nbody\n";
    assert_eq!(
        strip_trace_headers(m),
        b"Received: by client\nSubject: s\n\nbody\n"
    );
    assert_eq!(
        strip_trace_headers(b"Subject: s\n\nb\n"),
        b"Subject: s\n\nb\n"
    );
    assert_eq!(lf_to_crlf(b"a\nb\r\nc"), b"a\r\nb\r\nc");
    assert_eq!(crlf_to_lf(b"a\r\nb\nc\r"), b"a\nb\nc\r");
}

#[test]
fn json_reader() {
    let j =
        Json::parse(r#"{"a": [1, -2.5e1, true, null, "x\u00e9\ud83d\ude00\n"], "b": {}, "c": []}"#)
            .unwrap();
    let a = j.get("a").and_then(Json::as_array).unwrap();
    assert_eq!(a[0].as_f64(), Some(1.0));
    assert_eq!(a[1].as_f64(), Some(-25.0));
    assert_eq!(a[2].as_bool(), Some(true));
    assert!(a[3].is_null());
    assert_eq!(a[4].as_str(), Some("x\u{e9}\u{1F600}\n"));
    assert!(Json::parse("{").is_err());
    assert!(Json::parse("[1] x").is_err());
}

#[test]
fn a_server_that_cannot_start_fails_loudly_with_its_log() {
    let r = std::panic::catch_unwind(|| {
        Aiosmtpd::start(AioOpts {
            tls: true,
            cert: Some((
                "/nonexistent/cert.pem".into(),
                "/nonexistent/key.pem".into(),
            )),
            ..Default::default()
        })
    });
    let err = r.expect_err("start must panic");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("aiosmtpd exited") && msg.contains("No such file"),
        "panic message: {msg}"
    );
}
