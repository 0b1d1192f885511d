//! SASL (RFC 4422) for SMTP AUTH: one trait every mechanism implements —
//! an initial response, a response per challenge, a check of the server's
//! success data — and one table of the built-in mechanisms. A new
//! mechanism is one type and one table row; a caller's own mechanism is a
//! `Box<dyn Mechanism>` (the C API wraps a callback in one).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};

use super::error::{Error, ErrorKind, Result};

/// One authentication exchange, from the client's side. Challenges and
/// responses are the decoded bytes; the session does the base64.
pub trait Mechanism {
    /// The name sent after AUTH (upper case, e.g. "PLAIN").
    fn name(&self) -> &str;

    /// The first response, sent with the AUTH command, if the mechanism
    /// starts with one. Called once, before any challenge.
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>>;

    /// The response to one challenge (the decoded text of a 334 reply).
    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>>;

    /// After 235: checks what the server proved, if the mechanism has the
    /// server prove anything (SCRAM's server signature, which came as the
    /// last challenge). An error here fails the AUTH despite the 235.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    /// Whether a challenge is base64 (every standard mechanism's is).
    fn challenges_are_base64(&self) -> bool {
        true
    }
}

/// The built-in mechanisms by name, for `auth`; `None` for an unknown one.
pub fn builtin(name: &str, user: &str, secret: &str) -> Option<Box<dyn Mechanism>> {
    let row = BUILTIN.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    Some((row.1)(user, secret))
}

type Make = fn(&str, &str) -> Box<dyn Mechanism>;

/// Every built-in mechanism, in `login`'s order of preference (strongest
/// first; then smtplib's `preferred_auths`). XOAUTH2 takes a token, so
/// `login` never picks it.
pub const BUILTIN: &[(&str, Make)] = &[
    ("SCRAM-SHA-256", |u, s| Box::new(ScramSha256::new(u, s))),
    ("CRAM-MD5", |u, s| Box::new(CramMd5::new(u, s))),
    ("PLAIN", |u, s| Box::new(Plain::new(u, s))),
    ("LOGIN", |u, s| Box::new(Login::new(u, s))),
    ("XOAUTH2", |u, s| Box::new(XOAuth2::new(u, s))),
    ("OAUTHBEARER", |u, s| Box::new(OAuthBearer::new(u, s))),
];

/// What `login` tries, best first. SCRAM-SHA-256 leads: the password
/// never reaches the server (only a proof of it does, so a server, or
/// anyone between, learns nothing to replay), and the server proves it
/// knows the password too. A server that offers it but cannot check it
/// for this account answers 535 and `login` goes on to the next one, as
/// smtplib does; a server that breaks the exchange itself (bad nonce,
/// weak iteration count, wrong signature) stops `login` with an error
/// instead: falling back to PLAIN would hand the password to that server.
pub const LOGIN_PREFERENCE: &[&str] = &["SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"];

/// A SASL mechanism name (RFC 4422 §3.1): 1 to 20 of A-Z, 0-9, "-", "_";
/// lower case is accepted and sent upper case.
pub fn mechanism_name(name: &str) -> Result<String> {
    let ok = (1..=20).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(name.to_ascii_uppercase())
    } else {
        Err(Error::invalid(format!(
            "bad SASL mechanism name {name:?}: 1 to 20 letters, digits, '-' or '_'"
        )))
    }
}

pub fn encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Decodes a server challenge (the text of a 334 reply).
pub fn decode_challenge(text: &str) -> Result<Vec<u8>> {
    B64.decode(text.trim())
        .map_err(|e| Error::protocol(format!("AUTH challenge is not base64: {e}")))
}

/// RFC 4616: `authzid NUL authcid NUL passwd`, with an empty authzid.
pub struct Plain {
    response: Vec<u8>,
}

impl Plain {
    pub fn new(user: &str, password: &str) -> Self {
        let mut raw = Vec::with_capacity(user.len() + password.len() + 2);
        raw.push(0);
        raw.extend_from_slice(user.as_bytes());
        raw.push(0);
        raw.extend_from_slice(password.as_bytes());
        Plain { response: raw }
    }
}

impl Mechanism for Plain {
    fn name(&self) -> &str {
        "PLAIN"
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(Some(self.response.clone()))
    }
    /// Without an initial response the server asks with an empty
    /// challenge.
    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>> {
        Ok(self.response.clone())
    }
}

/// RFC 2195: `user SP hex(HMAC-MD5(password, challenge))`.
pub struct CramMd5 {
    user: String,
    password: String,
}

impl CramMd5 {
    pub fn new(user: &str, password: &str) -> Self {
        CramMd5 {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl Mechanism for CramMd5 {
    fn name(&self) -> &str {
        "CRAM-MD5"
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>> {
        let mut mac = Hmac::<Md5>::new_from_slice(self.password.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(challenge);
        let digest = mac.finalize().into_bytes();
        let mut text = String::with_capacity(self.user.len() + 33);
        text.push_str(&self.user);
        text.push(' ');
        for b in digest {
            text.push_str(&format!("{b:02x}"));
        }
        Ok(text.into_bytes())
    }
}

/// AUTH LOGIN: servers prompt "Username:" and "Password:" (aiosmtpd: "User
/// Name"); an unrecognised prompt gets the username first, then the
/// password.
pub struct Login {
    user: String,
    password: String,
    round: usize,
}

impl Login {
    pub fn new(user: &str, password: &str) -> Self {
        Login {
            user: user.into(),
            password: password.into(),
            round: 0,
        }
    }
}

impl Mechanism for Login {
    fn name(&self) -> &str {
        "LOGIN"
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>> {
        let prompt = String::from_utf8_lossy(challenge).to_ascii_lowercase();
        let send_password = if prompt.contains("pass") {
            true
        } else if prompt.contains("user") {
            false
        } else {
            self.round > 0
        };
        self.round += 1;
        Ok(if send_password {
            &self.password
        } else {
            &self.user
        }
        .as_bytes()
        .to_vec())
    }
}

/// Google's XOAUTH2: `user=U ^A auth=Bearer T ^A ^A`.
pub struct XOAuth2 {
    response: Vec<u8>,
}

impl XOAuth2 {
    pub fn new(user: &str, token: &str) -> Self {
        XOAuth2 {
            response: format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes(),
        }
    }
}

impl Mechanism for XOAuth2 {
    fn name(&self) -> &str {
        "XOAUTH2"
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(Some(self.response.clone()))
    }
    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>> {
        if challenge.is_empty() {
            // No initial response was sent: the server asks for it.
            return Ok(self.response.clone());
        }
        // A 334 here carries the error details; an empty line asks for the
        // final (failure) reply.
        Ok(Vec::new())
    }
}

/// RFC 5802 `saslname`: "," and "=" escaped as "=2C" and "=3D" (the
/// user name in SCRAM's client-first message and in a GS2 header's `a=`).
fn saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn scram_error(message: impl std::fmt::Display) -> Error {
    Error::protocol(format!("SCRAM-SHA-256: {message}"))
}

/// SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding (GS2
/// header `n,,`). The client proves it knows the password without
/// sending it; the server proves the same with its signature (`v=`),
/// which is checked: a wrong one cancels the exchange, and a 235 that
/// comes without a checked signature fails in `finish`.
///
/// * The user name goes through SASLprep (RFC 4013); a name SASLprep
///   refuses (control characters, unassigned code points …) or maps to
///   nothing fails with `Invalid`, as RFC 5802 §5.1 asks, before anything
///   is sent.
/// * The password goes through SASLprep too (RFC 5802's `Normalize`);
///   when SASLprep refuses it, its UTF-8 bytes are used as they are (as
///   PostgreSQL's libpq does): a server could not have prepared it either.
/// * The server's iteration count must be at least 4096 (RFC 7677 §4): a
///   lower one is a weak stored key or a downgrade, and is refused rather
///   than answered with a proof an eavesdropper could brute-force
///   cheaply. Above 10 000 000 it is refused too, so a hostile server
///   cannot make the client spin for minutes.
/// * An `e=` from the server is answered with an empty response (RFC 4954:
///   the exchange ends with the server's final reply, normally 535); if
///   the server then says 235 anyway, `finish` fails with its error.
pub struct ScramSha256 {
    user: String,
    password: String,
    nonce: Option<String>,
    state: Scram,
}

enum Scram {
    /// Nothing sent yet.
    Start,
    /// client-first sent: its bare part and our nonce.
    First { bare: String, nonce: String },
    /// client-final sent: what checks the server's signature.
    Final {
        server_key: [u8; 32],
        auth_message: String,
    },
    /// The server's signature matched.
    Verified,
    /// The server sent `e=`.
    ServerError(String),
    /// A step failed; the session cancels the exchange.
    Failed,
}

type HmacSha256 = Hmac<Sha256>;

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl ScramSha256 {
    /// The lowest iteration count accepted (RFC 7677 §4).
    pub(crate) const MIN_ITERATIONS: u32 = 4096;
    /// The highest iteration count accepted: a few seconds of PBKDF2 at
    /// most (OWASP's 2023 advice for PBKDF2-HMAC-SHA-256 is 600 000).
    pub(crate) const MAX_ITERATIONS: u32 = 10_000_000;

    pub fn new(user: &str, password: &str) -> Self {
        ScramSha256 {
            user: user.into(),
            password: password.into(),
            nonce: None,
            state: Scram::Start,
        }
    }

    /// With a fixed client nonce instead of 24 random bytes (tests, test
    /// vectors). The nonce must be printable ASCII without ",".
    pub fn with_nonce(user: &str, password: &str, nonce: &str) -> Self {
        ScramSha256 {
            nonce: Some(nonce.into()),
            ..ScramSha256::new(user, password)
        }
    }

    fn client_first(&mut self) -> Result<Vec<u8>> {
        let user = match stringprep::saslprep(&self.user) {
            Ok(u) if !u.is_empty() => u.into_owned(),
            Ok(_) => return Err(Error::invalid("SCRAM-SHA-256: the user name is empty")),
            Err(e) => {
                return Err(Error::invalid(format!(
                    "SCRAM-SHA-256: the user name is refused by SASLprep: {e}"
                )))
            }
        };
        let nonce = match self.nonce.take() {
            Some(n) => n,
            None => {
                let mut raw = [0u8; 24];
                getrandom::getrandom(&mut raw).map_err(|e| {
                    Error::new(
                        ErrorKind::Io,
                        format!("SCRAM-SHA-256: no random nonce: {e}"),
                    )
                })?;
                B64.encode(raw)
            }
        };
        if nonce.is_empty()
            || !nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(Error::invalid(
                "SCRAM-SHA-256: the nonce must be printable ASCII without ','",
            ));
        }
        let bare = format!("n={},r={nonce}", saslname(&user));
        let first = format!("n,,{bare}").into_bytes();
        self.state = Scram::First { bare, nonce };
        Ok(first)
    }

    /// server-first-message -> client-final-message.
    fn client_final(&mut self, bare: &str, nonce: &str, server_first: &str) -> Result<Vec<u8>> {
        let mut attrs = server_first.split(',');
        let mut field = |key: &str| -> Result<&str> {
            let a = attrs.next().unwrap_or("");
            a.strip_prefix(key)
                .and_then(|v| v.strip_prefix('='))
                .ok_or_else(|| {
                    if a.starts_with("m=") {
                        scram_error("the server demands an extension (m=) this client lacks")
                    } else {
                        scram_error(format!("no {key}= where expected in {server_first:?}"))
                    }
                })
        };
        let server_nonce = field("r")?;
        let salt = field("s")?;
        let iterations = field("i")?;
        if !server_nonce.starts_with(nonce) || server_nonce.len() <= nonce.len() {
            return Err(scram_error(
                "the server's nonce does not extend the client's",
            ));
        }
        if !server_nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(scram_error("the server's nonce is not printable ASCII"));
        }
        let salt = B64
            .decode(salt)
            .map_err(|e| scram_error(format!("the salt is not base64: {e}")))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| scram_error(format!("bad iteration count {iterations:?}")))?;
        if iterations < Self::MIN_ITERATIONS {
            return Err(scram_error(format!(
                "iteration count {iterations} is below {} (RFC 7677): refused",
                Self::MIN_ITERATIONS
            )));
        }
        if iterations > Self::MAX_ITERATIONS {
            return Err(scram_error(format!(
                "iteration count {iterations} is above {}: refused",
                Self::MAX_ITERATIONS
            )));
        }

        let password = stringprep::saslprep(&self.password)
            .map(|p| p.into_owned())
            .unwrap_or_else(|_| self.password.clone());
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac_sha256(&salted, b"Server Key");

        // c= is base64("n,,"), the GS2 header of client-first.
        let without_proof = format!("c=biws,r={server_nonce}");
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let signature = hmac_sha256(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(k, s)| k ^ s)
            .collect();
        self.state = Scram::Final {
            server_key,
            auth_message,
        };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// server-final-message: `v=` checked (in constant time).
    fn check_server_final(
        &mut self,
        server_key: &[u8; 32],
        auth_message: &str,
        server_final: &str,
    ) -> Result<Vec<u8>> {
        let v = server_final
            .split(',')
            .next()
            .and_then(|a| a.strip_prefix("v="))
            .ok_or_else(|| {
                scram_error(format!(
                    "no v= in the server's final message {server_final:?}"
                ))
            })?;
        let v = B64
            .decode(v)
            .map_err(|e| scram_error(format!("the server signature is not base64: {e}")))?;
        let mut mac =
            HmacSha256::new_from_slice(server_key).expect("HMAC takes keys of any length");
        mac.update(auth_message.as_bytes());
        mac.verify_slice(&v).map_err(|_| {
            scram_error(
                "the server's signature (v=) is wrong: the server does not know the \
                 password; not authenticated to it",
            )
        })?;
        self.state = Scram::Verified;
        Ok(Vec::new())
    }

    fn next(&mut self, challenge: &[u8]) -> Result<Vec<u8>> {
        let state = std::mem::replace(&mut self.state, Scram::Failed);
        if matches!(state, Scram::Start) {
            // No initial response was sent: the server asks for it with
            // an empty challenge.
            return if challenge.is_empty() {
                self.client_first()
            } else {
                Err(scram_error(
                    "the server sent a challenge before the client's first message",
                ))
            };
        }
        let text = std::str::from_utf8(challenge)
            .map_err(|_| scram_error("the server's message is not UTF-8"))?;
        if let (Scram::First { .. } | Scram::Final { .. }, Some(e)) =
            (&state, text.strip_prefix("e="))
        {
            // The server ends the exchange with an error; RFC 4954: answer
            // the challenge, its final reply (5xx) follows.
            self.state = Scram::ServerError(e.to_string());
            return Ok(Vec::new());
        }
        match state {
            Scram::First { bare, nonce } => self.client_final(&bare, &nonce, text),
            Scram::Final {
                server_key,
                auth_message,
            } => self.check_server_final(&server_key, &auth_message, text),
            Scram::Verified => Err(scram_error("a challenge after the server's signature")),
            Scram::ServerError(e) => {
                let err = scram_error(format!("a challenge after the server's error e={e}"));
                self.state = Scram::ServerError(e);
                Err(err)
            }
            Scram::Start | Scram::Failed => Err(scram_error("the exchange already failed")),
        }
    }
}

impl Mechanism for ScramSha256 {
    fn name(&self) -> &str {
        "SCRAM-SHA-256"
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>> {
        self.client_first().map(Some)
    }
    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>> {
        self.next(challenge)
    }
    /// The 235 counts only if the server's signature was checked.
    fn finish(&mut self) -> Result<()> {
        match &self.state {
            Scram::Verified => Ok(()),
            Scram::ServerError(e) => Err(scram_error(format!(
                "the server answered 235 after its error e={e}"
            ))),
            _ => Err(scram_error(
                "the server answered 235 without proving it knows the password (no v=); \
                 it may be an impostor: do not trust this connection",
            )),
        }
    }
}

/// OAUTHBEARER (RFC 7628): `n,a=<user>,^Aauth=Bearer <token>^A^A`, the
/// user as the GS2 authorization identity ("," and "=" escaped; an empty
/// user leaves `a=` out). On failure the server sends a 334 with a base64
/// JSON error; the client answers with a single ^A (RFC 7628 §3.2.3) and
/// the server's final reply (5xx) is the result. A 235 after that error
/// fails in `finish`.
pub struct OAuthBearer {
    user: String,
    token: String,
    state: Bearer,
}

enum Bearer {
    Start,
    Sent,
    /// The server's error (its JSON).
    Failed(String),
}

impl OAuthBearer {
    pub fn new(user: &str, token: &str) -> Self {
        OAuthBearer {
            user: user.into(),
            token: token.into(),
            state: Bearer::Start,
        }
    }

    fn message(&mut self) -> Result<Vec<u8>> {
        let control = |s: &str| s.chars().any(|c| c.is_control());
        if control(&self.user) {
            return Err(Error::invalid(
                "OAUTHBEARER: control character in the user name",
            ));
        }
        if self.token.is_empty() || control(&self.token) || self.token.contains(' ') {
            return Err(Error::invalid(
                "OAUTHBEARER: the token must be non-empty, without spaces or control characters",
            ));
        }
        let authzid = if self.user.is_empty() {
            String::new()
        } else {
            format!("a={}", saslname(&self.user))
        };
        self.state = Bearer::Sent;
        Ok(format!("n,{authzid},\x01auth=Bearer {}\x01\x01", self.token).into_bytes())
    }
}

impl Mechanism for OAuthBearer {
    fn name(&self) -> &str {
        "OAUTHBEARER"
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>> {
        self.message().map(Some)
    }
    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>> {
        match &self.state {
            // No initial response was sent: the empty challenge asks for it.
            Bearer::Start if challenge.is_empty() => self.message(),
            Bearer::Start => Err(Error::protocol(
                "OAUTHBEARER: the server sent a challenge before the client's message",
            )),
            Bearer::Sent => {
                // The error (JSON: status, scope, openid-configuration).
                self.state = Bearer::Failed(String::from_utf8_lossy(challenge).into_owned());
                Ok(b"\x01".to_vec())
            }
            Bearer::Failed(_) => Err(Error::protocol(
                "OAUTHBEARER: a challenge after the server's error",
            )),
        }
    }
    fn finish(&mut self) -> Result<()> {
        match &self.state {
            Bearer::Failed(e) => Err(Error::protocol(format!(
                "OAUTHBEARER: the server answered 235 after its error {e}"
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ErrorKind;

    #[test]
    fn mechanism_names_are_one_sasl_word() {
        assert_eq!(mechanism_name("plain").unwrap(), "PLAIN");
        assert_eq!(mechanism_name("X-MY_MECH2").unwrap(), "X-MY_MECH2");
        for bad in [
            "",
            "PLAIN LOGIN",
            "PLAIN\r\nQUIT",
            "A\tB",
            "SCRAM-SHA-256-PLUS-LONG",
            "é",
            "X=",
        ] {
            assert_eq!(
                mechanism_name(bad).unwrap_err().kind,
                ErrorKind::Invalid,
                "{bad:?}"
            );
        }
    }

    fn first(m: &mut dyn Mechanism) -> Vec<u8> {
        m.initial_response().unwrap().unwrap()
    }

    #[test]
    fn plain_matches_rfc4616_example() {
        // RFC 4616 §4: authcid "tim", password "tanstaaftanstaaf".
        let r = first(&mut Plain::new("tim", "tanstaaftanstaaf"));
        assert_eq!(r, b"\0tim\0tanstaaftanstaaf");
        assert_eq!(encode(&r), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    }

    #[test]
    fn cram_md5_matches_rfc2195_example() {
        let challenge = b"<1896.697170952@postoffice.reston.mci.net>";
        let r = CramMd5::new("tim", "tanstaaftanstaaf")
            .step(challenge)
            .unwrap();
        assert_eq!(r, b"tim b913a602c7eda7a495b4e6e7334d3890");
        // The challenge as the server sends it, base64.
        let wire = "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+";
        assert_eq!(decode_challenge(wire).unwrap(), challenge);
    }

    #[test]
    fn login_answers_by_prompt_then_by_order() {
        let answer = |prompts: &[&[u8]]| -> Vec<String> {
            let mut m = Login::new("u", "p");
            prompts
                .iter()
                .map(|c| String::from_utf8(m.step(c).unwrap()).unwrap())
                .collect()
        };
        assert_eq!(answer(&[b"Username:", b"Password:"]), ["u", "p"]);
        assert_eq!(answer(&[b"Password:"]), ["p"]);
        assert_eq!(answer(&[b"?", b"User Name"]), ["u", "u"]);
        assert_eq!(answer(&[b"?", b"?"]), ["u", "p"]);
    }

    #[test]
    fn xoauth2_has_the_ctrl_a_framing() {
        let r = first(&mut XOAuth2::new("me@x", "tok"));
        assert_eq!(r, b"user=me@x\x01auth=Bearer tok\x01\x01");
    }

    // RFC 7677 §3: user "user", password "pencil", client nonce
    // "rOprNGfwEbeRWgbNEkqO".
    const RFC7677_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const RFC7677_SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                        s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC7677_CLIENT_FINAL: &str =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                        p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc7677() -> ScramSha256 {
        ScramSha256::with_nonce("user", "pencil", RFC7677_NONCE)
    }

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn scram_sha_256_matches_the_rfc7677_example() {
        let mut m = rfc7677();
        assert_eq!(text(first(&mut m)), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let final_ = m.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(text(final_), RFC7677_CLIENT_FINAL);
        // The server's signature checks; the answer to it is empty.
        assert_eq!(m.step(RFC7677_SERVER_FINAL.as_bytes()).unwrap(), b"");
        m.finish().unwrap();
    }

    #[test]
    fn scram_without_initial_response_answers_the_empty_challenge() {
        let mut m = rfc7677();
        assert_eq!(
            text(m.step(b"").unwrap()),
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        assert_eq!(
            text(m.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap()),
            RFC7677_CLIENT_FINAL
        );
        m.step(RFC7677_SERVER_FINAL.as_bytes()).unwrap();
        m.finish().unwrap();
    }

    #[test]
    fn scram_refuses_a_wrong_server_signature() {
        let mut m = rfc7677();
        first(&mut m);
        m.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        // One bit off in the signature.
        let e = m
            .step(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G8=")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(e.message.contains("signature"), "{}", e.message);
        // Even if the server said 235 next, it is not accepted.
        assert!(m.finish().is_err());
        // Garbage instead of v=.
        let mut m = rfc7677();
        first(&mut m);
        m.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        assert!(m.step(b"x=abc").is_err());
        let mut m = rfc7677();
        first(&mut m);
        m.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        assert!(m.step(b"v=!!!").is_err());
    }

    #[test]
    fn scram_235_without_a_checked_signature_is_an_error() {
        // 235 right after client-final: the server proved nothing.
        let mut m = rfc7677();
        first(&mut m);
        m.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        let e = m.finish().unwrap_err();
        assert!(e.message.contains("no v="), "{}", e.message);
        // 235 right after client-first.
        let mut m = rfc7677();
        first(&mut m);
        assert!(m.finish().is_err());
    }

    #[test]
    fn scram_server_error_is_answered_then_reported_if_235_follows() {
        let mut m = rfc7677();
        first(&mut m);
        m.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(m.step(b"e=invalid-proof").unwrap(), b"");
        let e = m.finish().unwrap_err();
        assert!(e.message.contains("e=invalid-proof"), "{}", e.message);
        // e= instead of server-first.
        let mut m = rfc7677();
        first(&mut m);
        assert_eq!(m.step(b"e=unknown-user").unwrap(), b"");
        assert!(m.step(b"anything").is_err());
        assert!(m.finish().unwrap_err().message.contains("unknown-user"));
    }

    #[test]
    fn scram_checks_the_server_first_message() {
        let refused = |server_first: &str| -> String {
            let mut m = rfc7677();
            first(&mut m);
            m.step(server_first.as_bytes()).unwrap_err().message
        };
        // The nonce must extend ours, strictly.
        assert!(
            refused("r=XXprNGfwEbeRWgbNEkqO123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
                .contains("nonce")
        );
        assert!(
            refused("r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096").contains("nonce")
        );
        // Iteration count: the RFC 7677 floor, a ceiling, a number.
        assert!(
            refused("r=rOprNGfwEbeRWgbNEkqOab,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095").contains("4095")
        );
        assert!(
            refused("r=rOprNGfwEbeRWgbNEkqOab,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1").contains("below")
        );
        assert!(
            refused("r=rOprNGfwEbeRWgbNEkqOab,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4000000000")
                .contains("above")
        );
        assert!(
            refused("r=rOprNGfwEbeRWgbNEkqOab,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-5")
                .contains("iteration")
        );
        // Fields in order, salt in base64, mandatory extensions refused.
        assert!(
            refused("s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOab,i=4096").contains("r=")
        );
        assert!(refused("r=rOprNGfwEbeRWgbNEkqOab,s=***,i=4096").contains("salt"));
        assert!(
            refused("m=ext,r=rOprNGfwEbeRWgbNEkqOab,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
                .contains("m=")
        );
        assert!(refused("").contains("r="));
        // A challenge before anything was sent.
        let mut m = rfc7677();
        assert!(m.step(RFC7677_SERVER_FIRST.as_bytes()).is_err());
    }

    #[test]
    fn scram_prepares_and_escapes_the_user_name() {
        let mut m = ScramSha256::with_nonce("a,b=c", "p", "nonce");
        assert_eq!(text(first(&mut m)), "n,,n=a=2Cb=3Dc,r=nonce");
        // SASLprep: a non-ASCII space becomes a space; the soft hyphen
        // maps to nothing; NFKC ("Ⅸ" -> "IX").
        let mut m = ScramSha256::with_nonce("I\u{00AD}X\u{2003}\u{2168}", "p", "nonce");
        assert_eq!(text(first(&mut m)), "n,,n=IX IX,r=nonce");
        // Refused by SASLprep, or empty: Invalid, nothing to send.
        for bad in ["a\u{7}b", "", "\u{00AD}"] {
            let e = ScramSha256::with_nonce(bad, "p", "nonce")
                .initial_response()
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{bad:?}");
        }
        // A random nonce: 24 bytes in base64, different each time.
        let a = text(first(&mut ScramSha256::new("u", "p")));
        let b = text(first(&mut ScramSha256::new("u", "p")));
        assert_ne!(a, b);
        assert_eq!(a.len(), "n,,n=u,r=".len() + 32, "{a}");
    }

    #[test]
    fn scram_prepares_the_password() {
        // SASLprep maps U+00A0 to a space and drops U+00AD: both spell
        // the same key as "pen cil".
        let proof = |password: &str| {
            let mut m = ScramSha256::with_nonce("user", password, RFC7677_NONCE);
            first(&mut m);
            text(m.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap())
        };
        assert_eq!(proof("pen\u{00A0}cil"), proof("pen cil"));
        assert_eq!(proof("pen\u{00AD}cil"), proof("pencil"));
        assert_eq!(proof("pencil"), RFC7677_CLIENT_FINAL);
        // A password SASLprep refuses (a control character) is used as
        // it is, not refused.
        assert_ne!(proof("pen\u{7}cil"), proof("pencil"));
    }

    #[test]
    fn oauthbearer_has_the_gs2_header_and_ctrl_a_framing() {
        let r = first(&mut OAuthBearer::new("me@x", "tok"));
        assert_eq!(r, b"n,a=me@x,\x01auth=Bearer tok\x01\x01");
        let r = first(&mut OAuthBearer::new("a,b=c", "tok"));
        assert_eq!(r, b"n,a=a=2Cb=3Dc,\x01auth=Bearer tok\x01\x01");
        let r = first(&mut OAuthBearer::new("", "tok"));
        assert_eq!(r, b"n,,\x01auth=Bearer tok\x01\x01");
        for (user, token) in [("me", ""), ("me", "a b"), ("me", "a\x01b"), ("m\x01e", "t")] {
            let e = OAuthBearer::new(user, token)
                .initial_response()
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{user:?} {token:?}");
        }
    }

    #[test]
    fn oauthbearer_answers_an_error_with_ctrl_a() {
        let mut m = OAuthBearer::new("me@x", "tok");
        first(&mut m);
        let json = br#"{"status":"invalid_token","scope":"mail"}"#;
        assert_eq!(m.step(json).unwrap(), b"\x01");
        // A second challenge, or a 235 after the error: refused.
        assert!(m.finish().unwrap_err().message.contains("invalid_token"));
        assert!(m.step(b"").is_err());
        // Success: no challenge at all.
        let mut m = OAuthBearer::new("me@x", "tok");
        first(&mut m);
        m.finish().unwrap();
    }

    #[test]
    fn oauthbearer_without_initial_response_answers_the_empty_challenge() {
        let mut m = OAuthBearer::new("me@x", "tok");
        assert_eq!(
            m.step(b"").unwrap(),
            b"n,a=me@x,\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(m.step(b"{}").unwrap(), b"\x01");
        let mut m = OAuthBearer::new("me@x", "tok");
        assert!(m.step(b"{}").is_err(), "an error before the message");
    }

    #[test]
    fn bad_challenge_is_a_protocol_error() {
        assert!(decode_challenge("***").is_err());
    }

    #[test]
    fn the_table_finds_every_mechanism_by_name_in_any_case() {
        for (name, _) in BUILTIN {
            let m = builtin(&name.to_lowercase(), "u", "p").unwrap();
            assert_eq!(m.name(), *name);
        }
        assert!(builtin("GSSAPI", "u", "p").is_none());
        for name in LOGIN_PREFERENCE {
            assert!(BUILTIN.iter().any(|(n, _)| n == name));
        }
        // Token mechanisms are never tried by `login`.
        assert!(!LOGIN_PREFERENCE.contains(&"XOAUTH2"));
        assert!(!LOGIN_PREFERENCE.contains(&"OAUTHBEARER"));
    }
}
