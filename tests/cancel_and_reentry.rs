//! `smtp_session_cancel` from another thread, and calls from inside a
//! handle's own callbacks (`SMTPC_E_BUSY`).
//!
//! Cancel, at every kind of wait: the
//! connect (a listener whose backlog is full drops the SYN, so the connect
//! hangs), the greeting, a TLS handshake the server never answers, a body
//! written into a server that stopped reading. Each server is
//! scripted (a real server does not hang on demand) and never answers. The
//! call must return `SMTPC_E_CANCELLED` well under 100 ms after the
//! cancel, close the connection, and leave the handle usable.

use std::ffi::{c_char, CString};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use smtpc::ffi::result::*;
use smtpc::ffi::session::*;
use smtpc::ffi::smtp_session;
use smtpc::{ErrorKind, Session};

/// How long after the call starts the other thread cancels it.
const CANCEL_AFTER: Duration = Duration::from_millis(300);
/// The contract's "promptly".
const PROMPT: Duration = Duration::from_millis(100);

/// Runs `call` on `s` while another thread cancels it after
/// `CANCEL_AFTER`; returns the call's error kind and how long after the
/// cancel it returned.
fn cancel_during<T: std::fmt::Debug>(
    s: &mut Session,
    call: impl FnOnce(&mut Session) -> smtpc::client::Result<T>,
) -> (ErrorKind, Duration) {
    let canceller = s.canceller();
    let t = thread::spawn(move || {
        thread::sleep(CANCEL_AFTER);
        let at = Instant::now();
        canceller.cancel();
        at
    });
    let r = call(s);
    let returned = Instant::now();
    let cancelled_at = t.join().unwrap();
    let e = r.expect_err("the call must not finish: the server never answers");
    (e.kind, returned.saturating_duration_since(cancelled_at))
}

fn assert_cancelled(what: &str, (kind, late): (ErrorKind, Duration), s: &mut Session) {
    println!("{what}: {kind:?} {late:?} after the cancel");
    assert_eq!(kind, ErrorKind::Cancelled, "{what}");
    assert!(late < PROMPT, "{what}: returned {late:?} after the cancel");
    assert!(!s.is_connected(), "{what}: the connection is closed");
    assert_eq!(
        s.noop().unwrap_err().kind,
        ErrorKind::State,
        "{what}: the next call runs (no cancel left over) and finds no connection"
    );
}

/// A server that accepts, optionally plays `script` lines, then holds the
/// connection without a word for 10 s.
fn mute_server(script: &'static [&'static str]) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        let Ok((stream, _)) = l.accept() else { return };
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        for line in script {
            if let Some(reply) = line.strip_prefix("> ") {
                let _ = w.write_all(reply.as_bytes());
            } else {
                let mut got = String::new();
                let _ = r.read_line(&mut got);
            }
        }
        thread::sleep(Duration::from_secs(10));
    });
    port
}

fn session() -> Session {
    let mut s = Session::new();
    s.set_timeout(Duration::from_secs(20));
    s
}

#[test]
fn scripted_cancel_stops_a_greeting_wait() {
    let port = mute_server(&[]);
    let mut s = session();
    let r = cancel_during(&mut s, |s| s.connect("127.0.0.1", port));
    assert_cancelled("greeting", r, &mut s);
}

#[test]
fn scripted_cancel_stops_a_connect_in_progress() {
    // Backlog 1, never accepted: once it is full the kernel drops further
    // SYNs, so the next connect waits for the SYN to be answered.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // SAFETY: a valid listening socket.
    assert_eq!(
        unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&l), 0) },
        0
    );
    let mut fillers = Vec::new();
    let mut s = session();
    // Fill the queue until a connect no longer completes at once.
    let hung = (0..64).any(|_| {
        match TcpStream::connect_timeout(&l.local_addr().unwrap(), Duration::from_millis(200)) {
            Ok(c) => {
                fillers.push(c);
                false
            }
            Err(_) => true,
        }
    });
    assert!(hung, "the backlog never filled");
    let r = cancel_during(&mut s, |s| s.connect("127.0.0.1", port));
    assert_cancelled("connect", r, &mut s);
    drop(l);
}

#[test]
fn scripted_cancel_stops_a_tls_handshake_the_server_never_answers() {
    let port = mute_server(&[
        "> 220 mute ESMTP\r\n",
        "EHLO",
        "> 250-mute\r\n250 STARTTLS\r\n",
        "STARTTLS",
        "> 220 go ahead\r\n",
    ]);
    let mut s = session();
    assert_eq!(s.connect("127.0.0.1", port).unwrap().code, 220);
    assert_eq!(s.ehlo(None).unwrap().code, 250);
    let r = cancel_during(&mut s, |s| s.starttls());
    assert_cancelled("TLS handshake", r, &mut s);
}

#[test]
fn scripted_cancel_stops_a_body_written_into_a_stalled_server() {
    let port = mute_server(&[
        "> 220 mute ESMTP\r\n",
        "EHLO",
        "> 250 mute\r\n",
        "MAIL",
        "> 250 ok\r\n",
        "RCPT",
        "> 250 ok\r\n",
        "DATA",
        "> 354 go ahead\r\n",
    ]);
    let mut s = session();
    assert_eq!(s.connect("127.0.0.1", port).unwrap().code, 220);
    assert_eq!(s.ehlo(None).unwrap().code, 250);
    let body =
        b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop\r\n".repeat(1 << 19);
    let r = cancel_during(&mut s, |s| s.sendmail("a@x.test", &["b@y.test"], &body));
    assert_cancelled("body", r, &mut s);
    assert_eq!(
        s.last_outcome().delivery(),
        smtpc::client::Delivery::NotSent
    );
}

#[test]
fn scripted_cancel_before_a_call_stops_that_call_at_once() {
    let port = mute_server(&["> 220 mute ESMTP\r\n"]);
    let mut s = session();
    s.canceller().cancel();
    let t0 = Instant::now();
    assert_eq!(
        s.connect("127.0.0.1", port).unwrap_err().kind,
        ErrorKind::Cancelled
    );
    assert!(t0.elapsed() < PROMPT);
    // Consumed by that call: the next one runs.
    assert_eq!(s.connect("127.0.0.1", port).unwrap().code, 220);
}

/// Through the C API, with the handle shared by two threads as the header
/// allows for `smtp_session_cancel` only.
#[test]
fn scripted_c_api_cancel_from_another_thread() {
    struct Handle(*mut smtp_session);
    // SAFETY: the other thread only calls smtp_session_cancel, which the
    // header allows during a call on another thread.
    unsafe impl Send for Handle {}
    unsafe impl Sync for Handle {}

    let port = mute_server(&[]);
    let host = CString::new("127.0.0.1").unwrap();
    let h = Handle(smtp_session_new());
    let mut reply = [0 as c_char; 64];
    let (rc, late) = thread::scope(|scope| {
        let handle = &h;
        let canceller = scope.spawn(move || {
            thread::sleep(CANCEL_AFTER);
            let at = Instant::now();
            assert_eq!(unsafe { smtp_session_cancel(handle.0) }, SMTPC_OK);
            at
        });
        let rc = unsafe {
            smtp_session_connect(h.0, host.as_ptr(), port, reply.as_mut_ptr(), reply.len())
        };
        let returned = Instant::now();
        (
            rc,
            returned.saturating_duration_since(canceller.join().unwrap()),
        )
    });
    assert_eq!(rc, SMTPC_E_CANCELLED);
    assert!(late < PROMPT, "{late:?}");
    unsafe {
        assert_eq!(smtp_session_is_connected(h.0), 0);
        assert_eq!(smtp_session_cancel(std::ptr::null_mut()), SMTPC_E_NULL);
        smtp_session_free(h.0);
    }
}

/// What the trace callback saw when it called back into its own handle.
struct Reentry {
    handle: *mut smtp_session,
    noop: i32,
    last_code: i32,
    failed_step: i32,
    calls: u32,
}

unsafe extern "C" fn reenter(user: *mut std::ffi::c_void, _line: *const c_char) {
    let r = &mut *(user as *mut Reentry);
    if r.calls == 0 {
        r.noop = smtp_session_noop(r.handle, std::ptr::null_mut(), 0);
        r.last_code = smtp_session_last_code(r.handle);
        r.failed_step = smtp_session_failed_step(r.handle);
    }
    r.calls += 1;
}

/// A call made on a handle from inside one of its own callbacks would pair
/// replies with the wrong commands: it is refused with `SMTPC_E_BUSY`, as
/// are the queries, and nothing is sent.
#[test]
fn scripted_call_from_inside_a_callback_is_refused_busy() {
    let port = mute_server(&["> 220 mute ESMTP\r\n", "NOOP", "> 250 ok\r\n"]);
    let host = CString::new("127.0.0.1").unwrap();
    unsafe {
        let h = smtp_session_new();
        let mut r = Reentry {
            handle: h,
            noop: 0,
            last_code: 0,
            failed_step: 0,
            calls: 0,
        };
        assert_eq!(
            smtp_session_set_trace(h, Some(reenter), (&mut r as *mut Reentry).cast()),
            SMTPC_OK
        );
        assert_eq!(smtp_session_set_debuglevel(h, 1), SMTPC_OK);
        let mut reply = [0 as c_char; 64];
        assert_eq!(
            smtp_session_connect(h, host.as_ptr(), port, reply.as_mut_ptr(), reply.len()),
            220
        );
        assert!(r.calls > 0, "the trace ran");
        assert_eq!(r.noop, SMTPC_E_BUSY);
        assert_eq!(r.last_code, SMTPC_E_BUSY);
        assert_eq!(r.failed_step, SMTPC_E_BUSY);
        // Outside the callback the handle works, and the refused NOOP never
        // went out: the server's one reply answers this NOOP.
        assert_eq!(
            smtp_session_set_trace(h, None, std::ptr::null_mut()),
            SMTPC_OK
        );
        assert_eq!(smtp_session_noop(h, reply.as_mut_ptr(), reply.len()), 250);
        smtp_session_free(h);
    }
}

/// A cancel that lands before `sendmail` begins stops it at once, and the
/// message gets an outcome of its own (not sent) — never the previous
/// message's "accepted".
#[test]
fn scripted_cancel_before_sendmail_leaves_that_message_not_sent() {
    let port = mute_server(&[
        "> 220 mute ESMTP\r\n",
        "EHLO",
        "> 250 mute\r\n",
        "MAIL",
        "> 250 ok\r\n",
        "RCPT",
        "> 250 ok\r\n",
        "DATA",
        "> 354 go ahead\r\n",
        "x",
        ".",
        "> 250 queued\r\n",
    ]);
    let mut s = session();
    s.connect("127.0.0.1", port).unwrap();
    assert_eq!(
        s.sendmail("a@x.test", &["b@y.test"], b"x\r\n")
            .unwrap()
            .code,
        250
    );
    assert_eq!(
        s.last_outcome().delivery(),
        smtpc::client::Delivery::Accepted
    );
    s.canceller().cancel();
    let e = s.sendmail("a@x.test", &["b@y.test"], b"y\r\n").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert_eq!(
        s.last_outcome().delivery(),
        smtpc::client::Delivery::NotSent
    );
}
