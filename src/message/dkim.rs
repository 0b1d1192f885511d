//! DKIM signing (RFC 6376; rsa-sha256 and ed25519-sha256 per RFC 8463,
//! relaxed/relaxed) through mail-auth, over a message read as a stream so a
//! streamed file attachment is hashed without being held in memory.

use std::io::Read;
use std::sync::Arc;

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::address::check_text;
use crate::client::{Error, ErrorKind, Result};

/// Header fields signed when the caller names none: those of them the
/// message has (a listed field it lacks is left out, so a relay that adds
/// one, e.g. Postfix's `To: undisclosed-recipients:;`, breaks nothing).
pub const DEFAULT_SIGNED_HEADERS: &[&str] = &[
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
    "Resent-Date",
    "Resent-From",
    "Resent-Sender",
    "Resent-To",
    "Resent-Cc",
    "Resent-Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

#[derive(Clone)]
enum KeyDer {
    Rsa(Arc<PrivateKeyDer<'static>>),
    Ed25519(Arc<Vec<u8>>),
}

/// What `smtp_message_set_dkim` configures: a domain, a selector, a
/// private key and the header fields to sign.
#[derive(Clone)]
pub struct Dkim {
    domain: String,
    selector: String,
    key: KeyDer,
    /// `None`: [`DEFAULT_SIGNED_HEADERS`] that are present.
    headers: Option<Vec<String>>,
}

impl std::fmt::Debug for Dkim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dkim")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm())
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::invalid(msg)
}

impl Dkim {
    /// Checks and keeps a signing configuration. `key_pem` is an RSA key
    /// (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`) or an Ed25519
    /// key (PKCS#8); `headers` is a colon-separated list of field names
    /// that must include From (`None`: the default set).
    pub fn new(domain: &str, selector: &str, key_pem: &str, headers: Option<&str>) -> Result<Dkim> {
        check_text("DKIM domain", domain)?;
        let domain = idna::domain_to_ascii_strict(domain)
            .ok()
            .filter(|d| !d.is_empty() && d.contains('.') && !d.ends_with('.'))
            .ok_or_else(|| invalid(format!("DKIM domain {domain:?} is not a valid domain")))?;
        let selector_ok = !selector.is_empty()
            && selector.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !selector_ok {
            return Err(invalid(format!(
                "DKIM selector {selector:?} is not valid (ASCII letters, digits, '-', '_', dots)"
            )));
        }
        let headers = match headers {
            None => None,
            Some(list) => {
                let names: Vec<String> = list
                    .split(':')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                for n in &names {
                    super::check_header_name(n)?;
                }
                if !names.iter().any(|n| n.eq_ignore_ascii_case("From")) {
                    return Err(invalid(
                        "the DKIM signed header list must include From (RFC 6376 section 5.4)",
                    ));
                }
                Some(names)
            }
        };
        let key = parse_key(key_pem)?;
        let dkim = Dkim {
            domain,
            selector: selector.to_string(),
            key,
            headers,
        };
        // Fail now, not at send time, if the key cannot sign.
        dkim.sign(
            &mut &b"From: a@example.org\r\n\r\nx\r\n"[..],
            b"From: a@example.org\r\n",
        )?;
        Ok(dkim)
    }

    /// "rsa-sha256" or "ed25519-sha256".
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            KeyDer::Rsa(_) => "rsa-sha256",
            KeyDer::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// The header fields to sign for a message with header section
    /// `headers`.
    fn signed_headers(&self, headers: &[u8]) -> Vec<String> {
        if let Some(list) = &self.headers {
            return list.clone();
        }
        let present = field_names(headers);
        DEFAULT_SIGNED_HEADERS
            .iter()
            .filter(|n| present.iter().any(|p| p.eq_ignore_ascii_case(n)))
            .map(|n| n.to_string())
            .collect()
    }

    /// The `DKIM-Signature:` field (folded, CRLF-terminated) for the
    /// message read from `message`, whose header section is `headers` (the
    /// first `headers.len()` bytes the reader yields).
    pub(crate) fn sign(&self, message: &mut dyn Read, headers: &[u8]) -> Result<String> {
        let names = self.signed_headers(headers);
        if !names.iter().any(|n| n.eq_ignore_ascii_case("From")) {
            return Err(invalid("DKIM: the message has no From field to sign"));
        }
        match &self.key {
            KeyDer::Rsa(der) => {
                let key = RsaKey::<Sha256>::from_key_der(der.as_ref().clone_key())
                    .map_err(|e| invalid(format!("DKIM key: {e}")))?;
                self.sign_with(key, names, message, headers.len())
            }
            KeyDer::Ed25519(der) => {
                let key = Ed25519Key::from_pkcs8_der(der)
                    .map_err(|e| invalid(format!("DKIM key: {e}")))?;
                self.sign_with(key, names, message, headers.len())
            }
        }
    }

    fn sign_with<K: SigningKey<Hasher = Sha256>>(
        &self,
        key: K,
        names: Vec<String>,
        message: &mut dyn Read,
        header_len: usize,
    ) -> Result<String> {
        let signer: DkimSigner<K, Done> = DkimSigner::from_key(key)
            .domain(self.domain.clone())
            .selector(self.selector.clone())
            .headers(names)
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed);
        let mut stream = signer.sign_streaming();
        let mut body = TrailingBlankLines::default();
        let mut buf = vec![0u8; 64 * 1024];
        let mut header_left = header_len;
        loop {
            let n = match message.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!("DKIM: reading the message: {e}"),
                    ))
                }
            };
            let take = header_left.min(n);
            stream.write(&buf[..take]);
            header_left -= take;
            if n > take {
                body.write(&buf[take..n], &mut |b| stream.write(b));
            }
        }
        body.finish(&mut |b| stream.write(b));
        let sig = stream
            .finish()
            .map_err(|e| invalid(format!("DKIM signing failed: {e}")))?;
        Ok(sig.to_header())
    }
}

/// Decodes the PEM key: PKCS#1 is RSA; PKCS#8 is Ed25519 or RSA.
fn parse_key(pem: &str) -> Result<KeyDer> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
        invalid(format!(
            "DKIM key is not a PEM private key (RSA PRIVATE KEY or PRIVATE KEY): {e}"
        ))
    })?;
    match der {
        PrivateKeyDer::Pkcs1(_) => Ok(KeyDer::Rsa(Arc::new(der.clone_key()))),
        PrivateKeyDer::Pkcs8(ref p8) => {
            let bytes = p8.secret_pkcs8_der().to_vec();
            if Ed25519Key::from_pkcs8_der(&bytes).is_ok() {
                return Ok(KeyDer::Ed25519(Arc::new(bytes)));
            }
            let rsa = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes));
            RsaKey::<Sha256>::from_key_der(rsa.clone_key())
                .map_err(|e| invalid(format!("DKIM key is neither Ed25519 nor RSA: {e}")))?;
            Ok(KeyDer::Rsa(Arc::new(rsa)))
        }
        _ => Err(invalid(
            "DKIM key must be RSA or Ed25519 (an EC key cannot sign DKIM)",
        )),
    }
}

/// The field names of a header section, in order.
fn field_names(headers: &[u8]) -> Vec<String> {
    headers
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && !matches!(l[0], b' ' | b'\t'))
        .filter_map(|l| l.iter().position(|&b| b == b':').map(|c| &l[..c]))
        .map(|n| String::from_utf8_lossy(n.trim_ascii()).into_owned())
        .collect()
}

/// Holds back body lines made only of spaces and tabs until something
/// other than white space follows, and drops them at the end. Under relaxed
/// body canonicalization such trailing lines are empty lines and do not
/// count (RFC 6376 section 3.4.4), but mail-auth 0.13 hashes them (fixed in
/// 0.15, which needs a newer rustc): leaving them out of the hash gives the
/// signature every verifier computes, whether or not they are sent.
#[derive(Default)]
struct TrailingBlankLines {
    pending: Vec<u8>,
    seen_content: bool,
}

/// Past this much held-back white space the lines are passed on as they
/// are (memory stays bounded; only an absurd body would get there).
const HOLD_MAX: usize = 64 * 1024;

impl TrailingBlankLines {
    fn write(&mut self, chunk: &[u8], out: &mut dyn FnMut(&[u8])) {
        match chunk
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            Some(k) => {
                if !self.pending.is_empty() {
                    out(&self.pending);
                    self.pending.clear();
                }
                out(&chunk[..=k]);
                self.pending.extend_from_slice(&chunk[k + 1..]);
                self.seen_content = true;
            }
            None => {
                self.pending.extend_from_slice(chunk);
                if self.pending.len() > HOLD_MAX {
                    out(&self.pending);
                    self.pending.clear();
                }
            }
        }
    }

    fn finish(&mut self, out: &mut dyn FnMut(&[u8])) {
        if self.seen_content {
            // Keep the end of the last line with content, up to its line break.
            let keep = memchr::memchr(b'\n', &self.pending).map_or(self.pending.len(), |i| i + 1);
            out(&self.pending[..keep]);
        }
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(parts: &[&[u8]]) -> Vec<u8> {
        let mut t = TrailingBlankLines::default();
        let mut out = Vec::new();
        for p in parts {
            t.write(p, &mut |b| out.extend_from_slice(b));
        }
        t.finish(&mut |b| out.extend_from_slice(b));
        out
    }

    #[test]
    fn trailing_white_lines_are_dropped_and_inner_ones_kept() {
        assert_eq!(through(&[b"a\r\n \r\n\t\r\n"]), b"a\r\n");
        assert_eq!(
            through(&[b"a  \r\n", b" \r\n", b"b\r\n  \r\n"]),
            b"a  \r\n \r\nb\r\n"
        );
        assert_eq!(through(&[b"a"]), b"a");
        assert_eq!(through(&[b" \r\n \r\n"]), b"");
        assert_eq!(through(&[b"x\r\n\r\n\r\n"]), b"x\r\n");
    }

    #[test]
    fn field_names_skip_continuations() {
        assert_eq!(
            field_names(b"From: a\r\nTo: b,\r\n c\r\nX-Y : z\r\n"),
            ["From", "To", "X-Y"]
        );
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert!(Dkim::new("example.org", "s1", "not a key", None).is_err());
        let ed = "-----BEGIN PRIVATE KEY-----\n\
                  MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n\
                  -----END PRIVATE KEY-----\n";
        let d = Dkim::new("example.org", "s1", ed, None).unwrap();
        assert_eq!(d.algorithm(), "ed25519-sha256");
        assert!(Dkim::new("example.org", "s 1", ed, None).is_err());
        assert!(Dkim::new("exa mple.org", "s1", ed, None).is_err());
        assert!(Dkim::new("example.org\r\n", "s1", ed, None).is_err());
        assert!(Dkim::new("example.org", "s1", ed, Some("To:Subject")).is_err());
        assert!(Dkim::new("example.org", "s1", ed, Some("From:Bad Name")).is_err());
        assert!(Dkim::new("example.org", "s1", ed, Some("from:to")).is_ok());
    }
}
