//! The `smtp_session_*` functions: each is the boundary, its checks, one
//! call into the client core, and the reply written out.
//!
//! Conventions stated once (the README repeats them): commands return the
//! server's reply code (>= 100, any class) or a negative `SMTPC_E_*` code;
//! `reply`/`reply_cap` come last and receive the reply text (lines joined by
//! '\n', no codes), always NUL-terminated when `reply_cap > 0` and cut on a
//! UTF-8 boundary; `reply` may be NULL when `reply_cap` is 0. A `const`
//! handle means the call changes nothing. No pointer passed in is kept after
//! the call returns, except the trace callback's `user`.

use std::ffi::{c_char, c_int, c_void, CString};
use std::time::Duration;

use super::boundary::{
    arg, canceller, command, message, opt_arg, query, query_code, query_state, recipients,
    reply_query, set_flag, smtp_session, with_handle,
};
use super::buf::write_text;
use super::result::*;
use crate::client::transaction::Delivery;
use crate::client::{Error, Session, Step};

/// Receives one transcript line (NUL-terminated, no trailing newline) and
/// the `user` pointer given to `smtp_session_set_trace`. Called on the
/// thread that is running a call on the session; the line is only valid
/// during the call.
pub type smtpc_trace_fn = Option<unsafe extern "C" fn(user: *mut c_void, line: *const c_char)>;

/// Creates a session: not connected, timeout 30 s, debug level 0, TLS
/// verification on with the system's trusted roots.
///
/// # Returns
/// A new handle, owned by the caller, to release with `smtp_session_free`;
/// NULL only if memory is exhausted.
#[no_mangle]
pub extern "C" fn smtp_session_new() -> *mut smtp_session {
    std::panic::catch_unwind(|| Box::into_raw(Box::new(smtp_session::new())))
        .unwrap_or(std::ptr::null_mut())
}

/// Cancels the call in flight on `s` from another thread: the one function
/// that may be called while another thread is inside a call on the same
/// handle. That call returns `SMTPC_E_CANCELLED` promptly (tens of
/// milliseconds: during the name lookup, the connect, the TLS handshake, a
/// wait for a reply or a body being written) and the connection is closed;
/// the handle stays valid and can connect again. If no call is in flight,
/// the next call on the handle returns `SMTPC_E_CANCELLED` at once, so a
/// cancel that races with the start of a call is never lost; a binding
/// cancels only while its own call is in flight. It must not race with
/// `smtp_session_free`. Async-signal-unsafe (it takes a lock).
///
/// # Returns
/// `SMTPC_OK` or `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle, not being freed.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_cancel(s: *mut smtp_session) -> c_int {
    match canceller(s) {
        Some(c) => {
            c.cancel();
            SMTPC_OK
        }
        None => SMTPC_E_NULL,
    }
}

/// Sets the local address to connect from (smtplib's `source_address`):
/// an IPv4 or IPv6 literal, and a port (0: any). Resolved server addresses
/// of the other family are skipped; `connect` fails with `SMTPC_E_CONNECT`
/// when none is left, or when the address cannot be bound. NULL clears it.
/// Not used for UNIX-domain sockets.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL`, `SMTPC_E_INVALID` (not an IP literal,
/// CR/LF/NUL, bad UTF-8).
///
/// # Safety
/// `s` is NULL or a live handle; `address` is NULL or a string.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_source_address(
    s: *mut smtp_session,
    address: *const c_char,
    port: u16,
) -> c_int {
    with_handle(s, |session| {
        session.set_source_address(opt_arg(address, "source address")?, port)?;
        Ok(SMTPC_OK)
    })
}

/// Closes the connection (without QUIT) and releases the handle.
/// If `s` is NULL this is a harmless no-op. Freeing a handle twice is
/// undefined behaviour, as with `free`.
///
/// # Safety
/// `s` is NULL or a handle from `smtp_session_new` not yet freed, and no
/// other thread is using it.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_free(s: *mut smtp_session) {
    if !s.is_null() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(Box::from_raw(s))));
    }
}

/// Sets the timeout, in milliseconds. Each of these is one operation with
/// one deadline, however the bytes trickle: the name lookup; the connect
/// (per address); the TLS handshake; each whole reply (the greeting
/// included); each whole write of commands; and, unless
/// `smtp_session_set_body_timeout_ms` sets its own, each message body —
/// every write of it under DATA, or every BDAT chunk of it, from its first
/// byte to its end. A call that waits on several operations may take
/// several timeouts in all, never more than one per operation.
/// 0 is refused. Default: 30000.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL`, or `SMTPC_E_INVALID` for 0.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_timeout_ms(s: *mut smtp_session, ms: u32) -> c_int {
    with_handle(s, |session| {
        if ms == 0 {
            return Err(Error::invalid("timeout must be > 0 ms").into());
        }
        session.set_timeout(Duration::from_millis(u64::from(ms)));
        Ok(SMTPC_OK)
    })
}

/// Sets the bound, in milliseconds, on writing one whole message body
/// (DATA: from its first byte to the end-of-data line; BDAT: every chunk
/// of the message), for large messages over slow links; the wait for the
/// message's final reply gets it too, since the server may still be reading
/// what the socket buffers hold. 0 (default): the same as
/// `smtp_session_set_timeout_ms`.
///
/// # Returns
/// `SMTPC_OK` or `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_body_timeout_ms(s: *mut smtp_session, ms: u32) -> c_int {
    with_handle(s, |session| {
        session.set_body_timeout((ms > 0).then(|| Duration::from_millis(u64::from(ms))));
        Ok(SMTPC_OK)
    })
}

/// Sets the transcript level: 0 off (default), 1 smtplib's transcript
/// (`send: '…'`, `reply: '…'`, `reply: retcode (250); Msg: '…'`,
/// `data: (354, '…')`), 2 the same with timestamps. Lines go to stderr, or
/// to the trace callback when one is set. AUTH secrets always appear as
/// `<redacted>`.
///
/// # Returns
/// `SMTPC_OK` or `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_debuglevel(s: *mut smtp_session, level: i32) -> c_int {
    with_handle(s, |session| {
        session.set_debuglevel(level);
        Ok(SMTPC_OK)
    })
}

struct TraceTarget {
    cb: unsafe extern "C" fn(*mut c_void, *const c_char),
    user: *mut c_void,
}

impl TraceTarget {
    fn deliver(&self, line: &str) {
        // Lines are escaped, so they hold no NUL.
        if let Ok(c) = CString::new(line) {
            // SAFETY: the caller promised `cb` is callable with `user`.
            unsafe { (self.cb)(self.user, c.as_ptr()) }
        }
    }
}

// SAFETY: the handle may move between threads; the caller promises that its
// callback and `user` may be used from whichever thread runs the session.
unsafe impl Send for TraceTarget {}

/// Sends transcript lines to `cb(user, line)` instead of stderr (the level
/// set by `smtp_session_set_debuglevel` still decides which lines exist).
/// `cb` NULL restores stderr. The library keeps `user` until the callback
/// is replaced or the handle freed, and never dereferences it.
///
/// # Returns
/// `SMTPC_OK` or `SMTPC_E_NULL` (for `s`).
///
/// # Safety
/// `s` is NULL or a live handle; `cb`, if set, is safe to call with `user`
/// for as long as it is installed.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_trace(
    s: *mut smtp_session,
    cb: smtpc_trace_fn,
    user: *mut c_void,
) -> c_int {
    with_handle(s, |session| {
        let sink = cb.map(|cb| {
            let target = TraceTarget { cb, user };
            Box::new(move |line: &str| target.deliver(line)) as crate::client::trace::TraceSink
        });
        session.set_trace_sink(sink);
        Ok(SMTPC_OK)
    })
}

/// Turns TLS certificate and host name verification on (1, the default) or
/// off (0). Off accepts any certificate: use it only for testing.
///
/// # Returns
/// `SMTPC_OK` or `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_tls_verify(s: *mut smtp_session, on: i32) -> c_int {
    set_flag(s, on, Session::set_tls_verify)
}

/// Trusts the PEM certificates in `path` instead of the system's roots for
/// later TLS handshakes. NULL goes back to the system's roots. The file is
/// read at handshake time.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL` (for `s`), `SMTPC_E_INVALID` (not UTF-8).
///
/// # Safety
/// `s` is NULL or a live handle; `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_ca_file(
    s: *mut smtp_session,
    path: *const c_char,
) -> c_int {
    with_handle(s, |session| {
        let path = opt_arg(path, "CA file path")?;
        session.set_ca_file(path.map(str::to_string));
        Ok(SMTPC_OK)
    })
}

/// Sets the name that EHLO/HELO send when called with NULL (default: this
/// host's fully qualified name, else `[local address]`, as smtplib).
/// NULL restores the default.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL`, `SMTPC_E_INVALID` (empty, a space, CR, LF).
///
/// # Safety
/// `s` is NULL or a live handle; `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_local_hostname(
    s: *mut smtp_session,
    name: *const c_char,
) -> c_int {
    with_handle(s, |session| {
        session.set_local_hostname(opt_arg(name, "host name")?)?;
        Ok(SMTPC_OK)
    })
}

/// Turns pipelining of MAIL/RCPT/DATA on (1, the default: used when the
/// server offers PIPELINING) or off (0: always lock-step).
///
/// # Returns
/// `SMTPC_OK` or `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_pipelining(s: *mut smtp_session, on: i32) -> c_int {
    set_flag(s, on, Session::set_pipelining)
}

/// Connects to `host`:`port` (every resolved IPv4 and IPv6 address in
/// turn, each within the timeout; from the source address when one is set)
/// and reads the greeting. A `host` starting with `/` is the path of a
/// UNIX-domain socket (`port` is ignored), as smtplib's LMTP takes a path.
/// A greeting other than 220 is returned and the connection closed, as
/// smtplib does.
///
/// # Returns
/// The greeting's code, or `SMTPC_E_RESOLVE`, `SMTPC_E_CONNECT`,
/// `SMTPC_E_TIMEOUT`, `SMTPC_E_CLOSED`, `SMTPC_E_PROTOCOL`, `SMTPC_E_STATE`
/// (already connected), `SMTPC_E_NULL`, `SMTPC_E_INVALID`.
///
/// # Safety
/// `s` is NULL or a live handle; `host` is NULL or a NUL-terminated string;
/// `reply` is NULL or valid for `reply_cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_connect(
    s: *mut smtp_session,
    host: *const c_char,
    port: u16,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        Ok(session.connect(arg(host, "host")?, port)?)
    })
}

/// Like `smtp_session_connect`, with implicit TLS (smtplib's `SMTP_SSL`,
/// usually port 465): the TLS handshake, verified unless switched off,
/// comes before the greeting.
///
/// # Returns
/// As `smtp_session_connect`, plus `SMTPC_E_TLS` and `SMTPC_E_TLS_VERIFY`.
///
/// # Safety
/// As `smtp_session_connect`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_connect_tls(
    s: *mut smtp_session,
    host: *const c_char,
    port: u16,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        Ok(session.connect_tls(arg(host, "host")?, port)?)
    })
}

/// Sends HELO with `name` (NULL: the local host name).
///
/// # Returns
/// The reply code, or a negative `SMTPC_E_*` code.
///
/// # Safety
/// `s` is NULL or a live handle; `name` is NULL or a NUL-terminated string;
/// `reply` is NULL or valid for `reply_cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_helo(
    s: *mut smtp_session,
    name: *const c_char,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        Ok(session.helo(opt_arg(name, "HELO name")?)?)
    })
}

/// Sends EHLO with `name` (NULL: this host's FQDN, else `[address]`) and,
/// on 250, records the extensions for `smtp_session_has_extn`.
///
/// # Returns
/// The reply code, or a negative `SMTPC_E_*` code.
///
/// # Safety
/// As `smtp_session_helo`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_ehlo(
    s: *mut smtp_session,
    name: *const c_char,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        Ok(session.ehlo(opt_arg(name, "EHLO name")?)?)
    })
}

/// Whether the last successful EHLO listed extension `name`
/// (case-insensitive).
///
/// # Returns
/// 1 if offered; 0 if not, before EHLO, or when `s` or `name` is NULL.
///
/// # Safety
/// `s` is NULL or a live handle; `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_has_extn(
    s: *const smtp_session,
    name: *const c_char,
) -> c_int {
    query(s, 0, |session| match arg(name, "extension name") {
        Ok(n) => c_int::from(session.has_extn(n)),
        Err(_) => 0,
    })
}

/// Copies the parameters of extension `name` from the last EHLO (e.g.
/// "PLAIN LOGIN CRAM-MD5" for AUTH, "10240000" for SIZE; "" when it has
/// none) into `buf`, written as reply buffers are.
///
/// # Returns
/// The parameters' full length, snprintf-style; 0 when the extension has
/// none, was not offered (tell the two apart with `smtp_session_has_extn`),
/// or `s` or `name` is NULL or not UTF-8.
///
/// # Safety
/// `s` and `name` are NULL or valid; `buf` is NULL or valid for `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_extn_params(
    s: *const smtp_session,
    name: *const c_char,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    write_text(buf, cap, "");
    query(s, 0, |session| {
        let Ok(name) = arg(name, "extension name") else {
            return 0;
        };
        match session.extensions().and_then(|e| e.params(name)) {
            Some(p) => write_text(buf, cap, p),
            None => 0,
        }
    })
}

/// Sends STARTTLS (EHLO first if none was sent) and, on 220, performs the
/// TLS handshake, verified against the CA file or the system's roots unless
/// verification is off. Bytes received before the handshake are discarded.
/// The EHLO state is reset: send EHLO again, as smtplib requires.
///
/// # Returns
/// The STARTTLS reply code (220 on success; any other is returned without
/// TLS), `SMTPC_E_NOT_SUPPORTED` (not offered), `SMTPC_E_TLS`,
/// `SMTPC_E_TLS_VERIFY` (the connection is then closed), `SMTPC_E_STATE`.
///
/// # Safety
/// `s` is NULL or a live handle; `reply` is NULL or valid for `reply_cap`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_starttls(
    s: *mut smtp_session,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| Ok(session.starttls()?))
}

/// Authenticates with `user` and `password` (EHLO first if needed), trying
/// the mechanisms both sides support, strongest first — SCRAM-SHA-256, then
/// smtplib's CRAM-MD5, PLAIN, LOGIN — until one is accepted. A server that
/// breaks a SCRAM exchange (a wrong signature) stops the login rather than
/// get the password in PLAIN. Secrets never appear in the transcript.
///
/// # Returns
/// 235 (or 503: already authenticated) on success; else the server's last
/// refusal (e.g. 535); `SMTPC_E_NOT_SUPPORTED` (no AUTH offered),
/// `SMTPC_E_AUTH_MECH` (no mechanism in common), `SMTPC_E_INVALID`.
///
/// # Safety
/// `s`, `user`, `password` are NULL or valid; `reply` as for every command.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_login(
    s: *mut smtp_session,
    user: *const c_char,
    password: *const c_char,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        Ok(session.login(arg(user, "user")?, arg(password, "password")?)?)
    })
}

/// Sends one message: MAIL FROM `from` (with SIZE= and BODY=8BITMIME as
/// the server offers), RCPT TO each of the `n_to` addresses in `to`, DATA,
/// and the message. Every line ending of `msg` is sent as CRLF and lines
/// starting with '.' are dot-stuffed, so no input can end the data early;
/// a message not ending in a line break gets CRLF. When the server offers
/// PIPELINING, MAIL, the RCPTs and DATA go out in one write. A refused
/// recipient does not stop the others; `smtp_session_rcpt_code` gives each
/// one's answer. When MAIL, every RCPT, DATA or the message is refused, the
/// transaction is reset (RSET; a 421 closes the connection) and
/// `smtp_session_failed_step` tells which step it was. Addresses may be
/// `user@host`, `<user@host>` or `Name <user@host>`; "" is the null sender.
/// UTF-8 addresses go with SMTPUTF8 when the server offers it; otherwise an
/// internationalized domain goes as its IDNA A-label, and a non-ASCII local
/// part is refused (`SMTPC_E_NOT_SUPPORTED`).
///
/// # Returns
/// The final reply code (250) on success, even if some recipients were
/// refused; else the refusing reply's code (its text in `reply`); or
/// `SMTPC_E_INVALID` (CR/LF/NUL or bad address, no recipients: nothing
/// sent), `SMTPC_E_TOO_LARGE` (over the server's SIZE: nothing sent),
/// `SMTPC_E_NOT_SUPPORTED` (8-bit message, no 8BITMIME), I/O codes.
/// A 2xx is returned only when the server's final reply to the whole
/// message (to the end of data, or to `BDAT … LAST`) was read; a chunk's
/// 250 never counts. After a negative code, `smtp_session_outcome` tells a
/// message certainly not delivered (`SMTPC_OUTCOME_NOT_SENT`) from one whose
/// end of data was sent without a final reply (`SMTPC_OUTCOME_UNKNOWN`).
///
/// # Safety
/// `s` is NULL or a live handle; `from` is NULL or a string; `to` is NULL
/// or points to `n_to` string pointers; `msg` is valid for `msg_len` bytes
/// (NULL allowed when `msg_len` is 0); `reply` as for every command.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_sendmail(
    s: *mut smtp_session,
    from: *const c_char,
    to: *const *const c_char,
    n_to: usize,
    msg: *const c_char,
    msg_len: usize,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        let from = arg(from, "sender")?;
        let to = recipients(to, n_to)?;
        let msg = message(msg, msg_len)?;
        Ok(session.sendmail(from, &to, msg)?)
    })
}

/// How many recipients the last `sendmail` has answers for.
///
/// # Returns
/// The count; 0 when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_rcpt_count(s: *const smtp_session) -> usize {
    query(s, 0, |session| session.rcpt_replies().len())
}

/// The server's answer to the `i`-th recipient (0-based, in the order
/// given) of the last `sendmail`; its text goes to `reply`.
///
/// # Returns
/// The RCPT reply code (250/251 accepted), `SMTPC_E_INVALID` when `i` is
/// out of range, `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle; `reply` is NULL or valid for `reply_cap`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_rcpt_code(
    s: *const smtp_session,
    i: usize,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    reply_query(s, reply, reply_cap, |session| {
        session
            .rcpt_replies()
            .get(i)
            .cloned()
            .ok_or(SMTPC_E_INVALID)
    })
}

/// Which step of the last `sendmail` the server refused.
///
/// # Returns
/// `SMTPC_STEP_NONE` (success, or no transaction yet), `SMTPC_STEP_MAIL`,
/// `SMTPC_STEP_RCPT`, `SMTPC_STEP_DATA`, `SMTPC_STEP_MESSAGE`,
/// `SMTPC_STEP_HELO`; `SMTPC_E_NULL` when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_failed_step(s: *const smtp_session) -> c_int {
    query_code(s, |session| step_code(session.failed_step()))
}

/// Where the message of the last `sendmail` or `sendmail_cb` stands:
/// accepted, refused by the server, not sent, or unknown (its end of data
/// was sent but the connection failed before the final reply). Read it
/// when `sendmail` returns a negative code, to know whether sending again
/// could duplicate the message.
///
/// # Returns
/// `SMTPC_OUTCOME_NONE` (no `sendmail` yet), `SMTPC_OUTCOME_ACCEPTED`,
/// `SMTPC_OUTCOME_REFUSED`, `SMTPC_OUTCOME_NOT_SENT`,
/// `SMTPC_OUTCOME_UNKNOWN`; `SMTPC_E_NULL` when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_outcome(s: *const smtp_session) -> c_int {
    query_code(s, |session| {
        delivery_code(session.last_outcome().delivery())
    })
}

pub(crate) fn delivery_code(d: Delivery) -> c_int {
    match d {
        Delivery::None => SMTPC_OUTCOME_NONE,
        Delivery::Accepted => SMTPC_OUTCOME_ACCEPTED,
        Delivery::Refused => SMTPC_OUTCOME_REFUSED,
        Delivery::NotSent => SMTPC_OUTCOME_NOT_SENT,
        Delivery::Unknown => SMTPC_OUTCOME_UNKNOWN,
    }
}

pub(crate) fn step_code(step: Step) -> c_int {
    match step {
        Step::None => SMTPC_STEP_NONE,
        Step::Mail => SMTPC_STEP_MAIL,
        Step::Rcpt => SMTPC_STEP_RCPT,
        Step::Data => SMTPC_STEP_DATA,
        Step::Message => SMTPC_STEP_MESSAGE,
        Step::Helo => SMTPC_STEP_HELO,
    }
}

/// Sends VRFY `address` (as given). Postfix answers 252 for a known user
/// it will not confirm, 550 for an unknown one.
///
/// # Returns
/// The reply code, or a negative `SMTPC_E_*` code.
///
/// # Safety
/// `s` and `address` are NULL or valid; `reply` as for every command.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_vrfy(
    s: *mut smtp_session,
    address: *const c_char,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        Ok(session.vrfy(arg(address, "address")?)?)
    })
}

/// Sends EXPN `list`.
///
/// # Returns
/// The reply code, or a negative `SMTPC_E_*` code.
///
/// # Safety
/// As `smtp_session_vrfy`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_expn(
    s: *mut smtp_session,
    list: *const c_char,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        Ok(session.expn(arg(list, "list")?)?)
    })
}

/// Sends HELP, with `topic` if not NULL.
///
/// # Returns
/// The reply code, or a negative `SMTPC_E_*` code.
///
/// # Safety
/// As `smtp_session_vrfy`; `topic` may be NULL.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_help(
    s: *mut smtp_session,
    topic: *const c_char,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        Ok(session.help(opt_arg(topic, "topic")?)?)
    })
}

/// Sends NOOP.
///
/// # Returns
/// The reply code, or a negative `SMTPC_E_*` code.
///
/// # Safety
/// `s` is NULL or a live handle; `reply` as for every command.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_noop(
    s: *mut smtp_session,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| Ok(session.noop()?))
}

/// Sends RSET, aborting the current mail transaction.
///
/// # Returns
/// The reply code, or a negative `SMTPC_E_*` code.
///
/// # Safety
/// As `smtp_session_noop`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_rset(
    s: *mut smtp_session,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| Ok(session.rset()?))
}

/// Sends QUIT and closes the connection, whatever the answer. The handle
/// stays valid (it can connect again) until `smtp_session_free`.
///
/// # Returns
/// The reply code (221), or a negative `SMTPC_E_*` code.
///
/// # Safety
/// As `smtp_session_noop`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_quit(
    s: *mut smtp_session,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| Ok(session.quit()?))
}

/// Closes the connection without QUIT (harmless when not connected).
///
/// # Returns
/// `SMTPC_OK` or `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_close(s: *mut smtp_session) -> c_int {
    with_handle(s, |session| {
        session.close();
        Ok(SMTPC_OK)
    })
}

/// Whether the session has an open connection.
///
/// # Returns
/// 1 or 0; 0 when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_is_connected(s: *const smtp_session) -> c_int {
    query(s, 0, |session| c_int::from(session.is_connected()))
}

/// Whether the connection is encrypted (STARTTLS done, or implicit TLS).
///
/// # Returns
/// 1 or 0; 0 when `s` is NULL or not connected.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_is_tls(s: *const smtp_session) -> c_int {
    query(s, 0, |session| c_int::from(session.is_tls()))
}

/// Sends any command: `cmd`, then a space and `args` unless `args` is NULL
/// or empty. Both are refused if they contain CR, LF or NUL; `cmd` must be
/// one word.
///
/// # Returns
/// The reply code, or a negative `SMTPC_E_*` code.
///
/// # Safety
/// `s`, `cmd` are NULL or valid; `args` may be NULL; `reply` as usual.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_docmd(
    s: *mut smtp_session,
    cmd: *const c_char,
    args: *const c_char,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        Ok(session.docmd(arg(cmd, "command")?, opt_arg(args, "arguments")?)?)
    })
}

/// The code of the last reply the session received (0 if none).
///
/// # Returns
/// The code, 0, or `SMTPC_E_NULL` when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_last_code(s: *const smtp_session) -> c_int {
    query_code(s, |session| {
        session.last_reply().map_or(0, |r| c_int::from(r.code))
    })
}

/// Copies the whole text of the last reply into `buf` (written as reply
/// buffers are). After a command that returned a reply code, this is that
/// command's reply — the one its `reply` buffer received, uncut — even when
/// the command read others on the way (EHLO inside `login`, RSET after a
/// refused `sendmail`).
///
/// # Returns
/// The text's full length, snprintf-style: if it is >= `cap`, the text was
/// cut; call again with `cap` = length + 1. 0 when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live handle; `buf` is NULL or valid for `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_last_reply(
    s: *const smtp_session,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    write_text(buf, cap, "");
    query(s, 0, |session| {
        write_text(
            buf,
            cap,
            session.last_reply().map_or("", |r| r.text.as_str()),
        )
    })
}

/// Copies the detailed message of the most recent call's failure
/// (e.g. "certificate verify failed: hostname mismatch") into `buf`; empty
/// when that call succeeded or the server answered.
///
/// # Returns
/// The message's full length, as `smtp_session_last_reply`.
///
/// # Safety
/// As `smtp_session_last_reply`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_last_error(
    s: *const smtp_session,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    write_text(buf, cap, "");
    // The one query a poisoned handle still answers: it says what panicked.
    if matches!(query_state(s), Ok(()) | Err(SMTPC_E_PANIC)) {
        let session = &*std::ptr::addr_of!((*s).inner);
        let text = session.last_error().map_or("", |e| e.message.as_str());
        return write_text(buf, cap, text);
    }
    0
}
