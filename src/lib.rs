//! libsmtpc: an SMTP client modelled on Python's smtplib, shipped as a C
//! library (`libsmtpc.so`, `libsmtpc.a`, `include/smtpc.h`).
//!
//! - [`client`]: the pure Rust core (session, replies, extensions, auth,
//!   data encoding, transport, transcript). No C types.
//! - `ffi`: the thin `extern "C"` layer the header is generated from.

#![allow(non_camel_case_types)]

pub mod client;
pub mod ffi;
pub mod message;

pub use client::{Dsn, Error, ErrorKind, Reply, Session, Step, TlsPolicy};
