//! Mailboxes of a built message: validation of an address and its display
//! name, before anything is rendered or sent.

use crate::client::{Error, Result};

/// One mailbox: `Display Name <local@domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name (UTF-8; RFC 2047-encoded when rendered if needed).
    pub name: Option<String>,
    /// `local@domain`, as given (UTF-8 allowed: SMTPUTF8 / IDNA are the
    /// session's business when it is sent).
    pub email: String,
}

impl Mailbox {
    /// Validates `email` and `name` (`None` or "" for no display name).
    pub fn new(what: &str, email: &str, name: Option<&str>) -> Result<Mailbox> {
        check_email(what, email)?;
        let name = match name {
            Some(n) if !n.trim().is_empty() => {
                check_text(&format!("{what} display name"), n)?;
                Some(n.to_string())
            }
            _ => None,
        };
        Ok(Mailbox {
            name,
            email: email.to_string(),
        })
    }

    /// The domain part of the address.
    pub fn domain(&self) -> &str {
        self.email.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// Refuses CR, LF, NUL and the other control characters (TAB excepted) in
/// text that goes into a header: a line break would start a new header
/// (header injection).
pub fn check_text(what: &str, value: &str) -> Result<()> {
    if let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') {
        let name = match c {
            '\r' => "CR".to_string(),
            '\n' => "LF".to_string(),
            '\0' => "NUL".to_string(),
            c => format!("U+{:04X}", u32::from(c)),
        };
        return Err(Error::invalid(format!(
            "{what} contains a forbidden character ({name})"
        )));
    }
    Ok(())
}

/// RFC 5322 `atext`, plus any non-ASCII character (RFC 6532).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

/// Checks `local@domain`: a dot-atom local part (UTF-8 allowed) of at most
/// 64 octets, and a domain that is a valid (internationalized) host name or
/// an address literal.
pub fn check_email(what: &str, email: &str) -> Result<()> {
    check_text(what, email)?;
    let bad = |why: &str| {
        Err(Error::invalid(format!(
            "{what} {email:?} is not valid: {why}"
        )))
    };
    let Some((local, domain)) = email.rsplit_once('@') else {
        return bad("no '@'");
    };
    if local.is_empty() || local.len() > 64 {
        return bad("the local part must have 1 to 64 octets");
    }
    if local
        .split('.')
        .any(|atom| atom.is_empty() || !atom.chars().all(is_atext))
    {
        return bad("the local part must be a dot-atom");
    }
    if domain.is_empty() || domain.len() > 253 {
        return bad("the domain must have 1 to 253 octets");
    }
    if let Some(literal) = domain.strip_prefix('[') {
        let Some(inner) = literal.strip_suffix(']') else {
            return bad("unclosed address literal");
        };
        let ok = match inner.strip_prefix("IPv6:") {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => inner.parse::<std::net::Ipv4Addr>().is_ok(),
        };
        return if ok {
            Ok(())
        } else {
            bad("bad address literal")
        };
    }
    match idna::domain_to_ascii_strict(domain) {
        Ok(ascii) if !ascii.is_empty() && !ascii.starts_with('.') && !ascii.ends_with('.') => {
            Ok(())
        }
        _ => bad("the domain is not a valid host name"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_pass() {
        for ok in [
            "a@example.org",
            "first.last+tag@sub.example.org",
            "jösé@bücher.example",
            "x@[192.0.2.1]",
            "x@[IPv6:2001:db8::1]",
            "o'hara@example.org",
        ] {
            check_email("address", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "",
            "noat",
            "@example.org",
            "a@",
            "a..b@example.org",
            ".a@example.org",
            "a b@example.org",
            "a@exa mple.org",
            "a@example.org\r\nBcc: x@y",
            "<a@example.org>",
            "a@[1.2.3]",
            "a@bad_domain",
            "a,b@example.org",
        ] {
            assert!(check_email("address", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_names_refuse_line_breaks_but_keep_unicode() {
        let m = Mailbox::new("To", "a@example.org", Some("Zoë \"Z\" Ünal")).unwrap();
        assert_eq!(m.name.as_deref(), Some("Zoë \"Z\" Ünal"));
        assert_eq!(m.domain(), "example.org");
        assert!(Mailbox::new("To", "a@example.org", Some("x\r\nBcc: evil@x")).is_err());
        assert!(Mailbox::new("To", "a@example.org", Some("x\0")).is_err());
        assert_eq!(
            Mailbox::new("To", "a@example.org", Some("  "))
                .unwrap()
                .name,
            None
        );
    }
}
