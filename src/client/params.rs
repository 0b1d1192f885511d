//! The MAIL FROM and RCPT TO lines of a message: the addresses, and one
//! small helper per ESMTP parameter (SIZE, BODY, SMTPUTF8, DSN, the
//! caller's own), each checking what the server offers. A new parameter is
//! one more helper and one line in `Envelope::build`.

use super::command::{self, check_arg, quote_addr};
use super::error::{Error, ErrorKind, Result};
use super::extensions::Extensions;

/// Delivery Status Notification parameters (RFC 3461), applied to every
/// message sent while set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dsn {
    /// "FULL" or "HDRS".
    pub ret: Option<String>,
    /// Envelope identifier; xtext-encoded on the wire.
    pub envid: Option<String>,
    /// "NEVER" or a comma list of SUCCESS, FAILURE, DELAY.
    pub notify: Option<String>,
    /// Add ORCPT=rfc822;<recipient> to each RCPT.
    pub orcpt: bool,
}

impl Dsn {
    pub fn validate(&self) -> Result<()> {
        if let Some(ret) = &self.ret {
            if !ret.eq_ignore_ascii_case("FULL") && !ret.eq_ignore_ascii_case("HDRS") {
                return Err(Error::invalid("DSN RET must be FULL or HDRS"));
            }
        }
        if let Some(envid) = &self.envid {
            check_arg("DSN ENVID", envid)?;
            if envid.is_empty() || !envid.is_ascii() {
                return Err(Error::invalid("DSN ENVID must be non-empty ASCII"));
            }
        }
        if let Some(notify) = &self.notify {
            let words: Vec<String> = notify
                .split(',')
                .map(|w| w.trim().to_ascii_uppercase())
                .collect();
            let never = words.len() == 1 && words[0] == "NEVER";
            let known = words
                .iter()
                .all(|w| matches!(w.as_str(), "SUCCESS" | "FAILURE" | "DELAY"));
            if !never && !known {
                return Err(Error::invalid(
                    "DSN NOTIFY must be NEVER or a comma list of SUCCESS, FAILURE, DELAY",
                ));
            }
        }
        Ok(())
    }
}

/// RFC 3461 §4: xtext keeps "!".."~" except '+' and '='; the rest is +HH.
pub fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// ESMTP parameters given by the caller (smtplib's `mail_options` and
/// `rcpt_options`), each one `KEYWORD` or `KEYWORD=value`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamList(Vec<String>);

impl ParamList {
    /// Checks each parameter: no CR, LF or NUL, not empty, no space inside
    /// (one parameter is one word). Non-ASCII is checked when sending, as
    /// it needs SMTPUTF8.
    pub fn new<S: AsRef<str>>(params: &[S]) -> Result<Self> {
        let mut out = Vec::with_capacity(params.len());
        for p in params {
            let p = p.as_ref();
            check_arg("ESMTP parameter", p)?;
            if p.is_empty() || p.contains([' ', '\t']) {
                return Err(Error::invalid(format!(
                    "ESMTP parameter {p:?} must be one non-empty word"
                )));
            }
            if p.starts_with('=') {
                return Err(Error::invalid(format!(
                    "ESMTP parameter {p:?} has no keyword"
                )));
            }
            out.push(p.to_string());
        }
        Ok(ParamList(out))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn keyword(param: &str) -> &str {
    param.split('=').next().unwrap_or(param)
}

/// What the server offers, for the helpers below.
#[derive(Clone, Copy)]
pub(crate) struct Offers<'a>(pub Option<&'a Extensions>);

impl Offers<'_> {
    fn has(&self, k: &str) -> bool {
        self.0.is_some_and(|e| e.has(k))
    }

    fn require(&self, k: &str, why: &str) -> Result<()> {
        if self.has(k) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::NotSupported,
                format!("{why} but the server does not offer {k}"),
            ))
        }
    }
}

/// The addresses and parameters of one MAIL FROM and its RCPT TOs.
#[derive(Debug, Default)]
pub(crate) struct Envelope {
    /// `<sender>`, `<recipient>`: quoted as smtplib's `quoteaddr` does.
    pub from: String,
    pub to: Vec<String>,
    /// MAIL FROM parameters, in order.
    pub mail: Vec<String>,
    /// Parameters every RCPT TO carries, in order.
    pub rcpt: Vec<String>,
    /// ORCPT=…;<recipient> on each RCPT (DSN).
    pub orcpt: bool,
}

/// How the body is to be announced and sent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BodyFacts {
    /// The size in bytes, when known before sending.
    pub size: Option<u64>,
    /// Whether it has 8-bit bytes; `None` for a stream not yet read.
    pub eight_bit: Option<bool>,
    pub binarymime: bool,
}

/// What the body helper decided.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BodyPlan {
    /// A streamed body must be checked for 8-bit bytes as it goes, since
    /// the server does not accept them.
    pub reject_8bit_stream: bool,
    pub binary: bool,
}

impl Envelope {
    /// Quotes the addresses; nothing about the server yet.
    pub(crate) fn new(from: &str, to: &[&str]) -> Result<Self> {
        let from = quote_addr("sender", from)?;
        if to.is_empty() {
            return Err(Error::invalid("no recipients"));
        }
        let to = to
            .iter()
            .map(|a| quote_addr("recipient", a))
            .collect::<Result<Vec<_>>>()?;
        Ok(Envelope {
            from,
            to,
            ..Envelope::default()
        })
    }

    /// MAIL FROM only, for smtplib's `mail` verb.
    pub(crate) fn sender(from: &str) -> Result<Self> {
        Ok(Envelope {
            from: quote_addr("sender", from)?,
            ..Envelope::default()
        })
    }

    /// RCPT TO only, for smtplib's `rcpt` verb.
    pub(crate) fn recipient(to: &str) -> Result<Self> {
        Ok(Envelope {
            from: "<>".into(),
            to: vec![quote_addr("recipient", to)?],
            ..Envelope::default()
        })
    }

    /// The library's parameters, then the caller's.
    pub(crate) fn build(
        &mut self,
        offers: Offers<'_>,
        body: BodyFacts,
        dsn: Option<&Dsn>,
        mail_options: &ParamList,
        rcpt_options: &ParamList,
    ) -> Result<BodyPlan> {
        self.size(offers, body.size)?;
        let plan = self.body(offers, body)?;
        self.smtputf8(offers)?;
        if let Some(dsn) = dsn {
            self.dsn(offers, dsn)?;
        }
        self.caller_options(offers, mail_options, rcpt_options)?;
        Ok(plan)
    }

    /// SIZE=n when offered; a message over the server's limit is refused
    /// before anything is sent.
    fn size(&mut self, offers: Offers<'_>, size: Option<u64>) -> Result<()> {
        let Some(size) = size.filter(|_| offers.has("SIZE")) else {
            return Ok(());
        };
        if let Some(limit) = offers.0.and_then(Extensions::size_limit) {
            if size > limit {
                return Err(Error::new(
                    ErrorKind::TooLarge,
                    format!("message is {size} bytes; the server accepts at most {limit}"),
                ));
            }
        }
        self.mail.push(format!("SIZE={size}"));
        Ok(())
    }

    /// BODY=BINARYMIME (asked for), BODY=8BITMIME (offered, and the body may
    /// need it), or nothing; 8-bit bytes without 8BITMIME are refused.
    fn body(&mut self, offers: Offers<'_>, body: BodyFacts) -> Result<BodyPlan> {
        let mut plan = BodyPlan {
            binary: body.binarymime,
            ..BodyPlan::default()
        };
        if body.binarymime {
            offers.require("BINARYMIME", "BINARYMIME requested")?;
            offers.require("CHUNKING", "BINARYMIME requested")?;
            self.mail.push("BODY=BINARYMIME".into());
        } else if offers.has("8BITMIME") && body.eight_bit != Some(false) {
            self.mail.push("BODY=8BITMIME".into());
        } else if body.eight_bit == Some(true) {
            return Err(Error::new(
                ErrorKind::NotSupported,
                "message has 8-bit bytes but the server does not offer 8BITMIME",
            ));
        } else if body.eight_bit.is_none() {
            plan.reject_8bit_stream = true;
        }
        Ok(plan)
    }

    /// Non-ASCII addresses: SMTPUTF8 when offered; else an internationalized
    /// domain goes as its IDNA A-label, and a non-ASCII local part cannot go.
    pub(crate) fn smtputf8(&mut self, offers: Offers<'_>) -> Result<()> {
        if self.from.is_ascii() && self.to.iter().all(|a| a.is_ascii()) {
            return Ok(());
        }
        if offers.has("SMTPUTF8") {
            self.mail.push("SMTPUTF8".into());
            return Ok(());
        }
        for addr in std::iter::once(&mut self.from).chain(self.to.iter_mut()) {
            if !addr.is_ascii() {
                *addr = command::ascii_domain(addr).ok_or_else(|| {
                    Error::new(
                        ErrorKind::NotSupported,
                        format!(
                            "{addr} has non-ASCII characters the server cannot take: \
                             it does not offer SMTPUTF8 and IDNA cannot convert them"
                        ),
                    )
                })?;
            }
        }
        Ok(())
    }

    /// RET and ENVID on MAIL; NOTIFY and ORCPT on each RCPT.
    fn dsn(&mut self, offers: Offers<'_>, dsn: &Dsn) -> Result<()> {
        offers.require("DSN", "DSN requested")?;
        if let Some(ret) = &dsn.ret {
            self.mail.push(format!("RET={}", ret.to_ascii_uppercase()));
        }
        if let Some(envid) = &dsn.envid {
            self.mail.push(format!("ENVID={}", xtext(envid)));
        }
        if let Some(notify) = &dsn.notify {
            let list: Vec<String> = notify
                .split(',')
                .map(|w| w.trim().to_ascii_uppercase())
                .collect();
            self.rcpt.push(format!("NOTIFY={}", list.join(",")));
        }
        self.orcpt = dsn.orcpt;
        Ok(())
    }

    /// The caller's parameters, after the library's; one with the same
    /// keyword as the library's replaces it (the server would refuse the
    /// pair). `SMTPUTF8`, or any non-ASCII parameter, needs the extension.
    pub(crate) fn caller_options(
        &mut self,
        offers: Offers<'_>,
        mail: &ParamList,
        rcpt: &ParamList,
    ) -> Result<()> {
        for (list, into) in [(mail, &mut self.mail), (rcpt, &mut self.rcpt)] {
            for p in list.iter() {
                if keyword(p).eq_ignore_ascii_case("SMTPUTF8") {
                    offers.require("SMTPUTF8", "SMTPUTF8 requested")?;
                }
                if !p.is_ascii() {
                    offers.require("SMTPUTF8", &format!("parameter {p:?} is not ASCII"))?;
                }
                into.retain(|q| !keyword(q).eq_ignore_ascii_case(keyword(p)));
                into.push(p.to_string());
            }
        }
        Ok(())
    }

    pub(crate) fn mail_line(&self) -> Vec<u8> {
        command::line(
            "mail",
            &with_params(&format!("FROM:{}", self.from), &self.mail),
        )
    }

    pub(crate) fn rcpt_lines(&self) -> Vec<Vec<u8>> {
        self.to.iter().map(|addr| self.rcpt_line(addr)).collect()
    }

    fn rcpt_line(&self, addr: &str) -> Vec<u8> {
        let mut args = with_params(&format!("TO:{addr}"), &self.rcpt);
        if self.orcpt {
            let bare = &addr[1..addr.len() - 1];
            let kind = if bare.is_ascii() { "rfc822" } else { "utf-8" };
            args.push_str(&format!(" ORCPT={kind};{}", xtext(bare)));
        }
        command::line("rcpt", &args)
    }
}

fn with_params(head: &str, params: &[String]) -> String {
    let mut s = head.to_string();
    for p in params {
        s.push(' ');
        s.push_str(p);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::reply::Reply;

    #[test]
    fn xtext_encodes_plus_equals_and_controls() {
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(xtext("user@example.com"), "user@example.com");
        assert_eq!(xtext("é"), "+C3+A9");
    }

    #[test]
    fn dsn_values_are_validated() {
        let ok = Dsn {
            ret: Some("hdrs".into()),
            envid: Some("QQ314159".into()),
            notify: Some("SUCCESS, failure".into()),
            orcpt: true,
        };
        assert!(ok.validate().is_ok());
        let bad_ret = Dsn {
            ret: Some("ALL".into()),
            ..Dsn::default()
        };
        assert!(bad_ret.validate().is_err());
        let never_mixed = Dsn {
            notify: Some("NEVER,SUCCESS".into()),
            ..Dsn::default()
        };
        assert!(never_mixed.validate().is_err());
        let injected = Dsn {
            envid: Some("x\r\nRCPT TO:<e>".into()),
            ..Dsn::default()
        };
        assert!(injected.validate().is_err());
    }

    #[test]
    fn caller_parameters_are_one_word_each_without_line_breaks() {
        assert!(ParamList::new(&["REQUIRETLS", "MT-PRIORITY=3"]).is_ok());
        for bad in ["", "A B", "X\r\nRSET", "X\0", "=3"] {
            assert_eq!(
                ParamList::new(&[bad]).unwrap_err().kind,
                ErrorKind::Invalid,
                "{bad:?}"
            );
        }
    }

    fn ext(keywords: &str) -> Extensions {
        Extensions::parse(&Reply::new(250, format!("x\n{keywords}")))
    }

    #[test]
    fn caller_parameters_follow_the_librarys_and_replace_the_same_keyword() {
        let e = ext("SIZE 100\n8BITMIME\nSMTPUTF8");
        let mut env = Envelope::new("a@x", &["b@y"]).unwrap();
        let mail = ParamList::new(&["REQUIRETLS", "BODY=7BIT"]).unwrap();
        let rcpt = ParamList::new(&["NOTIFY=NEVER"]).unwrap();
        let facts = BodyFacts {
            size: Some(10),
            eight_bit: Some(true),
            binarymime: false,
        };
        env.build(Offers(Some(&e)), facts, None, &mail, &rcpt)
            .unwrap();
        assert_eq!(
            env.mail_line(),
            b"mail FROM:<a@x> SIZE=10 REQUIRETLS BODY=7BIT\r\n"
        );
        assert_eq!(
            env.rcpt_lines(),
            [b"rcpt TO:<b@y> NOTIFY=NEVER\r\n".to_vec()]
        );
    }

    #[test]
    fn smtputf8_among_the_callers_parameters_needs_the_extension() {
        let without = ext("8BITMIME");
        let mut env = Envelope::new("a@x", &["b@y"]).unwrap();
        let mail = ParamList::new(&["SMTPUTF8"]).unwrap();
        let e = env
            .caller_options(Offers(Some(&without)), &mail, &ParamList::default())
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotSupported);
        let utf8 = ParamList::new(&["X-NOTE=é"]).unwrap();
        let e = env
            .caller_options(Offers(Some(&without)), &utf8, &ParamList::default())
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotSupported);
        let with = ext("SMTPUTF8");
        let mut env = Envelope::new("a@x", &["b@y"]).unwrap();
        env.caller_options(Offers(Some(&with)), &mail, &ParamList::default())
            .unwrap();
        assert_eq!(env.mail, ["SMTPUTF8"]);
    }
}
