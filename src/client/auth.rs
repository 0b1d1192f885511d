//! SASL mechanisms: the responses a client sends, base64 on the wire.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::Md5;

use super::error::{Error, Result};

/// Mechanisms this library can run, in smtplib's order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    CramMd5,
    Plain,
    Login,
    XOAuth2,
}

impl Mechanism {
    /// What `login` tries, best first (smtplib's `preferred_auths`).
    pub const PREFERRED: [Mechanism; 3] = [Mechanism::CramMd5, Mechanism::Plain, Mechanism::Login];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::XOAuth2 => "XOAUTH2",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            Mechanism::CramMd5,
            Mechanism::Plain,
            Mechanism::Login,
            Mechanism::XOAuth2,
        ]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(name))
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
pub fn plain_response(user: &str, password: &str) -> String {
    let mut raw = Vec::with_capacity(user.len() + password.len() + 2);
    raw.push(0);
    raw.extend_from_slice(user.as_bytes());
    raw.push(0);
    raw.extend_from_slice(password.as_bytes());
    encode(&raw)
}

/// RFC 2195: `user SP hex(HMAC-MD5(password, challenge))`.
pub fn cram_md5_response(user: &str, password: &str, challenge: &[u8]) -> String {
    let mut mac =
        Hmac::<Md5>::new_from_slice(password.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(challenge);
    let digest = mac.finalize().into_bytes();
    let mut text = String::with_capacity(user.len() + 33);
    text.push_str(user);
    text.push(' ');
    for b in digest {
        text.push_str(&format!("{b:02x}"));
    }
    encode(text.as_bytes())
}

/// The AUTH LOGIN answer to one challenge: servers prompt "Username:" and
/// "Password:" (aiosmtpd: "User Name"); an unrecognised prompt gets the
/// username first, then the password.
pub fn login_response(user: &str, password: &str, challenge: &[u8], step: usize) -> String {
    let prompt = String::from_utf8_lossy(challenge).to_ascii_lowercase();
    let send_password = if prompt.contains("pass") {
        true
    } else if prompt.contains("user") {
        false
    } else {
        step > 0
    };
    encode(if send_password { password } else { user }.as_bytes())
}

/// Google's XOAUTH2: `user=U ^A auth=Bearer T ^A ^A`.
pub fn xoauth2_response(user: &str, token: &str) -> String {
    encode(format!("user={user}\x01auth=Bearer {token}\x01\x01").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_matches_rfc4616_example() {
        // RFC 4616 §4: authcid "tim", password "tanstaaftanstaaf".
        let r = plain_response("tim", "tanstaaftanstaaf");
        assert_eq!(B64.decode(&r).unwrap(), b"\0tim\0tanstaaftanstaaf");
        assert_eq!(r, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    }

    #[test]
    fn cram_md5_matches_rfc2195_example() {
        let challenge = b"<1896.697170952@postoffice.reston.mci.net>";
        let r = cram_md5_response("tim", "tanstaaftanstaaf", challenge);
        assert_eq!(
            B64.decode(&r).unwrap(),
            b"tim b913a602c7eda7a495b4e6e7334d3890"
        );
        // The challenge as the server sends it, base64.
        let wire = "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+";
        assert_eq!(decode_challenge(wire).unwrap(), challenge);
    }

    #[test]
    fn login_answers_by_prompt_then_by_order() {
        let dec = |s: String| String::from_utf8(B64.decode(s).unwrap()).unwrap();
        assert_eq!(dec(login_response("u", "p", b"Username:", 0)), "u");
        assert_eq!(dec(login_response("u", "p", b"Password:", 0)), "p");
        assert_eq!(dec(login_response("u", "p", b"User Name", 1)), "u");
        assert_eq!(dec(login_response("u", "p", b"?", 0)), "u");
        assert_eq!(dec(login_response("u", "p", b"?", 1)), "p");
    }

    #[test]
    fn xoauth2_has_the_ctrl_a_framing() {
        let r = xoauth2_response("me@x", "tok");
        assert_eq!(
            B64.decode(r).unwrap(),
            b"user=me@x\x01auth=Bearer tok\x01\x01"
        );
    }

    #[test]
    fn bad_challenge_is_a_protocol_error() {
        assert!(decode_challenge("***").is_err());
    }

    #[test]
    fn mechanism_names_round_trip() {
        for m in [
            Mechanism::CramMd5,
            Mechanism::Plain,
            Mechanism::Login,
            Mechanism::XOAuth2,
        ] {
            assert_eq!(Mechanism::from_name(&m.name().to_lowercase()), Some(m));
        }
        assert_eq!(Mechanism::from_name("GSSAPI"), None);
    }
}
