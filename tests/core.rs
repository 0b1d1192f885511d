//! The smtplib feature set against real servers on loopback: aiosmtpd
//! (byte-exact capture) and a private Postfix (STARTTLS, SASL, Maildirs).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtpc::client::trace::TraceSink;
use smtpc::{ErrorKind, Session, Step};
use support::{certs, lf_to_crlf, strip_trace_headers, AioOpts, Aiosmtpd, Postfix};

const WAIT: Duration = Duration::from_secs(10);

fn session() -> Session {
    let mut s = Session::new();
    s.set_timeout(Duration::from_secs(20));
    s.set_ca_file(Some(certs().ca.to_string_lossy().into_owned()));
    s
}

/// A session whose transcript (level `level`) is collected.
fn traced(level: i32) -> (Session, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let mut s = session();
    s.set_debuglevel(level);
    let f: TraceSink = Box::new(move |l| sink.lock().unwrap().push(l.to_string()));
    s.set_trace_sink(Some(f));
    (s, lines)
}

fn joined(lines: &Arc<Mutex<Vec<String>>>) -> String {
    lines.lock().unwrap().join("\n")
}

fn aio(opts: AioOpts) -> Aiosmtpd {
    Aiosmtpd::start(opts)
}

fn connect(s: &mut Session, port: u16) {
    let r = s.connect("localhost", port).expect("connect");
    assert_eq!(r.code, 220, "{}", r.text);
}

const MSG: &[u8] =
    b"From: me@example.com\r\nTo: you@example.com\r\nSubject: test\r\n\r\nHello.\r\n";

// ---- aiosmtpd -------------------------------------------------------------

#[test]
fn sendmail_delivers_a_crlf_message_byte_exact() {
    let server = aio(AioOpts::default());
    let mut s = session();
    connect(&mut s, server.port);
    let r = s
        .sendmail("me@example.com", &["you@example.com"], MSG)
        .unwrap();
    assert_eq!(r.code, 250);
    assert_eq!(s.failed_step(), Step::None);
    let got = server.wait_messages(1, WAIT);
    assert_eq!(got[0].data, MSG);
    assert_eq!(got[0].mail_from, "me@example.com");
    assert_eq!(got[0].rcpt_tos, ["you@example.com"]);
    assert_eq!(s.quit().unwrap().code, 221);
    assert!(!s.is_connected());
}

#[test]
fn sendmail_normalizes_line_endings_and_keeps_dot_lines() {
    let server = aio(AioOpts::default());
    let mut s = session();
    connect(&mut s, server.port);
    let body = b"Subject: dots\n\n.leading\n.\n..two\rbare cr\r\n\n.\r\nend";
    s.sendmail("me@example.com", &["you@example.com"], body)
        .unwrap();
    let got = server.wait_messages(1, WAIT);
    assert_eq!(
        got[0].data,
        b"Subject: dots\r\n\r\n.leading\r\n.\r\n..two\r\nbare cr\r\n\r\n.\r\nend\r\n"
    );
}

#[test]
fn sendmail_delivers_a_large_body_with_dots_at_every_chunk_boundary() {
    let server = aio(AioOpts::default());
    let mut s = session();
    connect(&mut s, server.port);
    // Lines of 63 bytes + CRLF: dot-lines straddle every power-of-two
    // boundary of the encoder's and the socket's buffers (curl #18798).
    let mut msg = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..12_000 {
        let lead = if i % 3 == 0 { "." } else { "x" };
        msg.extend_from_slice(format!("{lead}{:062}\r\n", i).as_bytes());
    }
    assert!(msg.len() > 700 * 1024);
    let r = s
        .sendmail("me@example.com", &["you@example.com"], &msg)
        .unwrap();
    assert_eq!(r.code, 250);
    assert_eq!(server.wait_messages(1, WAIT)[0].data, msg);
}

#[test]
fn ehlo_reports_extensions_and_their_parameters() {
    let server = aio(AioOpts {
        auth_users: vec![("u".into(), "p".into())],
        data_size_limit: Some(123_456),
        ..AioOpts::default()
    });
    let mut s = session();
    connect(&mut s, server.port);
    assert!(!s.has_extn("SIZE"), "nothing is known before EHLO");
    let r = s.ehlo(Some("client.example")).unwrap();
    assert_eq!(r.code, 250);
    assert!(s.has_extn("size") && s.has_extn("8BITMIME") && s.has_extn("AUTH"));
    assert!(!s.has_extn("STARTTLS"), "no certificate, no STARTTLS");
    let ext = s.extensions().unwrap();
    assert_eq!(ext.size_limit(), Some(123_456));
    for m in ["PLAIN", "LOGIN", "CRAM-MD5"] {
        assert!(ext.auth_mechanisms().iter().any(|x| x == m), "{m}");
    }
}

#[test]
fn ehlo_without_a_name_sends_this_hosts_name() {
    let server = aio(AioOpts::default());
    let (mut s, lines) = traced(1);
    connect(&mut s, server.port);
    assert_eq!(s.ehlo(None).unwrap().code, 250);
    let log = joined(&lines);
    let sent = log
        .lines()
        .find_map(|l| l.strip_prefix("send: 'ehlo "))
        .expect("an ehlo line");
    let name = sent.strip_suffix("\\r\\n'").unwrap();
    assert!(
        name.contains('.') || name.starts_with('['),
        "EHLO name should be an FQDN or an address literal: {name}"
    );
}

#[test]
fn starttls_verifies_the_certificate_and_resets_ehlo_state() {
    let server = aio(AioOpts {
        tls: true,
        ..AioOpts::default()
    });
    let mut s = session();
    connect(&mut s, server.port);
    s.ehlo(None).unwrap();
    assert!(s.has_extn("STARTTLS"));
    let r = s.starttls().unwrap();
    assert_eq!(r.code, 220);
    assert!(s.is_tls());
    assert!(
        s.extensions().is_none(),
        "EHLO state is reset after STARTTLS"
    );
    s.ehlo(None).unwrap();
    assert!(!s.has_extn("STARTTLS"));
    assert_eq!(
        s.sendmail("a@example.com", &["b@example.com"], MSG)
            .unwrap()
            .code,
        250
    );
    assert_eq!(server.wait_messages(1, WAIT)[0].data, MSG);
}

#[test]
fn starttls_against_an_unknown_ca_fails_closed_with_a_clear_error() {
    let server = aio(AioOpts {
        tls: true,
        ..AioOpts::default()
    });
    let mut s = session();
    s.set_ca_file(Some(certs().other_ca.to_string_lossy().into_owned()));
    connect(&mut s, server.port);
    let e = s.starttls().unwrap_err();
    assert_eq!(e.kind, ErrorKind::TlsVerify);
    assert!(
        e.message.starts_with("certificate verify failed"),
        "{}",
        e.message
    );
    assert!(
        !s.is_connected(),
        "a failed handshake closes the connection"
    );
    assert_eq!(s.noop().unwrap_err().kind, ErrorKind::State);
}

#[test]
fn starttls_is_refused_locally_when_not_offered() {
    let server = aio(AioOpts::default());
    let mut s = session();
    connect(&mut s, server.port);
    let e = s.starttls().unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotSupported);
    assert_eq!(s.noop().unwrap().code, 250, "the session stays usable");
}

#[test]
fn login_prefers_cram_md5_as_smtplib_does() {
    let server = aio(AioOpts {
        tls: true,
        auth_users: vec![("user".into(), "pa55 word".into())],
        ..AioOpts::default()
    });
    let (mut s, lines) = traced(1);
    connect(&mut s, server.port);
    s.starttls().unwrap();
    let r = s.login("user", "pa55 word").unwrap();
    assert_eq!(r.code, 235, "{}", r.text);
    let log = joined(&lines);
    assert!(log.contains("send: 'AUTH CRAM-MD5\\r\\n'"), "{log}");
    assert!(!log.contains("pa55"), "the password never appears");
}

#[test]
fn each_auth_mechanism_authenticates_after_starttls() {
    for mech in ["PLAIN", "LOGIN", "CRAM-MD5"] {
        let server = aio(AioOpts {
            tls: true,
            auth_users: vec![("user".into(), "secret".into())],
            auth_require_tls: true,
            ..AioOpts::default()
        });
        let (mut s, lines) = traced(2);
        connect(&mut s, server.port);
        s.starttls().unwrap();
        s.ehlo(None).unwrap();
        let r = s.auth(mech, "user", "secret").unwrap();
        assert_eq!(r.code, 235, "{mech}: {}", r.text);
        let log = joined(&lines);
        assert!(!log.contains("secret"), "{mech}: secret in the trace");
        assert!(
            !log.contains(&smtpc::client::sasl::encode(b"\0user\0secret")),
            "{mech}: encoded secret in the trace"
        );
        assert!(log.contains("<redacted>") || mech != "PLAIN", "{log}");
        s.sendmail("user@example.com", &["x@example.com"], MSG)
            .unwrap();
        assert_eq!(server.wait_messages(1, WAIT).len(), 1);
    }
}

#[test]
fn wrong_password_returns_the_servers_535() {
    let server = aio(AioOpts {
        auth_users: vec![("user".into(), "right".into())],
        ..AioOpts::default()
    });
    let mut s = session();
    connect(&mut s, server.port);
    let r = s.login("user", "wrong").unwrap();
    assert_eq!(r.code, 535, "{}", r.text);
    assert!(
        s.last_error().is_none(),
        "a refusal is an answer, not an error"
    );
    assert_eq!(s.last_reply().unwrap().code, 535);
}

#[test]
fn vrfy_reports_known_and_unknown_users() {
    let server = aio(AioOpts {
        known_users: vec!["alice@example.com".into()],
        ..AioOpts::default()
    });
    let mut s = session();
    connect(&mut s, server.port);
    assert_eq!(s.vrfy("alice@example.com").unwrap().code, 250);
    assert_eq!(s.vrfy("mallory@example.com").unwrap().code, 550);
}

#[test]
fn one_refused_recipient_does_not_stop_the_others() {
    let server = aio(AioOpts {
        reject_rcpts: vec!["nobody@example.com".into()],
        ..AioOpts::default()
    });
    let mut s = session();
    connect(&mut s, server.port);
    let to = ["a@example.com", "nobody@example.com", "b@example.com"];
    let r = s.sendmail("me@example.com", &to, MSG).unwrap();
    assert_eq!(r.code, 250);
    assert_eq!(s.failed_step(), Step::None);
    let codes: Vec<u16> = s.rcpt_replies().iter().map(|r| r.code).collect();
    assert_eq!(codes, [250, 550, 250]);
    assert!(s.rcpt_replies()[1].text.contains("5.1.1"));
    let got = server.wait_messages(1, WAIT);
    assert_eq!(got[0].rcpt_tos, ["a@example.com", "b@example.com"]);
    assert_eq!(got[0].data, MSG);
}

#[test]
fn all_recipients_refused_resets_and_keeps_the_session_usable() {
    let server = aio(AioOpts {
        reject_rcpts: vec!["x@example.com".into(), "y@example.com".into()],
        ..AioOpts::default()
    });
    let (mut s, lines) = traced(1);
    connect(&mut s, server.port);
    let r = s
        .sendmail("me@example.com", &["x@example.com", "y@example.com"], MSG)
        .unwrap();
    assert_eq!(r.code, 550);
    assert_eq!(s.failed_step(), Step::Rcpt);
    assert_eq!(s.last_reply().unwrap().code, 550);
    assert!(joined(&lines).contains("send: 'rset\\r\\n'"));
    assert!(
        !joined(&lines).contains("send: 'data"),
        "no DATA without recipients"
    );
    // The same session sends the next message.
    assert_eq!(
        s.sendmail("me@example.com", &["ok@example.com"], MSG)
            .unwrap()
            .code,
        250
    );
    let got = server.wait_messages(1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_tos, ["ok@example.com"]);
}

#[test]
fn crlf_in_an_address_is_refused_before_anything_is_sent() {
    let server = aio(AioOpts::default());
    let (mut s, lines) = traced(1);
    connect(&mut s, server.port);
    let e = s
        .sendmail(
            "me@example.com",
            &["a@example.com\r\nRCPT TO:<evil@example.com>"],
            MSG,
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(
        !joined(&lines).contains("send:"),
        "nothing, not even EHLO, went out"
    );
    assert_eq!(s.vrfy("a\nb").unwrap_err().kind, ErrorKind::Invalid);
    assert_eq!(
        s.ehlo(Some("bad\rname")).unwrap_err().kind,
        ErrorKind::Invalid
    );
    assert_eq!(
        s.docmd("NOOP", Some("x\r\nQUIT")).unwrap_err().kind,
        ErrorKind::Invalid
    );
    for e in [
        s.docmd("NOOP\r\nQUIT", None).unwrap_err(),
        s.login("user\r\nQUIT", "p").unwrap_err(),
        s.login("user", "p\0ss").unwrap_err(),
        s.auth("PLAIN", "user", "p\nq").unwrap_err(),
        s.expn("list\r").unwrap_err(),
        s.help(Some("x\ny")).unwrap_err(),
        s.set_dsn(Some(smtpc::Dsn {
            envid: Some("id\r\nRSET".into()),
            ..smtpc::Dsn::default()
        }))
        .unwrap_err(),
        s.set_dsn(Some(smtpc::Dsn {
            notify: Some("SUCCESS\r\nRSET".into()),
            ..smtpc::Dsn::default()
        }))
        .unwrap_err(),
    ] {
        assert_eq!(e.kind, ErrorKind::Invalid, "{}", e.message);
    }
    assert_eq!(s.noop().unwrap().code, 250);
    assert!(server.messages().is_empty());
}

#[test]
fn implicit_tls_connects_verifies_and_delivers() {
    let server = aio(AioOpts {
        implicit_tls: true,
        auth_users: vec![("u".into(), "p".into())],
        ..AioOpts::default()
    });
    let mut s = session();
    let r = s.connect_tls("localhost", server.port).unwrap();
    assert_eq!(r.code, 220);
    assert!(s.is_tls());
    assert_eq!(s.login("u", "p").unwrap().code, 235);
    s.sendmail("u@example.com", &["v@example.com"], MSG)
        .unwrap();
    assert_eq!(server.wait_messages(1, WAIT)[0].data, MSG);
}

#[test]
fn transcript_follows_smtplib_format() {
    let server = aio(AioOpts::default());
    let (mut s, lines) = traced(1);
    connect(&mut s, server.port);
    s.sendmail(
        "me@example.com",
        &["you@example.com"],
        b"Subject: x\r\n\r\nhi\r\n",
    )
    .unwrap();
    s.quit().unwrap();
    let log = joined(&lines);
    for expected in [
        &format!("connect: ('localhost', {})", server.port),
        "reply: '220 ",
        "send: 'ehlo ",
        "reply: '250-",
        "reply: retcode (250); Msg: '",
        "send: 'mail FROM:<me@example.com> SIZE=18\\r\\n'",
        "send: 'rcpt TO:<you@example.com>\\r\\n'",
        "send: 'data\\r\\n'",
        "data: (354, '",
        "send: 'Subject: x\\r\\n\\r\\nhi\\r\\n.\\r\\n'",
        "data: (250, '",
        "send: 'quit\\r\\n'",
        "reply: retcode (221); Msg: '",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in:\n{log}");
    }
}

#[test]
fn help_noop_rset_expn_and_docmd_return_the_servers_answers() {
    let server = aio(AioOpts::default());
    let mut s = session();
    connect(&mut s, server.port);
    s.ehlo(None).unwrap();
    let help = s.help(None).unwrap();
    assert_eq!(help.code, 250);
    assert!(
        help.text.to_ascii_uppercase().contains("EHLO"),
        "{}",
        help.text
    );
    assert_eq!(s.help(Some("MAIL")).unwrap().code, 250);
    assert_eq!(s.noop().unwrap().code, 250);
    assert_eq!(s.rset().unwrap().code, 250);
    assert_eq!(s.expn("list").unwrap().code, 502);
    assert_eq!(s.docmd("NOOP", None).unwrap().code, 250);
    assert_eq!(s.docmd("BOGUS", Some("arg")).unwrap().code, 500);
}

#[test]
fn connect_reaches_an_ipv6_server() {
    let server = aio(AioOpts {
        host: Some("::1".into()),
        ..AioOpts::default()
    });
    let mut s = session();
    let r = s.connect("::1", server.port).unwrap();
    assert_eq!(r.code, 220);
    s.sendmail("a@example.com", &["b@example.com"], MSG)
        .unwrap();
    assert_eq!(server.wait_messages(1, WAIT)[0].data, MSG);
}

#[test]
fn connect_tries_every_resolved_address() {
    // "localhost" resolves to ::1 and 127.0.0.1 here; the server listens on
    // IPv4 only, so an attempt on ::1 (if tried first) must fall through.
    let server = aio(AioOpts::default());
    let mut s = session();
    assert_eq!(s.connect("localhost", server.port).unwrap().code, 220);
}

#[test]
fn connect_to_a_closed_port_is_a_connect_error() {
    let port = support::free_port();
    let mut s = session();
    let e = s.connect("127.0.0.1", port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connect);
    assert!(e.message.contains(&port.to_string()), "{}", e.message);
}

/// Prints the transcript if the test fails.
struct DumpOnPanic(Arc<Mutex<Vec<String>>>);

impl Drop for DumpOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("transcript:\n{}", joined(&self.0));
        }
    }
}

// ---- Postfix --------------------------------------------------------------

fn postfix_session(pf: &Postfix) -> Session {
    let mut s = session();
    connect(&mut s, pf.submit);
    s
}

fn delivered_body(pf: &Postfix, user: &str, n: usize) -> Vec<Vec<u8>> {
    pf.wait_delivered(user, n, WAIT)
        .iter()
        .map(|m| lf_to_crlf(strip_trace_headers(m)))
        .collect()
}

#[test]
fn postfix_delivers_byte_exact_to_maildirs() {
    let pf = Postfix::start();
    let mut s = postfix_session(&pf);
    let msg = b"From: me@example.com\r\nTo: alice@example.test\r\nSubject: exact\r\n\r\n.dot line\r\nlast\r\n";
    let r = s
        .sendmail("me@example.com", &["alice@example.test"], msg)
        .unwrap();
    assert_eq!(r.code, 250, "{}", r.text);
    assert_eq!(delivered_body(&pf, "alice", 1)[0], msg);
}

#[test]
fn postfix_refuses_an_unknown_recipient_and_delivers_to_the_rest() {
    let pf = Postfix::start();
    let mut s = postfix_session(&pf);
    let to = [
        "alice@example.test",
        "unknown@example.test",
        "bob@example.test",
    ];
    let r = s.sendmail("me@example.com", &to, MSG).unwrap();
    assert_eq!(r.code, 250);
    let codes: Vec<u16> = s.rcpt_replies().iter().map(|r| r.code).collect();
    assert_eq!(codes, [250, 550, 250]);
    let unknown = &s.rcpt_replies()[1];
    assert_eq!(
        unknown.enhanced().map(|e| e.to_string()).as_deref(),
        Some("5.1.1")
    );
    assert!(unknown.text.contains("User unknown"), "{}", unknown.text);
    assert_eq!(delivered_body(&pf, "alice", 1)[0], MSG);
    assert_eq!(delivered_body(&pf, "bob", 1)[0], MSG);
}

#[test]
fn postfix_starttls_then_each_auth_mechanism() {
    let pf = Postfix::start();
    for mech in ["PLAIN", "LOGIN", "CRAM-MD5"] {
        let mut s = postfix_session(&pf);
        assert_eq!(s.starttls().unwrap().code, 220);
        s.ehlo(None).unwrap();
        let r = s.auth(mech, Postfix::USER, Postfix::PASS).unwrap();
        assert_eq!(r.code, 235, "{mech}: {}", r.text);
        s.quit().unwrap();
    }
    // login() picks the best mechanism itself.
    let mut s = postfix_session(&pf);
    s.starttls().unwrap();
    assert_eq!(s.login(Postfix::USER, Postfix::PASS).unwrap().code, 235);
}

#[test]
fn postfix_wrong_password_comes_back_as_535() {
    let pf = Postfix::start();
    let mut s = postfix_session(&pf);
    s.starttls().unwrap();
    let r = s.auth("PLAIN", Postfix::USER, "not-the-password").unwrap();
    assert_eq!(r.code, 535, "{}", r.text);
}

#[test]
fn postfix_vrfy_answers_252_for_known_and_550_for_unknown() {
    let pf = Postfix::start();
    let mut s = postfix_session(&pf);
    assert_eq!(s.vrfy("alice@example.test").unwrap().code, 252);
    let unknown = s.vrfy("unknown@example.test").unwrap();
    assert_eq!(unknown.code, 550);
    assert!(unknown.text.starts_with("5.1.1"), "{}", unknown.text);
}

#[test]
fn postfix_implicit_tls_port_delivers() {
    let pf = Postfix::start();
    let mut s = session();
    assert_eq!(s.connect_tls("localhost", pf.implicit).unwrap().code, 220);
    assert!(s.is_tls());
    s.sendmail("me@example.com", &["alice@example.test"], MSG)
        .unwrap();
    assert_eq!(delivered_body(&pf, "alice", 1)[0], MSG);
}

#[test]
fn postfix_encrypt_port_refuses_mail_in_clear_and_the_step_says_so() {
    let pf = Postfix::start();
    let (mut s, lines) = traced(1);
    let _keep = DumpOnPanic(lines.clone());
    connect(&mut s, pf.encrypt);
    let r = s
        .sendmail("me@example.com", &["alice@example.test"], MSG)
        .unwrap();
    assert_eq!(r.code, 530, "{}", r.text);
    assert_eq!(s.failed_step(), Step::Mail);
    // After STARTTLS the same session delivers.
    s.starttls().unwrap();
    assert_eq!(
        s.sendmail("me@example.com", &["alice@example.test"], MSG)
            .unwrap()
            .code,
        250
    );
    assert_eq!(delivered_body(&pf, "alice", 1)[0], MSG);
}

#[test]
fn postfix_certificate_from_another_ca_is_refused() {
    let pf = Postfix::start();
    let mut s = session();
    s.set_ca_file(Some(certs().other_ca.to_string_lossy().into_owned()));
    connect(&mut s, pf.submit);
    assert_eq!(s.starttls().unwrap_err().kind, ErrorKind::TlsVerify);
    let mut s = session();
    s.set_ca_file(Some(certs().other_ca.to_string_lossy().into_owned()));
    assert_eq!(
        s.connect_tls("localhost", pf.implicit).unwrap_err().kind,
        ErrorKind::TlsVerify
    );
}

#[test]
fn postfix_all_recipients_refused_keeps_the_session_in_step() {
    let pf = Postfix::start();
    let (mut s, lines) = traced(1);
    let _keep = DumpOnPanic(lines.clone());
    connect(&mut s, pf.submit);
    // A body of lines that look like commands: if the server read a refused
    // chunk as commands, they would show up as replies out of step.
    let body = b"Subject: x\r\n\r\nRSET\r\nNOOP\r\nNOOP\r\n";
    let r = s
        .sendmail("me@example.com", &["unknown@example.test"], body)
        .unwrap();
    assert_eq!(r.code, 550);
    assert_eq!(s.failed_step(), Step::Rcpt);
    let noop = s.noop().unwrap();
    assert_eq!((noop.code, noop.text.as_str()), (250, "2.0.0 Ok"));
    assert_eq!(
        s.sendmail("me@example.com", &["alice@example.test"], MSG)
            .unwrap()
            .code,
        250
    );
    assert_eq!(delivered_body(&pf, "alice", 1)[0], MSG);
}
