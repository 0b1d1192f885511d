//! The EHLO reply: its keywords and their parameters.

use super::reply::Reply;

/// The service extensions a server listed in its EHLO reply, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// Upper-cased keyword and its parameter text (may be empty).
    entries: Vec<(String, String)>,
}

impl Extensions {
    /// Parses an EHLO reply; the first line is the server's greeting name.
    /// Like smtplib, `AUTH=LOGIN PLAIN` (old Outlook form) adds its
    /// mechanisms to `AUTH`.
    pub fn parse(reply: &Reply) -> Self {
        let mut ext = Extensions::default();
        for line in reply.lines().skip(1) {
            let line = line.trim();
            let (keyword, params) = match line.find([' ', '=']) {
                Some(i) => (&line[..i], line[i + 1..].trim()),
                None => (line, ""),
            };
            if keyword.is_empty()
                || !keyword
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                continue;
            }
            let keyword = keyword.to_ascii_uppercase();
            match ext.entries.iter_mut().find(|(k, _)| *k == keyword) {
                Some((_, existing)) if keyword == "AUTH" => {
                    for mech in params.split_whitespace() {
                        if !existing.split_whitespace().any(|m| m == mech) {
                            if !existing.is_empty() {
                                existing.push(' ');
                            }
                            existing.push_str(mech);
                        }
                    }
                }
                Some(_) => {}
                None => ext.entries.push((keyword, params.to_string())),
            }
        }
        ext
    }

    /// Every keyword offered, upper-cased, with its parameter text, in the
    /// server's order (smtplib's `esmtp_features`).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, p)| (k.as_str(), p.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn has(&self, keyword: &str) -> bool {
        self.params(keyword).is_some()
    }

    /// The parameter text of `keyword` (case-insensitive), if offered.
    pub fn params(&self, keyword: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(keyword))
            .map(|(_, p)| p.as_str())
    }

    /// The AUTH mechanisms offered, upper-cased.
    pub fn auth_mechanisms(&self) -> Vec<String> {
        self.params("AUTH")
            .map(|p| p.split_whitespace().map(str::to_ascii_uppercase).collect())
            .unwrap_or_default()
    }

    /// The SIZE limit; `None` when SIZE is absent or has no (or a zero) limit.
    pub fn size_limit(&self) -> Option<u64> {
        self.params("SIZE")?.parse::<u64>().ok().filter(|&n| n > 0)
    }

    pub fn keywords(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ehlo(text: &str) -> Extensions {
        Extensions::parse(&Reply::new(250, text))
    }

    #[test]
    fn keywords_and_parameters_are_parsed() {
        let e = ehlo(
            "mx.example Hello\nPIPELINING\nSIZE 10240000\nauth PLAIN LOGIN CRAM-MD5\n8BITMIME",
        );
        assert!(e.has("pipelining"));
        assert!(e.has("8BITMIME"));
        assert_eq!(e.params("SIZE"), Some("10240000"));
        assert_eq!(e.size_limit(), Some(10_240_000));
        assert_eq!(e.auth_mechanisms(), ["PLAIN", "LOGIN", "CRAM-MD5"]);
        assert!(!e.has("STARTTLS"));
        assert!(!e.has("mx.example"), "the greeting line is not a keyword");
    }

    #[test]
    fn old_auth_equals_form_merges_into_auth() {
        let e = ehlo("mx\nAUTH=LOGIN\nAUTH PLAIN LOGIN");
        assert_eq!(e.auth_mechanisms(), ["LOGIN", "PLAIN"]);
    }

    #[test]
    fn size_without_limit_means_no_limit() {
        assert_eq!(ehlo("mx\nSIZE").size_limit(), None);
        assert_eq!(ehlo("mx\nSIZE 0").size_limit(), None);
        assert!(ehlo("mx\nSIZE").has("SIZE"));
    }

    #[test]
    fn empty_trailing_line_and_junk_are_ignored() {
        let e = ehlo("mx\nPIPELINING\n\n!!bad");
        assert_eq!(e.keywords().collect::<Vec<_>>(), ["PIPELINING"]);
    }
}
