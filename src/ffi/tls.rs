//! The TLS options of a session (the `smtp_session_set_<name>` setters
//! beside `smtp_session_set_tls_verify` and `smtp_session_set_ca_file`).
//! Each applies to the following handshakes, STARTTLS and implicit TLS; a
//! change rebuilds the session's TLS context once, at the next handshake.
//! Files are read when set: a missing or unreadable one fails at once with
//! `SMTPC_E_TLS` and its path in `smtp_session_last_error`, and the
//! setting stays as it was.

use std::ffi::{c_char, c_int};

use super::boundary::{opt_arg, smtp_session, with_handle};
use super::result::{Failure, SMTPC_OK};
use crate::client::tls::TlsVersion;
use crate::client::Error;

/// `smtp_session_set_tls_min_version`: TLS 1.2 at least (the TLS
/// protocol's own number for it, as OpenSSL's `TLS1_2_VERSION`).
pub const SMTPC_TLS_1_2: c_int = 0x0303;
/// `smtp_session_set_tls_min_version`: TLS 1.3 only.
pub const SMTPC_TLS_1_3: c_int = 0x0304;

/// Presents a client certificate to servers that ask for one, in STARTTLS
/// and implicit TLS. `cert_path`: a PEM file with the certificate, then
/// any intermediate certificates; `key_path`: a PEM file with its private
/// key, unencrypted PKCS#8 (`-----BEGIN PRIVATE KEY-----`; convert others
/// with `openssl pkcs8 -topk8 -nocrypt`), or NULL when the key is in
/// `cert_path` too. Both NULL: present none (the default).
///
/// # Returns
/// `SMTPC_OK`; `SMTPC_E_NULL` (`s`, or `cert_path` NULL with a key);
/// `SMTPC_E_INVALID` (not UTF-8, CR or LF); `SMTPC_E_TLS` (a file missing,
/// unreadable, or without a certificate or a PKCS#8 key). A certificate
/// that does not match its key fails at the next handshake, `SMTPC_E_TLS`.
///
/// # Safety
/// `s` is NULL or a live handle; each path is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_client_cert(
    s: *mut smtp_session,
    cert_path: *const c_char,
    key_path: *const c_char,
) -> c_int {
    with_handle(s, |session| {
        let cert = opt_arg(cert_path, "client certificate path")?;
        let key = opt_arg(key_path, "client key path")?;
        if cert.is_none() && key.is_some() {
            return Err(Failure::Null("client certificate path (with a key path)"));
        }
        session.set_client_cert(cert, key)?;
        Ok(SMTPC_OK)
    })
}

/// Trusts the CA certificates in the directory `path` instead of the
/// system's roots (together with the CA file's, when one is set). Every
/// file directly in `path` holding PEM certificates counts, whatever its
/// name: an OpenSSL hashed directory (`c_rehash`, as OpenSSL's `CApath`)
/// works, and so does a folder of `.pem` files. They are read now, not
/// looked up at each handshake: set the directory again to reread it.
/// NULL goes back to the CA file or the system's roots.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL` (for `s`), `SMTPC_E_INVALID` (not UTF-8, CR
/// or LF), `SMTPC_E_TLS` (unreadable, no certificate in it, or a bad one).
///
/// # Safety
/// `s` is NULL or a live handle; `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_ca_dir(
    s: *mut smtp_session,
    path: *const c_char,
) -> c_int {
    with_handle(s, |session| {
        session.set_ca_dir(opt_arg(path, "CA directory path")?)?;
        Ok(SMTPC_OK)
    })
}

/// Sets the lowest TLS version a handshake may use: `SMTPC_TLS_1_2` or
/// `SMTPC_TLS_1_3`; 0 restores the default (OpenSSL's configured minimum).
/// A server that cannot meet it fails the handshake with `SMTPC_E_TLS`
/// ("unsupported protocol" in `smtp_session_last_error`).
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL`, `SMTPC_E_INVALID` (another value).
///
/// # Safety
/// `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_tls_min_version(
    s: *mut smtp_session,
    version: i32,
) -> c_int {
    with_handle(s, |session| {
        let v = match version {
            0 => None,
            SMTPC_TLS_1_2 => Some(TlsVersion::Tls12),
            SMTPC_TLS_1_3 => Some(TlsVersion::Tls13),
            other => {
                return Err(Failure::Core(Error::invalid(format!(
                    "unknown TLS version {other:#06x}: use SMTPC_TLS_1_2 or SMTPC_TLS_1_3"
                ))))
            }
        };
        session.set_tls_min_version(v);
        Ok(SMTPC_OK)
    })
}

/// Verifies the server's certificate against `name` (and sends it as SNI)
/// instead of the host given to `connect`: for connecting to an IP
/// address, a UNIX-domain socket path (which has no name of its own: TLS
/// over one needs this) or a relay whose certificate names another host.
/// `name` is a host name or an IP address. NULL goes back to the host
/// connected to.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL` (for `s`), `SMTPC_E_INVALID` (empty, a
/// space, CR, LF, not UTF-8, not a valid domain).
///
/// # Safety
/// `s` is NULL or a live handle; `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_set_tls_server_name(
    s: *mut smtp_session,
    name: *const c_char,
) -> c_int {
    with_handle(s, |session| {
        session.set_tls_server_name(opt_arg(name, "TLS server name")?)?;
        Ok(SMTPC_OK)
    })
}
