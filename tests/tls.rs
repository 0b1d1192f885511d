//! Fail-closed TLS against real servers with certificates made at test
//! time: verification failures, TLS policies, clear-text AUTH refusal.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtpc::client::trace::TraceSink;
use smtpc::{ErrorKind, Session, TlsPolicy};
use support::{certs, AioOpts, Aiosmtpd, Postfix};

const MSG: &[u8] = b"Subject: tls\r\n\r\nbody\r\n";

fn session(ca: &std::path::Path) -> (Session, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let mut s = Session::new();
    s.set_timeout(Duration::from_secs(20));
    s.set_ca_file(Some(ca.to_string_lossy().into_owned()));
    s.set_debuglevel(1);
    let f: TraceSink = Box::new(move |l| sink.lock().unwrap().push(l.to_string()));
    s.set_trace_sink(Some(f));
    (s, lines)
}

fn sent(lines: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| l.strip_prefix("send: '").map(str::to_string))
        .collect()
}

fn starttls_server(cert: Option<(std::path::PathBuf, std::path::PathBuf)>) -> Aiosmtpd {
    Aiosmtpd::start(AioOpts {
        tls: true,
        cert,
        ..AioOpts::default()
    })
}

/// STARTTLS against `server` as `host`, trusting `ca`: the verification error.
fn starttls_error(server: &Aiosmtpd, host: &str, ca: &std::path::Path) -> smtpc::Error {
    let (mut s, _) = session(ca);
    assert_eq!(s.connect(host, server.port).unwrap().code, 220);
    let e = s.starttls().unwrap_err();
    assert!(
        !s.is_connected(),
        "a failed handshake closes the connection"
    );
    e
}

#[test]
fn wrong_host_name_unknown_ca_and_expired_certificate_each_fail_with_their_reason() {
    let c = certs();
    let wrong_host = starttls_server(Some((c.wronghost_cert.clone(), c.wronghost_key.clone())));
    let expired = starttls_server(Some((c.expired_cert.clone(), c.expired_key.clone())));
    let good = starttls_server(None);

    let host = starttls_error(&wrong_host, "localhost", &c.ca);
    let unknown_ca = starttls_error(&good, "localhost", &c.other_ca);
    let old = starttls_error(&expired, "localhost", &c.ca);

    for e in [&host, &unknown_ca, &old] {
        assert_eq!(e.kind, ErrorKind::TlsVerify, "{}", e.message);
        assert!(
            e.message.starts_with("certificate verify failed: "),
            "{}",
            e.message
        );
    }
    assert!(
        host.message.contains("hostname mismatch"),
        "{}",
        host.message
    );
    assert!(old.message.contains("expired"), "{}", old.message);
    assert!(
        unknown_ca.message.contains("local issuer") || unknown_ca.message.contains("self-signed"),
        "{}",
        unknown_ca.message
    );
    let distinct: std::collections::HashSet<_> = [&host.message, &unknown_ca.message, &old.message]
        .into_iter()
        .collect();
    assert_eq!(distinct.len(), 3, "each failure names its own reason");
}

#[test]
fn an_ip_address_is_checked_against_the_certificates_ip_names() {
    // The good certificate names DNS:localhost, IP:127.0.0.1 and IP:::1;
    // the wrong-host one only DNS:wrong.example.
    let good = starttls_server(None);
    let (mut s, _) = session(&certs().ca);
    assert_eq!(s.connect("127.0.0.1", good.port).unwrap().code, 220);
    assert_eq!(s.starttls().unwrap().code, 220, "IP SAN 127.0.0.1 matches");
    let c = certs();
    let wrong_host = starttls_server(Some((c.wronghost_cert.clone(), c.wronghost_key.clone())));
    let e = starttls_error(&wrong_host, "127.0.0.1", &c.ca);
    assert_eq!(e.kind, ErrorKind::TlsVerify);
    assert!(e.message.contains("mismatch"), "{}", e.message);
}

#[test]
fn verification_is_off_only_when_switched_off_explicitly() {
    let c = certs();
    let expired = starttls_server(Some((c.expired_cert.clone(), c.expired_key.clone())));
    let (mut s, _) = session(&c.other_ca);
    s.set_tls_verify(false);
    s.connect("localhost", expired.port).unwrap();
    assert_eq!(s.starttls().unwrap().code, 220);
    assert!(s.is_tls());
    s.sendmail("a@example.com", &["b@example.com"], MSG)
        .unwrap();
    assert_eq!(
        expired.wait_messages(1, Duration::from_secs(10))[0].data,
        MSG
    );
}

#[test]
fn required_tls_refuses_a_server_without_starttls_after_ehlo_only() {
    // A server that does not offer STARTTLS looks exactly like a MITM that
    // stripped it from the EHLO reply.
    let plain = Aiosmtpd::start(AioOpts {
        auth_users: vec![("u".into(), "p".into())],
        ..AioOpts::default()
    });
    let (mut s, lines) = session(&certs().ca);
    s.set_tls_policy(TlsPolicy::Required);
    let e = s.connect("localhost", plain.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Insecure);
    assert!(e.message.contains("STARTTLS"), "{}", e.message);
    let commands = sent(&lines);
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert!(commands[0].starts_with("ehlo "), "{commands:?}");
    assert!(!s.is_connected());
    assert!(plain.messages().is_empty());
}

#[test]
fn required_tls_upgrades_before_anything_else_and_then_delivers() {
    let pf = Postfix::start();
    let (mut s, lines) = session(&certs().ca);
    s.set_tls_policy(TlsPolicy::Required);
    assert_eq!(s.connect("localhost", pf.submit).unwrap().code, 220);
    assert!(s.is_tls());
    assert!(s.has_extn("AUTH"), "EHLO was repeated over TLS");
    assert_eq!(s.login(Postfix::USER, Postfix::PASS).unwrap().code, 235);
    s.sendmail("me@example.com", &["alice@example.test"], MSG)
        .unwrap();
    let commands = sent(&lines);
    assert!(commands[0].starts_with("ehlo "));
    assert_eq!(commands[1], "STARTTLS\\r\\n'");
    assert!(commands[2].starts_with("ehlo "));
    assert_eq!(
        pf.wait_delivered("alice", 1, Duration::from_secs(10)).len(),
        1
    );
}

#[test]
fn required_tls_fails_closed_when_the_certificate_does_not_verify() {
    let good = starttls_server(None);
    let (mut s, lines) = session(&certs().other_ca);
    s.set_tls_policy(TlsPolicy::Required);
    let e = s.connect("localhost", good.port).unwrap_err();
    // SMTPC_E_INSECURE, as the header promises for the Required policy;
    // the verification detail stays in the message.
    assert_eq!(e.kind, ErrorKind::Insecure);
    assert!(e.message.contains("certificate verify failed"), "{e}");
    assert!(!s.is_connected());
    assert_eq!(sent(&lines).len(), 2, "EHLO and STARTTLS only");
}

#[test]
fn opportunistic_tls_upgrades_when_offered_and_stays_clear_otherwise() {
    let tls = starttls_server(None);
    let plain = Aiosmtpd::start(AioOpts::default());
    for (server, expect_tls) in [(&tls, true), (&plain, false)] {
        let (mut s, _) = session(&certs().ca);
        s.set_tls_policy(TlsPolicy::Opportunistic);
        assert_eq!(s.connect("localhost", server.port).unwrap().code, 220);
        assert_eq!(s.is_tls(), expect_tls);
        s.sendmail("a@example.com", &["b@example.com"], MSG)
            .unwrap();
        assert_eq!(server.wait_messages(1, Duration::from_secs(10)).len(), 1);
    }
}

#[test]
fn implicit_policy_makes_connect_speak_tls_first() {
    let server = Aiosmtpd::start(AioOpts {
        implicit_tls: true,
        ..AioOpts::default()
    });
    let (mut s, _) = session(&certs().ca);
    s.set_tls_policy(TlsPolicy::Implicit);
    assert_eq!(s.connect("localhost", server.port).unwrap().code, 220);
    assert!(s.is_tls());
    let (mut wrong, _) = session(&certs().other_ca);
    wrong.set_tls_policy(TlsPolicy::Implicit);
    assert_eq!(
        wrong.connect("localhost", server.port).unwrap_err().kind,
        ErrorKind::TlsVerify
    );
}

#[test]
fn auth_secrets_never_reach_the_transcript_at_any_level() {
    let server = Aiosmtpd::start(AioOpts {
        tls: true,
        auth_users: vec![("user".into(), "hunter2-secret".into())],
        xoauth2: vec![("user".into(), "ya29.token-secret".into())],
        ..AioOpts::default()
    });
    for level in [1, 2] {
        for (mech, secret) in [
            ("PLAIN", "hunter2-secret"),
            ("LOGIN", "hunter2-secret"),
            ("CRAM-MD5", "hunter2-secret"),
            ("XOAUTH2", "ya29.token-secret"),
            ("XOAUTH2", "wrong-token-secret"),
        ] {
            let (mut s, lines) = session(&certs().ca);
            s.set_debuglevel(level);
            s.connect("localhost", server.port).unwrap();
            s.starttls().unwrap();
            let r = s.auth(mech, "user", secret).unwrap();
            let expect = if secret.starts_with("wrong") {
                535
            } else {
                235
            };
            assert_eq!(r.code, expect, "{mech} at level {level}: {}", r.text);
            let log = lines.lock().unwrap().join("\n");
            assert!(log.contains("<redacted>"), "{log}");
            for leak in [
                secret.to_string(),
                first_response(&mut smtpc::client::sasl::Plain::new("user", secret)),
                first_response(&mut smtpc::client::sasl::XOAuth2::new("user", secret)),
                smtpc::client::sasl::encode(secret.as_bytes()),
            ] {
                assert!(
                    !log.contains(&leak),
                    "{mech} leaked {leak:?} at level {level}"
                );
            }
        }
    }
}

/// A mechanism's first response as it goes on the wire (base64).
fn first_response(m: &mut dyn smtpc::client::sasl::Mechanism) -> String {
    smtpc::client::sasl::encode(&m.initial_response().unwrap().unwrap())
}
