//! The TLS options against real servers on loopback, with certificates
//! made at test time: a client certificate (STARTTLS and implicit TLS) to
//! servers that require one (Postfix with `smtpd_tls_req_ccert`, aiosmtpd
//! with a verifying context), a CA directory, a minimum TLS version
//! (Postfix capped at TLS 1.2), a name to verify other than the host
//! connected to; and the TLS connector built once per change of the
//! settings, not per handshake.

mod support;

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use smtpc::client::tls::TlsVersion;
use smtpc::ffi::result::{SMTPC_E_INVALID, SMTPC_E_NULL, SMTPC_E_TLS, SMTPC_OK};
use smtpc::ffi::session::{smtp_session_free, smtp_session_last_error, smtp_session_new};
use smtpc::ffi::tls::{
    smtp_session_set_ca_dir, smtp_session_set_client_cert, smtp_session_set_tls_min_version,
    smtp_session_set_tls_server_name, SMTPC_TLS_1_2, SMTPC_TLS_1_3,
};
use smtpc::{Error, ErrorKind, Session};
use support::{certs, repo_root, AioOpts, Aiosmtpd, TempDir};

const MSG: &[u8] = b"Subject: tls options\r\n\r\nbody\r\n";
const CLIENT_CN: &str = "libsmtpc test client";

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn session() -> Session {
    let mut s = Session::new();
    s.set_timeout(Duration::from_secs(20));
    s.set_ca_file(Some(path(&certs().ca).to_string()));
    s
}

fn with_client_cert(mut s: Session) -> Session {
    let c = certs();
    s.set_client_cert(Some(path(&c.client_cert)), Some(path(&c.client_key)))
        .unwrap();
    s
}

fn server(opts: AioOpts) -> Aiosmtpd {
    Aiosmtpd::start(AioOpts {
        tls: !opts.implicit_tls,
        ..opts
    })
}

/// An aiosmtpd that requires a client certificate signed by the test CA
/// (Python's asyncio drops the connection on a failed handshake without
/// sending the alert: the client sees the connection closed).
fn mtls_server(implicit_tls: bool) -> Aiosmtpd {
    server(AioOpts {
        implicit_tls,
        client_ca: Some(certs().ca.clone()),
        ..AioOpts::default()
    })
}

/// A private Postfix from `postfix.sh start-tls-options` (needs root):
/// `submit` offers STARTTLS up to TLS 1.2; `encrypt` (STARTTLS) and
/// `implicit` (TLS first) require a client certificate signed by the test
/// CA and answer 421 4.7.1 without one.
struct PostfixTls {
    submit: u16,
    encrypt: u16,
    implicit: u16,
    dir: PathBuf,
    _tmp: TempDir,
}

impl PostfixTls {
    fn start() -> PostfixTls {
        let c = certs();
        let tmp = TempDir::new("postfix-tls");
        let dir = tmp.path().join("pf");
        let script = repo_root().join("tests/servers/postfix.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("start-tls-options")
            .args([&dir, &c.server_cert, &c.server_key, &c.ca])
            .stdin(Stdio::null())
            .output()
            .expect("run tests/servers/postfix.sh");
        let env = fs::read_to_string(dir.join("ports.env")).unwrap_or_default();
        let get = |k: &str| -> u16 {
            env.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('=')?.trim().parse().ok())
                .unwrap_or(0)
        };
        let pf = PostfixTls {
            submit: get("PORT_SUBMIT"),
            encrypt: get("PORT_ENCRYPT"),
            implicit: get("PORT_IMPLICIT"),
            dir,
            _tmp: tmp,
        };
        assert!(
            out.status.success() && pf.submit != 0 && pf.encrypt != 0 && pf.implicit != 0,
            "postfix.sh start-tls-options failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        pf
    }

    fn maillog(&self) -> String {
        fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// Waits until the maillog has `n` lines containing `what`.
    fn wait_log(&self, what: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.maillog().matches(what).count() < n {
            assert!(
                Instant::now() < deadline,
                "{n} x {what:?} not in the maillog:\n{}",
                self.maillog()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PostfixTls {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("tests/servers/postfix.sh"))
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
    }
}

/// One message to a Postfix mailbox.
fn send_to_postfix(s: &mut Session) -> Result<(), Error> {
    let r = s.sendmail("a@example.com", &["alice@example.test"], MSG)?;
    assert_eq!(r.code, 250, "{}", r.text);
    s.quit()?;
    Ok(())
}

/// STARTTLS, EHLO and one message; the first failure.
fn starttls_and_send(s: &mut Session, host: &str, port: u16) -> Result<(), Error> {
    assert_eq!(s.connect(host, port)?.code, 220);
    assert_eq!(s.starttls()?.code, 220);
    assert!(s.is_tls());
    let r = s.sendmail("a@example.com", &["b@example.com"], MSG)?;
    assert_eq!(r.code, 250, "{}", r.text);
    s.quit()?;
    Ok(())
}

/// The client certificate's CN the server saw with its `n`th message.
fn client_cn_seen(server: &Aiosmtpd, n: usize) -> String {
    let m = server.wait_messages(n, Duration::from_secs(10));
    m[n - 1]
        .meta
        .get("client_cert_cn")
        .and_then(|j| j.as_str())
        .unwrap_or("(none)")
        .to_string()
}

#[test]
fn postfix_requiring_a_client_certificate_accepts_ours_over_starttls_and_refuses_without() {
    let pf = PostfixTls::start();
    let mut s = with_client_cert(session());
    assert_eq!(s.connect("localhost", pf.encrypt).unwrap().code, 220);
    assert_eq!(s.starttls().unwrap().code, 220);
    send_to_postfix(&mut s).unwrap();
    pf.wait_log("Trusted TLS connection established", 1);

    // Without one: the handshake completes, then Postfix refuses.
    let mut without = session();
    assert_eq!(without.connect("localhost", pf.encrypt).unwrap().code, 220);
    assert_eq!(without.starttls().unwrap().code, 220);
    let r = without.ehlo(None).unwrap();
    assert_eq!(r.code, 421, "{}", r.text);
    assert!(
        r.text.contains("No client certificate presented"),
        "{}",
        r.text
    );

    // Signed by a CA Postfix does not trust.
    let c = certs();
    let mut other = session();
    other
        .set_client_cert(
            Some(path(&c.other_client_cert)),
            Some(path(&c.other_client_key)),
        )
        .unwrap();
    other.connect("localhost", pf.encrypt).unwrap();
    other.starttls().unwrap();
    let r = other.ehlo(None).unwrap();
    assert_eq!(r.code, 421, "{}", r.text);
    assert!(
        r.text.contains("not trusted") || r.text.contains("certificate"),
        "{}",
        r.text
    );
    assert_eq!(pf.maillog().matches("Trusted TLS connection").count(), 1);
}

#[test]
fn postfix_implicit_tls_gets_the_client_certificate_too() {
    let pf = PostfixTls::start();
    let mut s = with_client_cert(session());
    assert_eq!(s.connect_tls("localhost", pf.implicit).unwrap().code, 220);
    send_to_postfix(&mut s).unwrap();
    pf.wait_log("Trusted TLS connection established", 1);

    let mut without = session();
    let greeting = without.connect_tls("localhost", pf.implicit).unwrap();
    assert_eq!(greeting.code, 421, "{}", greeting.text);
    assert!(greeting.text.contains("No client certificate presented"));
}

#[test]
fn minimum_tls_13_fails_against_postfix_capped_at_12_and_12_succeeds() {
    let pf = PostfixTls::start();
    let mut s = session();
    s.set_tls_min_version(Some(TlsVersion::Tls13));
    assert_eq!(s.connect("localhost", pf.submit).unwrap().code, 220);
    let e = s.starttls().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e:?}");
    assert!(e.message.contains("alert protocol version"), "{e:?}");
    assert!(!s.is_connected());

    s.set_tls_min_version(Some(TlsVersion::Tls12));
    assert_eq!(s.connect("localhost", pf.submit).unwrap().code, 220);
    assert_eq!(s.starttls().unwrap().code, 220);
    send_to_postfix(&mut s).unwrap();
    pf.wait_log(
        "TLS connection established from unknown[127.0.0.1]: TLSv1.2",
        1,
    );

    // The default minimum also settles on 1.2 with this server; 1.3 where
    // the server has it (the other listeners).
    s.set_tls_min_version(None);
    assert_eq!(s.connect("localhost", pf.submit).unwrap().code, 220);
    assert_eq!(s.starttls().unwrap().code, 220);
    s.quit().unwrap();
    s.set_tls_min_version(Some(TlsVersion::Tls13));
    s.set_client_cert(
        Some(path(&certs().client_cert)),
        Some(path(&certs().client_key)),
    )
    .unwrap();
    assert_eq!(s.connect_tls("localhost", pf.implicit).unwrap().code, 220);
    send_to_postfix(&mut s).unwrap();
    pf.wait_log(
        "Trusted TLS connection established from unknown[127.0.0.1]: TLSv1.3",
        1,
    );
}

#[test]
fn aiosmtpd_requiring_a_client_certificate_accepts_ours_and_drops_others() {
    let srv = mtls_server(false);
    let mut s = with_client_cert(session());
    starttls_and_send(&mut s, "localhost", srv.port).unwrap();
    assert_eq!(client_cn_seen(&srv, 1), CLIENT_CN);

    // TLS 1.3: the client's side of the handshake is over before the server
    // checks the certificate; aiosmtpd then drops the connection.
    let e = starttls_and_send(&mut session(), "localhost", srv.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e:?}");
    let c = certs();
    let mut other = session();
    other
        .set_client_cert(
            Some(path(&c.other_client_cert)),
            Some(path(&c.other_client_key)),
        )
        .unwrap();
    let e = starttls_and_send(&mut other, "localhost", srv.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e:?}");
    assert_eq!(
        srv.messages().len(),
        1,
        "only the session with the certificate sent"
    );

    let implicit = mtls_server(true);
    let mut s = with_client_cert(session());
    assert_eq!(s.connect_tls("localhost", implicit.port).unwrap().code, 220);
    s.sendmail("a@example.com", &["b@example.com"], MSG)
        .unwrap();
    assert_eq!(client_cn_seen(&implicit, 1), CLIENT_CN);
}

#[test]
fn a_key_in_the_certificate_file_and_bad_files_fail_when_set() {
    let c = certs();
    let dir = TempDir::new("tls-options-keys");
    // Certificate and key in one file (the key given as NULL).
    let both = dir.path().join("both.pem");
    let mut pem = fs::read(&c.client_cert).unwrap();
    pem.extend(fs::read(&c.client_key).unwrap());
    fs::write(&both, pem).unwrap();
    let srv = mtls_server(false);
    let mut s = session();
    s.set_client_cert(Some(path(&both)), None).unwrap();
    starttls_and_send(&mut s, "localhost", srv.port).unwrap();
    assert_eq!(client_cn_seen(&srv, 1), CLIENT_CN);

    // Missing files: the path is in the message, the setting unchanged.
    let missing = dir.path().join("missing.pem");
    for (cert, key) in [(&missing, &c.client_key), (&c.client_cert, &missing)] {
        let e = s
            .set_client_cert(Some(path(cert)), Some(path(key)))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Tls);
        assert!(e.message.contains(path(&missing)), "{e:?}");
    }
    // A key that is not PKCS#8: a conversion hint.
    let sec1 = dir.path().join("sec1.key");
    let out = Command::new("openssl")
        .args(["pkey", "-traditional", "-in"])
        .arg(&c.client_key)
        .arg("-out")
        .arg(&sec1)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(fs::read_to_string(&sec1)
        .unwrap()
        .starts_with("-----BEGIN EC PRIVATE KEY"));
    let e = s
        .set_client_cert(Some(path(&c.client_cert)), Some(path(&sec1)))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls);
    assert!(
        e.message.contains("PKCS#8") && e.message.contains("openssl pkcs8"),
        "{e:?}"
    );
    // A certificate file without a certificate.
    let e = s
        .set_client_cert(Some(path(&c.client_key)), Some(path(&c.client_key)))
        .unwrap_err();
    assert!(e.message.contains("holds no PEM certificate"), "{e:?}");
    // The working setting survived the failed calls.
    starttls_and_send(&mut s, "localhost", srv.port).unwrap();
    assert_eq!(client_cn_seen(&srv, 2), CLIENT_CN);
    // A certificate with another certificate's key fails at the handshake,
    // naming both files.
    let mut mismatch = session();
    mismatch
        .set_client_cert(Some(path(&c.client_cert)), Some(path(&c.other_client_key)))
        .unwrap();
    assert_eq!(mismatch.connect("localhost", srv.port).unwrap().code, 220);
    let e = mismatch.starttls().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls);
    assert!(
        e.message.contains(path(&c.client_cert)) && e.message.contains("key values mismatch"),
        "{e:?}"
    );
}

/// A folder holding `files` (name, source), for `set_ca_dir`.
fn ca_dir(tag: &str, files: &[(&str, &Path)]) -> TempDir {
    let dir = TempDir::new(tag);
    for (name, src) in files {
        fs::copy(src, dir.path().join(name)).unwrap();
    }
    dir
}

fn subject_hash(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-hash", "-noout", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_ca_directory_verifies_and_the_wrong_one_fails() {
    let c = certs();
    let srv = server(AioOpts::default());
    // OpenSSL's hashed layout (c_rehash): only <hash>.0.
    let hashed_name = format!("{}.0", subject_hash(&c.ca));
    let hashed = ca_dir("tls-cadir-hashed", &[(&hashed_name, &c.ca)]);
    // A plain folder of .pem files, the right CA among others.
    let plain = ca_dir(
        "tls-cadir-plain",
        &[("other.pem", &c.other_ca), ("test-ca.pem", &c.ca)],
    );
    fs::write(plain.path().join("README"), "not a certificate\n").unwrap();
    for dir in [&hashed, &plain] {
        let mut s = Session::new();
        s.set_ca_dir(Some(path(dir.path()))).unwrap();
        starttls_and_send(&mut s, "localhost", srv.port)
            .unwrap_or_else(|e| panic!("{}: {e:?}", dir.path().display()));
    }
    // The wrong CA only: verification fails, and neither the system's roots
    // nor anything else was trusted instead.
    let wrong = ca_dir("tls-cadir-wrong", &[("other.pem", &c.other_ca)]);
    let mut s = Session::new();
    s.set_ca_dir(Some(path(wrong.path()))).unwrap();
    let e = starttls_and_send(&mut s, "localhost", srv.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TlsVerify, "{e:?}");
    // A CA file and a CA directory together: both are trusted.
    s.set_ca_file(Some(path(&c.ca).to_string()));
    starttls_and_send(&mut s, "localhost", srv.port).unwrap();
    // Back to the CA file alone, then to neither (the system's roots).
    s.set_ca_dir(None).unwrap();
    starttls_and_send(&mut s, "localhost", srv.port).unwrap();
    s.set_ca_file(None);
    assert_eq!(
        starttls_and_send(&mut s, "localhost", srv.port)
            .unwrap_err()
            .kind,
        ErrorKind::TlsVerify
    );

    // Errors when set, with the path.
    let empty = TempDir::new("tls-cadir-empty");
    let e = s.set_ca_dir(Some(path(empty.path()))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls);
    assert!(
        e.message.contains(path(empty.path())) && e.message.contains("no PEM certificate"),
        "{e:?}"
    );
    let gone = empty.path().join("gone");
    let e = s.set_ca_dir(Some(path(&gone))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls);
    assert!(e.message.contains(path(&gone)), "{e:?}");
}

#[test]
fn the_name_to_verify_can_differ_from_the_host_connected_to() {
    let c = certs();
    let good = server(AioOpts::default()); // DNS:localhost, IP:127.0.0.1
    let mut s = session();
    s.set_tls_server_name(Some("localhost")).unwrap();
    starttls_and_send(&mut s, "127.0.0.1", good.port).unwrap();
    s.set_tls_server_name(Some("wrong.example")).unwrap();
    let e = starttls_and_send(&mut s, "127.0.0.1", good.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TlsVerify, "{e:?}");
    assert!(e.message.contains("hostname mismatch"), "{e:?}");

    // A certificate that names only wrong.example: connecting to localhost
    // verifies once told which name to expect.
    let wrong_host = server(AioOpts {
        cert: Some((c.wronghost_cert.clone(), c.wronghost_key.clone())),
        ..AioOpts::default()
    });
    let mut s = session();
    let e = starttls_and_send(&mut s, "localhost", wrong_host.port).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TlsVerify, "{e:?}");
    s.set_tls_server_name(Some("wrong.example")).unwrap();
    starttls_and_send(&mut s, "localhost", wrong_host.port).unwrap();
    s.set_tls_server_name(None).unwrap();
    assert_eq!(
        starttls_and_send(&mut s, "localhost", wrong_host.port)
            .unwrap_err()
            .kind,
        ErrorKind::TlsVerify
    );
    assert_eq!(
        s.set_tls_server_name(Some("bad\r\nname")).unwrap_err().kind,
        ErrorKind::Invalid
    );
}

/// A UNIX-domain socket in front of a TCP server (each connection relayed
/// both ways), so a real STARTTLS server answers on a socket path.
fn unix_relay(tcp_port: u16, dir: &Path) -> PathBuf {
    let sock = dir.join("smtp.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(upstream) = std::net::TcpStream::connect(("127.0.0.1", tcp_port)) else {
                return;
            };
            let (mut c1, mut u1) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            thread::spawn(move || {
                let _ = io::copy(&mut c1, &mut u1);
                let _ = u1.shutdown(std::net::Shutdown::Write);
            });
            let (mut c2, mut u2) = (client, upstream);
            thread::spawn(move || {
                let _ = io::copy(&mut u2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    sock
}

#[test]
fn tls_over_a_unix_socket_needs_a_name_to_verify() {
    let srv = server(AioOpts::default());
    let dir = TempDir::new("tls-unix");
    let sock = unix_relay(srv.port, dir.path());
    let mut s = session();
    assert_eq!(s.connect(path(&sock), 0).unwrap().code, 220);
    let e = s.starttls().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e:?}");
    assert!(e.message.contains("no host name to verify"), "{e:?}");
    s.close();
    s.set_tls_server_name(Some("localhost")).unwrap();
    starttls_and_send(&mut s, path(&sock), 0).unwrap();
    assert_eq!(srv.wait_messages(1, Duration::from_secs(10)).len(), 1);
}

#[test]
fn the_tls_connector_is_built_once_across_20_starttls_reconnects() {
    let srv = mtls_server(false);
    let mut s = with_client_cert(session());
    assert_eq!(s.tls_connector_builds(), 0, "nothing is built until needed");
    for _ in 0..20 {
        assert_eq!(s.connect("localhost", srv.port).unwrap().code, 220);
        assert_eq!(s.starttls().unwrap().code, 220);
        assert_eq!(s.ehlo(None).unwrap().code, 250);
        s.quit().unwrap();
    }
    assert_eq!(s.tls_connector_builds(), 1);
    // Settings that do not change the connector do not rebuild it.
    s.set_tls_server_name(Some("localhost")).unwrap();
    s.set_tls_min_version(None);
    starttls_and_send(&mut s, "127.0.0.1", srv.port).unwrap();
    assert_eq!(s.tls_connector_builds(), 1);
    // A change does, once.
    s.set_tls_min_version(Some(TlsVersion::Tls12));
    for _ in 0..3 {
        starttls_and_send(&mut s, "localhost", srv.port).unwrap();
    }
    assert_eq!(s.tls_connector_builds(), 2);
    s.set_tls_verify(false);
    s.set_tls_verify(true);
    starttls_and_send(&mut s, "localhost", srv.port).unwrap();
    assert_eq!(s.tls_connector_builds(), 2, "verify is back where it was");
    s.set_ca_file(Some(path(&certs().ca).to_string()));
    starttls_and_send(&mut s, "localhost", srv.port).unwrap();
    assert_eq!(s.tls_connector_builds(), 2, "the same CA file");
    s.set_ca_file(Some(path(&certs().other_ca).to_string()));
    assert_eq!(
        starttls_and_send(&mut s, "localhost", srv.port)
            .unwrap_err()
            .kind,
        ErrorKind::TlsVerify
    );
    assert_eq!(s.tls_connector_builds(), 3);
}

#[test]
fn the_c_setters_check_their_arguments_and_report_paths() {
    let c = certs();
    let cs = |p: &Path| CString::new(path(p)).unwrap();
    let last_error = |h| {
        let mut buf = vec![0u8; 512];
        let n = unsafe { smtp_session_last_error(h, buf.as_mut_ptr().cast(), buf.len()) };
        String::from_utf8_lossy(&buf[..n.min(511)]).into_owned()
    };
    let null = std::ptr::null();
    unsafe {
        assert_eq!(
            smtp_session_set_client_cert(std::ptr::null_mut(), null, null),
            SMTPC_E_NULL
        );
        assert_eq!(
            smtp_session_set_ca_dir(std::ptr::null_mut(), null),
            SMTPC_E_NULL
        );
        assert_eq!(
            smtp_session_set_tls_min_version(std::ptr::null_mut(), 0),
            SMTPC_E_NULL
        );
        assert_eq!(
            smtp_session_set_tls_server_name(std::ptr::null_mut(), null),
            SMTPC_E_NULL
        );
        let h = smtp_session_new();
        assert_eq!(smtp_session_set_client_cert(h, null, null), SMTPC_OK);
        let key = cs(&c.client_key);
        assert_eq!(
            smtp_session_set_client_cert(h, null, key.as_ptr()),
            SMTPC_E_NULL
        );
        let cert = cs(&c.client_cert);
        assert_eq!(
            smtp_session_set_client_cert(h, cert.as_ptr(), key.as_ptr()),
            SMTPC_OK
        );
        let missing = CString::new("/nonexistent/dir/client.pem").unwrap();
        assert_eq!(
            smtp_session_set_client_cert(h, missing.as_ptr(), null),
            SMTPC_E_TLS
        );
        assert!(last_error(h).contains("/nonexistent/dir/client.pem"));
        assert_eq!(smtp_session_set_ca_dir(h, missing.as_ptr()), SMTPC_E_TLS);
        assert!(last_error(h).contains("/nonexistent/dir/client.pem"));
        assert_eq!(smtp_session_set_ca_dir(h, null), SMTPC_OK);
        let crlf = CString::new("/tmp/a\r\nb").unwrap();
        assert_eq!(smtp_session_set_ca_dir(h, crlf.as_ptr()), SMTPC_E_INVALID);
        assert_eq!(
            smtp_session_set_client_cert(h, crlf.as_ptr(), null),
            SMTPC_E_INVALID
        );
        for v in [0, SMTPC_TLS_1_2, SMTPC_TLS_1_3] {
            assert_eq!(smtp_session_set_tls_min_version(h, v), SMTPC_OK);
        }
        for v in [1, 12, 0x0301, 0x0302, 0x0305, -1] {
            assert_eq!(smtp_session_set_tls_min_version(h, v), SMTPC_E_INVALID);
        }
        let name = CString::new("localhost").unwrap();
        assert_eq!(smtp_session_set_tls_server_name(h, name.as_ptr()), SMTPC_OK);
        let bad = CString::new("two words").unwrap();
        assert_eq!(
            smtp_session_set_tls_server_name(h, bad.as_ptr()),
            SMTPC_E_INVALID
        );
        assert_eq!(smtp_session_set_tls_server_name(h, null), SMTPC_OK);
        smtp_session_free(h);
    }
}
