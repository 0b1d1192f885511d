//! SASL: SCRAM-SHA-256 against a real server (Dovecot's SASL behind
//! Postfix) and against scripted servers for what a real one never does
//! (a wrong server signature, a 235 without one, an `e=`); OAUTHBEARER
//! against a scripted server (Nodemailer's smtp-server offers XOAUTH2 but
//! not OAUTHBEARER, aiosmtpd neither); the C callback mechanism
//! (`smtp_session_auth_callback`, called from Rust as a C program would)
//! and `smtp_session_set_initial_response` against aiosmtpd.

mod support;

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use smtpc::client::trace::TraceSink;
use smtpc::ffi::esmtp::smtp_session_auth;
use smtpc::ffi::result::*;
use smtpc::ffi::sasl::*;
use smtpc::ffi::session::*;
use smtpc::ffi::smtp_session;
use smtpc::{ErrorKind, Session};
use support::dovecot::PostfixWithDovecotSasl;
use support::{certs, AioOpts, Aiosmtpd};

const WAIT: Duration = Duration::from_secs(30);
const MSG: &[u8] = b"From: tester@example.test\r\nTo: alice@example.test\r\n\
Subject: after SCRAM\r\n\r\nHello.\r\n";

/// A session whose transcript (level 1) is collected.
fn traced() -> (Session, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let mut s = Session::new();
    s.set_timeout(Duration::from_secs(20));
    s.set_ca_file(Some(certs().ca.to_string_lossy().into_owned()));
    s.set_debuglevel(1);
    let f: TraceSink = Box::new(move |l| sink.lock().unwrap().push(l.to_string()));
    s.set_trace_sink(Some(f));
    (s, lines)
}

fn joined(lines: &Arc<Mutex<Vec<String>>>) -> String {
    lines.lock().unwrap().join("\n")
}

// ---- SCRAM-SHA-256 against Dovecot behind Postfix ------------------------

fn connected(port: u16) -> (Session, Arc<Mutex<Vec<String>>>) {
    let (mut s, lines) = traced();
    assert_eq!(s.connect("localhost", port).unwrap().code, 220);
    (s, lines)
}

#[test]
fn dovecot_scram_sha_256_right_password_gets_235_and_mail_goes_through() {
    let pf = PostfixWithDovecotSasl::start();
    let (mut s, lines) = connected(pf.submit);
    s.ehlo(None).unwrap();
    assert!(s
        .extensions()
        .unwrap()
        .auth_mechanisms()
        .iter()
        .any(|m| m == "SCRAM-SHA-256"));
    let r = s
        .auth(
            "SCRAM-SHA-256",
            PostfixWithDovecotSasl::USER,
            PostfixWithDovecotSasl::PASS,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", joined(&lines)));
    assert_eq!(r.code, 235, "{}", r.text);
    let log = joined(&lines);
    // Initial response, server-first (334), client-final, server-final
    // (334 v=…, checked), the empty answer to it, 235.
    assert!(
        log.contains("send: 'AUTH SCRAM-SHA-256 <redacted>\\r\\n'"),
        "{log}"
    );
    assert_eq!(log.matches("reply: '334 ").count(), 2, "{log}");
    assert!(!log.contains(PostfixWithDovecotSasl::PASS), "{log}");
    s.sendmail("tester@example.test", &["alice@example.test"], MSG)
        .unwrap();
    pf.wait_delivered("alice", 1, WAIT);
    let dlog = pf.dovecot.log();
    assert!(
        !dlog.contains("Password mismatch"),
        "dovecot judged it right:\n{dlog}"
    );
}

#[test]
fn dovecot_scram_sha_256_wrong_password_gets_535() {
    let pf = PostfixWithDovecotSasl::start();
    let (mut s, lines) = connected(pf.submit);
    let r = s
        .auth("SCRAM-SHA-256", PostfixWithDovecotSasl::USER, "wrong")
        .unwrap();
    assert_eq!(r.code, 535, "{}\n{}", r.text, joined(&lines));
    assert!(s.last_error().is_none());
    // The connection is still in step.
    assert_eq!(s.noop().unwrap().code, 250);
    assert!(
        pf.dovecot
            .log()
            .contains("scram-sha-256(tester,127.0.0.1): Password mismatch"),
        "{}",
        pf.dovecot.log()
    );
}

#[test]
fn dovecot_scram_sha_256_by_login_without_initial_response_and_after_starttls() {
    let pf = PostfixWithDovecotSasl::start();
    // login: SCRAM-SHA-256 comes first in its preference.
    let (mut s, lines) = connected(pf.submit);
    let r = s
        .login(PostfixWithDovecotSasl::USER, PostfixWithDovecotSasl::PASS)
        .unwrap();
    assert_eq!(r.code, 235, "{}", r.text);
    let log = joined(&lines);
    assert!(log.contains("send: 'AUTH SCRAM-SHA-256 "), "{log}");
    assert!(!log.contains("send: 'AUTH PLAIN"), "{log}");

    // initial_response off: AUTH alone, an empty 334, then client-first.
    let (mut s, lines) = connected(pf.submit);
    s.set_initial_response(false);
    let r = s
        .auth(
            "SCRAM-SHA-256",
            PostfixWithDovecotSasl::USER,
            PostfixWithDovecotSasl::PASS,
        )
        .unwrap();
    assert_eq!(r.code, 235, "{}", r.text);
    let log = joined(&lines);
    assert!(log.contains("send: 'AUTH SCRAM-SHA-256\\r\\n'"), "{log}");
    assert_eq!(log.matches("reply: '334 ").count(), 3, "{log}");

    // After STARTTLS on the port that only offers AUTH under TLS.
    let (mut s, _lines) = connected(pf.encrypt);
    s.ehlo(None).unwrap();
    assert!(!s.has_extn("AUTH"));
    s.starttls().unwrap();
    let r = s
        .auth(
            "SCRAM-SHA-256",
            PostfixWithDovecotSasl::USER,
            PostfixWithDovecotSasl::PASS,
        )
        .unwrap();
    assert_eq!(r.code, 235, "{}", r.text);
    s.sendmail("tester@example.test", &["bob@example.test"], MSG)
        .unwrap();
    pf.wait_delivered("bob", 1, WAIT);
}

// ---- scripted servers ------------------------------------------------------

/// One connection to a scripted server: lines in, replies out; every line
/// received is recorded.
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
    got: Vec<String>,
}

impl Conn {
    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        let l = l.trim_end_matches(['\r', '\n']).to_string();
        self.got.push(l.clone());
        l
    }
    fn send(&mut self, text: &str) {
        self.w.write_all(text.as_bytes()).unwrap();
    }
    /// Greeting and EHLO, offering `mechs`.
    fn hello(&mut self, mechs: &str) {
        self.send("220 scripted.test ESMTP\r\n");
        let ehlo = self.line();
        assert!(ehlo.to_ascii_uppercase().starts_with("EHLO "), "{ehlo}");
        self.send(&format!("250-scripted.test\r\n250 AUTH {mechs}\r\n"));
    }
    /// The rest of the conversation: NOOP 250, QUIT 221.
    fn until_quit(&mut self) {
        loop {
            let l = self.line();
            match l.to_ascii_uppercase().as_str() {
                "" | "QUIT" => {
                    let _ = self.w.write_all(b"221 bye\r\n");
                    return;
                }
                "NOOP" => self.send("250 ok\r\n"),
                other => self.send(&format!("500 unexpected {other}\r\n")),
            }
        }
    }
}

/// Serves one connection with `script`; the join handle gives the lines
/// the server received.
fn scripted(
    script: impl FnOnce(&mut Conn) + Send + 'static,
) -> (u16, thread::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (stream, _) = l.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut c = Conn {
            r: BufReader::new(stream.try_clone().unwrap()),
            w: stream,
            got: Vec::new(),
        };
        script(&mut c);
        c.got
    });
    (port, h)
}

fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

fn unb64(s: &str) -> Vec<u8> {
    B64.decode(s.trim()).unwrap()
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// What the scripted SCRAM server does after checking the client's proof.
#[derive(Clone, Copy, PartialEq, Debug)]
enum ScramEnd {
    /// 334 v=<the right signature>, then 235.
    Honest,
    /// 334 v=<a signature with one bit flipped>.
    Tampered,
    /// 235 at once, no v=.
    NoSignature,
    /// 334 e=invalid-proof, then 535.
    ServerError,
}

const SCRAM_USER: &str = "user";
const SCRAM_PASS: &str = "pencil";

/// A SCRAM-SHA-256 server for `SCRAM_USER`/`SCRAM_PASS` (salt and
/// iterations as RFC 7677's example) that checks the client's proof, then
/// ends as `end` says.
fn scram_server(end: ScramEnd, iterations: u32) -> (u16, thread::JoinHandle<Vec<String>>) {
    scripted(move |c| {
        c.hello("PLAIN SCRAM-SHA-256");
        let auth = c.line();
        let ir = auth
            .strip_prefix("AUTH SCRAM-SHA-256 ")
            .unwrap_or_else(|| panic!("{auth}"));
        let client_first = String::from_utf8(unb64(ir)).unwrap();
        let bare = client_first.strip_prefix("n,,").unwrap().to_string();
        assert!(bare.starts_with(&format!("n={SCRAM_USER},r=")), "{bare}");
        let cnonce = bare.split(",r=").nth(1).unwrap();
        let salt = unb64("W22ZaJ0SNY7soEsUEjb6gQ==");
        let server_first = format!(
            "r={cnonce}scripted-server-nonce,s={},i={iterations}",
            b64(&salt)
        );
        c.send(&format!("334 {}\r\n", b64(server_first.as_bytes())));
        let final_line = c.line();
        if final_line == "*" {
            c.send("501 5.7.0 cancelled\r\n");
            return c.until_quit();
        }
        let client_final = String::from_utf8(unb64(&final_line)).unwrap();
        let (without_proof, proof) = client_final.rsplit_once(",p=").unwrap();
        assert_eq!(
            without_proof,
            format!("c=biws,r={cnonce}scripted-server-nonce")
        );
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(SCRAM_PASS.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac256(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let client_sig = hmac256(&stored_key, auth_message.as_bytes());
        let want: Vec<u8> = client_key
            .iter()
            .zip(&client_sig)
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(unb64(proof), want, "the client's proof");
        let mut server_sig = hmac256(&hmac256(&salted, b"Server Key"), auth_message.as_bytes());
        match end {
            ScramEnd::NoSignature => c.send("235 2.7.0 ok\r\n"),
            ScramEnd::ServerError => {
                c.send(&format!("334 {}\r\n", b64(b"e=invalid-proof")));
                assert_eq!(c.line(), "", "an empty answer to e=");
                c.send("535 5.7.8 failed\r\n");
            }
            ScramEnd::Honest | ScramEnd::Tampered => {
                if end == ScramEnd::Tampered {
                    server_sig[7] ^= 0x01;
                }
                let v = format!("v={}", b64(&server_sig));
                c.send(&format!("334 {}\r\n", b64(v.as_bytes())));
                if c.line() == "*" {
                    c.send("501 5.7.0 cancelled\r\n");
                } else {
                    c.send("235 2.7.0 ok\r\n");
                }
            }
        }
        c.until_quit();
    })
}

fn scram_client(port: u16) -> (Session, Arc<Mutex<Vec<String>>>) {
    let (mut s, lines) = traced();
    assert_eq!(s.connect("127.0.0.1", port).unwrap().code, 220);
    (s, lines)
}

#[test]
fn scripted_scram_honest_server_gets_235() {
    let (port, server) = scram_server(ScramEnd::Honest, 4096);
    let (mut s, _) = scram_client(port);
    let r = s.auth("SCRAM-SHA-256", SCRAM_USER, SCRAM_PASS).unwrap();
    assert_eq!(r.code, 235);
    s.quit().unwrap();
    let got = server.join().unwrap();
    assert_eq!(got[3], "", "the empty answer to v=: {got:?}");
}

#[test]
fn scripted_scram_tampered_server_signature_is_refused_and_cancelled() {
    let (port, server) = scram_server(ScramEnd::Tampered, 4096);
    // Through the C API, as a C caller sees it.
    let c = Ffi::new();
    c.connect(port);
    let mech = CString::new("SCRAM-SHA-256").unwrap();
    let user = CString::new(SCRAM_USER).unwrap();
    let pass = CString::new(SCRAM_PASS).unwrap();
    let code = unsafe {
        smtp_session_auth(
            c.s,
            mech.as_ptr(),
            user.as_ptr(),
            pass.as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    assert_eq!(code, SMTPC_E_PROTOCOL, "{}", c.trace());
    assert!(c.last_error().contains("signature"), "{}", c.last_error());
    // "*" cancelled the exchange (501); the session is still usable.
    assert_eq!(c.noop(), 250);
    c.quit();
    let got = server.join().unwrap();
    assert_eq!(got[3], "*", "{got:?}");
}

#[test]
fn scripted_scram_235_without_server_signature_is_an_error() {
    let (port, server) = scram_server(ScramEnd::NoSignature, 4096);
    let (mut s, _) = scram_client(port);
    let e = s.auth("SCRAM-SHA-256", SCRAM_USER, SCRAM_PASS).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert!(e.message.contains("no v="), "{}", e.message);
    // Authenticated to a server that never proved itself: the session
    // does not go on with it.
    assert!(!s.is_connected());
    server.join().unwrap();
}

#[test]
fn scripted_scram_server_error_gets_an_empty_answer_and_its_535() {
    let (port, server) = scram_server(ScramEnd::ServerError, 4096);
    let (mut s, _) = scram_client(port);
    let r = s.auth("SCRAM-SHA-256", SCRAM_USER, SCRAM_PASS).unwrap();
    assert_eq!(r.code, 535, "{}", r.text);
    s.quit().unwrap();
    server.join().unwrap();
}

#[test]
fn scripted_scram_low_iteration_count_is_refused_before_any_proof() {
    let (port, server) = scram_server(ScramEnd::Honest, 4095);
    let (mut s, _) = scram_client(port);
    let e = s.auth("SCRAM-SHA-256", SCRAM_USER, SCRAM_PASS).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert!(e.message.contains("4095"), "{}", e.message);
    assert_eq!(s.noop().unwrap().code, 250);
    s.quit().unwrap();
    let got = server.join().unwrap();
    assert_eq!(got[2], "*", "no proof was sent: {got:?}");
}

// ---- OAUTHBEARER (scripted) --------------------------------------------------

/// An OAUTHBEARER server accepting `token` for `user` (RFC 7628); a wrong
/// token gets the 334 JSON error, then (after the client's ^A) 535.
fn bearer_server(
    user: &'static str,
    token: &'static str,
) -> (u16, thread::JoinHandle<Vec<String>>) {
    scripted(move |c| {
        c.hello("OAUTHBEARER XOAUTH2");
        let auth = c.line();
        let ir = match auth.strip_prefix("AUTH OAUTHBEARER") {
            Some("") => {
                c.send("334 \r\n");
                c.line()
            }
            Some(ir) => ir.trim().to_string(),
            None => panic!("{auth}"),
        };
        let msg = unb64(&ir);
        let want = format!("n,a={user},\x01auth=Bearer {token}\x01\x01");
        if msg == want.as_bytes() {
            c.send("235 2.7.0 Accepted\r\n");
        } else {
            let err = r#"{"status":"invalid_token","scope":"mail"}"#;
            c.send(&format!("334 {}\r\n", b64(err.as_bytes())));
            assert_eq!(unb64(&c.line()), b"\x01", "the client's ^A");
            c.send("535 5.7.8 Invalid credentials\r\n");
        }
        c.until_quit();
    })
}

#[test]
fn scripted_oauthbearer_right_token_gets_235() {
    let (port, server) = bearer_server("me@example.test", "ya29.tok");
    let (mut s, lines) = scram_client(port);
    let r = s
        .auth("OAUTHBEARER", "me@example.test", "ya29.tok")
        .unwrap();
    assert_eq!(r.code, 235, "{}", r.text);
    assert!(!joined(&lines).contains("ya29"), "the token is redacted");
    s.quit().unwrap();
    server.join().unwrap();
}

#[test]
fn scripted_oauthbearer_wrong_token_answers_ctrl_a_and_returns_535() {
    let (port, server) = bearer_server("me@example.test", "ya29.tok");
    // Through the C API.
    let c = Ffi::new();
    c.connect(port);
    let mech = CString::new("OAUTHBEARER").unwrap();
    let user = CString::new("me@example.test").unwrap();
    let token = CString::new("expired").unwrap();
    let mut reply = [0 as c_char; 128];
    let code = unsafe {
        smtp_session_auth(
            c.s,
            mech.as_ptr(),
            user.as_ptr(),
            token.as_ptr(),
            reply.as_mut_ptr(),
            reply.len(),
        )
    };
    assert_eq!(code, 535, "{}", c.trace());
    let text = unsafe { CStr::from_ptr(reply.as_ptr()) }.to_str().unwrap();
    assert_eq!(text, "5.7.8 Invalid credentials");
    assert_eq!(c.noop(), 250);
    c.quit();
    let got = server.join().unwrap();
    assert_eq!(got[2], "AQ==", "a single ^A: {got:?}");
}

#[test]
fn scripted_oauthbearer_without_initial_response() {
    let (port, server) = bearer_server("me@example.test", "ya29.tok");
    let (mut s, _) = scram_client(port);
    s.set_initial_response(false);
    let r = s
        .auth("OAUTHBEARER", "me@example.test", "ya29.tok")
        .unwrap();
    assert_eq!(r.code, 235, "{}", r.text);
    s.quit().unwrap();
    let got = server.join().unwrap();
    assert_eq!(got[1], "AUTH OAUTHBEARER", "{got:?}");
}

// ---- the C callback mechanism against aiosmtpd -----------------------------

/// A handle driven through the C API, its transcript collected.
struct Ffi {
    s: *mut smtp_session,
    trace: Box<Mutex<Vec<String>>>,
}

unsafe extern "C" fn collect_trace(user: *mut c_void, line: *const c_char) {
    let lines = &*(user as *const Mutex<Vec<String>>);
    let line = CStr::from_ptr(line).to_string_lossy().into_owned();
    lines.lock().unwrap().push(line);
}

impl Ffi {
    fn new() -> Ffi {
        let s = smtp_session_new();
        assert!(!s.is_null());
        let trace = Box::new(Mutex::new(Vec::new()));
        unsafe {
            assert_eq!(smtp_session_set_timeout_ms(s, 20_000), SMTPC_OK);
            assert_eq!(smtp_session_set_debuglevel(s, 1), SMTPC_OK);
            let user = &*trace as *const Mutex<Vec<String>> as *mut c_void;
            assert_eq!(
                smtp_session_set_trace(s, Some(collect_trace), user),
                SMTPC_OK
            );
        }
        Ffi { s, trace }
    }
    fn connect(&self, port: u16) {
        let code = unsafe {
            smtp_session_connect(self.s, c"127.0.0.1".as_ptr(), port, std::ptr::null_mut(), 0)
        };
        assert_eq!(code, 220);
    }
    fn noop(&self) -> c_int {
        unsafe { smtp_session_noop(self.s, std::ptr::null_mut(), 0) }
    }
    fn quit(&self) {
        assert_eq!(
            unsafe { smtp_session_quit(self.s, std::ptr::null_mut(), 0) },
            221
        );
    }
    fn last_error(&self) -> String {
        let mut buf = [0 as c_char; 512];
        unsafe {
            smtp_session_last_error(self.s, buf.as_mut_ptr(), buf.len());
            CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
        }
    }
    fn trace(&self) -> String {
        self.trace.lock().unwrap().join("\n")
    }
    /// `smtp_session_auth_callback` with `mech`; returns the code and the
    /// reply text.
    fn auth_callback(&self, mech: &str, state: &mut CbState) -> (c_int, String) {
        let mech = CString::new(mech).unwrap();
        let mut reply = [0 as c_char; 256];
        state.session = self.s;
        let code = unsafe {
            smtp_session_auth_callback(
                self.s,
                mech.as_ptr(),
                Some(sasl_cb),
                (state as *mut CbState).cast(),
                reply.as_mut_ptr(),
                reply.len(),
            )
        };
        let text = unsafe { CStr::from_ptr(reply.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        (code, text)
    }
}

impl Drop for Ffi {
    fn drop(&mut self) {
        unsafe { smtp_session_free(self.s) };
    }
}

/// What the test's SASL callback does: PLAIN's response (or LOGIN's by
/// prompt), an abort at a given call, and a record of every call.
struct CbState {
    /// PLAIN: the initial response; LOGIN: answer "Username:"/"Password:".
    login: bool,
    user: String,
    pass: String,
    /// Return SMTPC_SASL_NO_RESPONSE to the initial call.
    no_initial: bool,
    /// Return -1 at this call (0 = the first).
    abort_at: Option<usize>,
    /// Each call's challenge (None: the initial call) and offered capacity.
    calls: Vec<(Option<Vec<u8>>, usize)>,
    /// The handle, to try a call on it from inside the callback.
    session: *mut smtp_session,
    /// What that call returned.
    reentry: Option<c_int>,
}

impl CbState {
    fn plain(user: &str, pass: &str) -> CbState {
        CbState {
            login: false,
            user: user.into(),
            pass: pass.into(),
            no_initial: false,
            abort_at: None,
            calls: Vec::new(),
            session: std::ptr::null_mut(),
            reentry: None,
        }
    }
}

unsafe extern "C" fn sasl_cb(
    user: *mut c_void,
    challenge: *const c_char,
    challenge_len: usize,
    response: *mut c_char,
    response_cap: usize,
) -> i64 {
    let st = &mut *(user as *mut CbState);
    let challenge = (!challenge.is_null())
        .then(|| std::slice::from_raw_parts(challenge.cast::<u8>(), challenge_len).to_vec());
    let call = st.calls.len();
    st.calls.push((challenge.clone(), response_cap));
    if st.reentry.is_none() {
        st.reentry = Some(smtp_session_noop(st.session, std::ptr::null_mut(), 0));
    }
    if st.abort_at == Some(call) {
        return -1;
    }
    let answer: Vec<u8> = match (&challenge, st.login) {
        (None, true) => return SMTPC_SASL_NO_RESPONSE,
        (None, false) if st.no_initial => return SMTPC_SASL_NO_RESPONSE,
        (_, false) => format!("\0{}\0{}", st.user, st.pass).into_bytes(),
        (Some(c), true) => {
            let prompt = String::from_utf8_lossy(c).to_ascii_lowercase();
            if prompt.contains("pass") {
                st.pass.clone().into_bytes()
            } else {
                st.user.clone().into_bytes()
            }
        }
    };
    if answer.len() <= response_cap {
        std::ptr::copy_nonoverlapping(answer.as_ptr(), response.cast::<u8>(), answer.len());
    }
    answer.len() as i64
}

fn aio_with_user(user: &str, pass: &str) -> Aiosmtpd {
    Aiosmtpd::start(AioOpts {
        auth_users: vec![(user.into(), pass.into())],
        ..AioOpts::default()
    })
}

#[test]
fn callback_plain_gets_235_and_a_call_from_inside_is_busy() {
    let server = aio_with_user("cbuser", "cbpass");
    let c = Ffi::new();
    c.connect(server.port);
    let mut st = CbState::plain("cbuser", "cbpass");
    let (code, text) = c.auth_callback("plain", &mut st);
    assert_eq!(code, 235, "{text}\n{}\n{}", c.last_error(), c.trace());
    // One call: the initial response, with no challenge.
    assert_eq!(st.calls, [(None, 1024)]);
    // A call on the handle from inside its callback is refused.
    assert_eq!(st.reentry, Some(SMTPC_E_BUSY));
    let log = c.trace();
    assert!(log.contains("send: 'AUTH PLAIN <redacted>\\r\\n'"), "{log}");
    assert!(!log.contains("cbpass"), "{log}");
    assert!(!log.contains(&B64.encode(b"\0cbuser\0cbpass")), "{log}");
    c.quit();
}

/// aiosmtpd refuses lines over 1001 bytes, so the long response goes to a
/// scripted server, which checks what arrived.
#[test]
fn scripted_callback_response_longer_than_the_first_buffer_is_asked_again() {
    let long = "p".repeat(5000);
    let want = format!("AUTH PLAIN {}", B64.encode(format!("\0cbuser\0{long}")));
    let (port, server) = scripted(move |c| {
        c.hello("PLAIN");
        let auth = c.line();
        c.send(if auth == want {
            "235 2.7.0 ok\r\n"
        } else {
            "535 5.7.8 not what was sent\r\n"
        });
        c.until_quit();
    });
    let c = Ffi::new();
    c.connect(port);
    let mut st = CbState::plain("cbuser", &long);
    let (code, text) = c.auth_callback("PLAIN", &mut st);
    assert_eq!(code, 235, "{text}\n{}", c.last_error());
    let need = 2 + "cbuser".len() + long.len();
    assert_eq!(st.calls, [(None, 1024), (None, need)]);
    c.quit();
    server.join().unwrap();
}

#[test]
fn callback_abort_returns_smtpc_e_callback_and_the_session_stays_usable() {
    let server = aio_with_user("cbuser", "cbpass");
    let c = Ffi::new();
    c.connect(server.port);

    // Abort at the initial response: nothing is sent.
    let mut st = CbState::plain("cbuser", "cbpass");
    st.abort_at = Some(0);
    let (code, _) = c.auth_callback("PLAIN", &mut st);
    assert_eq!(code, SMTPC_E_CALLBACK);
    assert!(c.last_error().contains("callback"), "{}", c.last_error());
    assert!(!c.trace().contains("send: 'AUTH"), "{}", c.trace());
    assert_eq!(c.noop(), 250);

    // Abort at a challenge: "*" cancels the exchange (aiosmtpd: 501).
    let mut st = CbState::plain("cbuser", "cbpass");
    st.no_initial = true;
    st.abort_at = Some(1);
    let (code, _) = c.auth_callback("PLAIN", &mut st);
    assert_eq!(code, SMTPC_E_CALLBACK, "{}", c.trace());
    assert_eq!(st.calls.len(), 2);
    assert_eq!(
        st.calls[1].0.as_deref(),
        Some(&b""[..]),
        "PLAIN's empty challenge"
    );
    let log = c.trace();
    assert!(log.contains("send: 'AUTH PLAIN\\r\\n'"), "{log}");
    assert!(log.contains("send: '* <redacted>\\r\\n'"), "{log}");
    assert!(log.contains("reply: '501 "), "{log}");
    // Still in step: NOOP, then a good AUTH.
    assert_eq!(c.noop(), 250, "{}", c.trace());
    let mut st = CbState::plain("cbuser", "cbpass");
    assert_eq!(c.auth_callback("PLAIN", &mut st).0, 235);
    c.quit();
}

#[test]
fn callback_with_initial_response_off_answers_the_334() {
    let server = aio_with_user("cbuser", "cbpass");
    let c = Ffi::new();
    c.connect(server.port);
    assert_eq!(
        unsafe { smtp_session_set_initial_response(c.s, 0) },
        SMTPC_OK
    );
    let mut st = CbState::plain("cbuser", "cbpass");
    let (code, text) = c.auth_callback("PLAIN", &mut st);
    assert_eq!(code, 235, "{text}\n{}", c.trace());
    // Never asked for an initial response: only for the 334's (empty)
    // challenge.
    assert_eq!(st.calls, [(Some(Vec::new()), 1024)]);
    let log = c.trace();
    let auth = log.find("send: 'AUTH PLAIN\\r\\n'").expect(&log);
    let challenge = log[auth..].find("reply: '334 ").expect(&log);
    let response = log[auth + challenge..]
        .find("send: '<redacted>\\r\\n'")
        .expect(&log);
    assert!(
        log[auth + challenge + response..].contains("reply: '235 "),
        "{log}"
    );
    c.quit();
}

#[test]
fn callback_login_gets_each_decoded_challenge() {
    let server = aio_with_user("cbuser", "cbpass");
    let c = Ffi::new();
    c.connect(server.port);
    let mut st = CbState::plain("cbuser", "cbpass");
    st.login = true;
    let (code, text) = c.auth_callback("LOGIN", &mut st);
    assert_eq!(code, 235, "{text}\n{}", c.trace());
    let challenges: Vec<String> = st
        .calls
        .iter()
        .map(|(ch, _)| match ch {
            None => "(initial)".to_string(),
            Some(b) => String::from_utf8_lossy(b).into_owned(),
        })
        .collect();
    // aiosmtpd's prompts, decoded from base64.
    assert_eq!(challenges, ["(initial)", "User Name\0", "Password\0"]);
    c.quit();
}

#[test]
fn callback_refusals_send_nothing() {
    let server = aio_with_user("cbuser", "cbpass");
    let c = Ffi::new();
    c.connect(server.port);
    let mut st = CbState::plain("cbuser", "cbpass");
    for bad in [
        "",
        "PLAIN LOGIN",
        "PLAIN\r\nNOOP",
        "X\u{e9}",
        "A-VERY-LONG-MECHANISM-NAME",
    ] {
        assert_eq!(c.auth_callback(bad, &mut st).0, SMTPC_E_INVALID, "{bad:?}");
    }
    // Not offered by the server: the callback is never called.
    assert_eq!(c.auth_callback("X-MINE", &mut st).0, SMTPC_E_NOT_SUPPORTED);
    assert!(st.calls.is_empty());
    let null_cb = unsafe {
        smtp_session_auth_callback(
            c.s,
            c"PLAIN".as_ptr(),
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    assert_eq!(null_cb, SMTPC_E_NULL);
    assert!(!c.trace().contains("send: 'AUTH"), "{}", c.trace());
    assert_eq!(c.noop(), 250);
    c.quit();
}
