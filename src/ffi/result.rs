//! Every `SMTPC_E_*` code, in one place, and `smtpc_strerror`.
//! Codes are never renumbered; a retired code stays reserved.

use std::ffi::{c_char, c_int};

use crate::client::{Error, ErrorKind};

/// Success (setters and other non-command calls).
pub const SMTPC_OK: c_int = 0;
/// A required pointer argument was NULL.
pub const SMTPC_E_NULL: c_int = -1;
/// An argument was refused before anything was sent: CR, LF or NUL inside
/// it, invalid UTF-8, an index out of range, an empty recipient list.
pub const SMTPC_E_INVALID: c_int = -2;
/// The call does not fit the session's state (not connected, already
/// connected, TLS already active).
pub const SMTPC_E_STATE: c_int = -3;
/// The host name did not resolve.
pub const SMTPC_E_RESOLVE: c_int = -4;
/// TCP connect failed on every resolved address.
pub const SMTPC_E_CONNECT: c_int = -5;
/// The timeout expired (connect, greeting, a read or a write).
pub const SMTPC_E_TIMEOUT: c_int = -6;
/// Another I/O error.
pub const SMTPC_E_IO: c_int = -7;
/// The server closed the connection.
pub const SMTPC_E_CLOSED: c_int = -8;
/// TLS could not be set up (handshake, CA file).
pub const SMTPC_E_TLS: c_int = -9;
/// The server's certificate or host name failed verification.
pub const SMTPC_E_TLS_VERIFY: c_int = -10;
/// The server sent a malformed or oversized reply.
pub const SMTPC_E_PROTOCOL: c_int = -11;
/// The server does not offer what the call needs (STARTTLS, AUTH, 8BITMIME…).
pub const SMTPC_E_NOT_SUPPORTED: c_int = -12;
/// No AUTH mechanism that both sides support.
pub const SMTPC_E_AUTH_MECH: c_int = -13;
/// The message is larger than the server's SIZE limit.
pub const SMTPC_E_TOO_LARGE: c_int = -14;
/// Refused by the session's TLS policy.
pub const SMTPC_E_INSECURE: c_int = -15;
/// A panic inside the library was caught; the handle is poisoned and every
/// later call on it returns this code — the queries too (those returning a
/// count or length return 0), except `smtp_session_last_error`, which
/// gives the panic's message; only `smtp_session_free` is useful.
pub const SMTPC_E_PANIC: c_int = -16;
/// A caller-supplied callback reported failure.
pub const SMTPC_E_CALLBACK: c_int = -17;
/// `smtp_session_cancel` stopped the call; the connection is closed.
pub const SMTPC_E_CANCELLED: c_int = -18;
/// A call on a handle from inside one of that handle's own callbacks
/// (trace, body reader, batch source), or a query made then: refused, as
/// libcurl refuses recursive calls; nothing is sent.
pub const SMTPC_E_BUSY: c_int = -19;

/// The most reply text (all lines) the library accepts from a server;
/// a longer reply fails with `SMTPC_E_PROTOCOL` and closes the connection,
/// so a hostile server cannot grow memory without bound.
pub const SMTPC_MAX_REPLY_BYTES: usize = 65536;

/// `smtp_session_failed_step`: the last `sendmail` succeeded (or none ran).
pub const SMTPC_STEP_NONE: c_int = 0;
/// MAIL FROM was refused.
pub const SMTPC_STEP_MAIL: c_int = 1;
/// Every RCPT TO was refused.
pub const SMTPC_STEP_RCPT: c_int = 2;
/// DATA was refused.
pub const SMTPC_STEP_DATA: c_int = 3;
/// The reply after the message body was not 2xx.
pub const SMTPC_STEP_MESSAGE: c_int = 4;
/// Neither EHLO nor HELO was accepted.
pub const SMTPC_STEP_HELO: c_int = 5;

/// `smtp_session_outcome`, `smtp_session_batch_outcome`: no message was
/// tried.
pub const SMTPC_OUTCOME_NONE: c_int = 0;
/// The server's final reply to the whole message — to the end of data, or
/// to `BDAT … LAST` — was read and was 2xx (LMTP: for at least one
/// recipient, and every accepted recipient's reply was read). A 250 to an
/// earlier BDAT chunk never makes a message accepted.
pub const SMTPC_OUTCOME_ACCEPTED: c_int = 1;
/// The server refused the message: MAIL, every RCPT, DATA, a BDAT chunk or
/// the message itself (the code and `failed_step` say which). Not
/// delivered.
pub const SMTPC_OUTCOME_REFUSED: c_int = 2;
/// Certainly not delivered, and not refused by the server: the library
/// refused it before sending (bad address, too large…), neither EHLO nor
/// HELO was accepted, or the connection failed before the message's end of
/// data was handed to the network. Safe to send again.
pub const SMTPC_OUTCOME_NOT_SENT: c_int = 3;
/// The end of data was sent but the connection failed before its final
/// reply arrived: the server may have taken the message or not (the one
/// window SMTP cannot close, RFC 1047). Sending again may duplicate it.
pub const SMTPC_OUTCOME_UNKNOWN: c_int = 4;

/// `smtp_session_set_tls_policy`: the caller calls STARTTLS (default).
pub const SMTPC_TLS_MANUAL: c_int = 0;
/// `connect` runs EHLO and STARTTLS when offered, else stays in clear.
pub const SMTPC_TLS_OPPORTUNISTIC: c_int = 1;
/// `connect` runs EHLO and STARTTLS and fails with `SMTPC_E_INSECURE`,
/// sending nothing more, when STARTTLS is missing or fails.
pub const SMTPC_TLS_REQUIRED: c_int = 2;
/// `connect` uses implicit TLS, as `smtp_session_connect_tls`.
pub const SMTPC_TLS_IMPLICIT: c_int = 3;

pub(crate) fn code_of(kind: ErrorKind) -> c_int {
    match kind {
        ErrorKind::Invalid => SMTPC_E_INVALID,
        ErrorKind::State => SMTPC_E_STATE,
        ErrorKind::Resolve => SMTPC_E_RESOLVE,
        ErrorKind::Connect => SMTPC_E_CONNECT,
        ErrorKind::Timeout => SMTPC_E_TIMEOUT,
        ErrorKind::Io => SMTPC_E_IO,
        ErrorKind::Closed => SMTPC_E_CLOSED,
        ErrorKind::Tls => SMTPC_E_TLS,
        ErrorKind::TlsVerify => SMTPC_E_TLS_VERIFY,
        ErrorKind::Protocol => SMTPC_E_PROTOCOL,
        ErrorKind::NotSupported => SMTPC_E_NOT_SUPPORTED,
        ErrorKind::AuthMech => SMTPC_E_AUTH_MECH,
        ErrorKind::TooLarge => SMTPC_E_TOO_LARGE,
        ErrorKind::Insecure => SMTPC_E_INSECURE,
        ErrorKind::Callback => SMTPC_E_CALLBACK,
        ErrorKind::Cancelled => SMTPC_E_CANCELLED,
    }
}

/// A failed call: a core error, or a pointer the FFI layer refused.
#[derive(Debug)]
pub(crate) enum Failure {
    Null(&'static str),
    Core(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

impl Failure {
    pub(crate) fn code(&self) -> c_int {
        match self {
            Failure::Null(_) => SMTPC_E_NULL,
            Failure::Core(e) => code_of(e.kind),
        }
    }

    pub(crate) fn into_error(self) -> Error {
        match self {
            Failure::Null(what) => Error::invalid(format!("{what} is NULL")),
            Failure::Core(e) => e,
        }
    }
}

fn message(code: c_int) -> &'static str {
    match code {
        SMTPC_OK => "success\0",
        SMTPC_E_NULL => "a required pointer argument was NULL\0",
        SMTPC_E_INVALID => "invalid argument\0",
        SMTPC_E_STATE => "call not valid in the session's current state\0",
        SMTPC_E_RESOLVE => "host name could not be resolved\0",
        SMTPC_E_CONNECT => "could not connect to the server\0",
        SMTPC_E_TIMEOUT => "timed out\0",
        SMTPC_E_IO => "input/output error\0",
        SMTPC_E_CLOSED => "connection closed by the server\0",
        SMTPC_E_TLS => "TLS error\0",
        SMTPC_E_TLS_VERIFY => "TLS certificate verification failed\0",
        SMTPC_E_PROTOCOL => "malformed reply from the server\0",
        SMTPC_E_NOT_SUPPORTED => "the server does not support this\0",
        SMTPC_E_AUTH_MECH => "no suitable authentication mechanism\0",
        SMTPC_E_TOO_LARGE => "message larger than the server accepts\0",
        SMTPC_E_INSECURE => "refused by the TLS policy\0",
        SMTPC_E_PANIC => "internal error (panic); the session is unusable\0",
        SMTPC_E_CALLBACK => "a callback reported failure\0",
        SMTPC_E_CANCELLED => "cancelled\0",
        SMTPC_E_BUSY => "the handle is busy: called from inside its own callback\0",
        c if c >= 100 => "the server's reply code\0",
        _ => "unknown error code\0",
    }
}

/// A static, NUL-terminated English description of `code`: an `SMTPC_E_*`
/// value, `SMTPC_OK`, or (for any value >= 100) a server reply code.
///
/// # Returns
/// Never NULL; the string lives for the whole program and must not be freed.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn smtpc_strerror(code: c_int) -> *const c_char {
    message(code).as_ptr().cast()
}

/// The library's version as a static string, e.g. "0.1.0"; equal to
/// `SMTPC_VERSION_STRING` of the header it was built with.
///
/// # Returns
/// Never NULL; static, must not be freed. Thread-safe.
#[no_mangle]
pub extern "C" fn smtpc_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn documented_reply_cap_is_the_one_enforced() {
        assert_eq!(SMTPC_MAX_REPLY_BYTES, crate::client::reply::MAX_REPLY_BYTES);
    }

    #[test]
    fn every_code_has_a_distinct_message() {
        let codes = (-17..=0).collect::<Vec<_>>();
        let msgs: HashSet<_> = codes.iter().map(|&c| message(c)).collect();
        assert_eq!(msgs.len(), codes.len());
        assert_eq!(message(-99), "unknown error code\0");
        assert!(msgs.iter().all(|m| m.ends_with('\0')));
    }
}
