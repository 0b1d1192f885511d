//! Composing messages, as the smtplib article does with `email.mime` and
//! `formataddr`: a builder for RFC 5322 / MIME messages, smtplib's
//! `send_message` envelope rules, and DKIM signing. Pure Rust, no C types;
//! `ffi::message` is the thin C layer over it.
//!
//! MIME is mail-builder's: header encoding (RFC 2047 words, RFC 2231
//! file names), folding, the choice of 7bit / quoted-printable / base64,
//! boundaries and the part tree. mail-builder writes a whole message into
//! one buffer, so a file attachment would have to be read into memory
//! first; instead a file part is rendered as a placeholder that
//! [`stream::MessageReader`] replaces, while the message is read, by the
//! file base64-encoded a chunk at a time (with mail-builder's encoder), so
//! a message with a 20 MB file is sent in constant memory. That thin layer
//! is ours; everything else is the crate's.
//!
//! ```no_run
//! use smtpc::message::{send_message, Message};
//! let mut m = Message::new();
//! m.set_from("me@example.org", Some("Zoë Q. Sender")).unwrap();
//! m.add_to("you@example.org", None).unwrap();
//! m.set_subject("Grüße").unwrap();
//! m.set_text("Hello!\n").unwrap();
//! m.attach_file("report.pdf".as_ref(), Some("application/pdf"), None).unwrap();
//! let mut s = smtpc::Session::new();
//! s.connect("localhost", 25).unwrap();
//! send_message(&mut s, &m, None, None).unwrap();
//! ```

mod address;
mod dkim;
mod envelope;
mod mime;
mod stream;

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub use address::Mailbox;
pub use dkim::{Dkim, DEFAULT_SIGNED_HEADERS};
pub use envelope::{derive as derive_envelope, header_section_len, strip_bcc, Envelope};
pub use stream::MessageReader;

use crate::client::{Error, ErrorKind, Reply, Result, Session};
use address::check_text;
use mime::ContentType;
use stream::Segment;

/// Header fields that have their own setter (or are the builder's own).
const MANAGED_HEADERS: &[&str] = &[
    "From",
    "Sender",
    "To",
    "Cc",
    "Bcc",
    "Reply-To",
    "Subject",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "Content-ID",
    "DKIM-Signature",
];

/// Fields a message has at most once (RFC 5322 section 3.6): adding one
/// again replaces it.
const SINGLE_HEADERS: &[&str] = &["Date", "Message-ID", "In-Reply-To", "References"];

/// Checks a header field name: printable ASCII without ':' (RFC 5322
/// `ftext`), 1 to 76 characters.
pub(crate) fn check_header_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 76
        || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
    {
        return Err(Error::invalid(format!(
            "header name {name:?} is not valid (1 to 76 printable ASCII characters, no ':')"
        )));
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum PartBody {
    Memory(Arc<Vec<u8>>),
    File(PathBuf),
}

#[derive(Debug, Clone)]
enum Disposition {
    Attachment { filename: String },
    Inline { cid: String },
}

#[derive(Debug, Clone)]
struct Part {
    content_type: ContentType,
    disposition: Disposition,
    body: PartBody,
}

/// A message being composed, or raw RFC 5322 bytes (`set_raw`).
///
/// Rendering or sending it fixes its `Date` and `Message-ID` (unless set):
/// rendering it again, or sending it, gives the same bytes (the DKIM
/// signature's time stamp aside), and sending it again keeps its
/// Message-ID.
#[derive(Debug)]
pub struct Message {
    from: Option<Mailbox>,
    sender: Option<Mailbox>,
    reply_to: Vec<Mailbox>,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    subject: Option<String>,
    headers: Vec<(String, String)>,
    text: Option<String>,
    html: Option<String>,
    parts: Vec<Part>,
    raw: Option<Arc<Vec<u8>>>,
    dkim: Option<Dkim>,
    /// Unique per message: boundaries and placeholders derive from it.
    seed: String,
    generated: OnceLock<(String, String)>,
}

impl Default for Message {
    fn default() -> Self {
        Self::new()
    }
}

/// The size of a file attachment (a missing or non-regular file fails).
fn file_len(path: &Path) -> Result<u64> {
    let f = stream::open_attachment(path)?;
    f.metadata().map(|m| m.len()).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot read attachment {}: {e}", path.display()),
        )
    })
}

impl Message {
    pub fn new() -> Message {
        Message {
            from: None,
            sender: None,
            reply_to: Vec::new(),
            to: Vec::new(),
            cc: Vec::new(),
            bcc: Vec::new(),
            subject: None,
            headers: Vec::new(),
            text: None,
            html: None,
            parts: Vec::new(),
            raw: None,
            dkim: None,
            seed: mail_builder::mime::make_boundary("_"),
            generated: OnceLock::new(),
        }
    }

    fn built(&self, what: &str) -> Result<()> {
        if self.raw.is_some() {
            return Err(Error::invalid(format!(
                "{what}: the message holds raw bytes (set_raw); the builder does not apply"
            )));
        }
        Ok(())
    }

    /// Sets `From` (one mailbox; replaces an earlier one).
    pub fn set_from(&mut self, email: &str, name: Option<&str>) -> Result<()> {
        self.built("From")?;
        self.from = Some(Mailbox::new("From address", email, name)?);
        Ok(())
    }

    /// Sets `Sender`, the mailbox that sends on behalf of `From` (it is then
    /// the envelope sender, as smtplib takes it).
    pub fn set_sender(&mut self, email: &str, name: Option<&str>) -> Result<()> {
        self.built("Sender")?;
        self.sender = Some(Mailbox::new("Sender address", email, name)?);
        Ok(())
    }

    /// Adds a `To` mailbox.
    pub fn add_to(&mut self, email: &str, name: Option<&str>) -> Result<()> {
        self.built("To")?;
        self.to.push(Mailbox::new("To address", email, name)?);
        Ok(())
    }

    /// Adds a `Cc` mailbox.
    pub fn add_cc(&mut self, email: &str, name: Option<&str>) -> Result<()> {
        self.built("Cc")?;
        self.cc.push(Mailbox::new("Cc address", email, name)?);
        Ok(())
    }

    /// Adds a `Bcc` mailbox: a recipient of the envelope whose field is
    /// never sent.
    pub fn add_bcc(&mut self, email: &str, name: Option<&str>) -> Result<()> {
        self.built("Bcc")?;
        self.bcc.push(Mailbox::new("Bcc address", email, name)?);
        Ok(())
    }

    /// Adds a `Reply-To` mailbox.
    pub fn add_reply_to(&mut self, email: &str, name: Option<&str>) -> Result<()> {
        self.built("Reply-To")?;
        self.reply_to
            .push(Mailbox::new("Reply-To address", email, name)?);
        Ok(())
    }

    /// Sets the `Subject` (RFC 2047-encoded when not ASCII; folded).
    pub fn set_subject(&mut self, subject: &str) -> Result<()> {
        self.built("Subject")?;
        check_text("Subject", subject)?;
        self.subject = Some(subject.to_string());
        Ok(())
    }

    /// Adds any other header field. The address fields, Subject and the
    /// MIME fields have their own calls and are refused here. `Date`,
    /// `Message-ID`, `In-Reply-To` and `References` replace an earlier
    /// value (and stop `Date` / `Message-ID` being generated); `Date` must
    /// be an RFC 5322 date and `Message-ID` a `<left@right>` identifier.
    pub fn add_header(&mut self, name: &str, value: &str) -> Result<()> {
        self.built("header")?;
        check_header_name(name)?;
        check_text(&format!("{name} value"), value)?;
        if let Some(own) = MANAGED_HEADERS
            .iter()
            .find(|h| h.eq_ignore_ascii_case(name))
        {
            return Err(Error::invalid(format!(
                "{own} is set by its own call (or by the builder), not as a header"
            )));
        }
        let value = if name.eq_ignore_ascii_case("Date") {
            mime::check_date(value)?;
            value.trim().to_string()
        } else if name.eq_ignore_ascii_case("Message-ID") {
            mime::normalize_msg_id(value)?
        } else {
            value.to_string()
        };
        if let Some(single) = SINGLE_HEADERS.iter().find(|h| h.eq_ignore_ascii_case(name)) {
            self.headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case(single));
            self.headers.push((single.to_string(), value));
        } else {
            self.headers.push((name.to_string(), value));
        }
        Ok(())
    }

    /// Sets the plain-text body (UTF-8, no NUL; line breaks are sent as
    /// CRLF). With an HTML body too, the two make a multipart/alternative.
    pub fn set_text(&mut self, text: &str) -> Result<()> {
        self.built("text body")?;
        mime::check_body("text body", text)?;
        self.text = Some(text.to_string());
        Ok(())
    }

    /// Sets the HTML body (UTF-8, no NUL).
    pub fn set_html(&mut self, html: &str) -> Result<()> {
        self.built("HTML body")?;
        mime::check_body("HTML body", html)?;
        self.html = Some(html.to_string());
        Ok(())
    }

    fn add_part(
        &mut self,
        content_type: Option<&str>,
        disposition: Disposition,
        body: PartBody,
    ) -> Result<()> {
        self.built("attachment")?;
        let content_type = mime::parse_content_type(content_type.unwrap_or(mime::OCTET_STREAM))?;
        self.parts.push(Part {
            content_type,
            disposition,
            body,
        });
        Ok(())
    }

    /// Attaches `data` as a file named `filename` (non-ASCII names are
    /// RFC 2231-encoded). `content_type` `None` is application/octet-stream.
    pub fn attach(
        &mut self,
        data: Vec<u8>,
        content_type: Option<&str>,
        filename: &str,
    ) -> Result<()> {
        let filename = mime::check_filename(filename)?;
        self.add_part(
            content_type,
            Disposition::Attachment { filename },
            PartBody::Memory(Arc::new(data)),
        )
    }

    /// Attaches the file at `path`, read (and base64-encoded) only while
    /// the message is rendered or sent, in constant memory. `filename`
    /// `None` is the path's last component. The file must exist now and
    /// when the message goes out.
    pub fn attach_file(
        &mut self,
        path: &Path,
        content_type: Option<&str>,
        filename: Option<&str>,
    ) -> Result<()> {
        let filename = match filename {
            Some(f) => f.to_string(),
            None => path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::invalid(format!("{} has no UTF-8 file name", path.display()))
                })?,
        };
        let filename = mime::check_filename(&filename)?;
        file_len(path)?;
        self.add_part(
            content_type,
            Disposition::Attachment { filename },
            PartBody::File(path.to_path_buf()),
        )
    }

    /// Adds an inline part (an image the HTML body shows as
    /// `<img src="cid:…">`) with Content-ID `cid` (given with or without
    /// angle brackets). With an HTML body, inline parts go with it in a
    /// multipart/related.
    pub fn add_inline(
        &mut self,
        data: Vec<u8>,
        content_type: Option<&str>,
        cid: &str,
    ) -> Result<()> {
        let cid = mime::normalize_cid(cid)?;
        self.add_part(
            content_type,
            Disposition::Inline { cid },
            PartBody::Memory(Arc::new(data)),
        )
    }

    /// Like `add_inline`, from a file read while sending.
    pub fn add_inline_file(
        &mut self,
        path: &Path,
        content_type: Option<&str>,
        cid: &str,
    ) -> Result<()> {
        let cid = mime::normalize_cid(cid)?;
        file_len(path)?;
        self.add_part(
            content_type,
            Disposition::Inline { cid },
            PartBody::File(path.to_path_buf()),
        )
    }

    /// Makes this message the raw RFC 5322 bytes `msg` (line breaks made
    /// CRLF), replacing whatever was built: it can then be rendered, DKIM
    /// signed and sent like a built one (`Bcc` stripped, envelope from its
    /// header fields).
    pub fn set_raw(&mut self, msg: &[u8]) -> Result<()> {
        if msg.is_empty() {
            return Err(Error::invalid("the raw message is empty"));
        }
        let dkim = self.dkim.take();
        *self = Message::new();
        self.dkim = dkim;
        self.raw = Some(Arc::new(crlf(msg).into_owned()));
        Ok(())
    }

    /// Signs the message with DKIM whenever it is rendered or sent
    /// (`None` stops signing).
    pub fn set_dkim(&mut self, dkim: Option<Dkim>) {
        self.dkim = dkim;
    }

    /// The generated `Date` and `Message-ID`, made once.
    fn generated(&self) -> Result<&(String, String)> {
        if let Some(g) = self.generated.get() {
            return Ok(g);
        }
        let from = self.from.as_ref().ok_or_else(no_from)?;
        let domain = match from.domain() {
            d if d.starts_with('[') || d.is_ascii() => d.to_string(),
            d => idna::domain_to_ascii(d).unwrap_or_else(|_| "localhost".into()),
        };
        let date = mail_builder::headers::date::Date::now().to_rfc822();
        let id = format!("<{}@{domain}>", mail_builder::mime::make_boundary("."));
        Ok(self.generated.get_or_init(|| (date, id)))
    }

    /// The message in segments, `Bcc` included (the first segment holds the
    /// whole header section).
    fn compose(&self) -> Result<Vec<Segment>> {
        if let Some(raw) = &self.raw {
            return Ok(vec![Segment::Bytes(Arc::clone(raw))]);
        }
        let from = self.from.as_ref().ok_or_else(no_from)?;
        let (gen_date, gen_id) = self.generated()?;
        let header = |name: &str| {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let date = header("Date").unwrap_or(gen_date);
        let id = header("Message-ID").unwrap_or(gen_id);
        let others = self.headers.iter().filter(|(n, _)| {
            !n.eq_ignore_ascii_case("Date") && !n.eq_ignore_ascii_case("Message-ID")
        });
        mime::render(&mime::Spec {
            date,
            from,
            sender: self.sender.as_ref(),
            reply_to: &self.reply_to,
            to: &self.to,
            cc: &self.cc,
            bcc: &self.bcc,
            subject: self.subject.as_deref(),
            message_id: id,
            others: others.map(|(n, v)| (n.as_str(), v.as_str())).collect(),
            text: self.text.as_deref(),
            html: self.html.as_deref(),
            parts: &self.parts,
            seed: &self.seed,
        })
    }

    /// The segments as they go out: `Bcc` / `Resent-Bcc` removed, DKIM
    /// signature on top, and the envelope (from the header fields unless
    /// given) when `envelope` is set.
    fn outgoing(
        &self,
        envelope: Option<(Option<&str>, Option<&[&str]>)>,
    ) -> Result<(Vec<Segment>, Option<Envelope>)> {
        let mut segments = self.compose()?;
        let Some(Segment::Bytes(first)) = segments.first_mut() else {
            return Err(Error::invalid("the message is empty"));
        };
        let hlen = header_section_len(first);
        let env = match envelope {
            Some((from, to)) => Some(envelope::derive(&first[..hlen], from, to)?),
            None => None,
        };
        if let Cow::Owned(stripped) = strip_bcc(first) {
            *first = Arc::new(stripped);
        }
        if let Some(dkim) = &self.dkim {
            let hlen = header_section_len(first);
            let headers = first[..hlen].to_vec();
            let mut reader = MessageReader::open(&segments)?;
            let sig = dkim.sign(&mut reader, &headers)?;
            segments.insert(0, Segment::Bytes(Arc::new(sig.into_bytes())));
        }
        Ok((segments, env))
    }

    /// The whole message as it would be sent (no `Bcc`, signed if DKIM is
    /// set), in memory: file attachments are read in.
    pub fn render(&self) -> Result<Vec<u8>> {
        let (segments, _) = self.outgoing(None)?;
        let mut reader = MessageReader::open(&segments)?;
        let mut out = Vec::with_capacity(reader.size() as usize);
        reader.read_to_end(&mut out).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                reader
                    .failure()
                    .map_or_else(|| e.to_string(), str::to_string),
            )
        })?;
        Ok(out)
    }

    /// The message ready to send: its envelope (smtplib's rules unless
    /// `from` / `to` are given) and a reader of its bytes (every file
    /// opened already).
    pub fn prepare(
        &self,
        from: Option<&str>,
        to: Option<&[&str]>,
    ) -> Result<(Envelope, MessageReader)> {
        let (segments, env) = self.outgoing(Some((from, to)))?;
        let env = env.ok_or_else(|| Error::invalid("no envelope"))?;
        Ok((env, MessageReader::open(&segments)?))
    }
}

fn no_from() -> Error {
    Error::invalid("the message has no From address (set_from)")
}

/// `msg` with every line break CRLF (bare CR and bare LF become CRLF, as
/// the session sends them).
fn crlf(msg: &[u8]) -> Cow<'_, [u8]> {
    let clean = msg.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => msg.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && msg[i - 1] == b'\r',
        _ => true,
    });
    if clean {
        return Cow::Borrowed(msg);
    }
    let mut out = Vec::with_capacity(msg.len() + msg.len() / 32);
    let mut i = 0;
    while i < msg.len() {
        match msg[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if msg.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// smtplib's `send_message`: sends `msg` with the envelope taken from its
/// header fields (see [`derive_envelope`]) unless `from` / `to` are given,
/// without its `Bcc` / `Resent-Bcc` fields, DKIM-signed if set. File
/// attachments are streamed. Nothing is sent when the message cannot be
/// made (missing file, no sender, …).
pub fn send_message(
    session: &mut Session,
    msg: &Message,
    from: Option<&str>,
    to: Option<&[&str]>,
) -> Result<Reply> {
    let (env, mut reader) = msg.prepare(from, to)?;
    let to: Vec<&str> = env.to.iter().map(String::as_str).collect();
    if !reader.has_file() {
        let mut bytes = Vec::with_capacity(reader.size() as usize);
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        return session.sendmail(&env.from, &to, &bytes);
    }
    let size = reader.size();
    let result = session.sendmail_stream(&env.from, &to, &mut reader, Some(size));
    match (result, reader.failure()) {
        // The session reports a failing reader as a callback failure; here
        // it was a file.
        (Err(e), Some(why)) if e.kind == ErrorKind::Callback => Err(Error::new(
            ErrorKind::Io,
            format!("{why} (the connection was closed, so nothing was delivered)"),
        )),
        (r, _) => r,
    }
}

/// `send_message` for raw RFC 5322 bytes: the envelope from the header
/// fields unless given, `Bcc` / `Resent-Bcc` removed.
pub fn send_message_raw(
    session: &mut Session,
    msg: &[u8],
    from: Option<&str>,
    to: Option<&[&str]>,
) -> Result<Reply> {
    let env = envelope::derive(&msg[..header_section_len(msg)], from, to)?;
    let to: Vec<&str> = env.to.iter().map(String::as_str).collect();
    session.sendmail(&env.from, &to, &strip_bcc(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_normalizes_bare_cr_and_lf() {
        assert_eq!(&crlf(b"a\nb\rc\r\nd")[..], b"a\r\nb\r\nc\r\nd");
        assert!(matches!(crlf(b"a\r\nb"), Cow::Borrowed(_)));
    }

    #[test]
    fn managed_headers_and_injection_are_refused() {
        let mut m = Message::new();
        for name in ["To", "bcc", "Content-Type", "MIME-Version", "Subject"] {
            assert!(m.add_header(name, "x").is_err(), "{name}");
        }
        assert!(m.add_header("X-Ok", "a\r\nBcc: evil@example.org").is_err());
        assert!(m.add_header("X Bad", "v").is_err());
        assert!(m.add_header("X:Bad", "v").is_err());
        assert!(m.add_header("Date", "yesterday").is_err());
        assert!(m.add_header("Message-ID", "no-brackets-or-at").is_err());
        m.add_header("Message-ID", "abc@example.org").unwrap();
        m.add_header("Message-ID", "<def@example.org>").unwrap();
        assert_eq!(
            m.headers,
            [("Message-ID".to_string(), "<def@example.org>".to_string())]
        );
    }

    #[test]
    fn raw_messages_refuse_builder_calls() {
        let mut m = Message::new();
        m.set_raw(b"From: a@example.org\nTo: b@example.org\n\nhi\n")
            .unwrap();
        assert!(m.set_subject("x").is_err());
        assert_eq!(
            m.render().unwrap(),
            b"From: a@example.org\r\nTo: b@example.org\r\n\r\nhi\r\n"
        );
    }

    #[test]
    fn rendering_twice_gives_the_same_bytes() {
        let mut m = Message::new();
        m.set_from("a@example.org", Some("Ä")).unwrap();
        m.add_to("b@example.org", None).unwrap();
        m.set_text("t").unwrap();
        m.set_html("<p>h</p>").unwrap();
        m.attach(vec![0, 1, 2], None, "x.bin").unwrap();
        let one = m.render().unwrap();
        assert_eq!(one, m.render().unwrap());
        let text = String::from_utf8(one).unwrap();
        assert!(text.contains("Message-ID: <"), "{text}");
        assert!(text.contains("@example.org>\r\n"), "{text}");
        assert!(text.contains("MIME-Version: 1.0\r\n"), "{text}");
    }
}
