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

use super::connection::Connection;
use super::data::{self, DataEncoder};
use super::error::{Error, ErrorKind, Result};
use super::outcome::accepted;
use super::params::{BodyFacts, BodyPlan, Envelope, Offers};
use super::reply::Reply;
use super::session::Session;
use super::trace::Tracer;

// Everything a caller of the engine needs, in one module.
pub use super::outcome::{Delivery, Outcome, Step};
pub use super::params::{xtext, Dsn};

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
    plan: BodyPlan,
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
        self.in_transaction_scope(out, |s, out| s.drive(source, out))
    }

    /// smtplib's `data`, after the caller's own MAIL and RCPT: DATA, and on
    /// 354 the body (line endings normalized, dots stuffed) and its end;
    /// the outcome says what became of it.
    pub(crate) fn data_after_verbs(
        &mut self,
        body: Body<'_>,
        rcpts: Vec<Reply>,
    ) -> (Outcome, Result<()>) {
        let mut first = Outcome::after_caller_envelope();
        // LMTP answers once per recipient the caller's RCPTs got accepted.
        first.n_rcpts = rcpts.len();
        first.rcpts = rcpts;
        let mut out = vec![first];
        let result = self.in_transaction_scope(&mut out, |s, out| {
            s.expect(b"data\r\n", Expect::Data(0), out);
            s.drain(out)?;
            if out[0].data.as_ref().is_some_and(|r| r.code == 354) {
                s.queue_data_body(0, body, BodyPlan::default(), out)?;
                s.drain(out)?;
            }
            Ok(())
        });
        (out.pop().unwrap_or_default(), result)
    }

    /// Runs `f` with the engine filing replies into `out`. When it fails,
    /// every message still waiting for replies gets the error — and, when
    /// a write failed, first the replies already on their way.
    fn in_transaction_scope(
        &mut self,
        out: &mut Vec<Outcome>,
        f: impl FnOnce(&mut Self, &mut Vec<Outcome>) -> Result<()>,
    ) -> Result<()> {
        let first = out.len();
        self.in_transaction = true;
        let result = f(self, out);
        if let Err(e) = &result {
            // A failed read has closed the connection where it happened. A
            // failed write leaves it open for reading: the replies already
            // sent are read and filed first, so that a message the server
            // accepted is reported so, not sent again. A failing source
            // comes after every reply was read: the session stays usable.
            if self.conn.as_ref().is_some_and(|c| c.write_failed) {
                self.salvage_replies(out);
            }
            if let Some(c) = self.conn.as_mut() {
                c.expects.clear();
            }
            let sent = self.bytes_sent();
            for o in &mut out[first..] {
                if o.pending > 0 || o.mail.is_none() {
                    o.error.get_or_insert_with(|| e.clone());
                    o.end_sent = o.end_at.is_some_and(|end| sent >= end);
                }
            }
        }
        self.in_transaction = false;
        if let Some(c) = self.conn.as_mut() {
            c.body_deadline = None;
            c.body_open = false;
        }
        result
    }

    fn mode(&self) -> Mode {
        let pipelined = self.settings.pipelining && self.has_extn("PIPELINING");
        if self.settings.chunking && pipelined && self.has_extn("CHUNKING") {
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
        self.conn()?;
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
                    while self.outstanding() > WINDOW_REPLIES {
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
        let mut env = Envelope::new(msg.from, &msg.to)?;
        let facts = match &msg.body {
            Body::Bytes(b) => BodyFacts {
                size: Some(b.len() as u64),
                eight_bit: Some(data::has_8bit(b)),
                binarymime: self.settings.binarymime,
            },
            Body::Stream { size_hint, .. } => BodyFacts {
                size: *size_hint,
                eight_bit: None,
                binarymime: self.settings.binarymime,
            },
        };
        let set = &self.settings;
        let plan = env.build(
            Offers(self.extensions()),
            facts,
            set.dsn.as_ref(),
            &set.mail_options,
            &set.rcpt_options,
        )?;
        Ok(Prepared {
            mail: env.mail_line(),
            rcpts: env.rcpt_lines(),
            plan,
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
        if p.plan.binary {
            out[i].bdat = true;
            self.queue_bdat_body(i, body, p.plan, out)?;
            return self.drain(out);
        }
        self.expect(b"data\r\n", Expect::Data(i), out);
        self.drain(out)?;
        if out[i].data.as_ref().is_some_and(|r| r.code != 354) {
            return self.reset(out);
        }
        self.queue_data_body(i, body, p.plan, out)?;
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
            (true, true) => self.queue_data_body(i, body, p.plan, out),
            (true, false) => {
                // The server took DATA for an envelope it refused: an
                // empty body delivers nothing.
                self.expect(data::END_OF_DATA, Expect::Final(i), out);
                out[i].end_at = Some(self.conn()?.queued_end());
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
        // LMTP answers `BDAT … LAST` once per accepted recipient, so the
        // body waits until the RCPT replies say how many.
        if !self.conn()?.bdat_proven || self.settings.lmtp {
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
            self.conn()?.bdat_proven = true;
        }
        self.queue_bdat_body(i, body, p.plan, out)
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
        plan: BodyPlan,
        out: &mut [Outcome],
    ) -> Result<()> {
        let mut enc = DataEncoder::for_data();
        let mut end_at = None;
        self.open_body()?;
        // Encoded straight into the session's write buffer: a failure
        // closes the connection, which empties it, so nothing of a failed
        // body can go out later.
        self.pump_body(body, plan, &mut |s, piece, last| {
            let (c, tracer) = s.wire()?;
            let start = c.wbuf.len();
            enc.encode(piece, &mut c.wbuf);
            if last {
                enc.finish(&mut c.wbuf);
                end_at = Some(c.queued_end());
                c.body_open = false;
            }
            tracer.send(&c.wbuf[start..]);
            if c.wbuf.len() >= FLUSH_AT {
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
    fn open_body(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.body_timeout();
        let c = self.conn()?;
        c.body_deadline = Some(deadline);
        c.body_open = true;
        Ok(())
    }

    fn expect_replies_after_body(&mut self, i: usize, out: &mut [Outcome]) {
        if self.settings.lmtp {
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
        plan: BodyPlan,
        out: &mut [Outcome],
    ) -> Result<()> {
        let mut enc = DataEncoder::for_bdat();
        self.open_body()?;
        let mut chunk = Vec::with_capacity(CHUNK + CHUNK / 32);
        let binary = plan.binary;
        let mut sent_last = false;
        // Without PIPELINING each chunk waits for its reply (RFC 3030 §4.2).
        let lockstep = self.mode() == Mode::LockStep;
        // Pieces (a reader may return a line at a time) gather into chunks
        // of about CHUNK bytes: one BDAT command each.
        self.pump_body(body, plan, &mut |s, piece, last| {
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
            let (c, tracer) = s.wire()?;
            tracer.send(header.as_bytes());
            tracer.send(&chunk);
            c.wbuf.extend_from_slice(header.as_bytes());
            c.wbuf.extend_from_slice(&chunk);
            chunk.clear();
            if last && s.settings.lmtp {
                s.expect_replies_after_body(i, out);
            } else {
                s.expect(b"", Expect::Bdat(i, last), out);
            }
            let c = s.conn()?;
            if last {
                out[i].end_at = Some(c.queued_end());
                c.body_open = false;
            }
            sent_last |= last;
            if c.wbuf.len() >= FLUSH_AT {
                s.flush()?;
            }
            // A huge message must not pile up unread chunk replies.
            while s.outstanding() > WINDOW_REPLIES || (lockstep && s.outstanding() > 0) {
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
    fn pump_body(&mut self, body: Body<'_>, plan: BodyPlan, sink: &mut BodySink<'_>) -> Result<()> {
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
                    if plan.reject_8bit_stream && data::has_8bit(&buf[..n]) {
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
        if let Some(c) = self.conn.as_mut() {
            c.expects.push_back(e);
        }
    }

    /// After a failed write: reads the replies that arrive within
    /// `SALVAGE_WAIT`, nothing more is sent, then closes.
    fn salvage_replies(&mut self, out: &mut [Outcome]) {
        if let Some(c) = self.conn.as_mut() {
            c.wbuf.clear();
        }
        let until = Instant::now() + SALVAGE_WAIT.min(self.timeout());
        while self.outstanding() > 0 {
            // Nothing more is written: `dispatch_by` only reads.
            if self.dispatch_by(out, until).is_err() {
                break;
            }
        }
        self.close();
    }

    /// Replies still expected on the connection (0 when closed).
    fn outstanding(&self) -> usize {
        self.conn.as_ref().map_or(0, |c| c.expects.len())
    }

    /// The connection and the tracer together, for writing body bytes.
    fn wire(&mut self) -> Result<(&mut Connection, &mut Tracer)> {
        match self.conn.as_mut() {
            Some(c) => Ok((c, &mut self.tracer)),
            None => Err(Error::state("not connected")),
        }
    }

    fn drain(&mut self, out: &mut [Outcome]) -> Result<()> {
        while self.outstanding() > 0 {
            self.dispatch(out)?;
        }
        Ok(())
    }

    /// Reads the next reply and files it where its command said.
    fn dispatch(&mut self, out: &mut [Outcome]) -> Result<()> {
        if self.outstanding() == 0 {
            return Ok(());
        }
        self.flush()?;
        // A body's final reply may wait for the server to read what the
        // socket buffers still hold: it gets the body's timeout.
        let wait = match self.conn()?.expects.front() {
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
        let Some(expect) = self.conn()?.expects.front().copied() else {
            return Ok(());
        };
        let reply = self.read_reply_by(deadline)?;
        self.conn()?.expects.pop_front();
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
