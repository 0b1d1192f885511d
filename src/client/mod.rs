//! The SMTP client core: pure Rust, no C types. Usable as a Rust crate on
//! its own; the C API in `ffi` is a thin layer over it.

pub mod auth;
pub mod cancel;
pub mod command;
pub mod data;
pub mod error;
pub mod extensions;
mod hostname;
pub mod reply;
pub mod session;
pub mod trace;
pub mod transaction;
pub mod transport;

pub use error::{Error, ErrorKind, Result};
pub use extensions::Extensions;
pub use reply::{EnhancedCode, Reply};
pub use session::{Session, Step, TlsPolicy, DEFAULT_TIMEOUT};
pub use transaction::{Body, Delivery, Dsn, Message, MessageSource, Outcome};
