//! Mail transactions: one engine behind `sendmail`, the batch API,
//! streaming bodies and LMTP.
//!
//! Commands go into the session's write buffer, and for each one an
//! `Expect` names the reply it will get, so replies read later — in one
//! batch when pipelining — land on the right message and recipient. Three
//! modes share the engine:
//! - lock-step (no PIPELINING): each command waits for its reply;
//! - pipelined DATA: MAIL, every RCPT and DATA in one write, a wait for the
//!   354, then the body, its end marker and the next message's commands in
//!   one write — one wait per message in a batch;
//! - pipelined BDAT (CHUNKING): whole messages go out without waiting,
//!   bounded by a window of outstanding replies.

use std::io::Read;
use std::time::{Duration, Instant};

use super::command::{self, quote_addr};
use super::data::{self, DataEncoder};
use super::error::{Error, ErrorKind, Result};
use super::reply::Reply;
use super::session::{Session, Step};

/// Encoded body bytes gathered before a write: large enough for few
/// syscalls, small enough to bound memory whatever the message size.
const FLUSH_AT: usize = 256 * 1024;

/// Size of one BDAT chunk and of one read from a streaming body.
const CHUNK: usize = 256 * 1024;

/// Replies the engine lets stay outstanding before it reads some: keeps the
/// server's replies within socket buffers, so neither side can block.
const WINDOW_REPLIES: usize = 512;

/// After a failed write, how long the replies already on their way get to
/// arrive before the connection is closed: a server that hung up has sent
/// them already; a stalled one would not send them anyway.
const SALVAGE_WAIT: Duration = Duration::from_millis(250);

/// A message body: the caller's bytes, or a reader pulled in chunks.
pub enum Body<'a> {
    Bytes(&'a [u8]),
    /// `size_hint` is announced as SIZE= when known.
    Stream {
        reader: &'a mut dyn Read,
        size_hint: Option<u64>,
    },
}

/// One message to send.
pub struct Message<'a> {
    pub from: &'a str,
    pub to: Vec<&'a str>,
    pub body: Body<'a>,
}

/// Yields the messages of a batch one by one. A message is dropped before
/// the next is asked for, so a source may reuse its storage. An error of
/// kind `Invalid` refuses that one message (it becomes its outcome) and the
/// batch goes on; any other error stops the batch once the replies to what
/// was already sent are read.
pub trait MessageSource<'m> {
    fn next_message(&mut self) -> Result<Option<Message<'m>>>;
}

impl<'m, F: FnMut() -> Result<Option<Message<'m>>>> MessageSource<'m> for F {
    fn next_message(&mut self) -> Result<Option<Message<'m>>> {
        self()
    }
}

/// A message owned by a queued batch.
#[derive(Debug, Clone)]
pub struct OwnedMessage {
    pub from: String,
    pub to: Vec<String>,
    pub body: Vec<u8>,
}

/// Walks a slice of owned messages.
pub struct SliceSource<'a> {
    messages: std::slice::Iter<'a, OwnedMessage>,
}

impl<'a> SliceSource<'a> {
    pub fn new(messages: &'a [OwnedMessage]) -> Self {
        SliceSource {
            messages: messages.iter(),
        }
    }
}

impl<'a> MessageSource<'a> for SliceSource<'a> {
    fn next_message(&mut self) -> Result<Option<Message<'a>>> {
        Ok(self.messages.next().map(|m| Message {
            from: &m.from,
            to: m.to.iter().map(String::as_str).collect(),
            body: Body::Bytes(&m.body),
        }))
    }
}

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
            command::check_arg("DSN ENVID", envid)?;
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

/// Where a message stands, as far as the client can know. Only a final
/// reply to the whole message — to the end of data or to `BDAT … LAST`;
/// for LMTP, one per accepted recipient — makes it accepted; a chunk's 250
/// never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// No message was tried.
    None,
    /// The final reply was read and was positive (LMTP: for at least one
    /// recipient, and every accepted recipient's reply was read).
    Accepted,
    /// The server refused it: MAIL, every RCPT, DATA, a chunk or the
    /// message itself (see `result`). Not delivered.
    Refused,
    /// Certainly not delivered, with no refusal from the server: refused
    /// by the library before sending, or the connection failed before its
    /// end of data was sent.
    NotSent,
    /// The end of data was sent but its final reply never arrived: the
    /// server may or may not have taken it (RFC 1047's window, which SMTP
    /// cannot close).
    Unknown,
}

/// What the server answered for one message.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub mail: Option<Reply>,
    /// RCPT answers, in the order the recipients were given.
    pub rcpts: Vec<Reply>,
    pub data: Option<Reply>,
    /// The final reply (after the body, or to BDAT LAST).
    pub last: Option<Reply>,
    /// LMTP: each recipient's delivery reply; `None` for refused ones.
    pub lmtp: Vec<Option<Reply>>,
    /// Why the message has no complete answer (refused locally, or the
    /// connection failed first).
    pub error: Option<Error>,
    n_rcpts: usize,
    pending: usize,
    bdat: bool,
    /// Offset in the connection's byte stream just past this message's end
    /// of data, once queued.
    end_at: Option<u64>,
    /// The connection failed after `end_at` had been handed to the kernel.
    end_sent: bool,
}

fn accepted(r: &Reply) -> bool {
    matches!(r.code, 250 | 251)
}

impl Outcome {
    /// An outcome for a message that never reached the wire.
    pub fn not_sent(e: Error) -> Self {
        Outcome {
            error: Some(e),
            ..Outcome::default()
        }
    }

    /// Accepted, refused, not sent or unknown: see [`Delivery`].
    pub fn delivery(&self) -> Delivery {
        if self.error.is_none() && self.mail.is_none() && self.n_rcpts == 0 {
            return Delivery::None;
        }
        match self.result() {
            Ok((Step::None, _)) => Delivery::Accepted,
            Ok(_) => Delivery::Refused,
            Err(_) if self.end_sent => Delivery::Unknown,
            Err(_) => Delivery::NotSent,
        }
    }

    /// MAIL and every RCPT answered, MAIL and at least one RCPT accepted.
    pub fn envelope_accepted(&self) -> bool {
        self.mail.as_ref().is_some_and(|m| m.code == 250)
            && self.rcpts.len() == self.n_rcpts
            && self.rcpts.iter().any(accepted)
    }

    /// Which step the server refused (`Step::None` on success) and the
    /// reply that says so; or the error that left the message unanswered.
    pub fn result(&self) -> Result<(Step, Reply)> {
        let missing = || {
            self.error
                .clone()
                .unwrap_or_else(|| Error::new(ErrorKind::Closed, "no reply for this message"))
        };
        if let (Some(e), None) = (&self.error, &self.mail) {
            return Err(e.clone());
        }
        let mail = self.mail.as_ref().ok_or_else(missing)?;
        if mail.code != 250 {
            return Ok((Step::Mail, mail.clone()));
        }
        // 421: the server is closing; the remaining replies will never come.
        if let Some(r) = self.rcpts.iter().find(|r| r.code == 421) {
            return Ok((Step::Rcpt, r.clone()));
        }
        if !self.rcpts.iter().any(accepted) {
            return match self.rcpts.last() {
                Some(r) if self.rcpts.len() == self.n_rcpts => Ok((Step::Rcpt, r.clone())),
                _ => Err(missing()),
            };
        }
        if !self.bdat {
            let data = self.data.as_ref().ok_or_else(missing)?;
            if data.code != 354 {
                return Ok((Step::Data, data.clone()));
            }
        }
        if !self.lmtp.is_empty() {
            let delivered: Vec<&Reply> = self.lmtp.iter().flatten().collect();
            let expected = self.rcpts.iter().filter(|r| accepted(r)).count();
            if delivered.len() < expected && self.error.is_some() {
                return Err(missing());
            }
            return match delivered.iter().rev().find(|r| r.is_positive()) {
                Some(ok) => Ok((Step::None, (*ok).clone())),
                None => Ok((
                    Step::Message,
                    delivered.last().map(|r| (*r).clone()).ok_or_else(missing)?,
                )),
            };
        }
        let last = self.last.as_ref().ok_or_else(missing)?;
        if last.is_positive() {
            Ok((Step::None, last.clone()))
        } else {
            Ok((Step::Message, last.clone()))
        }
    }
}

/// Receives a body piece by piece: the session, the piece, and whether
/// it is the last one.
type BodySink<'a> = dyn FnMut(&mut Session, &[u8], bool) -> Result<()> + 'a;

/// The reply a queued command will get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    Mail(usize),
    Rcpt(usize),
    Data(usize),
    /// A BDAT chunk's reply; `true` for `BDAT … LAST`, the final reply.
    Bdat(usize, bool),
    /// The reply after a DATA body.
    Final(usize),
    /// LMTP: the delivery reply for recipient `.1`.
    Lmtp(usize, usize),
    Rset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    LockStep,
    PipelinedData,
    Bdat,
}

/// A message checked and turned into command lines.
struct Prepared {
    mail: Vec<u8>,
    rcpts: Vec<Vec<u8>>,
    /// A streamed body must be checked for 8-bit bytes as it goes, since the
    /// server does not accept them.
    reject_8bit_stream: bool,
    binary: bool,
}

impl Session {
    /// Runs every message `source` yields; one `Outcome` per message is
    /// appended to `out`. Returns an error when the connection (or the
    /// source) failed; messages left unanswered carry it too.
    pub(crate) fn run_transactions<'m>(
        &mut self,
        source: &mut dyn MessageSource<'m>,
        out: &mut Vec<Outcome>,
    ) -> Result<()> {
        let first = out.len();
        self.in_transaction = true;
        let result = self.drive(source, out);
        if let Err(e) = &result {
            // A failed read has closed the connection where it happened. A
            // failed write leaves it open for reading: the replies already
            // sent are read and filed first, so that a message the server
            // accepted is reported so, not sent again. A failing source
            // comes after every reply was read: the session stays usable.
            if self.write_failed {
                self.salvage_replies(out);
            }
            self.expects.clear();
            for o in &mut out[first..] {
                if o.pending > 0 || o.mail.is_none() {
                    o.error.get_or_insert_with(|| e.clone());
                    o.end_sent = o.end_at.is_some_and(|end| self.sent >= end);
                }
            }
        }
        self.in_transaction = false;
        self.body_deadline = None;
        self.body_open = false;
        result
    }

    fn mode(&self) -> Mode {
        let pipelined = self.pipelining && self.has_extn("PIPELINING");
        if self.chunking && pipelined && !self.lmtp && self.has_extn("CHUNKING") {
            Mode::Bdat
        } else if pipelined {
            Mode::PipelinedData
        } else {
            Mode::LockStep
        }
    }

    fn drive<'m>(
        &mut self,
        source: &mut dyn MessageSource<'m>,
        out: &mut Vec<Outcome>,
    ) -> Result<()> {
        self.transport()?;
        let mode = self.mode();
        let first = out.len();
        loop {
            let msg = match source.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) if e.kind == ErrorKind::Invalid => {
                    out.push(Outcome {
                        error: Some(e),
                        ..Outcome::default()
                    });
                    continue;
                }
                Err(e) => {
                    // Answers for what was already sent are still wanted.
                    self.drain(out)?;
                    return Err(e);
                }
            };
            let i = out.len();
            out.push(Outcome::default());
            let prepared = match self.prepare(&msg) {
                Ok(p) => p,
                Err(e) => {
                    out[i].error = Some(e);
                    continue;
                }
            };
            out[i].n_rcpts = prepared.rcpts.len();
            let Message { body, .. } = msg;
            match mode {
                Mode::LockStep => self.send_lockstep(i, prepared, body, out)?,
                Mode::PipelinedData => self.send_pipelined_data(i, prepared, body, out)?,
                Mode::Bdat => {
                    // An earlier message that failed (or whose answers are
                    // still in flight) may have left a transaction open;
                    // RSET travels in the same write, costing no wait.
                    if i > first && !out[i - 1].envelope_accepted() {
                        self.expect(b"rset\r\n", Expect::Rset, out);
                    }
                    self.send_bdat(i, prepared, body, out)?;
                    while self.expects.len() > WINDOW_REPLIES {
                        self.dispatch(out)?;
                    }
                }
            }
        }
        self.drain(out)
    }

    /// Checks a message against the caller's rules and the server's
    /// extensions, before anything of it is sent.
    fn prepare(&self, msg: &Message<'_>) -> Result<Prepared> {
        let mut from = quote_addr("sender", msg.from)?;
        if msg.to.is_empty() {
            return Err(Error::invalid("no recipients"));
        }
        let mut to = msg
            .to
            .iter()
            .map(|a| quote_addr("recipient", a))
            .collect::<Result<Vec<_>>>()?;
        let ext = self.extensions();
        let offers = |k: &str| ext.is_some_and(|e| e.has(k));
        let mut params = String::new();

        let (size, eight_bit) = match &msg.body {
            Body::Bytes(b) => (Some(b.len() as u64), Some(data::has_8bit(b))),
            Body::Stream { size_hint, .. } => (*size_hint, None),
        };
        if let (Some(size), true) = (size, offers("SIZE")) {
            if let Some(limit) = ext.and_then(|e| e.size_limit()) {
                if size > limit {
                    return Err(Error::new(
                        ErrorKind::TooLarge,
                        format!("message is {size} bytes; the server accepts at most {limit}"),
                    ));
                }
            }
            params.push_str(&format!(" SIZE={size}"));
        }

        let binary = self.binarymime;
        let mut reject_8bit_stream = false;
        if binary {
            if !(offers("BINARYMIME") && offers("CHUNKING")) {
                return Err(Error::new(
                    ErrorKind::NotSupported,
                    "BINARYMIME requested but the server does not offer BINARYMIME and CHUNKING",
                ));
            }
            params.push_str(" BODY=BINARYMIME");
        } else if offers("8BITMIME") && eight_bit != Some(false) {
            params.push_str(" BODY=8BITMIME");
        } else if eight_bit == Some(true) {
            return Err(Error::new(
                ErrorKind::NotSupported,
                "message has 8-bit bytes but the server does not offer 8BITMIME",
            ));
        } else if eight_bit.is_none() {
            reject_8bit_stream = true;
        }

        if !from.is_ascii() || to.iter().any(|a| !a.is_ascii()) {
            if offers("SMTPUTF8") {
                params.push_str(" SMTPUTF8");
            } else {
                // Without SMTPUTF8 an internationalized domain can still go
                // as its A-label; a non-ASCII local part cannot.
                for addr in std::iter::once(&mut from).chain(to.iter_mut()) {
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
            }
        }

        let mut rcpt_params = String::new();
        if let Some(dsn) = &self.dsn {
            if !offers("DSN") {
                return Err(Error::new(
                    ErrorKind::NotSupported,
                    "DSN requested but the server does not offer DSN",
                ));
            }
            if let Some(ret) = &dsn.ret {
                params.push_str(&format!(" RET={}", ret.to_ascii_uppercase()));
            }
            if let Some(envid) = &dsn.envid {
                params.push_str(&format!(" ENVID={}", xtext(envid)));
            }
            if let Some(notify) = &dsn.notify {
                let list: Vec<String> = notify
                    .split(',')
                    .map(|w| w.trim().to_ascii_uppercase())
                    .collect();
                rcpt_params.push_str(&format!(" NOTIFY={}", list.join(",")));
            }
        }
        let orcpt = self.dsn.as_ref().is_some_and(|d| d.orcpt);
        let rcpts = to
            .iter()
            .map(|addr| {
                let mut args = format!("TO:{addr}{rcpt_params}");
                if orcpt {
                    let bare = &addr[1..addr.len() - 1];
                    let kind = if bare.is_ascii() { "rfc822" } else { "utf-8" };
                    args.push_str(&format!(" ORCPT={kind};{}", xtext(bare)));
                }
                command::line("rcpt", &args)
            })
            .collect();
        Ok(Prepared {
            mail: command::line("mail", &format!("FROM:{from}{params}")),
            rcpts,
            reject_8bit_stream,
            binary,
        })
    }

    fn send_lockstep(
        &mut self,
        i: usize,
        p: Prepared,
        body: Body<'_>,
        out: &mut [Outcome],
    ) -> Result<()> {
        self.expect(&p.mail, Expect::Mail(i), out);
        self.drain(out)?;
        if out[i].mail.as_ref().is_some_and(|r| r.code != 250) {
            return self.reset(out);
        }
        for line in &p.rcpts {
            self.expect(line, Expect::Rcpt(i), out);
            self.drain(out)?;
        }
        if !out[i].rcpts.iter().any(accepted) {
            return self.reset(out);
        }
        if p.binary {
            out[i].bdat = true;
            self.queue_bdat_body(i, body, &p, out)?;
            return self.drain(out);
        }
        self.expect(b"data\r\n", Expect::Data(i), out);
        self.drain(out)?;
        if out[i].data.as_ref().is_some_and(|r| r.code != 354) {
            return self.reset(out);
        }
        self.queue_data_body(i, body, &p, out)?;
        self.drain(out)
    }

    fn send_pipelined_data(
        &mut self,
        i: usize,
        p: Prepared,
        body: Body<'_>,
        out: &mut [Outcome],
    ) -> Result<()> {
        self.queue_envelope(i, &p, out);
        self.expect(b"data\r\n", Expect::Data(i), out);
        // The 354 must arrive before the body may follow.
        while out[i].data.is_none() {
            self.dispatch(out)?;
        }
        let envelope_ok = out[i].mail.as_ref().is_some_and(|r| r.code == 250)
            && out[i].rcpts.iter().any(accepted);
        let go_ahead = out[i].data.as_ref().is_some_and(|r| r.code == 354);
        match (go_ahead, envelope_ok) {
            (true, true) => self.queue_data_body(i, body, &p, out),
            (true, false) => {
                // The server took DATA for an envelope it refused: an
                // empty body delivers nothing.
                self.expect(data::END_OF_DATA, Expect::Final(i), out);
                out[i].end_at = Some(self.sent + self.wbuf.len() as u64);
                self.expect(b"rset\r\n", Expect::Rset, out);
                Ok(())
            }
            (false, _) => {
                self.expect(b"rset\r\n", Expect::Rset, out);
                Ok(())
            }
        }
    }

    fn send_bdat(
        &mut self,
        i: usize,
        p: Prepared,
        body: Body<'_>,
        out: &mut [Outcome],
    ) -> Result<()> {
        out[i].bdat = true;
        self.queue_envelope(i, &p, out);
        if !self.bdat_proven {
            // A refusal of the first envelope may come from a session-level
            // check (TLS or AUTH required) after which a server need not read
            // the chunk: Postfix 3.7 then reads its bytes as commands, which
            // would let a body smuggle commands. So the first chunk waits for
            // an accepted envelope; later ones are pipelined.
            while out[i].pending > 0 {
                self.dispatch(out)?;
            }
            if !out[i].envelope_accepted() {
                self.expect(b"rset\r\n", Expect::Rset, out);
                return Ok(());
            }
            self.bdat_proven = true;
        }
        self.queue_bdat_body(i, body, &p, out)
    }

    /// MAIL and every RCPT, queued to travel in one write.
    fn queue_envelope(&mut self, i: usize, p: &Prepared, out: &mut [Outcome]) {
        self.expect(&p.mail, Expect::Mail(i), out);
        for line in &p.rcpts {
            self.expect(line, Expect::Rcpt(i), out);
        }
    }

    /// RSET after a refusal in lock-step, as smtplib does.
    fn reset(&mut self, out: &mut [Outcome]) -> Result<()> {
        self.expect(b"rset\r\n", Expect::Rset, out);
        self.drain(out)
    }

    /// Encodes a DATA body and its end marker into the write buffer,
    /// writing whenever it grows past `FLUSH_AT`; the last piece stays
    /// buffered, so it leaves with whatever is queued next.
    fn queue_data_body(
        &mut self,
        i: usize,
        body: Body<'_>,
        p: &Prepared,
        out: &mut [Outcome],
    ) -> Result<()> {
        let mut enc = DataEncoder::for_data();
        let mut end_at = None;
        self.open_body();
        // Encoded straight into the session's write buffer: a failure
        // closes the connection, which empties it, so nothing of a failed
        // body can go out later.
        self.pump_body(body, p, &mut |s, piece, last| {
            let start = s.wbuf.len();
            enc.encode(piece, &mut s.wbuf);
            if last {
                enc.finish(&mut s.wbuf);
                end_at = Some(s.sent + s.wbuf.len() as u64);
                s.body_open = false;
            }
            s.tracer.send(&s.wbuf[start..]);
            if s.wbuf.len() >= FLUSH_AT {
                s.flush()?;
            }
            Ok(())
        })?;
        out[i].end_at = end_at;
        self.expect_replies_after_body(i, out);
        Ok(())
    }

    /// Starts the one deadline a message body's writes share, up to the
    /// write that carries its end.
    fn open_body(&mut self) {
        self.body_deadline = Some(Instant::now() + self.body_timeout());
        self.body_open = true;
    }

    fn expect_replies_after_body(&mut self, i: usize, out: &mut [Outcome]) {
        if self.lmtp {
            let accepted_rcpts: Vec<usize> = (0..out[i].rcpts.len())
                .filter(|&j| accepted(&out[i].rcpts[j]))
                .collect();
            out[i].lmtp = vec![None; out[i].rcpts.len()];
            for j in accepted_rcpts {
                self.expect(b"", Expect::Lmtp(i, j), out);
            }
        } else {
            self.expect(b"", Expect::Final(i), out);
        }
    }

    /// Sends the body as BDAT chunks: CRLF-normalized (not dot-stuffed),
    /// or untouched for BINARYMIME; the last chunk says LAST.
    fn queue_bdat_body(
        &mut self,
        i: usize,
        body: Body<'_>,
        p: &Prepared,
        out: &mut [Outcome],
    ) -> Result<()> {
        let mut enc = DataEncoder::for_bdat();
        self.open_body();
        let mut chunk = Vec::with_capacity(CHUNK + CHUNK / 32);
        let binary = p.binary;
        let mut sent_last = false;
        // Without PIPELINING each chunk waits for its reply (RFC 3030 §4.2).
        let lockstep = self.mode() == Mode::LockStep;
        // Pieces (a reader may return a line at a time) gather into chunks
        // of about CHUNK bytes: one BDAT command each.
        self.pump_body(body, p, &mut |s, piece, last| {
            if binary {
                chunk.extend_from_slice(piece);
            } else {
                enc.encode(piece, &mut chunk);
                if last {
                    enc.finish(&mut chunk);
                }
            }
            if chunk.len() < CHUNK && !last {
                return Ok(());
            }
            let header = format!(
                "BDAT {}{}\r\n",
                chunk.len(),
                if last { " LAST" } else { "" }
            );
            s.tracer.send(header.as_bytes());
            s.tracer.send(&chunk);
            s.wbuf.extend_from_slice(header.as_bytes());
            s.wbuf.extend_from_slice(&chunk);
            chunk.clear();
            s.expect(b"", Expect::Bdat(i, last), out);
            if last {
                out[i].end_at = Some(s.sent + s.wbuf.len() as u64);
                s.body_open = false;
            }
            sent_last |= last;
            if s.wbuf.len() >= FLUSH_AT {
                s.flush()?;
            }
            // A huge message must not pile up unread chunk replies.
            while s.expects.len() > WINDOW_REPLIES || (lockstep && !s.expects.is_empty()) {
                s.dispatch(out)?;
            }
            Ok(())
        })?;
        debug_assert!(sent_last);
        Ok(())
    }

    /// Feeds the body to `sink` in pieces; `last` marks the final call
    /// (possibly with an empty piece). A failing reader closes the
    /// connection, so a half-sent message can never be taken as complete.
    fn pump_body(&mut self, body: Body<'_>, p: &Prepared, sink: &mut BodySink<'_>) -> Result<()> {
        match body {
            Body::Bytes(bytes) => {
                if bytes.is_empty() {
                    return sink(self, &[], true);
                }
                let mut pieces = bytes.chunks(CHUNK).peekable();
                while let Some(piece) = pieces.next() {
                    sink(self, piece, pieces.peek().is_none())?;
                }
                Ok(())
            }
            Body::Stream { reader, .. } => {
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let n = match reader.read(&mut buf) {
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            self.close();
                            return Err(Error::new(
                                ErrorKind::Callback,
                                format!("reading the message body failed: {e}"),
                            ));
                        }
                    };
                    if p.reject_8bit_stream && data::has_8bit(&buf[..n]) {
                        self.close();
                        return Err(Error::new(
                            ErrorKind::NotSupported,
                            "message has 8-bit bytes but the server does not offer 8BITMIME \
                             (connection closed so nothing is delivered)",
                        ));
                    }
                    sink(self, &buf[..n], n == 0)?;
                    if n == 0 {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Queues `line` (if any) and records the reply it will get.
    fn expect(&mut self, line: &[u8], e: Expect, out: &mut [Outcome]) {
        if !line.is_empty() {
            self.queue(line);
        }
        match e {
            Expect::Mail(i)
            | Expect::Rcpt(i)
            | Expect::Data(i)
            | Expect::Bdat(i, _)
            | Expect::Final(i)
            | Expect::Lmtp(i, _) => out[i].pending += 1,
            Expect::Rset => {}
        }
        self.expects.push_back(e);
    }

    /// After a failed write: reads the replies that arrive within
    /// `SALVAGE_WAIT`, nothing more is sent, then closes.
    fn salvage_replies(&mut self, out: &mut [Outcome]) {
        self.wbuf.clear();
        let until = Instant::now() + SALVAGE_WAIT.min(self.timeout());
        while !self.expects.is_empty() && self.is_connected() {
            // Nothing more is written: `dispatch_by` only reads.
            if self.dispatch_by(out, until).is_err() {
                break;
            }
        }
        self.close();
    }

    fn drain(&mut self, out: &mut [Outcome]) -> Result<()> {
        while !self.expects.is_empty() {
            self.dispatch(out)?;
        }
        Ok(())
    }

    /// Reads the next reply and files it where its command said.
    fn dispatch(&mut self, out: &mut [Outcome]) -> Result<()> {
        if self.expects.is_empty() {
            return Ok(());
        }
        self.flush()?;
        // A body's final reply may wait for the server to read what the
        // socket buffers still hold: it gets the body's timeout.
        let wait = match self.expects.front() {
            Some(Expect::Final(_) | Expect::Lmtp(..) | Expect::Bdat(_, true)) => {
                self.body_timeout()
            }
            _ => self.timeout(),
        };
        self.dispatch_by(out, Instant::now() + wait)
    }

    /// `dispatch`, with the reply read before `deadline` (nothing is
    /// written).
    fn dispatch_by(&mut self, out: &mut [Outcome], deadline: Instant) -> Result<()> {
        let Some(expect) = self.expects.front().copied() else {
            return Ok(());
        };
        let reply = self.read_reply_by(deadline)?;
        self.expects.pop_front();
        let closing = reply.code == 421;
        match expect {
            Expect::Mail(i) => out[i].mail = Some(reply),
            Expect::Rcpt(i) => out[i].rcpts.push(reply),
            Expect::Data(i) => {
                self.tracer.data(reply.code, &reply.text);
                out[i].data = Some(reply);
            }
            Expect::Bdat(i, last) => {
                // The first refused chunk decides; later ones only echo it.
                // A positive reply counts only for the last chunk: until
                // then, the message is not accepted.
                if out[i].last.is_none() && (last || !reply.is_positive()) {
                    out[i].last = Some(reply);
                }
            }
            Expect::Final(i) => {
                self.tracer.data(reply.code, &reply.text);
                out[i].last = Some(reply);
            }
            Expect::Lmtp(i, j) => {
                self.tracer.data(reply.code, &reply.text);
                out[i].lmtp[j] = Some(reply.clone());
                out[i].last = Some(reply);
            }
            Expect::Rset => {}
        }
        if let Expect::Mail(i)
        | Expect::Rcpt(i)
        | Expect::Data(i)
        | Expect::Bdat(i, _)
        | Expect::Final(i)
        | Expect::Lmtp(i, _) = expect
        {
            out[i].pending -= 1;
        }
        if closing {
            self.close();
            return Err(Error::new(
                ErrorKind::Closed,
                "server closing the connection (421)",
            ));
        }
        Ok(())
    }
}

/// A `Read` over a caller's callback, for streamed bodies.
pub struct CallbackReader<F: FnMut(&mut [u8]) -> std::io::Result<usize>>(pub F);

impl<F: FnMut(&mut [u8]) -> std::io::Result<usize>> Read for CallbackReader<F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (self.0)(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn reply(code: u16) -> Reply {
        Reply::new(code, "t")
    }

    #[test]
    fn outcome_names_the_first_refusing_step() {
        let mut o = Outcome {
            mail: Some(reply(550)),
            n_rcpts: 1,
            ..Outcome::default()
        };
        assert_eq!(o.result().unwrap().0, Step::Mail);
        o.mail = Some(reply(250));
        o.rcpts = vec![reply(550)];
        assert_eq!(o.result().unwrap().0, Step::Rcpt);
        o.rcpts = vec![reply(550), reply(250)];
        o.n_rcpts = 2;
        o.data = Some(reply(554));
        assert_eq!(o.result().unwrap().0, Step::Data);
        o.data = Some(reply(354));
        o.last = Some(reply(552));
        assert_eq!(o.result().unwrap(), (Step::Message, reply(552)));
        o.last = Some(reply(250));
        assert_eq!(o.result().unwrap().0, Step::None);
    }

    #[test]
    fn outcome_without_answers_reports_the_error() {
        let o = Outcome {
            error: Some(Error::new(ErrorKind::Closed, "gone")),
            ..Outcome::default()
        };
        assert_eq!(o.result().unwrap_err().kind, ErrorKind::Closed);
    }

    #[test]
    fn lmtp_outcome_succeeds_when_any_recipient_was_delivered() {
        let o = Outcome {
            mail: Some(reply(250)),
            rcpts: vec![reply(250), reply(250)],
            n_rcpts: 2,
            data: Some(reply(354)),
            lmtp: vec![Some(reply(452)), Some(reply(250))],
            ..Outcome::default()
        };
        assert_eq!(o.result().unwrap().0, Step::None);
        let none = Outcome {
            lmtp: vec![Some(reply(452)), Some(reply(550))],
            ..o
        };
        assert_eq!(none.result().unwrap(), (Step::Message, reply(550)));
    }
}
