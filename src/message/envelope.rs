//! smtplib's `send_message` envelope rules, on the header section of RFC
//! 5322 bytes (a built message is rendered first, so both kinds take the
//! same path), and the removal of `Bcc` / `Resent-Bcc` before sending.

use std::borrow::Cow;

use mail_parser::{Address, HeaderName, HeaderValue, MessageParser};

use crate::client::{Error, Result};

/// Where a message's envelope comes from and goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path (MAIL FROM).
    pub from: String,
    /// The forward-paths (RCPT TO), in smtplib's order.
    pub to: Vec<String>,
}

/// The length of the header section of `msg`: up to and including the line
/// break of its last header line, without the empty line that ends it
/// (line breaks may be CRLF or bare LF). `msg.len()` when there is no
/// empty line (no body).
pub fn header_section_len(msg: &[u8]) -> usize {
    let mut at = 0;
    while at < msg.len() {
        let end = memchr::memchr(b'\n', &msg[at..]).map_or(msg.len(), |i| at + i + 1);
        let line = &msg[at..end];
        if line == b"\n" || line == b"\r\n" {
            return at;
        }
        at = end;
    }
    msg.len()
}

/// The header fields of `headers` (a header section) whose names are in
/// `names` (case-insensitive): each one's byte range, continuation lines
/// included.
fn field_ranges(headers: &[u8], names: &[&str]) -> Vec<(usize, usize)> {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    let mut current: Option<usize> = None;
    while at < headers.len() {
        let end = memchr::memchr(b'\n', &headers[at..]).map_or(headers.len(), |i| at + i + 1);
        let line = &headers[at..end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            if let Some(start) = current.take() {
                ranges.push((start, at));
            }
            let name = line
                .iter()
                .position(|&b| b == b':')
                .map(|colon| line[..colon].trim_ascii());
            if name.is_some_and(|n| names.iter().any(|w| w.as_bytes().eq_ignore_ascii_case(n))) {
                current = Some(at);
            }
        }
        at = end;
    }
    if let Some(start) = current {
        ranges.push((start, headers.len()));
    }
    ranges
}

/// `msg` without its `Bcc` and `Resent-Bcc` header fields, as smtplib's
/// `send_message` sends it; borrowed when it has none.
pub fn strip_bcc(msg: &[u8]) -> Cow<'_, [u8]> {
    let hlen = header_section_len(msg);
    let ranges = field_ranges(&msg[..hlen], &["Bcc", "Resent-Bcc"]);
    if ranges.is_empty() {
        return Cow::Borrowed(msg);
    }
    let mut out = Vec::with_capacity(msg.len());
    let mut at = 0;
    for (start, end) in ranges {
        out.extend_from_slice(&msg[at..start]);
        at = end;
    }
    out.extend_from_slice(&msg[at..]);
    Cow::Owned(out)
}

/// The addresses of a parsed address header, groups flattened, in order.
fn addresses(value: &HeaderValue<'_>) -> Vec<String> {
    let HeaderValue::Address(addr) = value else {
        return Vec::new();
    };
    let list: Vec<_> = match addr {
        Address::List(l) => l.iter().collect(),
        Address::Group(g) => g.iter().flat_map(|g| g.addresses.iter()).collect(),
    };
    list.into_iter()
        .filter_map(|a| a.address.as_deref())
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// smtplib's `send_message` envelope for the message whose header section
/// is `headers`, with the caller's `from` / `to` taking precedence:
///
/// - more than one `Resent-Date` (more than one Resent block): refused,
///   even when the caller gives the envelope, as smtplib does;
/// - one `Resent-Date`: the `Resent-` fields are used, else the plain ones;
/// - the sender is the first address of `Sender`, else of `From`;
/// - the recipients are the addresses of the first `To`, then `Bcc`, then
///   `Cc` field, in that order (smtplib's), duplicates kept.
pub fn derive(headers: &[u8], from: Option<&str>, to: Option<&[&str]>) -> Result<Envelope> {
    let parsed = MessageParser::new().parse_headers(headers);
    let fields = parsed.as_ref().map_or(&[][..], |m| m.headers());
    let resent = fields
        .iter()
        .filter(|h| h.name == HeaderName::ResentDate)
        .count();
    if resent > 1 {
        return Err(Error::invalid(format!(
            "the message has {resent} Resent- header blocks (Resent-Date fields); \
             smtplib's send_message refuses more than one"
        )));
    }
    let prefix = if resent == 1 { "Resent-" } else { "" };
    let first = |name: HeaderName<'_>| fields.iter().find(|h| h.name == name).map(|h| &h.value);
    let (sender, from_h, to_h, cc_h, bcc_h) = if resent == 1 {
        (
            HeaderName::ResentSender,
            HeaderName::ResentFrom,
            HeaderName::ResentTo,
            HeaderName::ResentCc,
            HeaderName::ResentBcc,
        )
    } else {
        (
            HeaderName::Sender,
            HeaderName::From,
            HeaderName::To,
            HeaderName::Cc,
            HeaderName::Bcc,
        )
    };
    let from = match from {
        Some(f) => f.to_string(),
        None => {
            let (which, value) = match first(sender.clone()) {
                Some(v) => (format!("{prefix}Sender"), Some(v)),
                None => (format!("{prefix}From"), first(from_h)),
            };
            let Some(value) = value else {
                return Err(Error::invalid(format!(
                    "no sender given and the message has no {prefix}Sender or {prefix}From field"
                )));
            };
            addresses(value)
                .into_iter()
                .next()
                .ok_or_else(|| Error::invalid(format!("the {which} field holds no address")))?
        }
    };
    let to = match to {
        Some(list) if !list.is_empty() => list.iter().map(|s| s.to_string()).collect(),
        _ => {
            let to: Vec<String> = [to_h, bcc_h, cc_h]
                .into_iter()
                .filter_map(first)
                .flat_map(addresses)
                .collect();
            if to.is_empty() {
                return Err(Error::invalid(format!(
                    "no recipients given and the message's {prefix}To, {prefix}Bcc and \
                     {prefix}Cc fields hold no address"
                )));
            }
            to
        }
    };
    Ok(Envelope { from, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: Ann <ann@example.org>\r\n\
        To: b@example.org, \"C, D\" <c@example.org>\r\n\
        Cc: e@example.org\r\n\
        bcc: f@example.org,\r\n g@example.org\r\n\
        Subject: hi\r\n\
        \r\n\
        Bcc: not-a-header@example.org\r\n";

    #[test]
    fn envelope_follows_smtplib_order_to_bcc_cc() {
        let e = derive(&MSG[..header_section_len(MSG)], None, None).unwrap();
        assert_eq!(e.from, "ann@example.org");
        assert_eq!(
            e.to,
            [
                "b@example.org",
                "c@example.org",
                "f@example.org",
                "g@example.org",
                "e@example.org"
            ]
        );
    }

    #[test]
    fn sender_wins_over_from_and_caller_wins_over_both() {
        let m = b"From: a@example.org\r\nSender: s@example.org\r\nTo: t@example.org\r\n\r\n";
        assert_eq!(derive(m, None, None).unwrap().from, "s@example.org");
        let e = derive(m, Some("x@example.org"), Some(&["y@example.org"])).unwrap();
        assert_eq!(e.from, "x@example.org");
        assert_eq!(e.to, ["y@example.org"]);
    }

    #[test]
    fn one_resent_block_is_used_and_two_are_refused() {
        let m = b"From: a@example.org\r\nTo: t@example.org\r\n\
            Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
            Resent-From: r@example.org\r\nResent-To: u@example.org\r\n\
            Resent-Bcc: v@example.org\r\n\r\nbody\r\n";
        let e = derive(m, None, None).unwrap();
        assert_eq!(e.from, "r@example.org");
        assert_eq!(e.to, ["u@example.org", "v@example.org"]);
        let two = b"From: a@example.org\r\nTo: t@example.org\r\n\
            Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nResent-To: u@example.org\r\n\
            Resent-Date: Tue, 2 Jan 2024 00:00:00 +0000\r\nResent-To: w@example.org\r\n\r\n";
        let err = derive(two, Some("x@example.org"), Some(&["y@example.org"])).unwrap_err();
        assert!(err.message.contains("Resent"), "{err}");
    }

    #[test]
    fn missing_sender_or_recipients_are_clear_errors() {
        assert!(derive(b"To: t@example.org\r\n", None, None)
            .unwrap_err()
            .message
            .contains("no sender"));
        assert!(derive(b"From: a@example.org\r\n", None, None)
            .unwrap_err()
            .message
            .contains("no recipients"));
    }

    #[test]
    fn bcc_and_resent_bcc_are_stripped_with_their_continuation_lines_only() {
        let out = strip_bcc(MSG);
        assert_eq!(
            &out[..],
            &b"From: Ann <ann@example.org>\r\n\
            To: b@example.org, \"C, D\" <c@example.org>\r\n\
            Cc: e@example.org\r\n\
            Subject: hi\r\n\
            \r\n\
            Bcc: not-a-header@example.org\r\n"[..]
        );
        let lf = b"From: a@x.org\nResent-Bcc: z@x.org\nTo: b@x.org\n\nbody\n";
        assert_eq!(&strip_bcc(lf)[..], b"From: a@x.org\nTo: b@x.org\n\nbody\n");
        assert!(matches!(
            strip_bcc(b"From: a@x.org\r\n\r\n"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn header_section_ends_at_the_first_empty_line() {
        assert_eq!(header_section_len(b"A: 1\r\nB: 2\r\n\r\nbody"), 12);
        assert_eq!(header_section_len(b"A: 1\nB: 2\n\nbody"), 10);
        assert_eq!(header_section_len(b"A: 1\r\n"), 6);
        assert_eq!(header_section_len(b"\r\nbody"), 0);
    }
}
