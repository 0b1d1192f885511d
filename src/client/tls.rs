//! TLS set-up: what the caller configured (verification, trusted roots, a
//! client certificate, a minimum version, the name to verify), the
//! connector built from it, and how OpenSSL's failures are reported.
//!
//! The connector is built once per change of the settings and shared by
//! every handshake of the session, STARTTLS or implicit, across
//! reconnects: building one loads trusted roots (OpenSSL's default store
//! twice over, in native-tls), which costs far more CPU than a handshake.
//! Files given to the setters here are read when set, so a missing file
//! fails at once with its path; the CA file of `Session::set_ca_file` is
//! read when the connector is next built.
//!
//! native-tls has no API for TLS session resumption (its connector keeps
//! no session cache and exposes no `SSL_set_session`), so every handshake
//! is a full one; see `bench/tls_handshake.sh` for what resumption through
//! the `openssl` crate would save.

use std::collections::HashSet;
use std::fs;
use std::sync::Mutex;

use native_tls::{Certificate, Identity, Protocol, TlsConnector};

use super::command::{check_arg, check_hostname};
use super::error::{Error, ErrorKind, Result};
use super::session::Session;

/// The lowest TLS version a handshake may settle on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    fn protocol(self) -> Protocol {
        match self {
            TlsVersion::Tls12 => Protocol::Tlsv12,
            TlsVersion::Tls13 => Protocol::Tlsv13,
        }
    }
}

/// A client certificate (with any chain after it) and its private key,
/// read from their PEM files when set.
#[derive(Clone)]
pub struct ClientCert {
    pub cert_path: String,
    pub key_path: String,
    identity: Identity,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// The certificates of a CA directory, read when set.
#[derive(Clone)]
pub struct CaDir {
    pub path: String,
    certs: Vec<Certificate>,
}

impl std::fmt::Debug for CaDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaDir")
            .field("path", &self.path)
            .field("certs", &self.certs.len())
            .finish()
    }
}

/// How a TLS peer is verified and what the client presents.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub verify: bool,
    /// PEM file whose certificates replace the system's trusted roots
    /// (together with `ca_dir`'s, when both are set).
    pub ca_file: Option<String>,
    ca_dir: Option<CaDir>,
    client_cert: Option<ClientCert>,
    min_version: Option<TlsVersion>,
    /// The name the server's certificate must match, instead of the host
    /// connected to.
    server_name: Option<String>,
    /// Bumped by every setter below that changes what the connector is
    /// built from (`verify` and `ca_file` are compared by value).
    generation: u64,
    cache: ConnectorCache,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            verify: true,
            ca_file: None,
            ca_dir: None,
            client_cert: None,
            min_version: None,
            server_name: None,
            generation: 0,
            cache: ConnectorCache::default(),
        }
    }
}

/// What a cached connector was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BuiltFrom {
    verify: bool,
    ca_file: Option<String>,
    generation: u64,
}

#[derive(Debug, Clone)]
struct Built {
    from: BuiltFrom,
    connector: TlsConnector,
}

/// The last connector built, and how many were built. Behind a mutex only
/// because handshakes see the settings shared (`&TlsSettings`); one
/// session never contends for it.
#[derive(Debug, Default)]
struct ConnectorCache {
    built: Mutex<(Option<Built>, u64)>,
}

impl Clone for ConnectorCache {
    /// A copy of the settings starts with the same connector (cheap: an
    /// OpenSSL context is reference-counted), then goes its own way.
    fn clone(&self) -> Self {
        let built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        ConnectorCache {
            built: Mutex::new((built.0.clone(), 0)),
        }
    }
}

impl TlsSettings {
    /// The connector for the current settings: the one built before when
    /// nothing changed since, else a new one.
    pub fn connector(&self) -> Result<TlsConnector> {
        let from = BuiltFrom {
            verify: self.verify,
            ca_file: self.ca_file.clone(),
            generation: self.generation,
        };
        let mut cache = self.cache.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = &cache.0 {
            if b.from == from {
                return Ok(b.connector.clone());
            }
        }
        let connector = build_connector(self)?;
        cache.0 = Some(Built {
            from,
            connector: connector.clone(),
        });
        cache.1 += 1;
        Ok(connector)
    }

    /// How many connectors these settings have built.
    pub fn connector_builds(&self) -> u64 {
        self.cache.built.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    /// The name a handshake to `host` verifies (and sends as SNI).
    pub fn name_to_verify<'a>(&'a self, host: &'a str) -> Result<&'a str> {
        if let Some(name) = &self.server_name {
            return Ok(name);
        }
        if host.starts_with('/') && self.verify {
            return Err(Error::new(
                ErrorKind::Tls,
                format!(
                    "TLS over the UNIX socket {host}: no host name to verify; \
                     set the TLS server name"
                ),
            ));
        }
        Ok(host)
    }

    pub fn set_client_cert(&mut self, cert: Option<&str>, key: Option<&str>) -> Result<()> {
        self.client_cert = match (cert, key) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "a client key needs its certificate: the certificate path is missing",
                ))
            }
            (Some(cert), key) => Some(load_client_cert(cert, key)?),
        };
        self.generation += 1;
        Ok(())
    }

    pub fn client_cert(&self) -> Option<&ClientCert> {
        self.client_cert.as_ref()
    }

    pub fn set_ca_dir(&mut self, dir: Option<&str>) -> Result<()> {
        self.ca_dir = dir.map(load_ca_dir).transpose()?;
        self.generation += 1;
        Ok(())
    }

    pub fn ca_dir(&self) -> Option<&str> {
        self.ca_dir.as_ref().map(|d| d.path.as_str())
    }

    pub fn set_min_version(&mut self, version: Option<TlsVersion>) {
        if self.min_version != version {
            self.min_version = version;
            self.generation += 1;
        }
    }

    pub fn min_version(&self) -> Option<TlsVersion> {
        self.min_version
    }

    pub fn set_server_name(&mut self, name: Option<&str>) -> Result<()> {
        self.server_name = match name {
            None => None,
            Some(n) => {
                check_hostname("TLS server name", n)?;
                if n.is_ascii() {
                    Some(n.to_string())
                } else {
                    Some(idna::domain_to_ascii(n).map_err(|_| {
                        Error::invalid(format!("TLS server name {n:?} is not a valid domain"))
                    })?)
                }
            }
        };
        Ok(())
    }

    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }
}

/// The TLS options of a session; the others (`set_tls_verify`,
/// `set_ca_file`, `set_tls_policy`) are in `session.rs`. Each applies to
/// the next handshake, STARTTLS or implicit.
impl Session {
    /// Presents the certificate (with any chain after it) in the PEM file
    /// `cert` and the PKCS#8 private key in the PEM file `key` (`None`: in
    /// `cert` too) to servers that ask for one. Both files are read now:
    /// a missing or unreadable file fails with `ErrorKind::Tls` naming it.
    /// `None, None` goes back to presenting none.
    pub fn set_client_cert(&mut self, cert: Option<&str>, key: Option<&str>) -> Result<()> {
        for p in [cert, key].into_iter().flatten() {
            check_arg("path", p)?;
        }
        self.settings.tls.set_client_cert(cert, key)
    }

    /// Trusts the CA certificates in the directory `dir` (with the CA file's,
    /// if one is set) instead of the system's roots. Every file directly in
    /// `dir` that holds PEM certificates counts, whatever its name, so an
    /// OpenSSL hashed directory (`c_rehash`) works and so does a folder of
    /// `.pem` files; they are read now, not looked up per handshake.
    /// `None` goes back to the CA file or the system's roots.
    pub fn set_ca_dir(&mut self, dir: Option<&str>) -> Result<()> {
        if let Some(d) = dir {
            check_arg("CA directory path", d)?;
        }
        self.settings.tls.set_ca_dir(dir)
    }

    /// The lowest TLS version to accept; `None`: OpenSSL's configured minimum.
    pub fn set_tls_min_version(&mut self, version: Option<TlsVersion>) {
        self.settings.tls.set_min_version(version);
    }

    /// Verifies the server's certificate against `name` (and sends it as
    /// SNI) instead of the host given to `connect`: for connecting to an IP
    /// address, a UNIX-domain socket or a relay whose certificate names
    /// another host. `None` goes back to the host connected to.
    pub fn set_tls_server_name(&mut self, name: Option<&str>) -> Result<()> {
        self.settings.tls.set_server_name(name)
    }

    /// How many TLS connectors this session has built (tests: one per
    /// change of the TLS settings, however many handshakes).
    #[doc(hidden)]
    pub fn tls_connector_builds(&self) -> u64 {
        self.settings.tls.connector_builds()
    }
}

fn tls_error(message: String) -> Error {
    Error::new(ErrorKind::Tls, message)
}

pub(crate) fn build_connector(settings: &TlsSettings) -> Result<TlsConnector> {
    let mut builder = TlsConnector::builder();
    if !settings.verify {
        builder
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true);
    }
    if let Some(path) = &settings.ca_file {
        let pem =
            fs::read(path).map_err(|e| tls_error(format!("cannot read CA file {path}: {e}")))?;
        let certs = split_pem_certificates(&pem);
        if certs.is_empty() {
            return Err(tls_error(format!(
                "CA file {path} holds no PEM certificate"
            )));
        }
        for block in certs {
            let cert = Certificate::from_pem(block)
                .map_err(|e| tls_error(format!("bad certificate in CA file {path}: {e}")))?;
            builder.add_root_certificate(cert);
        }
    }
    if let Some(dir) = &settings.ca_dir {
        for cert in &dir.certs {
            builder.add_root_certificate(cert.clone());
        }
    }
    if settings.ca_file.is_some() || settings.ca_dir.is_some() {
        builder.disable_built_in_roots(true);
    }
    if let Some(c) = &settings.client_cert {
        builder.identity(c.identity.clone());
    }
    if let Some(v) = settings.min_version {
        builder.min_protocol_version(Some(v.protocol()));
    }
    builder.build().map_err(|e| match &settings.client_cert {
        Some(c) => tls_error(format!(
            "TLS setup with client certificate {} and key {}: {e}",
            c.cert_path, c.key_path
        )),
        None => tls_error(format!("TLS setup: {e}")),
    })
}

fn load_client_cert(cert_path: &str, key_path: Option<&str>) -> Result<ClientCert> {
    let cert_pem = fs::read(cert_path)
        .map_err(|e| tls_error(format!("cannot read client certificate {cert_path}: {e}")))?;
    let chain = split_pem_certificates(&cert_pem);
    if chain.is_empty() {
        return Err(tls_error(format!(
            "client certificate file {cert_path} holds no PEM certificate"
        )));
    }
    let key_file = key_path.unwrap_or(cert_path);
    let key_pem = match key_path {
        Some(p) if p != cert_path => {
            fs::read(p).map_err(|e| tls_error(format!("cannot read client key {p}: {e}")))?
        }
        _ => cert_pem.clone(),
    };
    let Some(key) = pem_blocks(&key_pem, "PRIVATE KEY").into_iter().next() else {
        let other = ["RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]
            .into_iter()
            .find(|l| !pem_blocks(&key_pem, l).is_empty());
        return Err(tls_error(match other {
            Some(label) => format!(
                "client key {key_file} is a {label}: an unencrypted PKCS#8 key \
                 (BEGIN PRIVATE KEY) is needed; convert it with \
                 `openssl pkcs8 -topk8 -nocrypt -in {key_file}`"
            ),
            None => format!("client key file {key_file} holds no PEM private key"),
        }));
    };
    let identity = Identity::from_pkcs8(&chain.concat(), key).map_err(|e| {
        tls_error(format!(
            "bad client certificate {cert_path} or key {key_file}: {e}"
        ))
    })?;
    Ok(ClientCert {
        cert_path: cert_path.to_string(),
        key_path: key_file.to_string(),
        identity,
    })
}

/// Every PEM certificate in the files directly in `path` (each file once,
/// however many links lead to it).
fn load_ca_dir(path: &str) -> Result<CaDir> {
    let entries = fs::read_dir(path)
        .map_err(|e| tls_error(format!("cannot read CA directory {path}: {e}")))?;
    let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    let mut seen = HashSet::new();
    let mut certs = Vec::new();
    for file in files {
        // A dangling link or a subdirectory holds nothing to trust.
        let Ok(real) = fs::canonicalize(&file) else {
            continue;
        };
        if !real.is_file() || !seen.insert(real.clone()) {
            continue;
        }
        let pem = fs::read(&real)
            .map_err(|e| tls_error(format!("cannot read {}: {e}", file.display())))?;
        for block in split_pem_certificates(&pem) {
            let cert = Certificate::from_pem(block)
                .map_err(|e| tls_error(format!("bad certificate in {}: {e}", file.display())))?;
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err(tls_error(format!(
            "CA directory {path} holds no PEM certificate"
        )));
    }
    Ok(CaDir {
        path: path.to_string(),
        certs,
    })
}

pub(crate) fn split_pem_certificates(pem: &[u8]) -> Vec<&[u8]> {
    pem_blocks(pem, "CERTIFICATE")
}

/// The PEM blocks labelled `label`, each from its BEGIN line to its END
/// line, in order.
fn pem_blocks<'a>(pem: &'a [u8], label: &str) -> Vec<&'a [u8]> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = memchr::memmem::find(rest, begin.as_bytes()) {
        let Some(len) = memchr::memmem::find(&rest[start..], end.as_bytes()) else {
            break;
        };
        let stop = start + len + end.len();
        out.push(&rest[start..stop]);
        rest = &rest[stop..];
    }
    out
}

/// Verification failures get their own kind and a message that names the
/// reason OpenSSL gave (host name mismatch, expired, unknown issuer…).
pub(crate) fn classify_tls_error(e: &native_tls::Error) -> Error {
    let text = e.to_string();
    if text.contains("certificate verify failed") {
        let reason = text
            .rfind('(')
            .and_then(|i| text[i + 1..].strip_suffix(')'))
            .unwrap_or("unknown reason");
        Error::new(
            ErrorKind::TlsVerify,
            format!("certificate verify failed: {reason}"),
        )
    } else {
        Error::new(ErrorKind::Tls, format!("TLS handshake failed: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundles_are_split_per_certificate() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n\
                    -----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n";
        let certs = split_pem_certificates(pem);
        assert_eq!(certs.len(), 2);
        assert!(certs[1].starts_with(b"-----BEGIN") && certs[1].ends_with(b"-----"));
        assert!(split_pem_certificates(b"nothing").is_empty());
    }

    #[test]
    fn only_pkcs8_key_blocks_are_private_keys() {
        let pem = b"-----BEGIN EC PRIVATE KEY-----\nA\n-----END EC PRIVATE KEY-----\n\
                    -----BEGIN ENCRYPTED PRIVATE KEY-----\nB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(pem_blocks(pem, "PRIVATE KEY").is_empty());
        assert_eq!(pem_blocks(pem, "EC PRIVATE KEY").len(), 1);
    }

    #[test]
    fn missing_files_fail_when_set_with_their_path() {
        let mut t = TlsSettings::default();
        let e = t
            .set_client_cert(Some("/nonexistent/c.pem"), None)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Tls);
        assert!(e.message.contains("/nonexistent/c.pem"), "{e}");
        let e = t.set_ca_dir(Some("/nonexistent/dir")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Tls);
        assert!(e.message.contains("/nonexistent/dir"), "{e}");
        let e = t.set_client_cert(None, Some("/k.pem")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(t.client_cert().is_none() && t.ca_dir().is_none());
    }

    #[test]
    fn the_connector_is_rebuilt_only_when_the_settings_change() {
        let mut t = TlsSettings {
            verify: false,
            ..TlsSettings::default()
        };
        t.connector().unwrap();
        t.connector().unwrap();
        assert_eq!(t.connector_builds(), 1);
        t.set_min_version(Some(TlsVersion::Tls12));
        t.set_min_version(Some(TlsVersion::Tls12));
        t.connector().unwrap();
        assert_eq!(t.connector_builds(), 2);
        t.verify = true;
        t.connector().unwrap();
        t.connector().unwrap();
        assert_eq!(t.connector_builds(), 3);
        // The name to verify is per handshake: no new connector.
        t.set_server_name(Some("mx.example")).unwrap();
        t.connector().unwrap();
        assert_eq!(t.connector_builds(), 3);
    }

    #[test]
    fn a_unix_socket_needs_a_name_to_verify() {
        let mut t = TlsSettings::default();
        assert_eq!(t.name_to_verify("mx.example").unwrap(), "mx.example");
        let e = t.name_to_verify("/run/lmtp").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Tls);
        t.set_server_name(Some("localhost")).unwrap();
        assert_eq!(t.name_to_verify("/run/lmtp").unwrap(), "localhost");
        assert_eq!(
            t.set_server_name(Some("a b")).unwrap_err().kind,
            ErrorKind::Invalid
        );
        t.set_server_name(Some("bücher.example")).unwrap();
        assert_eq!(t.server_name(), Some("xn--bcher-kva.example"));
    }
}
