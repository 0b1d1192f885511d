//! A built message rendered through mail-builder: the header fields, the
//! MIME tree (multipart/alternative for text + HTML, multipart/related for
//! HTML + inline parts, multipart/mixed for attachments), and the split of
//! its output into segments where file parts are streamed.

use std::borrow::Cow;
use std::sync::Arc;

use mail_builder::encoders::Base64Encoder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType as MbContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::headers::HeaderType;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

use super::address::{check_text, Mailbox};
use super::stream::Segment;
use super::{file_len, Disposition, Part, PartBody};
use crate::client::{Error, Result};

pub(crate) const OCTET_STREAM: &str = "application/octet-stream";

/// The registered top-level media types a leaf part may have (RFC 6838;
/// `multipart/*` is the builder's own, `message/*` cannot be base64).
const TOP_LEVEL: &[&str] = &[
    "application",
    "audio",
    "font",
    "haptics",
    "image",
    "model",
    "text",
    "video",
];

/// A checked `type/subtype; name=value…` media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentType {
    /// `type/subtype`, lower case.
    pub mime: String,
    pub params: Vec<(String, String)>,
}

impl ContentType {
    fn is_text(&self) -> bool {
        self.mime.starts_with("text/")
    }

    fn builder(&self) -> MbContentType<'_> {
        let mut ct = MbContentType::new(self.mime.as_str());
        for (k, v) in &self.params {
            ct = ct.attribute(k.as_str(), v.as_str());
        }
        ct
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| (33..=126).contains(&b) && !b"()<>@,;:\\\"/[]?=".contains(&b))
}

/// Parses and checks a content type: a registered top-level type, RFC 2045
/// tokens, parameters as tokens or quoted strings. An unknown top-level
/// type or a malformed string is refused.
pub(crate) fn parse_content_type(s: &str) -> Result<ContentType> {
    check_text("content type", s)?;
    let bad = |why: &str| Err(Error::invalid(format!("content type {s:?}: {why}")));
    let (head, mut rest) = match s.find(';') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let Some((ty, sub)) = head.trim().split_once('/') else {
        return bad("not of the form type/subtype");
    };
    if !is_token(ty) || !is_token(sub) {
        return bad("type and subtype must be RFC 2045 tokens");
    }
    let ty = ty.to_ascii_lowercase();
    if ty == "multipart" || ty == "message" {
        return bad(
            "multipart/* and message/* parts are not supported (the builder makes the multiparts)",
        );
    }
    if !TOP_LEVEL.contains(&ty.as_str()) {
        return bad(&format!(
            "unknown media type {ty:?} (one of: {})",
            TOP_LEVEL.join(", ")
        ));
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let Some(r) = rest.strip_prefix(';') else {
            return bad("parameters must be '; name=value'");
        };
        let r = r.trim_start();
        if r.is_empty() {
            break;
        }
        let Some((name, after)) = r.split_once('=') else {
            return bad("a parameter has no '='");
        };
        let name = name.trim();
        if !is_token(name) {
            return bad("a parameter name is not a token");
        }
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e)) => value.push(e),
                        None => break,
                    },
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let Some(end) = end else {
                return bad("unterminated quoted string");
            };
            (value, &q[end..])
        } else {
            let end = after.find([';', ' ', '\t']).unwrap_or(after.len());
            let v = &after[..end];
            if !is_token(v) {
                return bad("a parameter value is not a token or a quoted string");
            }
            (v.to_string(), &after[end..])
        };
        let name = name.to_ascii_lowercase();
        if name == "boundary" {
            return bad("a boundary parameter is the builder's");
        }
        params.push((name, value));
        rest = tail;
    }
    Ok(ContentType {
        mime: format!("{ty}/{}", sub.to_ascii_lowercase()),
        params,
    })
}

/// A `Date` value must parse as an RFC 5322 date.
pub(crate) fn check_date(value: &str) -> Result<()> {
    match mail_parser::DateTime::parse_rfc822(value.trim()) {
        Some(d) if d.is_valid() => Ok(()),
        _ => Err(Error::invalid(format!(
            "Date {value:?} is not an RFC 5322 date (e.g. \"Mon, 2 Dec 2024 10:00:00 +0000\")"
        ))),
    }
}

/// `id-left@id-right`, without angle brackets, printable ASCII.
fn check_id(what: &str, value: &str, need_at: bool) -> Result<String> {
    let v = value.trim();
    let inner = v
        .strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(v);
    let ok = !inner.is_empty()
        && inner.len() <= 250
        && inner
            .bytes()
            .all(|b| (33..=126).contains(&b) && !b"<>\"\\()[],;:".contains(&b) || b == b'@')
        && inner.matches('@').count() <= 1
        && (!need_at
            || inner
                .split_once('@')
                .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty()));
    if !ok {
        return Err(Error::invalid(format!(
            "{what} {value:?} is not valid (<left@right>, printable ASCII)"
        )));
    }
    Ok(inner.to_string())
}

/// A `Message-ID` value in angle brackets.
pub(crate) fn normalize_msg_id(value: &str) -> Result<String> {
    Ok(format!("<{}>", check_id("Message-ID", value, true)?))
}

/// A Content-ID, without angle brackets (mail-builder adds them).
pub(crate) fn normalize_cid(value: &str) -> Result<String> {
    check_id("Content-ID", value, false)
}

pub(crate) fn check_filename(name: &str) -> Result<String> {
    check_text("file name", name)?;
    if name.trim().is_empty() || name.len() > 255 {
        return Err(Error::invalid("file name must have 1 to 255 octets"));
    }
    Ok(name.to_string())
}

pub(crate) fn check_body(what: &str, text: &str) -> Result<()> {
    if text.contains('\0') {
        return Err(Error::invalid(format!("{what} contains NUL")));
    }
    Ok(())
}

/// Text mail-builder may send as it is or quoted-printable and get back
/// byte for byte: no NUL or other control bytes, every line break CRLF.
fn text_safe(data: &[u8]) -> bool {
    data.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => data.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && data[i - 1] == b'\r',
        b'\t' => true,
        0..=31 | 127 => false,
        _ => true,
    })
}

/// An unstructured field: ASCII values are only folded (when every word
/// fits on a line of 998 octets, and nothing looks like an encoded word);
/// anything else becomes RFC 2047 encoded words.
fn text_header<'a>(name: &str, value: &'a str) -> HeaderType<'a> {
    if value.contains("=?") {
        // mail-builder would send it as it is, and a reader would decode
        // what looks like an encoded word: encode it all.
        return Raw::new(encoded_words(value)).into();
    }
    let plain = value.is_ascii()
        && value
            .split([' ', '\t'])
            .all(|w| name.len() + 2 + w.len() <= 990);
    if plain {
        Raw::new(value).into()
    } else {
        Text::new(value).into()
    }
}

/// `value` as RFC 2047 B-encoded words of at most 72 characters, split on
/// character boundaries, separated by spaces (which a decoder drops
/// between encoded words).
fn encoded_words(value: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut words = Vec::new();
    let mut chunk = String::new();
    for ch in value.chars() {
        if chunk.len() + ch.len_utf8() > 45 {
            words.push(format!("=?utf-8?B?{}?=", b64(&chunk)));
            chunk.clear();
        }
        chunk.push(ch);
    }
    if !chunk.is_empty() {
        words.push(format!("=?utf-8?B?{}?=", b64(&chunk)));
    }
    words.join(" ")
}

fn mailbox(m: &Mailbox) -> Address<'_> {
    Address::new_address(m.name.as_deref(), m.email.as_str())
}

fn mailboxes(list: &[Mailbox]) -> Address<'_> {
    Address::new_list(list.iter().map(mailbox).collect())
}

/// Everything a built message renders from.
pub(crate) struct Spec<'a> {
    pub date: &'a str,
    pub from: &'a Mailbox,
    pub sender: Option<&'a Mailbox>,
    pub reply_to: &'a [Mailbox],
    pub to: &'a [Mailbox],
    pub cc: &'a [Mailbox],
    pub bcc: &'a [Mailbox],
    pub subject: Option<&'a str>,
    pub message_id: &'a str,
    pub others: Vec<(&'a str, &'a str)>,
    pub text: Option<&'a str>,
    pub html: Option<&'a str>,
    pub parts: &'a [Part],
    pub seed: &'a str,
}

fn placeholder(seed: &str, i: usize) -> String {
    format!("\0smtpc-file-{seed}-{i}\0")
}

/// Numbers the boundaries of one message.
struct Multiparts<'s> {
    seed: &'s str,
    n: usize,
}

impl<'s> Multiparts<'s> {
    fn make<'a>(&mut self, kind: &'a str, children: Vec<MimePart<'a>>) -> MimePart<'a> {
        self.n += 1;
        // "=_" cannot occur in quoted-printable or base64 text.
        let ct =
            MbContentType::new(kind).attribute("boundary", format!("=_{}_{}", self.seed, self.n));
        MimePart::new(ct, children)
    }
}

fn leaf<'a>(p: &'a Part, i: usize, seed: &str) -> MimePart<'a> {
    let ct = p.content_type.builder();
    let (part, raw_base64) = match &p.body {
        PartBody::Memory(data) if p.content_type.is_text() && !text_safe(data) => (
            MimePart::new(
                ct,
                BodyPart::Binary(Cow::Owned(
                    Base64Encoder::new()
                        .wrap_lines()
                        .encode(data)
                        .unwrap_or_default(),
                )),
            ),
            true,
        ),
        PartBody::Memory(data) => (
            MimePart::new(ct, BodyPart::Binary(Cow::Borrowed(data.as_slice()))),
            false,
        ),
        PartBody::File(_) => (
            MimePart::new(
                ct,
                BodyPart::Binary(Cow::Owned(placeholder(seed, i).into_bytes())),
            ),
            true,
        ),
    };
    // The disposition before the transfer encoding: the order mail-builder
    // writes for a part it encodes itself.
    let part = match &p.disposition {
        Disposition::Attachment { filename } => part.attachment(filename.as_str()),
        Disposition::Inline { cid } => part.inline().cid(cid.as_str()),
    };
    if raw_base64 {
        part.transfer_encoding("base64")
    } else {
        part
    }
}

/// Renders the message (Bcc included) and splits it where file parts go.
pub(crate) fn render(spec: &Spec<'_>) -> Result<Vec<Segment>> {
    let mut b = MessageBuilder::new()
        .header("Date", Raw::new(spec.date))
        .header("From", mailbox(spec.from));
    if let Some(s) = spec.sender {
        b = b.header("Sender", mailbox(s));
    }
    for (name, list) in [
        ("Reply-To", spec.reply_to),
        ("To", spec.to),
        ("Cc", spec.cc),
        ("Bcc", spec.bcc),
    ] {
        if !list.is_empty() {
            b = b.header(name, mailboxes(list));
        }
    }
    if let Some(subject) = spec.subject {
        b = b.header("Subject", text_header("Subject", subject));
    }
    b = b.header("Message-ID", Raw::new(spec.message_id));
    for (name, value) in &spec.others {
        b = b.header(*name, text_header(name, value));
    }
    b = b.header("MIME-Version", Raw::new("1.0"));

    let mut files = Vec::new();
    let mut inline = Vec::new();
    let mut attached = Vec::new();
    for (i, p) in spec.parts.iter().enumerate() {
        if let PartBody::File(path) = &p.body {
            files.push((placeholder(spec.seed, i), path.clone(), file_len(path)?));
        }
        match p.disposition {
            Disposition::Inline { .. } => inline.push(leaf(p, i, spec.seed)),
            Disposition::Attachment { .. } => attached.push(leaf(p, i, spec.seed)),
        }
    }
    let mut mp = Multiparts {
        seed: spec.seed,
        n: 0,
    };
    let text = spec.text.map(|t| MimePart::new("text/plain", t));
    let html = match spec.html.map(|h| MimePart::new("text/html", h)) {
        Some(h) if !inline.is_empty() => {
            let mut children = vec![h];
            children.append(&mut inline);
            Some(mp.make("multipart/related", children))
        }
        h => h,
    };
    let main = match (text, html) {
        (Some(t), Some(h)) => Some(mp.make("multipart/alternative", vec![t, h])),
        (t, h) => t.or(h),
    };
    let root = if inline.is_empty() && attached.is_empty() {
        main.unwrap_or_else(|| MimePart::new("text/plain", ""))
    } else {
        let mut children: Vec<MimePart<'_>> = main.into_iter().collect();
        children.append(&mut inline);
        children.append(&mut attached);
        mp.make("multipart/mixed", children)
    };
    let out = b
        .body(root)
        .write_to_vec()
        .map_err(|e| Error::invalid(format!("rendering the message: {e}")))?;
    Ok(split(out, files))
}

/// Cuts `out` at each file part's placeholder.
fn split(out: Vec<u8>, files: Vec<(String, std::path::PathBuf, u64)>) -> Vec<Segment> {
    if files.is_empty() {
        return vec![Segment::Bytes(Arc::new(out))];
    }
    let mut at: Vec<(usize, usize, std::path::PathBuf, u64)> = files
        .into_iter()
        .filter_map(|(token, path, len)| {
            memchr::memmem::find(&out, token.as_bytes()).map(|pos| (pos, token.len(), path, len))
        })
        .collect();
    at.sort_by_key(|f| f.0);
    let mut segments = Vec::with_capacity(at.len() * 2 + 1);
    let mut from = 0;
    for (pos, tlen, path, len) in at {
        segments.push(Segment::Bytes(Arc::new(out[from..pos].to_vec())));
        segments.push(Segment::File { path, len });
        from = pos + tlen;
    }
    segments.push(Segment::Bytes(Arc::new(out[from..].to_vec())));
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_checked() {
        let ct = parse_content_type("Text/Plain; charset=\"iso-8859-1\"; format=flowed").unwrap();
        assert_eq!(ct.mime, "text/plain");
        assert_eq!(
            ct.params,
            [
                ("charset".to_string(), "iso-8859-1".to_string()),
                ("format".to_string(), "flowed".to_string())
            ]
        );
        assert_eq!(parse_content_type("image/png").unwrap().mime, "image/png");
        assert_eq!(
            parse_content_type("application/vnd.ms-excel;")
                .unwrap()
                .mime,
            "application/vnd.ms-excel"
        );
        for bad in [
            "",
            "png",
            "foo/bar",
            "image/",
            "/png",
            "image/p ng",
            "multipart/mixed",
            "message/rfc822",
            "text/plain; charset",
            "text/plain; charset=\"x",
            "text/plain\r\nBcc: x@example.org",
            "text/plain; boundary=x",
            "example/x",
        ] {
            assert!(parse_content_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_and_dates_are_checked() {
        assert_eq!(normalize_msg_id(" <a.b@c> ").unwrap(), "<a.b@c>");
        assert_eq!(normalize_msg_id("a@c").unwrap(), "<a@c>");
        assert!(normalize_msg_id("<a c@d>").is_err());
        assert!(normalize_msg_id("<@d>").is_err());
        assert_eq!(normalize_cid("<logo>").unwrap(), "logo");
        assert!(normalize_cid("lo go").is_err());
        assert!(check_date("Mon, 2 Dec 2024 10:00:00 +0000").is_ok());
        assert!(check_date("tomorrow").is_err());
    }

    #[test]
    fn text_safety_needs_crlf_and_no_controls() {
        assert!(text_safe(b"a\r\nb\tc\r\n"));
        assert!(!text_safe(b"a\nb"));
        assert!(!text_safe(b"a\rb"));
        assert!(!text_safe(b"a\0b"));
        assert!(text_safe("ü".as_bytes()));
    }
}
