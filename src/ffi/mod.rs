//! The C API: `extern "C"` functions only, no protocol logic. Each export
//! goes through the boundary in `boundary`, then calls the client core.

pub mod batch;
mod boundary;
mod buf;
pub mod esmtp;
pub mod message;
pub mod result;
pub mod sasl;
pub mod session;
pub mod tls;
pub mod verbs;

pub use boundary::smtp_session;
