//! The session: one connection's state machine and its verbs.
//!
//! Commands are queued in a write buffer together with a count of replies
//! they expect, and flushed when the next reply is needed. Lock-step is a
//! queue one deep; PIPELINING lets MAIL, every RCPT and DATA share a write.

use std::time::{Duration, Instant};

use super::auth::{self, Mechanism};
use super::command::{self, check_arg, check_hostname, quote_addr};
use super::data::{self, DataEncoder};
use super::error::{Error, ErrorKind, Result};
use super::extensions::Extensions;
use super::hostname;
use super::reply::{Reply, ReplyParser};
use super::trace::{TraceSink, Tracer};
use super::transport::{self, TlsSettings, Transport};

/// The default for connect, greeting, and each read and write.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a caller's message is encoded per write: large bodies go out
/// in bounded pieces, small ones (with their end marker) in one write.
const BODY_CHUNK: usize = 256 * 1024;

/// smtplib's limit on AUTH challenge rounds.
const MAX_AUTH_ROUNDS: usize = 5;

/// Which step of a mail transaction the server refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Step {
    #[default]
    None,
    Mail,
    Rcpt,
    Data,
    Message,
    Helo,
}

#[derive(Debug)]
pub struct Session {
    transport: Option<Transport>,
    host: String,
    timeout: Duration,
    tls: TlsSettings,
    local_hostname: Option<String>,
    pipelining: bool,
    tracer: Tracer,
    /// The server's EHLO extensions, once EHLO succeeded.
    extensions: Option<Extensions>,
    helo_done: bool,
    last_reply: Option<Reply>,
    last_error: Option<Error>,
    rcpt_replies: Vec<Reply>,
    failed_step: Step,
    wbuf: Vec<u8>,
    waits: u64,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    pub fn new() -> Self {
        Session {
            transport: None,
            host: String::new(),
            timeout: DEFAULT_TIMEOUT,
            tls: TlsSettings::default(),
            local_hostname: None,
            pipelining: true,
            tracer: Tracer::default(),
            extensions: None,
            helo_done: false,
            last_reply: None,
            last_error: None,
            rcpt_replies: Vec::new(),
            failed_step: Step::None,
            wbuf: Vec::new(),
            waits: 0,
        }
    }

    // ---- settings -------------------------------------------------------

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
        if let Some(t) = &mut self.transport {
            t.set_timeout(timeout);
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn set_debuglevel(&mut self, level: i32) {
        self.tracer.set_level(level);
    }

    pub fn set_trace_sink(&mut self, sink: Option<TraceSink>) {
        self.tracer.set_sink(sink);
    }

    pub fn set_tls_verify(&mut self, verify: bool) {
        self.tls.verify = verify;
    }

    pub fn set_ca_file(&mut self, path: Option<String>) {
        self.tls.ca_file = path;
    }

    pub fn set_local_hostname(&mut self, name: Option<&str>) -> Result<()> {
        if let Some(n) = name {
            check_hostname("local host name", n)?;
        }
        self.local_hostname = name.map(str::to_string);
        Ok(())
    }

    /// Whether `sendmail` pipelines when the server offers PIPELINING.
    pub fn set_pipelining(&mut self, on: bool) {
        self.pipelining = on;
    }

    // ---- state ----------------------------------------------------------

    pub fn is_connected(&self) -> bool {
        self.transport.is_some()
    }

    pub fn is_tls(&self) -> bool {
        self.transport.as_ref().is_some_and(Transport::is_tls)
    }

    pub fn last_reply(&self) -> Option<&Reply> {
        self.last_reply.as_ref()
    }

    /// The failure of the most recent call; `None` when it succeeded or the
    /// server answered (a refusal is an answer, not an error).
    pub fn last_error(&self) -> Option<&Error> {
        self.last_error.as_ref()
    }

    /// Records a failure detected outside the core (e.g. by the FFI layer's
    /// argument checks), so that `last_error` describes it.
    pub fn record_error(&mut self, e: Error) {
        self.last_error = Some(e);
    }

    pub fn extensions(&self) -> Option<&Extensions> {
        self.extensions.as_ref()
    }

    pub fn has_extn(&self, name: &str) -> bool {
        self.extensions.as_ref().is_some_and(|e| e.has(name))
    }

    /// The server's answer to each recipient of the last transaction.
    pub fn rcpt_replies(&self) -> &[Reply] {
        &self.rcpt_replies
    }

    pub fn failed_step(&self) -> Step {
        self.failed_step
    }

    /// How many times the session waited on the network for a reply.
    pub fn waits(&self) -> u64 {
        self.waits
    }

    // ---- verbs ----------------------------------------------------------

    /// Connects and reads the greeting. A greeting other than 220 is
    /// returned and the connection closed, as smtplib does.
    pub fn connect(&mut self, host: &str, port: u16) -> Result<Reply> {
        self.run(|s| s.open(host, port, false))
    }

    /// Connects with implicit TLS (smtplib's `SMTP_SSL`, port 465).
    pub fn connect_tls(&mut self, host: &str, port: u16) -> Result<Reply> {
        self.run(|s| s.open(host, port, true))
    }

    pub fn helo(&mut self, name: Option<&str>) -> Result<Reply> {
        self.run(|s| s.do_helo(name))
    }

    pub fn ehlo(&mut self, name: Option<&str>) -> Result<Reply> {
        self.run(|s| s.do_ehlo(name))
    }

    pub fn starttls(&mut self) -> Result<Reply> {
        self.run(Self::do_starttls)
    }

    pub fn login(&mut self, user: &str, password: &str) -> Result<Reply> {
        self.run(|s| s.do_login(user, password))
    }

    /// Sends one message; every recipient's answer is in `rcpt_replies`
    /// afterwards and `failed_step` tells which step a refusal came from.
    pub fn sendmail(&mut self, from: &str, to: &[&str], msg: &[u8]) -> Result<Reply> {
        self.run(|s| s.do_sendmail(from, to, msg))
    }

    pub fn vrfy(&mut self, address: &str) -> Result<Reply> {
        self.run(|s| s.simple_with_arg("vrfy", "address", address))
    }

    pub fn expn(&mut self, list: &str) -> Result<Reply> {
        self.run(|s| s.simple_with_arg("expn", "list name", list))
    }

    pub fn help(&mut self, topic: Option<&str>) -> Result<Reply> {
        self.run(|s| s.simple_with_arg("help", "help topic", topic.unwrap_or("")))
    }

    pub fn noop(&mut self) -> Result<Reply> {
        self.run(|s| s.simple("noop", ""))
    }

    pub fn rset(&mut self) -> Result<Reply> {
        self.run(|s| s.simple("rset", ""))
    }

    /// Sends QUIT and closes the connection whatever the answer.
    pub fn quit(&mut self) -> Result<Reply> {
        self.run(|s| {
            let r = s.simple("quit", "");
            s.close();
            r
        })
    }

    /// Any command: `cmd` then `args` (both checked for CR/LF/NUL).
    pub fn docmd(&mut self, cmd: &str, args: Option<&str>) -> Result<Reply> {
        self.run(|s| {
            check_arg("command", cmd)?;
            if cmd.is_empty() || cmd.contains(' ') {
                return Err(Error::invalid("command must be one non-empty word"));
            }
            s.simple_with_arg(cmd, "command arguments", args.unwrap_or(""))
        })
    }

    /// Closes the connection without QUIT.
    pub fn close(&mut self) {
        if let Some(t) = self.transport.take() {
            t.close();
        }
        self.extensions = None;
        self.helo_done = false;
        self.wbuf.clear();
    }

    // ---- internals ------------------------------------------------------

    /// Runs a verb: resets the per-call error, records a failure.
    fn run<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.last_error = None;
        let result = f(self);
        if let Err(e) = &result {
            self.last_error = Some(e.clone());
        }
        result
    }

    fn transport(&mut self) -> Result<&mut Transport> {
        self.transport
            .as_mut()
            .ok_or_else(|| Error::state("not connected"))
    }

    fn open(&mut self, host: &str, port: u16, implicit_tls: bool) -> Result<Reply> {
        check_hostname("host", host)?;
        if self.transport.is_some() {
            return Err(Error::state("already connected; quit or close first"));
        }
        self.tracer.connect(host, port);
        let t = if implicit_tls {
            transport::connect_tls(host, port, self.timeout, &self.tls)?
        } else {
            Transport::connect(host, port, self.timeout)?
        };
        self.transport = Some(t);
        self.host = host.to_string();
        self.extensions = None;
        self.helo_done = false;
        let greeting = self.read_reply()?;
        if greeting.code != 220 {
            self.close();
        }
        Ok(greeting)
    }

    fn ehlo_name(&self, name: Option<&str>) -> Result<String> {
        match name.or(self.local_hostname.as_deref()) {
            Some(n) => {
                check_hostname("EHLO name", n)?;
                Ok(n.to_string())
            }
            None => Ok(hostname::local_hostname(
                self.transport.as_ref().and_then(Transport::local_addr),
            )),
        }
    }

    fn do_ehlo(&mut self, name: Option<&str>) -> Result<Reply> {
        let name = self.ehlo_name(name)?;
        let r = self.command(command::line("ehlo", &name))?;
        self.extensions = (r.code == 250).then(|| Extensions::parse(&r));
        Ok(r)
    }

    fn do_helo(&mut self, name: Option<&str>) -> Result<Reply> {
        let name = self.ehlo_name(name)?;
        let r = self.command(command::line("helo", &name))?;
        self.helo_done = r.code == 250;
        Ok(r)
    }

    /// EHLO, falling back to HELO, unless one already succeeded. Returns the
    /// refusal when neither is accepted.
    fn ehlo_or_helo_if_needed(&mut self) -> Result<Option<Reply>> {
        if self.extensions.is_some() || self.helo_done {
            return Ok(None);
        }
        let r = self.do_ehlo(None)?;
        if r.code == 250 {
            return Ok(None);
        }
        let r = self.do_helo(None)?;
        Ok((r.code != 250).then_some(r))
    }

    fn do_starttls(&mut self) -> Result<Reply> {
        if let Some(refused) = self.ehlo_or_helo_if_needed()? {
            return Ok(refused);
        }
        if self.is_tls() {
            return Err(Error::state("TLS is already active"));
        }
        if !self.has_extn("STARTTLS") {
            return Err(Error::new(
                ErrorKind::NotSupported,
                "STARTTLS extension not supported by server",
            ));
        }
        let r = self.command(command::line("STARTTLS", ""))?;
        if r.code != 220 {
            return Ok(r);
        }
        let t = self
            .transport
            .take()
            .ok_or_else(|| Error::state("not connected"))?;
        if t.buffered() > 0 {
            self.tracer.note(&format!(
                "discarding {} bytes received before TLS",
                t.buffered()
            ));
        }
        let host = self.host.clone();
        match t.start_tls(&host, &self.tls) {
            Ok(t) => self.transport = Some(t),
            Err(e) => {
                self.close();
                return Err(e);
            }
        }
        // RFC 3207 §4.2: forget everything learnt before TLS.
        self.extensions = None;
        self.helo_done = false;
        Ok(r)
    }

    fn do_login(&mut self, user: &str, password: &str) -> Result<Reply> {
        check_arg("user name", user)?;
        check_arg("password", password)?;
        if let Some(refused) = self.ehlo_or_helo_if_needed()? {
            return Ok(refused);
        }
        if !self.has_extn("AUTH") {
            return Err(Error::new(
                ErrorKind::NotSupported,
                "SMTP AUTH extension not supported by server",
            ));
        }
        let offered = self
            .extensions
            .as_ref()
            .map(Extensions::auth_mechanisms)
            .unwrap_or_default();
        let usable: Vec<Mechanism> = Mechanism::PREFERRED
            .into_iter()
            .filter(|m| offered.iter().any(|o| o == m.name()))
            .collect();
        if usable.is_empty() {
            return Err(Error::new(
                ErrorKind::AuthMech,
                format!(
                    "no suitable authentication mechanism (server offers: {})",
                    offered.join(" ")
                ),
            ));
        }
        // As smtplib: try each usable mechanism, best first, until one is
        // accepted (235) or the server says we already are (503).
        let mut last = None;
        for mech in usable {
            let r = self.authenticate(mech, user, password)?;
            if matches!(r.code, 235 | 503) {
                return Ok(r);
            }
            last = Some(r);
        }
        Ok(last.expect("at least one mechanism was tried"))
    }

    /// One AUTH exchange with `mech`; the secret-bearing lines are redacted.
    pub(crate) fn authenticate(
        &mut self,
        mech: Mechanism,
        user: &str,
        secret: &str,
    ) -> Result<Reply> {
        let verb = format!("AUTH {}", mech.name());
        let initial = match mech {
            Mechanism::Plain => Some(auth::plain_response(user, secret)),
            Mechanism::XOAuth2 => Some(auth::xoauth2_response(user, secret)),
            Mechanism::Login | Mechanism::CramMd5 => None,
        };
        let mut r = match &initial {
            Some(ir) => self.secret_command(&format!("{verb} {ir}"), &verb)?,
            None => self.command(command::line(&verb, ""))?,
        };
        let mut round = 0;
        while r.code == 334 {
            if round == MAX_AUTH_ROUNDS {
                self.close();
                return Err(Error::protocol("too many AUTH challenges"));
            }
            let response = match mech {
                Mechanism::Plain => initial.clone().unwrap_or_default(),
                Mechanism::Login => {
                    let challenge = auth::decode_challenge(&r.text)?;
                    auth::login_response(user, secret, &challenge, round)
                }
                Mechanism::CramMd5 => {
                    let challenge = auth::decode_challenge(&r.text)?;
                    auth::cram_md5_response(user, secret, &challenge)
                }
                // A 334 here carries the error details; an empty line asks
                // for the final (failure) reply.
                Mechanism::XOAuth2 => String::new(),
            };
            r = self.secret_command(&response, "")?;
            round += 1;
        }
        Ok(r)
    }

    fn do_sendmail(&mut self, from: &str, to: &[&str], msg: &[u8]) -> Result<Reply> {
        self.rcpt_replies.clear();
        self.failed_step = Step::None;
        let from = quote_addr("sender", from)?;
        if to.is_empty() {
            return Err(Error::invalid("no recipients"));
        }
        let rcpts = to
            .iter()
            .map(|a| quote_addr("recipient", a))
            .collect::<Result<Vec<_>>>()?;
        self.transport()?;
        if let Some(refused) = self.ehlo_or_helo_if_needed()? {
            self.failed_step = Step::Helo;
            return Ok(refused);
        }
        let mail_params = self.mail_params(msg)?;
        let mail = command::line("mail", &format!("FROM:{from}{mail_params}"));
        let pipelined = self.pipelining && self.has_extn("PIPELINING");

        // MAIL
        self.queue(&mail);
        if pipelined {
            for r in &rcpts {
                self.queue(&command::line("rcpt", &format!("TO:{r}")));
            }
            self.queue(b"data\r\n");
        }
        let mail_reply = self.read_reply()?;
        let mail_ok = mail_reply.code == 250;
        if !pipelined && !mail_ok {
            return self.abort(Step::Mail, mail_reply);
        }

        // RCPT
        for r in &rcpts {
            if !pipelined {
                self.queue(&command::line("rcpt", &format!("TO:{r}")));
            }
            let reply = self.read_reply()?;
            self.rcpt_replies.push(reply);
        }
        let accepted = self
            .rcpt_replies
            .iter()
            .any(|r| matches!(r.code, 250 | 251));
        if !pipelined && !accepted {
            let last = self.rcpt_replies.last().cloned().unwrap_or_default();
            return self.abort(Step::Rcpt, last);
        }

        // DATA
        if !pipelined {
            self.queue(b"data\r\n");
        }
        let data_reply = self.read_reply()?;
        self.tracer.data(data_reply.code, &data_reply.text);
        if data_reply.code == 354 && !(mail_ok && accepted) {
            // A server that accepts DATA for a refused envelope gets an empty
            // body, so nothing is delivered.
            let r = self.command(data::END_OF_DATA.to_vec())?;
            self.tracer.data(r.code, &r.text);
        }
        if !mail_ok {
            return self.abort(Step::Mail, mail_reply);
        }
        if !accepted {
            let last = self.rcpt_replies.last().cloned().unwrap_or_default();
            return self.abort(Step::Rcpt, last);
        }
        if data_reply.code != 354 {
            return self.abort(Step::Data, data_reply);
        }

        self.send_body(msg)?;
        let r = self.read_reply()?;
        self.tracer.data(r.code, &r.text);
        if !r.is_positive() {
            return self.abort(Step::Message, r);
        }
        Ok(r)
    }

    /// MAIL parameters for this message: SIZE when the server states a
    /// limit, BODY=8BITMIME for 8-bit content. Refuses locally what the
    /// server has said it will refuse.
    fn mail_params(&self, msg: &[u8]) -> Result<String> {
        let mut params = String::new();
        let ext = self.extensions.as_ref();
        if let Some(ext) = ext.filter(|e| e.has("SIZE")) {
            if let Some(limit) = ext.size_limit() {
                if msg.len() as u64 > limit {
                    return Err(Error::new(
                        ErrorKind::TooLarge,
                        format!(
                            "message is {} bytes; the server accepts at most {limit}",
                            msg.len()
                        ),
                    ));
                }
            }
            params.push_str(&format!(" SIZE={}", msg.len()));
        }
        if data::has_8bit(msg) {
            if ext.is_some_and(|e| e.has("8BITMIME")) {
                params.push_str(" BODY=8BITMIME");
            } else {
                return Err(Error::new(
                    ErrorKind::NotSupported,
                    "message has 8-bit bytes but the server does not offer 8BITMIME",
                ));
            }
        }
        Ok(params)
    }

    /// Ends a refused transaction as smtplib does: 421 closes the
    /// connection, anything else is followed by RSET.
    fn abort(&mut self, step: Step, reply: Reply) -> Result<Reply> {
        self.failed_step = step;
        if reply.code == 421 {
            self.close();
        } else if self.transport.is_some() {
            let answer = self.last_reply.clone();
            self.simple("rset", "")?;
            // The caller asked for the transaction, not the RSET.
            self.last_reply = answer;
        }
        self.last_reply = Some(reply.clone());
        Ok(reply)
    }

    /// Writes the encoded body and its end marker; small bodies (and the last
    /// piece of a large one) leave in the same write as the marker.
    fn send_body(&mut self, msg: &[u8]) -> Result<()> {
        let mut enc = DataEncoder::for_data();
        let mut out = std::mem::take(&mut self.wbuf);
        out.clear();
        let mut pieces = msg.chunks(BODY_CHUNK).peekable();
        let mut result = Ok(());
        if pieces.peek().is_none() {
            enc.finish(&mut out);
            result = self.write_traced(&out);
        }
        while let Some(piece) = pieces.next() {
            out.clear();
            enc.encode(piece, &mut out);
            if pieces.peek().is_none() {
                enc.finish(&mut out);
            }
            result = self.write_traced(&out);
            if result.is_err() {
                break;
            }
        }
        out.clear();
        self.wbuf = out;
        result
    }

    fn write_traced(&mut self, bytes: &[u8]) -> Result<()> {
        self.tracer.send(bytes);
        let r = self.transport()?.write_all(bytes);
        if r.is_err() {
            self.close();
        }
        r
    }

    fn simple(&mut self, verb: &str, args: &str) -> Result<Reply> {
        self.command(command::line(verb, args))
    }

    fn simple_with_arg(&mut self, verb: &str, what: &str, arg: &str) -> Result<Reply> {
        check_arg(what, arg)?;
        self.simple(verb, arg)
    }

    /// Queues a command line and reads its reply.
    fn command(&mut self, line: Vec<u8>) -> Result<Reply> {
        self.transport()?;
        self.queue(&line);
        self.read_reply()
    }

    /// Like `command`, but the transcript shows only `shown`.
    fn secret_command(&mut self, line: &str, shown: &str) -> Result<Reply> {
        self.transport()?;
        self.tracer.send_redacted(shown);
        self.wbuf.extend_from_slice(line.as_bytes());
        self.wbuf.extend_from_slice(b"\r\n");
        self.read_reply()
    }

    fn queue(&mut self, line: &[u8]) {
        self.tracer.send(line);
        self.wbuf.extend_from_slice(line);
    }

    fn flush(&mut self) -> Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.wbuf);
        let r = self.transport()?.write_all(&buf);
        self.wbuf = buf;
        self.wbuf.clear();
        if r.is_err() {
            self.close();
        }
        r
    }

    /// Flushes queued commands, then reads the next reply within one timeout.
    /// A failure here leaves the stream out of step, so it closes.
    fn read_reply(&mut self) -> Result<Reply> {
        self.flush()?;
        let deadline = Instant::now() + self.timeout;
        let mut parser = ReplyParser::new();
        if !self.transport()?.has_line() {
            self.waits += 1;
        }
        let result = loop {
            let t = self.transport()?;
            let line = match t.read_line(deadline) {
                Ok(l) => l,
                Err(e) => break Err(e),
            };
            self.tracer.reply_line(&line);
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            match parser.push_line(text) {
                Ok(Some(reply)) => break Ok(reply),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(reply) => {
                self.tracer.reply(reply.code, &reply.text);
                self.last_reply = Some(reply.clone());
                Ok(reply)
            }
            Err(e) => {
                self.close();
                Err(e)
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}
