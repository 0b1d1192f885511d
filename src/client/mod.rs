//! The SMTP client core: pure Rust, no C types. Usable as a Rust crate on
//! its own; the C API in `ffi` is a thin layer over it.
//!
//! - `session`: the verbs; holds the `settings`, the open `connection` and
//!   the results of the last calls.
//! - `transaction`: the MAIL/RCPT/DATA/BDAT engine behind `sendmail`, the
//!   batch API, streaming bodies and LMTP; `params` builds its MAIL/RCPT
//!   lines, one helper per ESMTP parameter; `outcome` says what became of
//!   each message.
//! - `sasl`: AUTH mechanisms behind one trait; `transport`: TCP, UNIX and
//!   TLS streams under deadlines; `cancel`: stopping a call from another
//!   thread.

pub mod cancel;
pub mod command;
pub(crate) mod connection;
pub mod data;
pub mod error;
pub mod extensions;
mod hostname;
pub mod outcome;
pub mod params;
pub mod reply;
pub mod sasl;
pub mod session;
pub mod settings;
pub mod tls;
pub mod trace;
pub mod transaction;
pub mod transport;

pub use error::{Error, ErrorKind, Result};
pub use extensions::Extensions;
pub use outcome::{Delivery, Outcome, Step};
pub use params::Dsn;
pub use reply::{EnhancedCode, Reply};
pub use session::Session;
pub use settings::{Settings, TlsPolicy, DEFAULT_TIMEOUT};
pub use transaction::{Body, Message, MessageSource};
