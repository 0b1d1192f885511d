//! The one error type of the client core.

use std::fmt;
use std::io;

/// What kind of failure happened; the FFI layer maps each kind to one
/// `SMTPC_E_*` code, so a kind is never split or merged silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A caller argument was refused before anything was sent.
    Invalid,
    /// The call does not fit the session's state (not connected, …).
    State,
    /// The host name did not resolve.
    Resolve,
    /// TCP connect failed on every resolved address.
    Connect,
    /// The timeout expired (connect, greeting, read or write).
    Timeout,
    /// Any other I/O failure.
    Io,
    /// The server closed the connection.
    Closed,
    /// TLS could not be set up (handshake, configuration, CA file).
    Tls,
    /// The server's certificate or host name did not verify.
    TlsVerify,
    /// The server sent something that is not an SMTP reply, or too much of it.
    Protocol,
    /// The server does not offer what the call needs.
    NotSupported,
    /// No AUTH mechanism both sides support.
    AuthMech,
    /// The message is larger than the server's SIZE limit.
    TooLarge,
    /// The session's TLS policy forbids the call.
    Insecure,
    /// A caller-supplied callback reported failure.
    Callback,
    /// Another thread cancelled the call (`Canceller::cancel`).
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    pub fn state(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::State, message)
    }

    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }

    /// Maps an I/O error met while `doing` something to its kind.
    pub fn io(doing: &str, e: &io::Error) -> Self {
        let kind = match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ErrorKind::Timeout,
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ErrorKind::Closed,
            _ => ErrorKind::Io,
        };
        let what = match kind {
            ErrorKind::Timeout => "timed out".to_string(),
            ErrorKind::Closed => format!("connection closed by server ({e})"),
            _ => e.to_string(),
        };
        Self::new(kind, format!("{doing}: {what}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
