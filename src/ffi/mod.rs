//! The C API: `extern "C"` functions only, no protocol logic. Each export
//! goes through the boundary in `macros`, then calls the client core.

pub mod batch;
mod buf;
pub mod esmtp;
mod macros;
pub mod message;
pub mod result;
pub mod sasl;
pub mod session;
pub mod tls;
pub mod verbs;

pub use macros::smtp_session;
