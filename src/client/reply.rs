//! SMTP replies: `ddd-text` continuation lines and a final `ddd text` line.

use super::error::{Error, Result};

/// Upper bound on one reply (all lines, text only). RFC 5321 allows 512
/// bytes a line; real multi-line replies (EHLO, HELP) stay far below this.
/// A server that sends more is refused rather than let grow memory.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// An RFC 3463 enhanced status code, e.g. 5.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl std::fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One complete reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    pub code: u16,
    /// The lines' text without codes, joined by `\n` (smtplib's `msg`).
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Reply {
            code,
            text: text.into(),
        }
    }

    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.split('\n')
    }

    /// The enhanced status code at the start of the first line, when its
    /// class matches the reply's (RFC 2034 §4).
    pub fn enhanced(&self) -> Option<EnhancedCode> {
        let first = self.text.split('\n').next()?;
        let token = first.split(' ').next()?;
        let mut parts = token.splitn(3, '.');
        let class: u8 = parse_digits(parts.next()?, 1)?;
        let subject: u16 = parse_digits(parts.next()?, 3)?;
        let detail: u16 = parse_digits(parts.next()?, 3)?;
        if !matches!(class, 2 | 4 | 5) || u16::from(class) != self.code / 100 {
            return None;
        }
        Some(EnhancedCode {
            class,
            subject,
            detail,
        })
    }
}

fn parse_digits<T: std::str::FromStr>(s: &str, max_len: usize) -> Option<T> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Assembles a reply from lines (without their CRLF) as they arrive.
#[derive(Debug, Default)]
pub struct ReplyParser {
    code: Option<u16>,
    text: String,
}

impl ReplyParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line; returns the reply once its last line has arrived.
    pub fn push_line(&mut self, line: &[u8]) -> Result<Option<Reply>> {
        let shown = || String::from_utf8_lossy(&line[..line.len().min(40)]).into_owned();
        if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
            return Err(Error::protocol(format!(
                "malformed reply line (no 3-digit code): {:?}",
                shown()
            )));
        }
        if !(b'2'..=b'5').contains(&line[0]) {
            return Err(Error::protocol(format!(
                "reply code out of range: {:?}",
                shown()
            )));
        }
        let code = u16::from(line[0] - b'0') * 100
            + u16::from(line[1] - b'0') * 10
            + u16::from(line[2] - b'0');
        let last = match line.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => {
                return Err(Error::protocol(format!(
                    "malformed reply line (bad separator): {:?}",
                    shown()
                )))
            }
        };
        match self.code {
            Some(first) if first != code => {
                return Err(Error::protocol(format!(
                    "multi-line reply changed its code from {first} to {code}"
                )))
            }
            Some(_) => self.text.push('\n'),
            None => self.code = Some(code),
        }
        let body = line.get(4..).unwrap_or_default();
        if self.text.len() + body.len() > MAX_REPLY_BYTES {
            return Err(Error::protocol(format!(
                "reply longer than {MAX_REPLY_BYTES} bytes"
            )));
        }
        self.text.push_str(&String::from_utf8_lossy(body));
        if last {
            let text = std::mem::take(&mut self.text);
            self.code = None;
            Ok(Some(Reply { code, text }))
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&[u8]]) -> Result<Option<Reply>> {
        let mut p = ReplyParser::new();
        let mut out = None;
        for l in lines {
            out = p.push_line(l)?;
        }
        Ok(out)
    }

    #[test]
    fn single_line_reply_keeps_code_and_text() {
        let r = parse(&[b"250 OK"]).unwrap().unwrap();
        assert_eq!(r, Reply::new(250, "OK"));
    }

    #[test]
    fn multi_line_reply_joins_text_with_newlines() {
        let r = parse(&[b"250-mail.example", b"250-PIPELINING", b"250 SIZE 1000"])
            .unwrap()
            .unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.text, "mail.example\nPIPELINING\nSIZE 1000");
    }

    #[test]
    fn continuation_lines_do_not_complete_a_reply() {
        let mut p = ReplyParser::new();
        assert_eq!(p.push_line(b"250-a").unwrap(), None);
        assert_eq!(p.push_line(b"250 b").unwrap().unwrap().text, "a\nb");
    }

    #[test]
    fn bare_code_line_is_a_final_line_with_empty_text() {
        assert_eq!(parse(&[b"250-x", b"250"]).unwrap().unwrap().text, "x\n");
        assert_eq!(parse(&[b"354"]).unwrap().unwrap(), Reply::new(354, ""));
    }

    #[test]
    fn codes_that_are_not_three_digits_are_refused() {
        for bad in [&b"25 OK"[..], b"2x0 OK", b"OK", b"", b"25"] {
            let e = parse(&[bad]).unwrap_err();
            assert_eq!(e.kind, super::super::error::ErrorKind::Protocol, "{bad:?}");
        }
    }

    #[test]
    fn codes_outside_2xx_to_5xx_are_refused() {
        assert!(parse(&[b"100 hi"]).is_err());
        assert!(parse(&[b"600 hi"]).is_err());
    }

    #[test]
    fn bad_separator_is_refused() {
        assert!(parse(&[b"250_OK"]).is_err());
    }

    #[test]
    fn mismatched_codes_inside_one_reply_are_refused() {
        let e = parse(&[b"250-a", b"251 b"]).unwrap_err();
        assert!(e.message.contains("250 to 251"), "{}", e.message);
    }

    #[test]
    fn oversized_replies_are_refused() {
        let long = vec![b'a'; MAX_REPLY_BYTES + 1];
        let mut line = b"250 ".to_vec();
        line.extend_from_slice(&long);
        assert!(parse(&[&line]).is_err());
        let mut p = ReplyParser::new();
        let chunk = [b"250-".as_slice(), &[b'x'; 1000]].concat();
        let mut failed = false;
        for _ in 0..100 {
            if p.push_line(&chunk).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "an endless multi-line reply must hit the cap");
    }

    #[test]
    fn non_utf8_text_is_replaced_not_refused() {
        let r = parse(&[b"250 caf\xe9"]).unwrap().unwrap();
        assert_eq!(r.text, "caf\u{fffd}");
    }

    #[test]
    fn enhanced_code_is_parsed_when_its_class_matches() {
        let r = Reply::new(550, "5.1.1 <x@y>: User unknown");
        assert_eq!(
            r.enhanced(),
            Some(EnhancedCode {
                class: 5,
                subject: 1,
                detail: 1
            })
        );
        assert_eq!(r.enhanced().unwrap().to_string(), "5.1.1");
        assert_eq!(Reply::new(250, "5.1.1 odd").enhanced(), None);
        assert_eq!(Reply::new(250, "OK").enhanced(), None);
        assert_eq!(Reply::new(250, "2.0.0").enhanced().unwrap().class, 2);
        assert_eq!(Reply::new(250, "2.1234.0 x").enhanced(), None);
    }
}
