//! What the caller set on a session: kept across connections, read by the
//! verbs and the transaction engine, never changed by them.

use std::net::SocketAddr;
use std::time::Duration;

use super::params::{Dsn, ParamList};
use super::tls::TlsSettings;

/// The default for the name lookup, connect, greeting, each reply, each
/// write and each message body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// When the session uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsPolicy {
    /// The caller decides (calls `starttls`), as smtplib.
    #[default]
    Manual,
    /// `connect` runs EHLO and STARTTLS when offered; clear text otherwise.
    Opportunistic,
    /// `connect` runs EHLO and STARTTLS, and fails (sending nothing more)
    /// when STARTTLS is not offered or does not succeed.
    Required,
    /// `connect` speaks TLS from the first byte (port 465).
    Implicit,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub timeout: Duration,
    /// The bound on one whole message body; `None`: `timeout`.
    pub body_timeout: Option<Duration>,
    /// The local address to connect from.
    pub source: Option<SocketAddr>,
    pub tls: TlsSettings,
    pub tls_policy: TlsPolicy,
    pub allow_insecure_auth: bool,
    pub local_hostname: Option<String>,
    pub pipelining: bool,
    pub chunking: bool,
    pub binarymime: bool,
    pub lmtp: bool,
    /// smtplib's `initial_response_ok`: send the first SASL response with
    /// the AUTH command when the mechanism has one.
    pub initial_response: bool,
    pub dsn: Option<Dsn>,
    /// The caller's own MAIL FROM and RCPT TO parameters, after the
    /// library's (smtplib's `mail_options`, `rcpt_options`).
    pub mail_options: ParamList,
    pub rcpt_options: ParamList,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timeout: DEFAULT_TIMEOUT,
            body_timeout: None,
            source: None,
            tls: TlsSettings::default(),
            tls_policy: TlsPolicy::default(),
            allow_insecure_auth: false,
            local_hostname: None,
            pipelining: true,
            chunking: true,
            binarymime: false,
            lmtp: false,
            initial_response: true,
            dsn: None,
            mail_options: ParamList::default(),
            rcpt_options: ParamList::default(),
        }
    }
}

impl Settings {
    pub fn body_timeout(&self) -> Duration {
        self.body_timeout.unwrap_or(self.timeout)
    }
}
