//! The `smtp_message_*` functions (a message builder on a handle of its
//! own) and `smtp_session_send_message` / `_send_message_raw` (smtplib's
//! `send_message`). Each is a boundary, its checks and one call into
//! `crate::message`; no MIME or protocol logic lives here.
//!
//! Conventions as for sessions: `int` setters return `SMTPC_OK` or a
//! negative `SMTPC_E_*` code (`smtp_message_last_error` then tells why);
//! strings are NUL-terminated UTF-8; CR, LF, NUL and other control
//! characters in any header text are refused (`SMTPC_E_INVALID`, header
//! injection); a NULL required pointer is `SMTPC_E_NULL`. No pointer passed
//! in is kept after a call returns (data and strings are copied; a file
//! attachment keeps its path, and the file is read when the message is
//! rendered or sent).

use std::any::Any;
use std::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use super::boundary::{
    arg, bytes, command, message as message_bytes, opt_arg, recipients, smtp_session,
};
use super::buf::write_text;
use super::result::*;
use crate::client::{Error, ErrorKind};
use crate::message::{self, Dkim, Message};

/// A message being composed. Opaque: C only ever holds a pointer to it.
///
/// Created by `smtp_message_new`, released by `smtp_message_free`. Like a
/// session, a message may move between threads but must not be used by
/// two at once (a `const` one may be sent on one session at a time).
pub struct smtpc_message_handle {
    pub(crate) inner: Message,
    pub(crate) last_error: String,
    pub(crate) poisoned: bool,
}

/// The message handle's C name (its struct tag is the library's own, as
/// for `smtp_session`).
pub type smtp_message = smtpc_message_handle;

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal panic: {what}; the message is unusable")
}

/// Runs `f` on a live message handle: NULL gives `SMTPC_E_NULL`, a
/// poisoned handle `SMTPC_E_PANIC`; a failure is kept for
/// `smtp_message_last_error` (a success clears it); a panic poisons.
///
/// # Safety
/// `m` is NULL or a live handle from `smtp_message_new`.
unsafe fn with_message(
    m: *mut smtp_message,
    f: impl FnOnce(&mut Message) -> Result<c_int, Failure>,
) -> c_int {
    let Some(h) = m.as_mut() else {
        return SMTPC_E_NULL;
    };
    if h.poisoned {
        return SMTPC_E_PANIC;
    }
    match catch_unwind(AssertUnwindSafe(|| f(&mut h.inner))) {
        Ok(Ok(code)) => {
            h.last_error.clear();
            code
        }
        Ok(Err(failure)) => {
            let code = failure.code();
            h.last_error = failure.into_error().message;
            code
        }
        Err(payload) => {
            h.poisoned = true;
            h.last_error = panic_message(&*payload);
            SMTPC_E_PANIC
        }
    }
}

/// The `len` bytes at `text` as UTF-8.
///
/// # Safety
/// As `bytes`.
unsafe fn utf8<'a>(
    text: *const c_char,
    len: usize,
    what: &'static str,
) -> Result<&'a str, Failure> {
    let b = bytes(text, len, what)?;
    std::str::from_utf8(b)
        .map_err(|e| Failure::Core(Error::invalid(format!("{what} is not valid UTF-8 ({e})"))))
}

/// Creates an empty message. Rendering or sending needs at least a From
/// address; `Date`, `Message-ID` and `MIME-Version: 1.0` are added unless
/// set (`Date` and `Message-ID` once: a message rendered or sent again
/// keeps them).
///
/// # Returns
/// A new handle, owned by the caller, to release with `smtp_message_free`;
/// NULL only if memory is exhausted.
#[no_mangle]
pub extern "C" fn smtp_message_new() -> *mut smtp_message {
    catch_unwind(|| {
        Box::into_raw(Box::new(smtpc_message_handle {
            inner: Message::new(),
            last_error: String::new(),
            poisoned: false,
        }))
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Releases a message. NULL is a harmless no-op; freeing twice is
/// undefined behaviour, as with `free`.
///
/// # Safety
/// `m` is NULL or a handle from `smtp_message_new` not yet freed, used by
/// no other thread.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_free(m: *mut smtp_message) {
    if !m.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(m))));
    }
}

/// One mailbox setter: `address` required, `name` optional.
unsafe fn mailbox(
    m: *mut smtp_message,
    address: *const c_char,
    name: *const c_char,
    set: fn(&mut Message, &str, Option<&str>) -> crate::client::Result<()>,
) -> c_int {
    with_message(m, |msg| {
        set(
            msg,
            arg(address, "address")?,
            opt_arg(name, "display name")?,
        )?;
        Ok(SMTPC_OK)
    })
}

/// Sets the From mailbox: `address` (`local@domain`, UTF-8 allowed) with
/// display name `name` (NULL or "" for none; RFC 2047-encoded when not
/// ASCII), as Python's `formataddr((name, address))`. Replaces an earlier
/// From.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL` (`m` or `address`), `SMTPC_E_INVALID` (an
/// address that is not `local@domain`, a control character such as CR or
/// LF, invalid UTF-8, or a message set with `smtp_message_set_raw`).
///
/// # Safety
/// `m` is NULL or a live handle; `address` and `name` are NULL or
/// NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_set_from(
    m: *mut smtp_message,
    address: *const c_char,
    name: *const c_char,
) -> c_int {
    mailbox(m, address, name, Message::set_from)
}

/// Sets the Sender mailbox (who sends on behalf of From). When present it
/// is the envelope sender `smtp_session_send_message` derives, as smtplib's.
///
/// # Returns
/// As `smtp_message_set_from`.
///
/// # Safety
/// As `smtp_message_set_from`.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_set_sender(
    m: *mut smtp_message,
    address: *const c_char,
    name: *const c_char,
) -> c_int {
    mailbox(m, address, name, Message::set_sender)
}

/// Adds a To mailbox (call once per recipient).
///
/// # Returns
/// As `smtp_message_set_from`.
///
/// # Safety
/// As `smtp_message_set_from`.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_add_to(
    m: *mut smtp_message,
    address: *const c_char,
    name: *const c_char,
) -> c_int {
    mailbox(m, address, name, Message::add_to)
}

/// Adds a Cc mailbox.
///
/// # Returns
/// As `smtp_message_set_from`.
///
/// # Safety
/// As `smtp_message_set_from`.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_add_cc(
    m: *mut smtp_message,
    address: *const c_char,
    name: *const c_char,
) -> c_int {
    mailbox(m, address, name, Message::add_cc)
}

/// Adds a Bcc mailbox: an envelope recipient of
/// `smtp_session_send_message`; the Bcc field itself is never sent nor
/// rendered.
///
/// # Returns
/// As `smtp_message_set_from`.
///
/// # Safety
/// As `smtp_message_set_from`.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_add_bcc(
    m: *mut smtp_message,
    address: *const c_char,
    name: *const c_char,
) -> c_int {
    mailbox(m, address, name, Message::add_bcc)
}

/// Adds a Reply-To mailbox.
///
/// # Returns
/// As `smtp_message_set_from`.
///
/// # Safety
/// As `smtp_message_set_from`.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_add_reply_to(
    m: *mut smtp_message,
    address: *const c_char,
    name: *const c_char,
) -> c_int {
    mailbox(m, address, name, Message::add_reply_to)
}

/// Sets the Subject (any UTF-8 text without control characters;
/// RFC 2047-encoded when not ASCII; long ones folded).
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL`, `SMTPC_E_INVALID` (CR, LF, NUL or another
/// control character; invalid UTF-8).
///
/// # Safety
/// `m` is NULL or a live handle; `subject` is NULL or a string.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_set_subject(
    m: *mut smtp_message,
    subject: *const c_char,
) -> c_int {
    with_message(m, |msg| {
        msg.set_subject(arg(subject, "subject")?)?;
        Ok(SMTPC_OK)
    })
}

/// Adds a header field `name: value`, after the others (non-ASCII values
/// RFC 2047-encoded, long ones folded). `Date`, `Message-ID`,
/// `In-Reply-To` and `References` replace an earlier value, and a `Date`
/// (an RFC 5322 date) or `Message-ID` (`<left@right>`) given here is used
/// instead of a generated one. `Resent-*` fields make the message a resend
/// for `smtp_session_send_message`'s envelope.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL`, `SMTPC_E_INVALID`: a name that is not
/// printable ASCII without ':', CR/LF/NUL or another control character in
/// the value (header injection), a field with its own call (From, Sender,
/// To, Cc, Bcc, Reply-To, Subject) or made by the builder (MIME-Version,
/// Content-*, DKIM-Signature), a bad Date or Message-ID.
///
/// # Safety
/// `m` is NULL or a live handle; `name` and `value` are NULL or strings.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_add_header(
    m: *mut smtp_message,
    name: *const c_char,
    value: *const c_char,
) -> c_int {
    with_message(m, |msg| {
        msg.add_header(arg(name, "header name")?, arg(value, "header value")?)?;
        Ok(SMTPC_OK)
    })
}

/// Sets the plain-text body: `len` bytes of UTF-8 at `text` (no NUL), sent
/// as text/plain; charset=utf-8 in 7bit, quoted-printable or base64,
/// whichever suits the content, with CRLF line breaks and no line over
/// 998 octets. With an HTML body too, the message is multipart/alternative.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL` (`m`, or `text` with `len` > 0),
/// `SMTPC_E_INVALID` (invalid UTF-8, NUL).
///
/// # Safety
/// `m` is NULL or a live handle; `text` is NULL or valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_set_text(
    m: *mut smtp_message,
    text: *const c_char,
    len: usize,
) -> c_int {
    with_message(m, |msg| {
        msg.set_text(utf8(text, len, "text body")?)?;
        Ok(SMTPC_OK)
    })
}

/// Sets the HTML body, as `smtp_message_set_text` (text/html). Inline parts
/// (`smtp_message_add_inline`) go with it in a multipart/related.
///
/// # Returns
/// As `smtp_message_set_text`.
///
/// # Safety
/// As `smtp_message_set_text`.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_set_html(
    m: *mut smtp_message,
    html: *const c_char,
    len: usize,
) -> c_int {
    with_message(m, |msg| {
        msg.set_html(utf8(html, len, "HTML body")?)?;
        Ok(SMTPC_OK)
    })
}

/// Attaches `len` bytes at `data` (copied) as a file named `filename`
/// (non-ASCII names RFC 2231-encoded). `content_type` is a media type such
/// as "application/pdf" or "text/csv; charset=utf-8" (NULL:
/// application/octet-stream). The bytes arrive exactly as given.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL` (`m`, `filename`, or `data` with `len` > 0),
/// `SMTPC_E_INVALID` (an unknown or malformed content type — its top-level
/// type must be application, audio, font, haptics, image, model, text or
/// video — or a control character in the file name, invalid UTF-8).
///
/// # Safety
/// `m` is NULL or a live handle; `data` is NULL or valid for `len` bytes;
/// `content_type` and `filename` are NULL or strings.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_attach(
    m: *mut smtp_message,
    data: *const c_void,
    len: usize,
    content_type: *const c_char,
    filename: *const c_char,
) -> c_int {
    with_message(m, |msg| {
        let data = bytes(data, len, "attachment data")?.to_vec();
        msg.attach(
            data,
            opt_arg(content_type, "content type")?,
            arg(filename, "file name")?,
        )?;
        Ok(SMTPC_OK)
    })
}

/// Attaches the file at `path`, named `filename` (NULL: the path's last
/// component). The file is not read now: it is read and base64-encoded a
/// chunk at a time whenever the message is rendered or sent, so a large
/// file costs constant memory. It must exist now and then, and not change
/// size while being sent (the send then fails and nothing is delivered).
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL`, `SMTPC_E_IO` (the file cannot be opened or
/// is not a regular file), `SMTPC_E_INVALID` (as `smtp_message_attach`).
///
/// # Safety
/// `m` is NULL or a live handle; `path`, `content_type`, `filename` are
/// NULL or strings.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_attach_file(
    m: *mut smtp_message,
    path: *const c_char,
    content_type: *const c_char,
    filename: *const c_char,
) -> c_int {
    with_message(m, |msg| {
        msg.attach_file(
            Path::new(arg(path, "path")?),
            opt_arg(content_type, "content type")?,
            opt_arg(filename, "file name")?,
        )?;
        Ok(SMTPC_OK)
    })
}

/// Adds an inline part of `len` bytes at `data` (copied), with Content-ID
/// `content_id` (with or without angle brackets), for an HTML body to show
/// as `<img src="cid:…">`; with an HTML body it goes in a
/// multipart/related.
///
/// # Returns
/// As `smtp_message_attach`; `SMTPC_E_INVALID` also for a Content-ID with
/// spaces, brackets inside or non-ASCII characters.
///
/// # Safety
/// As `smtp_message_attach`, with `content_id` for `filename`.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_add_inline(
    m: *mut smtp_message,
    data: *const c_void,
    len: usize,
    content_type: *const c_char,
    content_id: *const c_char,
) -> c_int {
    with_message(m, |msg| {
        let data = bytes(data, len, "inline data")?.to_vec();
        msg.add_inline(
            data,
            opt_arg(content_type, "content type")?,
            arg(content_id, "content ID")?,
        )?;
        Ok(SMTPC_OK)
    })
}

/// Like `smtp_message_add_inline`, from the file at `path`, read while the
/// message is rendered or sent (as `smtp_message_attach_file`).
///
/// # Returns
/// As `smtp_message_attach_file`.
///
/// # Safety
/// `m` is NULL or a live handle; the strings are NULL or strings.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_add_inline_file(
    m: *mut smtp_message,
    path: *const c_char,
    content_type: *const c_char,
    content_id: *const c_char,
) -> c_int {
    with_message(m, |msg| {
        msg.add_inline_file(
            Path::new(arg(path, "path")?),
            opt_arg(content_type, "content type")?,
            arg(content_id, "content ID")?,
        )?;
        Ok(SMTPC_OK)
    })
}

/// Makes the message the `len` bytes of RFC 5322 text at `msg` (copied;
/// line breaks made CRLF), replacing everything built so far (a DKIM
/// setting stays). It can then be rendered, signed and sent like a built
/// one; the builder calls are refused on it. To send bytes that are not
/// UTF-8, use `smtp_session_send_message_raw`.
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL`, `SMTPC_E_INVALID` (empty, invalid UTF-8,
/// NUL).
///
/// # Safety
/// `m` is NULL or a live handle; `msg` is NULL or valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_set_raw(
    m: *mut smtp_message,
    msg: *const c_char,
    len: usize,
) -> c_int {
    with_message(m, |message| {
        let text = utf8(msg, len, "raw message")?;
        if text.contains('\0') {
            return Err(Error::invalid("raw message contains NUL").into());
        }
        message.set_raw(text.as_bytes())?;
        Ok(SMTPC_OK)
    })
}

/// Signs the message with DKIM (RFC 6376, relaxed/relaxed) whenever it is
/// rendered or sent: `d=domain`, `s=selector`, with the PEM private key
/// `key_pem` — RSA (`RSA PRIVATE KEY` or `PRIVATE KEY`; rsa-sha256) or
/// Ed25519 (`PRIVATE KEY`; ed25519-sha256, RFC 8463). `headers` is a
/// colon-separated list of the fields to sign, which must include From
/// (NULL: those of From, Sender, Reply-To, Subject, Date, Message-ID, To,
/// Cc, MIME-Version, Content-Type, Content-Transfer-Encoding, In-Reply-To,
/// References, Resent-*, List-Id, List-Unsubscribe the message has). The
/// signature covers the message as sent (Bcc removed). `domain` NULL stops
/// signing (the other arguments are then ignored).
///
/// # Returns
/// `SMTPC_OK`, `SMTPC_E_NULL` (`m`; or `selector` or `key_pem` with a
/// domain), `SMTPC_E_INVALID` (a key that is not RSA or Ed25519 PEM, a bad
/// domain or selector, a header list without From).
///
/// # Safety
/// `m` is NULL or a live handle; the strings are NULL or strings.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_set_dkim(
    m: *mut smtp_message,
    domain: *const c_char,
    selector: *const c_char,
    key_pem: *const c_char,
    headers: *const c_char,
) -> c_int {
    with_message(m, |msg| {
        let dkim = match opt_arg(domain, "DKIM domain")? {
            None => None,
            Some(d) => Some(Dkim::new(
                d,
                arg(selector, "DKIM selector")?,
                arg(key_pem, "DKIM key")?,
                opt_arg(headers, "DKIM header list")?,
            )?),
        };
        msg.set_dkim(dkim);
        Ok(SMTPC_OK)
    })
}

/// Renders the whole message as `smtp_session_send_message` sends it (no
/// Bcc field; DKIM-signed if set; file attachments read in) into `buf`,
/// snprintf-style: NUL-terminated when `cap` > 0, cut at `cap - 1` bytes
/// on a UTF-8 boundary. Render with `buf` NULL and `cap` 0 to learn the
/// size, then again with `cap` = size + 1: the bytes are the same (a DKIM
/// signature's time stamp and signature aside, which keep their length).
///
/// # Returns
/// The message's full length; 0 when it cannot be rendered (no From, a
/// missing file, `m` NULL…: `smtp_message_last_error` tells why).
///
/// # Safety
/// `m` is NULL or a live handle; `buf` is NULL or valid for `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_render(
    m: *mut smtp_message,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    write_text(buf, cap, "");
    let mut len = 0;
    with_message(m, |msg| {
        let bytes = msg.render()?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::invalid("the rendered message is not UTF-8"))?;
        len = write_text(buf, cap, &text);
        Ok(SMTPC_OK)
    });
    len
}

/// Copies the detailed message of the last failed call on `m` (e.g.
/// "cannot open attachment /tmp/x.pdf: No such file or directory") into
/// `buf`, as `smtp_message_render` writes; "" after a success.
///
/// # Returns
/// The message's full length; 0 when `m` is NULL.
///
/// # Safety
/// `m` is NULL or a live handle; `buf` is NULL or valid for `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_message_last_error(
    m: *const smtp_message,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    write_text(buf, cap, "");
    match m.as_ref() {
        Some(h) => write_text(buf, cap, &h.last_error),
        None => 0,
    }
}

/// The caller's envelope: `from` NULL and `n_to` 0 mean "from the
/// message".
unsafe fn envelope<'a>(
    from: *const c_char,
    to: *const *const c_char,
    n_to: usize,
) -> Result<(Option<&'a str>, Option<Vec<&'a str>>), Failure> {
    let from = opt_arg(from, "sender")?;
    let to = if n_to == 0 {
        None
    } else {
        Some(recipients(to, n_to)?)
    };
    Ok((from, to))
}

/// Sends a built message, as smtplib's `send_message`: the envelope
/// sender is `from`, or else the message's Sender, else its From; the
/// recipients are the `n_to` addresses of `to`, or else (when `n_to` is 0)
/// the addresses of its To, Bcc and Cc fields, in that order. When the
/// message has one set of `Resent-*` fields (one Resent-Date) those are
/// used instead; more than one is refused. Bcc and Resent-Bcc fields never
/// reach the server. File attachments are streamed in constant memory,
/// with the exact size announced (SIZE=). Then as `smtp_session_sendmail`
/// (pipelining, per-recipient answers, SMTPUTF8 for UTF-8 addresses…).
///
/// # Returns
/// As `smtp_session_sendmail`; also `SMTPC_E_INVALID` (no sender or no
/// recipient found, more than one Resent block, no From: nothing sent),
/// `SMTPC_E_IO` (an attachment file missing: nothing sent; or failing
/// while sent: the connection is closed, nothing delivered),
/// `SMTPC_E_NULL` (`s`, `m`, or `to` with `n_to` > 0).
///
/// # Safety
/// `s` is NULL or a live session; `m` is NULL or a live message used by no
/// other thread during the call; `from` is NULL or a string; `to` is NULL
/// or points to `n_to` strings; `reply` is NULL or valid for `reply_cap`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_send_message(
    s: *mut smtp_session,
    m: *const smtp_message,
    from: *const c_char,
    to: *const *const c_char,
    n_to: usize,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        let Some(h) = m.as_ref() else {
            return Err(Failure::Null("message"));
        };
        if h.poisoned {
            return Err(Error::new(ErrorKind::State, "the message handle is poisoned").into());
        }
        let (from, to) = envelope(from, to, n_to)?;
        Ok(message::send_message(
            session,
            &h.inner,
            from,
            to.as_deref(),
        )?)
    })
}

/// Sends `len` bytes of RFC 5322 message at `msg` with smtplib's
/// `send_message` rules (see `smtp_session_send_message`): the envelope
/// from `from` / `to` or from the header fields, Bcc and Resent-Bcc
/// fields removed, the rest sent as `smtp_session_sendmail` sends it.
///
/// # Returns
/// As `smtp_session_send_message`.
///
/// # Safety
/// `s` is NULL or a live session; `msg` is NULL or valid for `len` bytes;
/// `from`, `to`, `reply` as for `smtp_session_send_message`.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_send_message_raw(
    s: *mut smtp_session,
    msg: *const c_char,
    len: usize,
    from: *const c_char,
    to: *const *const c_char,
    n_to: usize,
    reply: *mut c_char,
    reply_cap: usize,
) -> c_int {
    command(s, reply, reply_cap, |session| {
        let msg = message_bytes(msg, len)?;
        if msg.is_empty() {
            return Err(Error::invalid("the message is empty").into());
        }
        let (from, to) = envelope(from, to, n_to)?;
        Ok(message::send_message_raw(
            session,
            msg,
            from,
            to.as_deref(),
        )?)
    })
}
