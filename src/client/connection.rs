//! One open connection: the transport, what the server said about itself,
//! and the pipeline of commands written and replies expected. `open`
//! creates it; closing drops it whole, so nothing of one connection leaks
//! into the next.

use std::collections::VecDeque;
use std::time::Instant;

use super::error::{Error, Result};
use super::extensions::Extensions;
use super::reply::{Reply, ReplyParser};
use super::trace::Tracer;
use super::transaction::Expect;
use super::transport::Transport;

#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) transport: Transport,
    /// The name connected to (what TLS verifies unless told otherwise).
    pub(crate) host: String,
    /// The server's EHLO/LHLO extensions, once it succeeded.
    pub(crate) extensions: Option<Extensions>,
    pub(crate) helo_done: bool,
    /// An envelope was accepted since the last EHLO: BDAT chunks may be
    /// pipelined behind MAIL/RCPT (see `send_bdat`).
    pub(crate) bdat_proven: bool,
    /// Commands (and body bytes) queued for the next write.
    pub(crate) wbuf: Vec<u8>,
    /// Bytes handed to the kernel so far: with a message's end offset, it
    /// tells whether its end of data left.
    pub(crate) sent: u64,
    /// While a message body is written, the deadline all its writes share,
    /// up to the write that carries its end; `body_open` until then.
    pub(crate) body_deadline: Option<Instant>,
    pub(crate) body_open: bool,
    /// A write failed: nothing more may be written, but the replies already
    /// on their way can still be read (see `salvage_replies`).
    pub(crate) write_failed: bool,
    /// The replies that queued commands will get, oldest first.
    pub(crate) expects: VecDeque<Expect>,
}

impl Connection {
    pub(crate) fn new(transport: Transport, host: &str) -> Self {
        Connection {
            transport,
            host: host.to_string(),
            extensions: None,
            helo_done: false,
            bdat_proven: false,
            wbuf: Vec::new(),
            sent: 0,
            body_deadline: None,
            body_open: false,
            write_failed: false,
            expects: VecDeque::new(),
        }
    }

    pub(crate) fn has_extn(&self, name: &str) -> bool {
        self.extensions.as_ref().is_some_and(|e| e.has(name))
    }

    /// Greeted: EHLO (or LHLO) or HELO succeeded.
    pub(crate) fn greeted(&self) -> bool {
        self.extensions.is_some() || self.helo_done
    }

    pub(crate) fn queue(&mut self, tracer: &mut Tracer, line: &[u8]) {
        tracer.send(line);
        self.wbuf.extend_from_slice(line);
    }

    /// The stream offset just past what is queued now.
    pub(crate) fn queued_end(&self) -> u64 {
        self.sent + self.wbuf.len() as u64
    }

    /// Writes the write buffer before `deadline`, or before the deadline of
    /// the message body it holds. A failure marks the connection
    /// `write_failed`; the caller decides when to close.
    pub(crate) fn flush(&mut self, deadline: Instant) -> Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        if self.write_failed {
            return Err(Error::state("a write failed on this connection"));
        }
        let deadline = self.body_deadline.unwrap_or(deadline);
        let r = self
            .transport
            .write_all(&self.wbuf, deadline, &mut self.sent);
        self.wbuf.clear();
        if !self.body_open {
            self.body_deadline = None;
        }
        self.write_failed = r.is_err();
        r
    }

    /// Reads the next reply, whole, before `deadline`. Writes nothing.
    pub(crate) fn read_reply_by(
        &mut self,
        tracer: &mut Tracer,
        deadline: Instant,
    ) -> Result<Reply> {
        let mut parser = ReplyParser::new();
        loop {
            let line = self.transport.read_line(deadline)?;
            tracer.reply_line(line);
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if let Some(reply) = parser.push_line(text)? {
                tracer.reply(reply.code, &reply.text);
                return Ok(reply);
            }
        }
    }

    /// Closes the socket (TLS close_notify is best effort).
    pub(crate) fn close(self) {
        self.transport.close();
    }
}
