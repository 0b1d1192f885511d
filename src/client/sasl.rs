//! SASL (RFC 4422) for SMTP AUTH: one trait every mechanism implements —
//! an initial response, a response per challenge, a check of the server's
//! success data — and one table of the built-in mechanisms. A new
//! mechanism is one type and one table row; a caller's own mechanism is a
//! `Box<dyn Mechanism>` (the C API wraps a callback in one).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::Md5;

use super::error::{Error, Result};

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
    ("CRAM-MD5", |u, s| Box::new(CramMd5::new(u, s))),
    ("PLAIN", |u, s| Box::new(Plain::new(u, s))),
    ("LOGIN", |u, s| Box::new(Login::new(u, s))),
    ("XOAUTH2", |u, s| Box::new(XOAuth2::new(u, s))),
];

/// What `login` tries, best first.
pub const LOGIN_PREFERENCE: &[&str] = &["CRAM-MD5", "PLAIN", "LOGIN"];

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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
