//! Command formatting and argument validation: the one place where caller
//! text becomes protocol bytes, so the one place that refuses injection.

use super::error::{Error, Result};

/// Refuses CR, LF and NUL: any of them would let a caller's argument end the
/// command and start another (command injection).
pub fn check_arg(what: &str, value: &str) -> Result<()> {
    match value.bytes().find(|b| matches!(b, b'\r' | b'\n' | 0)) {
        Some(b) => Err(Error::invalid(format!(
            "{what} contains a forbidden character ({})",
            match b {
                b'\r' => "CR",
                b'\n' => "LF",
                _ => "NUL",
            }
        ))),
        None => Ok(()),
    }
}

/// Refuses empty values and characters that cannot appear in a domain or
/// address literal (used for EHLO/HELO names).
pub fn check_hostname(what: &str, value: &str) -> Result<()> {
    check_arg(what, value)?;
    if value.is_empty() || value.contains(' ') {
        return Err(Error::invalid(format!("{what} must be one non-empty word")));
    }
    Ok(())
}

/// The `<path>` form of an address, as smtplib's `quoteaddr`: an address
/// already in angle brackets (or `Name <addr>`) keeps its bracketed part; an
/// empty one is the null reverse-path `<>`.
pub fn quote_addr(what: &str, addr: &str) -> Result<String> {
    check_arg(what, addr)?;
    let addr = addr.trim();
    let inner = match (addr.rfind('<'), addr.ends_with('>')) {
        (Some(open), true) => &addr[open + 1..addr.len() - 1],
        _ => addr,
    };
    if inner.contains(['<', '>']) || inner.chars().any(char::is_whitespace) {
        return Err(Error::invalid(format!(
            "{what} is not a valid address: {addr:?}"
        )));
    }
    Ok(format!("<{inner}>"))
}

/// `<local@domain>` with an internationalized domain turned into its IDNA
/// A-label form (`<user@xn--bcher-kva.example>`); `None` when the local
/// part is not ASCII or the domain is not a valid IDN.
pub fn ascii_domain(quoted: &str) -> Option<String> {
    let inner = quoted.strip_prefix('<')?.strip_suffix('>')?;
    let (local, domain) = inner.rsplit_once('@')?;
    if !local.is_ascii() {
        return None;
    }
    let ascii = idna::domain_to_ascii_strict(domain).ok()?;
    Some(format!("<{local}@{ascii}>"))
}

/// One command line, CRLF-terminated: `verb` then `args` if any.
pub fn line(verb: &str, args: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(verb.len() + args.len() + 3);
    out.extend_from_slice(verb.as_bytes());
    if !args.is_empty() {
        out.push(b' ');
        out.extend_from_slice(args.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cr_lf_and_nul_are_refused_in_arguments() {
        for bad in ["a\rb", "a\nb", "a\0b", "x\r\nRCPT TO:<evil>"] {
            assert!(check_arg("address", bad).is_err(), "{bad:?}");
        }
        assert!(check_arg("address", "user@example.com").is_ok());
    }

    #[test]
    fn addresses_are_quoted_as_smtplib_does() {
        assert_eq!(quote_addr("a", "u@x").unwrap(), "<u@x>");
        assert_eq!(quote_addr("a", "<u@x>").unwrap(), "<u@x>");
        assert_eq!(quote_addr("a", "Joe <u@x>").unwrap(), "<u@x>");
        assert_eq!(quote_addr("a", "").unwrap(), "<>");
        assert_eq!(quote_addr("a", "<>").unwrap(), "<>");
        assert!(quote_addr("a", "u@x> SIZE=1").is_err());
        assert!(quote_addr("a", "u @x").is_err());
    }

    #[test]
    fn internationalized_domains_become_a_labels() {
        assert_eq!(
            ascii_domain("<kim@bücher.example>").as_deref(),
            Some("<kim@xn--bcher-kva.example>")
        );
        assert_eq!(
            ascii_domain("<jösé@example.com>"),
            None,
            "local part stays UTF-8"
        );
        assert_eq!(ascii_domain("<kim@bad_domain.ü>"), None);
    }

    #[test]
    fn hostnames_must_be_one_word() {
        assert!(check_hostname("name", "").is_err());
        assert!(check_hostname("name", "a b").is_err());
        assert!(check_hostname("name", "[127.0.0.1]").is_ok());
    }

    #[test]
    fn line_appends_crlf_and_optional_args() {
        assert_eq!(line("noop", ""), b"noop\r\n");
        assert_eq!(line("vrfy", "bob"), b"vrfy bob\r\n");
    }
}
