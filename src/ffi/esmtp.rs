//! Exports for the ESMTP extensions, TLS policy, streaming bodies, LMTP and
//! enhanced status codes. Same conventions as `session.rs`.

use std::ffi::{c_char, c_int, c_void};

use super::boundary::{
    arg, command, opt_arg, query, reply_query, set_flag, smtp_session, with_handle,
};
use super::buf::write_text;
use super::result::*;
use crate::client::transaction::CallbackReader;
use crate::client::{Dsn, Error, Reply, Session, TlsPolicy};

/// Fills `buf` (capacity `cap`) with the next bytes of a message.
///
/// # Returns
/// The number of bytes written (1..=`cap`), 0 at the end of the message,
/// or a negative value on failure (the send then fails with
/// `SMTPC_E_CALLBACK` and the connection is closed, so nothing partial is
/// delivered).
pub type smtpc_read_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, buf: *mut c_char, cap: usize) -> i64>;

/// Chooses when the session uses TLS: `SMTPC_TLS_MANUAL` (default: the
/// caller calls `smtp_session_starttls`), `SMTPC_TLS_OPPORTUNISTIC`,
/// `SMTPC_TLS_REQUIRED` or `SMTPC_TLS_IMPLICIT`. Takes effect at the next
/// `smtp_session_connect`, which then also sends EHLO (and STARTTLS, and
/// EHLO again) for the opportunistic and required policies.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL`, or `SMTPC_E_INVALID` for an unknown policy.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_tls_policy(s: *mut smtp_session, policy: c_int) -> c_int {
    with_handle(s, |session| {
        let p = match policy {
            SMTPC_TLS_MANUAL => TlsPolicy::Manual,
            SMTPC_TLS_OPPORTUNISTIC => TlsPolicy::Opportunistic,
            SMTPC_TLS_REQUIRED => TlsPolicy::Required,
            SMTPC_TLS_IMPLICIT => TlsPolicy::Implicit,
            _ => return Err(Error::invalid(format!("unknown TLS policy {policy}")).into()),
        };
        session.set_tls_policy(p);
        Ok(SMTPC_OK)
    })
}

/// Allows (1) or forbids (0, the default) AUTH over an unencrypted
/// connection to a host that is not loopback. While forbidden, `login` and
/// `auth` fail there with `SMTPC_E_INSECURE` before sending anything.
///
/// # Returns
/// `SMTPC_OK` or `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_allow_insecure_auth(
    s: *mut smtp_session,
    on: i32,
) -> c_int {
    set_flag(s, on, Session::set_allow_insecure_auth)
}

/// Turns BDAT (CHUNKING, RFC 3030) on (1, the default: used when the
/// server offers CHUNKING and PIPELINING) or off (0: always DATA).
///
/// # Returns
/// `SMTPC_OK` or `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_chunking(s: *mut smtp_session, on: i32) -> c_int {
    set_flag(s, on, Session::set_chunking)
}

/// Asks (1) for BODY=BINARYMIME: messages go over BDAT byte for byte, line
/// endings untouched. Sending then fails with `SMTPC_E_NOT_SUPPORTED`
/// unless the server offers BINARYMIME and CHUNKING. Default 0.
///
/// # Returns
/// `SMTPC_OK` or `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_binarymime(s: *mut smtp_session, on: i32) -> c_int {
    set_flag(s, on, Session::set_binarymime)
}

/// Sets the DSN parameters (RFC 3461) of the messages sent from now on:
/// `ret` "FULL" or "HDRS", `envid` (xtext-encoded by the library),
/// `notify` "NEVER" or a comma list of "SUCCESS", "FAILURE", "DELAY" (for
/// every recipient), `orcpt` 1 to add ORCPT=rfc822;<recipient>. NULL (or 0)
/// leaves a parameter out; all NULL and 0 turns DSN off. While DSN is on,
/// sending to a server without DSN fails with `SMTPC_E_NOT_SUPPORTED`.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL`, `SMTPC_E_INVALID` (bad value, CR/LF).
///
/// # Safety
/// `s` is NULL or a live handle; the strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_dsn(
    s: *mut smtp_session,
    ret: *const c_char,
    envid: *const c_char,
    notify: *const c_char,
    orcpt: i32,
) -> c_int {
    with_handle(s, |session| {
        let dsn = Dsn {
            ret: opt_arg(ret, "DSN RET")?.map(str::to_string),
            envid: opt_arg(envid, "DSN ENVID")?.map(str::to_string),
            notify: opt_arg(notify, "DSN NOTIFY")?.map(str::to_string),
            orcpt: orcpt != 0,
        };
        session.set_dsn((dsn != Dsn::default()).then_some(dsn))?;
        Ok(SMTPC_OK)
    })
}

/// Switches the session to LMTP (RFC 2033) and sends LHLO with `name`
/// (NULL: the local host name). From then on, `sendmail` reads one reply
/// per accepted recipient after the body: see `smtp_session_rcpt_data_code`.
///
/// # Returns
/// The LHLO reply code, or a negative `SMTPC_E_*` code.
///
/// # Safety
/// `s` is NULL or a live handle; `name` is NULL or a NUL-terminated string;
/// `reply` is NULL or valid for `reply_cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_lhlo(
    s: *mut smtp_session,
    name: *const c_char,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        Ok(session.lhlo(opt_arg(name, "LHLO name")?)?)
    })
}

/// LMTP: the delivery reply for the `i`-th recipient of the last
/// `sendmail` (one per accepted recipient, RFC 2033 §4.2).
///
/// # Returns
/// The reply code; `SMTPC_E_INVALID` when `i` is out of range, the
/// recipient was refused, or the session is not LMTP; `SMTPC_E_NULL`.
///
/// # Safety
/// `s` is NULL or a live handle; `reply` is NULL or valid for `reply_cap`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_rcpt_data_code(
    s: *const smtp_session,
    i: usize,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    reply_query(s, reply, reply_cap, |session| {
        session
            .lmtp_replies()
            .get(i)
            .cloned()
            .flatten()
            .ok_or(SMTPC_E_INVALID)
    })
}

/// Authenticates with one named mechanism: "SCRAM-SHA-256", "PLAIN",
/// "LOGIN", "CRAM-MD5", or "XOAUTH2" / "OAUTHBEARER" (then `secret` is the
/// OAuth 2.0 access token). EHLO first if needed. The secret never appears
/// in the transcript.
///
/// # Returns
/// 235 on success, the server's refusal (e.g. 535), or
/// `SMTPC_E_NOT_SUPPORTED` (mechanism not offered), `SMTPC_E_INVALID`
/// (unknown mechanism, CR/LF), `SMTPC_E_INSECURE` (clear text to a
/// non-loopback host, see `smtp_session_set_allow_insecure_auth`).
///
/// # Safety
/// The strings are NULL or NUL-terminated; `reply` as for every command.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_auth(
    s: *mut smtp_session,
    mechanism: *const c_char,
    user: *const c_char,
    secret: *const c_char,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        Ok(session.auth(
            arg(mechanism, "mechanism")?,
            arg(user, "user")?,
            arg(secret, "secret")?,
        )?)
    })
}

/// Like `smtp_session_sendmail`, with the message pulled from
/// `read(user, buf, cap)` in chunks of at most 256 KiB: memory stays
/// constant whatever the message size. `size_hint` (>= 0) is announced as
/// SIZE= and checked against the server's limit; pass -1 when unknown.
/// Line endings are normalized and dots stuffed as for `sendmail`. If the
/// server lacks 8BITMIME and the stream turns out to hold 8-bit bytes, or
/// `read` fails, the connection is closed mid-message so nothing partial
/// is delivered.
///
/// # Returns
/// As `smtp_session_sendmail` (2xx only for the final reply to the whole
/// message; `smtp_session_outcome` after a negative code), plus
/// `SMTPC_E_CALLBACK` (the message is then `SMTPC_OUTCOME_NOT_SENT`: the
/// connection is closed before its end of data).
///
/// # Safety
/// As `smtp_session_sendmail`; `read` must be non-NULL and safe to call
/// with `user` during this call.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_sendmail_cb(
    s: *mut smtp_session,
    from: *const c_char,
    to: *const *const c_char,
    n_to: usize,
    read: smtpc_read_fn,
    user: *mut c_void,
    size_hint: i64,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        let from = arg(from, "sender")?;
        let to = super::boundary::recipients(to, n_to)?;
        let read = read.ok_or(Failure::Null("read callback"))?;
        let mut reader = CallbackReader(|buf: &mut [u8]| {
            let n = read(user, buf.as_mut_ptr().cast(), buf.len());
            usize::try_from(n)
                .map(|n| n.min(buf.len()))
                .map_err(|_| std::io::Error::other(format!("read callback returned {n}")))
        });
        let hint = u64::try_from(size_hint).ok();
        Ok(session.sendmail_stream(from, &to, &mut reader, hint)?)
    })
}

fn enhanced_text(r: Option<&Reply>) -> String {
    r.and_then(Reply::enhanced)
        .map(|e| e.to_string())
        .unwrap_or_default()
}

/// Copies the enhanced status code (RFC 2034/3463, e.g. "5.1.1") of the
/// last reply into `buf`; "" when the reply has none.
///
/// # Returns
/// Its full length, snprintf-style (0 when none, or `s` is NULL).
///
/// # Safety
/// `s` is NULL or a live handle; `buf` is NULL or valid for `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_last_enhanced(
    s: *const smtp_session,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    write_text(buf, cap, "");
    query(s, 0, |session| {
        write_text(buf, cap, &enhanced_text(session.last_reply()))
    })
}

/// Copies the enhanced status code of the `i`-th recipient's RCPT reply
/// of the last `sendmail` into `buf`; "" when it has none.
///
/// # Returns
/// Its full length, snprintf-style (0 when none, when `i` is out of range
/// — see `smtp_session_rcpt_count` — or when `s` is NULL).
///
/// # Safety
/// As `smtp_session_last_enhanced`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_rcpt_enhanced(
    s: *const smtp_session,
    i: usize,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    write_text(buf, cap, "");
    query(s, 0, |session| match session.rcpt_replies().get(i) {
        Some(r) => write_text(buf, cap, &enhanced_text(Some(r))),
        None => 0,
    })
}

/// How many times the session has waited on the network for a reply since
/// it was created: 4 per message in lock-step, 2 pipelined, about 1 in a
/// pipelined batch. For benchmarks and for checking that pipelining works.
///
/// # Returns
/// The count; 0 when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_waits(s: *const smtp_session) -> u64 {
    query(s, 0, |session| session.waits())
}
