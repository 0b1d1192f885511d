//! The session and its verbs: the caller's settings, the connection while
//! one is open, and the results of the last calls.
//!
//! Commands are queued in the connection's write buffer together with the
//! replies they expect, and flushed when the next reply is needed.
//! Lock-step is a queue one deep; PIPELINING lets MAIL, every RCPT and DATA
//! share a write (see `transaction.rs`).

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cancel::Canceller;
use super::command::{self, check_arg, check_hostname, quote_addr};
use super::connection::Connection;
use super::error::{Error, ErrorKind, Result};
use super::extensions::Extensions;
use super::hostname;
use super::outcome::{Delivery, Outcome, Step};
use super::params::{Dsn, Envelope, Offers, ParamList};
use super::reply::Reply;
use super::sasl::{self, Mechanism};
use super::settings::{Settings, TlsPolicy};
use super::trace::{TraceSink, Tracer};
use super::transaction::{Body, Message, MessageSource, OwnedMessage, SliceSource};
use super::transport::{self, ConnectOptions, Transport};

/// smtplib's limit on AUTH challenge rounds.
const MAX_AUTH_ROUNDS: usize = 5;

/// What the last calls left to read.
#[derive(Debug, Default)]
struct Results {
    last_reply: Option<Reply>,
    last_error: Option<Error>,
    last_outcome: Outcome,
    failed_step: Step,
    batch: Vec<Outcome>,
    /// How many times the session waited on the network for a reply.
    waits: u64,
    /// The replies to the caller's own RCPT verbs since its last MAIL.
    verb_rcpts: Vec<Reply>,
}

#[derive(Debug)]
pub struct Session {
    pub(crate) settings: Settings,
    pub(crate) tracer: Tracer,
    pub(crate) conn: Option<Connection>,
    results: Results,
    batch_queue: Vec<OwnedMessage>,
    cancel: Arc<Canceller>,
    /// Set while the transaction engine runs: it files replies itself, and
    /// after a failed write reads what already arrived before closing.
    pub(crate) in_transaction: bool,
    /// What the last connection had sent when it closed.
    sent_at_close: u64,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    pub fn new() -> Self {
        Session {
            settings: Settings::default(),
            tracer: Tracer::default(),
            conn: None,
            results: Results::default(),
            batch_queue: Vec::new(),
            cancel: Arc::default(),
            in_transaction: false,
            sent_at_close: 0,
        }
    }

    // ---- settings -------------------------------------------------------

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.settings.timeout = timeout;
    }

    pub fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    /// Bounds the writing of one whole message body (DATA or every BDAT
    /// chunk of it, from its first byte to its end) and the wait for its
    /// final reply; `None`: the timeout.
    pub fn set_body_timeout(&mut self, timeout: Option<Duration>) {
        self.settings.body_timeout = timeout;
    }

    pub fn body_timeout(&self) -> Duration {
        self.settings.body_timeout()
    }

    /// The local address (and port; 0 for any) to connect from; `None`
    /// lets the system choose. Resolved addresses of the other family are
    /// skipped.
    pub fn set_source_address(&mut self, address: Option<&str>, port: u16) -> Result<()> {
        self.settings.source = match address {
            None => None,
            Some(a) => {
                check_arg("source address", a)?;
                let ip: IpAddr = a.parse().map_err(|_| {
                    Error::invalid(format!("source address {a:?} is not an IP address"))
                })?;
                Some(SocketAddr::new(ip, port))
            }
        };
        Ok(())
    }

    /// What another thread uses to cancel this session's call in flight.
    pub fn canceller(&self) -> Arc<Canceller> {
        self.cancel.clone()
    }

    pub fn set_debuglevel(&mut self, level: i32) {
        self.tracer.set_level(level);
    }

    pub fn set_trace_sink(&mut self, sink: Option<TraceSink>) {
        self.tracer.set_sink(sink);
    }

    pub fn set_tls_verify(&mut self, verify: bool) {
        self.settings.tls.verify = verify;
    }

    pub fn set_ca_file(&mut self, path: Option<String>) {
        self.settings.tls.ca_file = path;
    }

    pub fn set_local_hostname(&mut self, name: Option<&str>) -> Result<()> {
        if let Some(n) = name {
            check_hostname("local host name", n)?;
        }
        self.settings.local_hostname = name.map(str::to_string);
        Ok(())
    }

    /// Whether `sendmail` pipelines when the server offers PIPELINING.
    pub fn set_pipelining(&mut self, on: bool) {
        self.settings.pipelining = on;
    }

    /// Whether bodies go as BDAT chunks when the server offers CHUNKING
    /// (and PIPELINING). On by default.
    pub fn set_chunking(&mut self, on: bool) {
        self.settings.chunking = on;
    }

    /// Send bodies as BODY=BINARYMIME over BDAT, untouched (no line-ending
    /// normalization). Messages fail with `NotSupported` when the server
    /// does not offer BINARYMIME and CHUNKING.
    pub fn set_binarymime(&mut self, on: bool) {
        self.settings.binarymime = on;
    }

    /// Speak LMTP (RFC 2033): LHLO instead of EHLO, and one reply after
    /// the body for each accepted recipient.
    pub fn set_lmtp(&mut self, on: bool) {
        self.settings.lmtp = on;
    }

    /// smtplib's `initial_response_ok`: whether AUTH carries the first
    /// response of mechanisms that have one (PLAIN, XOAUTH2). On by default.
    pub fn set_initial_response(&mut self, on: bool) {
        self.settings.initial_response = on;
    }

    /// DSN parameters for the messages sent from now on; `None` for none.
    pub fn set_dsn(&mut self, dsn: Option<Dsn>) -> Result<()> {
        if let Some(d) = &dsn {
            d.validate()?;
        }
        self.settings.dsn = dsn;
        Ok(())
    }

    /// The caller's MAIL FROM parameters for the messages sent from now on
    /// (smtplib's `mail_options`); empty clears.
    pub fn set_mail_options<S: AsRef<str>>(&mut self, opts: &[S]) -> Result<()> {
        self.settings.mail_options = ParamList::new(opts)?;
        Ok(())
    }

    /// The caller's RCPT TO parameters (smtplib's `rcpt_options`).
    pub fn set_rcpt_options<S: AsRef<str>>(&mut self, opts: &[S]) -> Result<()> {
        self.settings.rcpt_options = ParamList::new(opts)?;
        Ok(())
    }

    pub fn set_tls_policy(&mut self, policy: TlsPolicy) {
        self.settings.tls_policy = policy;
    }

    pub fn tls_policy(&self) -> TlsPolicy {
        self.settings.tls_policy
    }

    /// Allow AUTH over an unencrypted connection to a non-loopback host.
    pub fn set_allow_insecure_auth(&mut self, on: bool) {
        self.settings.allow_insecure_auth = on;
    }

    // ---- state ----------------------------------------------------------

    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    pub fn is_tls(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.transport.is_tls())
    }

    pub fn last_reply(&self) -> Option<&Reply> {
        self.results.last_reply.as_ref()
    }

    /// The failure of the most recent call; `None` when it succeeded or the
    /// server answered (a refusal is an answer, not an error).
    pub fn last_error(&self) -> Option<&Error> {
        self.results.last_error.as_ref()
    }

    /// Records a failure detected outside the core (e.g. by the FFI layer's
    /// argument checks), so that `last_error` describes it.
    pub fn record_error(&mut self, e: Error) {
        self.results.last_error = Some(e);
    }

    pub fn extensions(&self) -> Option<&Extensions> {
        self.conn.as_ref().and_then(|c| c.extensions.as_ref())
    }

    pub fn has_extn(&self, name: &str) -> bool {
        self.conn.as_ref().is_some_and(|c| c.has_extn(name))
    }

    /// The server's answer to each recipient of the last transaction.
    pub fn rcpt_replies(&self) -> &[Reply] {
        &self.results.last_outcome.rcpts
    }

    /// LMTP: each recipient's delivery reply in the last transaction
    /// (`None` for refused recipients); empty when not LMTP.
    pub fn lmtp_replies(&self) -> &[Option<Reply>] {
        &self.results.last_outcome.lmtp
    }

    /// Every reply of the last `sendmail`, by step.
    pub fn last_outcome(&self) -> &Outcome {
        &self.results.last_outcome
    }

    /// One `Outcome` per message of the last batch sent.
    pub fn batch_results(&self) -> &[Outcome] {
        &self.results.batch
    }

    /// How many messages are queued for the next `batch_send`.
    pub fn batch_queued(&self) -> usize {
        self.batch_queue.len()
    }

    pub fn failed_step(&self) -> Step {
        self.results.failed_step
    }

    /// How many times the session waited on the network for a reply.
    pub fn waits(&self) -> u64 {
        self.results.waits
    }

    // ---- verbs ----------------------------------------------------------

    /// Connects and reads the greeting. A greeting other than 220 is
    /// returned and the connection closed, as smtplib does.
    pub fn connect(&mut self, host: &str, port: u16) -> Result<Reply> {
        self.run(|s| {
            let implicit = s.settings.tls_policy == TlsPolicy::Implicit;
            let greeting = s.open(host, port, implicit)?;
            if greeting.code == 220 {
                s.apply_tls_policy()?;
            }
            Ok(greeting)
        })
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

    /// LMTP's greeting (RFC 2033): switches the session to LMTP, then
    /// LHLO, parsed as EHLO's reply.
    pub fn lhlo(&mut self, name: Option<&str>) -> Result<Reply> {
        self.set_lmtp(true);
        self.ehlo(name)
    }

    pub fn starttls(&mut self) -> Result<Reply> {
        self.run(|s| s.do_starttls())
    }

    /// AUTH with the best mechanism both sides support, as smtplib's
    /// `login`.
    pub fn login(&mut self, user: &str, password: &str) -> Result<Reply> {
        self.run(|s| s.do_login(user, password))
    }

    /// Sends one message; every recipient's answer is in `rcpt_replies`
    /// afterwards and `failed_step` tells which step a refusal came from.
    pub fn sendmail(&mut self, from: &str, to: &[&str], msg: &[u8]) -> Result<Reply> {
        self.send_one(Message {
            from,
            to: to.to_vec(),
            body: Body::Bytes(msg),
        })
    }

    /// Like `sendmail`, pulling the body from `reader` in bounded chunks,
    /// so memory stays constant whatever the size. `size_hint` is announced
    /// as SIZE= when given.
    pub fn sendmail_stream(
        &mut self,
        from: &str,
        to: &[&str],
        reader: &mut dyn Read,
        size_hint: Option<u64>,
    ) -> Result<Reply> {
        self.send_one(Message {
            from,
            to: to.to_vec(),
            body: Body::Stream { reader, size_hint },
        })
    }

    /// Queues a message (copied) for `batch_send`. Addresses are checked now.
    pub fn batch_add(&mut self, from: &str, to: &[&str], body: &[u8]) -> Result<()> {
        self.run(|s| {
            check_envelope(from, to)?;
            s.batch_queue.push(OwnedMessage {
                from: from.to_string(),
                to: to.iter().map(|t| t.to_string()).collect(),
                body: body.to_vec(),
            });
            Ok(())
        })
    }

    /// Sends every queued message, pipelined across messages when the
    /// server allows; `batch_results` has one outcome per message. Returns
    /// `Some(refusal)` when neither EHLO nor HELO was accepted.
    pub fn batch_send(&mut self) -> Result<Option<Reply>> {
        let queue = std::mem::take(&mut self.batch_queue);
        let mut source = SliceSource::new(&queue);
        let result = self.batch_send_from(&mut source);
        // Every queued message gets an outcome: those never tried were
        // not sent.
        if let Err(e) = &result {
            let untried = queue.len().saturating_sub(self.results.batch.len());
            self.results
                .batch
                .extend(std::iter::repeat_n(Outcome::not_sent(e.clone()), untried));
        }
        result
    }

    /// Like `batch_send`, with messages pulled from `source`.
    pub fn batch_send_from<'m>(
        &mut self,
        source: &mut dyn MessageSource<'m>,
    ) -> Result<Option<Reply>> {
        // Cleared before anything can fail, a cancel at entry included:
        // results are never the previous batch's.
        self.results.batch.clear();
        self.run(|s| {
            s.conn()?;
            if let Some(refused) = s.ehlo_or_helo_if_needed()? {
                return Ok(Some(refused));
            }
            let mut out = Vec::new();
            let result = s.run_transactions(source, &mut out);
            s.results.batch = out;
            result.map(|_| None)
        })
    }

    /// Forgets queued messages and the last batch's results.
    pub fn batch_clear(&mut self) {
        self.batch_queue.clear();
        self.results.batch.clear();
    }

    /// AUTH with one named built-in mechanism (PLAIN, LOGIN, CRAM-MD5,
    /// XOAUTH2, …; see `sasl::BUILTIN`); for XOAUTH2, `secret` is the OAuth
    /// 2.0 access token.
    pub fn auth(&mut self, mechanism: &str, user: &str, secret: &str) -> Result<Reply> {
        self.run(|s| {
            check_arg("user name", user)?;
            check_arg("secret", secret)?;
            let mech = sasl::builtin(mechanism, user, secret)
                .ok_or_else(|| Error::invalid(format!("unknown AUTH mechanism {mechanism:?}")))?;
            s.auth_with(mech)
        })
    }

    /// AUTH with a mechanism of the caller's (smtplib's `auth(mechanism,
    /// authobject)`).
    pub fn auth_mechanism(&mut self, mech: Box<dyn Mechanism + '_>) -> Result<Reply> {
        self.run(|s| s.auth_with(mech))
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

    /// Any command, as smtplib's `docmd`: `cmd` is one word followed by
    /// `args`, or a whole command line (`docmd("MAIL FROM:<a@b>")`) with
    /// `args` absent. Both are checked for CR/LF/NUL.
    pub fn docmd(&mut self, cmd: &str, args: Option<&str>) -> Result<Reply> {
        self.run(|s| {
            let line = command_line(cmd, args)?;
            s.command(line)
        })
    }

    /// MAIL FROM, as smtplib's `mail`: EHLO first if needed, the address
    /// quoted as `sendmail` quotes it (SMTPUTF8 or IDNA for non-ASCII, as
    /// `sendmail`), then `params` (one word each; `SMTPUTF8` or non-ASCII
    /// needs the extension). The caller's mail options are not added: the
    /// verb sends what it is given.
    pub fn mail(&mut self, from: &str, params: &[&str]) -> Result<Reply> {
        self.run(|s| {
            let params = ParamList::new(params)?;
            let mut env = Envelope::sender(from)?;
            if let Some(refused) = s.ehlo_or_helo_if_needed()? {
                return Ok(refused);
            }
            let offers = Offers(s.extensions());
            env.smtputf8(offers)?;
            env.caller_options(offers, &params, &ParamList::default())?;
            s.results.verb_rcpts.clear();
            s.command(env.mail_line())
        })
    }

    /// RCPT TO, as smtplib's `rcpt`; quoting and parameters as `mail`.
    pub fn rcpt(&mut self, to: &str, params: &[&str]) -> Result<Reply> {
        self.run(|s| {
            let params = ParamList::new(params)?;
            let mut env = Envelope::recipient(to)?;
            s.conn()?;
            let offers = Offers(s.extensions());
            env.smtputf8(offers)?;
            env.caller_options(offers, &ParamList::default(), &params)?;
            let line = env.rcpt_lines().remove(0);
            let r = s.command(line)?;
            s.results.verb_rcpts.push(r.clone());
            Ok(r)
        })
    }

    /// DATA, as smtplib's `data`, after `mail` and `rcpt`: on 354 the body
    /// (line endings normalized to CRLF, dots stuffed, the end marker
    /// added) and its final reply, returned. A refused DATA is returned and
    /// no body sent; `failed_step` says `Data` then, `Message` for a
    /// refused body; `last_outcome` says accepted, refused, not sent or
    /// unknown, as for `sendmail`. In LMTP, the reply of the last
    /// recipient; each is in `lmtp_replies`.
    pub fn data(&mut self, msg: &[u8]) -> Result<Reply> {
        self.results.last_outcome = Outcome::default();
        self.results.failed_step = Step::None;
        self.run(|s| {
            s.conn()?;
            let rcpts = s.results.verb_rcpts.clone();
            let (outcome, run) = s.data_after_verbs(Body::Bytes(msg), rcpts);
            s.results.last_outcome = outcome;
            let (step, reply) = match s.results.last_outcome.result() {
                Ok(answer) => answer,
                Err(e) => return Err(run.err().unwrap_or(e)),
            };
            s.results.failed_step = step;
            Ok(reply)
        })
    }

    /// Queues one command line, as smtplib's `putcmd` (a whole line in
    /// `cmd` with `args` absent, or a verb and its arguments); nothing is
    /// read. It goes out with the next read: `getreply` reads its reply, so
    /// several `putcmd`s then as many `getreply`s pipeline them.
    pub fn putcmd(&mut self, cmd: &str, args: Option<&str>) -> Result<()> {
        self.run(|s| {
            let line = command_line(cmd, args)?;
            s.conn()?;
            s.queue(&line);
            Ok(())
        })
    }

    /// Reads the next reply, as smtplib's `getreply`, writing first what
    /// `putcmd` queued.
    pub fn getreply(&mut self) -> Result<Reply> {
        self.run(|s| s.read_reply())
    }

    /// Closes the connection without QUIT.
    pub fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            self.sent_at_close = c.sent;
            c.close();
        }
    }

    // ---- internals ------------------------------------------------------

    /// Runs a verb: resets the per-call error, records a failure, and makes
    /// the reply the verb returns the last reply (whatever else it read).
    pub(crate) fn run<T: Answer>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.results.last_error = None;
        let result = self.cancel.check().and_then(|_| f(self));
        // A cancel lasts until the call it raced with returns.
        self.cancel.clear();
        if matches!(&result, Err(e) if e.kind == ErrorKind::Cancelled) {
            // The stream is out of step wherever the call stopped.
            self.close();
        }
        match &result {
            Ok(answer) => {
                if let Some(r) = answer.reply() {
                    self.results.last_reply = Some(r.clone());
                }
            }
            Err(e) => self.results.last_error = Some(e.clone()),
        }
        result
    }

    /// The open connection; a `State` error when there is none.
    pub(crate) fn conn(&mut self) -> Result<&mut Connection> {
        self.conn
            .as_mut()
            .ok_or_else(|| Error::state("not connected"))
    }

    fn conn_ref(&self) -> Option<&Connection> {
        self.conn.as_ref()
    }

    /// Bytes handed to the kernel on the current (or last) connection.
    pub(crate) fn bytes_sent(&self) -> u64 {
        self.conn.as_ref().map_or(self.sent_at_close, |c| c.sent)
    }

    fn open(&mut self, host: &str, port: u16, implicit_tls: bool) -> Result<Reply> {
        if host.starts_with('/') {
            check_arg("socket path", host)?;
        } else {
            check_hostname("host", host)?;
        }
        if self.conn.is_some() {
            return Err(Error::state("already connected; quit or close first"));
        }
        self.tracer.connect(host, port);
        let opts = ConnectOptions {
            timeout: self.settings.timeout,
            source: self.settings.source,
            cancel: self.cancel.clone(),
        };
        let t = if implicit_tls {
            transport::connect_tls(host, port, &opts, &self.settings.tls)?
        } else {
            Transport::connect(host, port, &opts)?
        };
        self.conn = Some(Connection::new(t, host));
        let greeting = self.read_reply()?;
        if greeting.code != 220 {
            self.close();
        }
        Ok(greeting)
    }

    fn ehlo_name(&self, name: Option<&str>) -> Result<String> {
        match name.or(self.settings.local_hostname.as_deref()) {
            Some(n) => {
                check_hostname("EHLO name", n)?;
                Ok(n.to_string())
            }
            None => Ok(hostname::local_hostname(
                self.conn_ref().and_then(|c| c.transport.local_addr()),
            )),
        }
    }

    /// EHLO, or LHLO in LMTP mode.
    fn do_ehlo(&mut self, name: Option<&str>) -> Result<Reply> {
        let verb = if self.settings.lmtp { "lhlo" } else { "ehlo" };
        let name = self.ehlo_name(name)?;
        self.conn()?.bdat_proven = false;
        let r = self.command(command::line(verb, &name))?;
        if let Some(c) = self.conn.as_mut() {
            c.extensions = (r.code == 250).then(|| Extensions::parse(&r));
        }
        Ok(r)
    }

    fn do_helo(&mut self, name: Option<&str>) -> Result<Reply> {
        let name = self.ehlo_name(name)?;
        let r = self.command(command::line("helo", &name))?;
        if let Some(c) = self.conn.as_mut() {
            c.helo_done = r.code == 250;
        }
        Ok(r)
    }

    /// EHLO (LHLO), falling back to HELO, unless one already succeeded.
    /// Returns the refusal when neither is accepted.
    pub(crate) fn ehlo_or_helo_if_needed(&mut self) -> Result<Option<Reply>> {
        if self.conn()?.greeted() {
            return Ok(None);
        }
        let r = self.do_ehlo(None)?;
        if r.code == 250 || self.settings.lmtp {
            return Ok((r.code != 250).then_some(r));
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
        let conn = self
            .conn
            .take()
            .ok_or_else(|| Error::state("not connected"))?;
        let Connection {
            transport, host, ..
        } = conn;
        if transport.buffered() > 0 {
            self.tracer.note(&format!(
                "discarding {} bytes received before TLS",
                transport.buffered()
            ));
        }
        // RFC 3207 §4.2: forget everything learnt before TLS — a new
        // Connection over the TLS stream starts with nothing.
        let t = transport.start_tls(&host, &self.settings.tls, self.settings.timeout)?;
        self.conn = Some(Connection::new(t, &host));
        Ok(r)
    }

    fn do_login(&mut self, user: &str, password: &str) -> Result<Reply> {
        check_arg("user name", user)?;
        check_arg("password", password)?;
        if let Some(refused) = self.ehlo_or_helo_if_needed()? {
            return Ok(refused);
        }
        self.check_auth_allowed()?;
        if !self.has_extn("AUTH") {
            return Err(Error::new(
                ErrorKind::NotSupported,
                "SMTP AUTH extension not supported by server",
            ));
        }
        let offered = self
            .extensions()
            .map(Extensions::auth_mechanisms)
            .unwrap_or_default();
        let usable: Vec<&str> = sasl::LOGIN_PREFERENCE
            .iter()
            .copied()
            .filter(|m| offered.iter().any(|o| o == m))
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
        for name in usable {
            let mech = sasl::builtin(name, user, password).expect("a built-in mechanism");
            let r = self.authenticate(mech)?;
            if matches!(r.code, 235 | 503) {
                return Ok(r);
            }
            last = Some(r);
        }
        Ok(last.expect("at least one mechanism was tried"))
    }

    /// EHLO if needed, the AUTH policy, the server's offer, then the
    /// exchange.
    fn auth_with(&mut self, mech: Box<dyn Mechanism + '_>) -> Result<Reply> {
        sasl::mechanism_name(mech.name())?;
        if let Some(refused) = self.ehlo_or_helo_if_needed()? {
            return Ok(refused);
        }
        self.check_auth_allowed()?;
        let offered = self
            .extensions()
            .map(Extensions::auth_mechanisms)
            .unwrap_or_default();
        if !offered.iter().any(|o| o.eq_ignore_ascii_case(mech.name())) {
            return Err(Error::new(
                ErrorKind::NotSupported,
                format!("server does not offer AUTH {}", mech.name()),
            ));
        }
        self.authenticate(mech)
    }

    /// One AUTH exchange; every line after the verb is redacted. A failure
    /// mid-exchange closes the connection: the next command would be read
    /// as a SASL response.
    fn authenticate(&mut self, mut mech: Box<dyn Mechanism + '_>) -> Result<Reply> {
        let verb = format!("AUTH {}", mech.name().to_ascii_uppercase());
        let initial = if self.settings.initial_response {
            mech.initial_response()?
        } else {
            None
        };
        let mut r = match &initial {
            // RFC 4954 §4: an empty initial response is "=".
            Some(ir) if ir.is_empty() => self.secret_command(&format!("{verb} ="), &verb)?,
            Some(ir) => self.secret_command(&format!("{verb} {}", sasl::encode(ir)), &verb)?,
            None => self.command(command::line(&verb, ""))?,
        };
        let mut round = 0;
        while r.code == 334 {
            if round == MAX_AUTH_ROUNDS {
                self.close();
                return Err(Error::protocol("too many AUTH challenges"));
            }
            let challenge = if mech.challenges_are_base64() {
                sasl::decode_challenge(&r.text).inspect_err(|_| self.close())?
            } else {
                r.text.clone().into_bytes()
            };
            let response = match mech.step(&challenge) {
                Ok(resp) => resp,
                Err(e) => {
                    // RFC 4954 §4: "*" cancels the exchange; the server
                    // answers 501 and the connection stays in step.
                    let _ = self.secret_command("*", "*");
                    return Err(e);
                }
            };
            r = self.secret_command(&sasl::encode(&response), "")?;
            round += 1;
        }
        if r.code == 235 {
            // A server that did not prove itself (SCRAM) is not trusted
            // with the rest of the session, 235 or not.
            mech.finish().inspect_err(|_| self.close())?;
        }
        Ok(r)
    }

    /// Connect-time TLS for the Opportunistic and Required policies: EHLO
    /// (LHLO for LMTP), STARTTLS, EHLO. Under Required nothing past EHLO is
    /// sent in clear, and any failure is `Insecure` (the detail stays in
    /// the message).
    fn apply_tls_policy(&mut self) -> Result<()> {
        let required = match self.settings.tls_policy {
            TlsPolicy::Opportunistic => false,
            TlsPolicy::Required => true,
            TlsPolicy::Manual | TlsPolicy::Implicit => return Ok(()),
        };
        let refuse = |s: &mut Self, why: String| {
            s.close();
            Err(Error::new(ErrorKind::Insecure, why))
        };
        let ehlo = self.do_ehlo(None)?;
        if ehlo.code != 250 {
            return if required {
                refuse(
                    self,
                    format!("TLS required but EHLO was refused ({})", ehlo.code),
                )
            } else {
                Ok(())
            };
        }
        if !self.has_extn("STARTTLS") {
            return if required {
                refuse(
                    self,
                    "TLS required but the server does not offer STARTTLS".into(),
                )
            } else {
                Ok(())
            };
        }
        let r = match self.do_starttls() {
            Ok(r) => r,
            Err(e) if required && matches!(e.kind, ErrorKind::Tls | ErrorKind::TlsVerify) => {
                return refuse(self, format!("TLS required but STARTTLS failed: {e}"));
            }
            Err(e) => return Err(e),
        };
        if r.code != 220 {
            return if required {
                refuse(
                    self,
                    format!(
                        "TLS required but STARTTLS was refused ({} {})",
                        r.code, r.text
                    ),
                )
            } else {
                Ok(())
            };
        }
        self.do_ehlo(None)?;
        Ok(())
    }

    /// Credentials go only over TLS, to a loopback peer or over a UNIX
    /// socket, unless the caller explicitly allowed otherwise (as Go's
    /// PlainAuth).
    fn check_auth_allowed(&self) -> Result<()> {
        let t = self.conn_ref().map(|c| &c.transport);
        let peer = t.and_then(Transport::peer_addr).map(|a| a.ip());
        let local = t.is_some_and(Transport::is_unix);
        if local || auth_allowed(self.is_tls(), peer, self.settings.allow_insecure_auth) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Insecure,
                "refusing to send credentials over an unencrypted connection to a \
                 non-loopback host: call starttls first, or allow insecure AUTH explicitly",
            ))
        }
    }

    /// One message, as a verb: whatever stops the call — a cancel before it
    /// began included — the message gets an outcome of its own, never the
    /// last message's.
    fn send_one(&mut self, msg: Message<'_>) -> Result<Reply> {
        self.results.last_outcome = Outcome::default();
        self.results.failed_step = Step::None;
        let result = self.run(|s| s.transact_one(msg));
        if let Err(e) = &result {
            if self.results.last_outcome.delivery() == Delivery::None {
                self.results.last_outcome = Outcome::not_sent(e.clone());
            }
        }
        result
    }

    fn transact_one(&mut self, msg: Message<'_>) -> Result<Reply> {
        let greeted = self.greet_for_message(&msg)?;
        if let Some(refused) = greeted {
            self.results.failed_step = Step::Helo;
            self.results.last_outcome = Outcome::not_sent(Error::new(
                ErrorKind::Protocol,
                format!("EHLO and HELO refused ({})", refused.code),
            ));
            return Ok(refused);
        }
        let mut one = Some(msg);
        let mut source = || Ok(one.take());
        let mut out = Vec::with_capacity(1);
        let run = self.run_transactions(&mut source, &mut out);
        self.results.last_outcome = out.pop().unwrap_or_default();
        let (step, reply) = match self.results.last_outcome.result() {
            Ok(answer) => answer,
            Err(e) => return Err(run.err().unwrap_or(e)),
        };
        self.results.failed_step = step;
        if step == Step::Message && self.is_connected() {
            // smtplib resets after a refused message; the caller wants the
            // refusal, not the RSET's reply (nor its failure: a server that
            // hangs up here has already said what it had to).
            let _ = self.simple("rset", "");
        }
        Ok(reply)
    }

    /// What a message needs before its transaction: a connection and a
    /// greeting (the refusal when neither EHLO nor HELO was accepted).
    fn greet_for_message(&mut self, msg: &Message<'_>) -> Result<Option<Reply>> {
        // Nothing is sent, not even EHLO, for a malformed envelope (once
        // EHLO is done, the engine checks it before sending).
        if !self.conn_ref().is_some_and(Connection::greeted) {
            check_envelope(msg.from, &msg.to)?;
        }
        self.conn()?;
        self.ehlo_or_helo_if_needed()
    }

    fn simple(&mut self, verb: &str, args: &str) -> Result<Reply> {
        self.command(command::line(verb, args))
    }

    fn simple_with_arg(&mut self, verb: &str, what: &str, arg: &str) -> Result<Reply> {
        check_arg(what, arg)?;
        self.simple(verb, arg)
    }

    /// Queues a command line and reads its reply.
    pub(crate) fn command(&mut self, line: Vec<u8>) -> Result<Reply> {
        self.conn()?;
        self.queue(&line);
        self.read_reply()
    }

    /// Like `command`, but the transcript shows only `shown`.
    fn secret_command(&mut self, line: &str, shown: &str) -> Result<Reply> {
        let c = self.conn()?;
        c.wbuf.extend_from_slice(line.as_bytes());
        c.wbuf.extend_from_slice(b"\r\n");
        self.tracer.send_redacted(shown);
        self.read_reply()
    }

    /// Queues a line for the next write (nothing when not connected: the
    /// caller's next read reports that).
    pub(crate) fn queue(&mut self, line: &[u8]) {
        if let Some(c) = self.conn.as_mut() {
            c.queue(&mut self.tracer, line);
        }
    }

    /// Writes what is queued within one timeout (or the body's deadline).
    /// A failed write closes the connection, except inside the transaction
    /// engine, which first reads the replies already on their way (see
    /// `run_transactions`).
    pub(crate) fn flush(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.settings.timeout;
        let r = self.conn()?.flush(deadline);
        if r.is_err() && !self.in_transaction {
            self.close();
        }
        r
    }

    /// Flushes queued commands, then reads the next reply within one
    /// timeout. A failure here leaves the stream out of step, so it closes.
    pub(crate) fn read_reply(&mut self) -> Result<Reply> {
        self.flush()?;
        self.read_reply_by(Instant::now() + self.settings.timeout)
    }

    /// Reads the next reply, whole, before `deadline`; nothing is written.
    pub(crate) fn read_reply_by(&mut self, deadline: Instant) -> Result<Reply> {
        let c = self
            .conn
            .as_mut()
            .ok_or_else(|| Error::state("not connected"))?;
        if !c.transport.has_line() {
            self.results.waits += 1;
        }
        match c.read_reply_by(&mut self.tracer, deadline) {
            Ok(reply) => {
                if !self.in_transaction {
                    self.results.last_reply = Some(reply.clone());
                }
                Ok(reply)
            }
            Err(e) => {
                self.close();
                Err(e)
            }
        }
    }
}

/// What a verb returns, as far as `last_reply` is concerned.
pub(crate) trait Answer {
    fn reply(&self) -> Option<&Reply>;
}

impl Answer for Reply {
    fn reply(&self) -> Option<&Reply> {
        Some(self)
    }
}

impl Answer for Option<Reply> {
    fn reply(&self) -> Option<&Reply> {
        self.as_ref()
    }
}

impl Answer for () {
    fn reply(&self) -> Option<&Reply> {
        None
    }
}

/// A command line from `docmd`/`putcmd`'s arguments, as smtplib builds it:
/// `cmd`, then a space and `args` when there are any — so a whole line in
/// `cmd` works too. CR, LF and NUL are refused in either.
fn command_line(cmd: &str, args: Option<&str>) -> Result<Vec<u8>> {
    check_arg("command", cmd)?;
    if cmd.trim().is_empty() {
        return Err(Error::invalid("command must not be empty"));
    }
    let args = args.unwrap_or("");
    check_arg("command arguments", args)?;
    Ok(command::line(cmd, args))
}

/// Address syntax and CR/LF/NUL, before anything is sent.
fn check_envelope(from: &str, to: &[&str]) -> Result<()> {
    quote_addr("sender", from)?;
    if to.is_empty() {
        return Err(Error::invalid("no recipients"));
    }
    for t in to {
        quote_addr("recipient", t)?;
    }
    Ok(())
}

/// Whether AUTH may go out: over TLS, to a loopback peer, or when the
/// caller allowed clear text explicitly.
fn auth_allowed(tls: bool, peer: Option<IpAddr>, allow_insecure: bool) -> bool {
    tls || allow_insecure || peer.is_some_and(|ip| ip.is_loopback())
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_needs_tls_or_loopback_or_explicit_permission() {
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        let v6_remote: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(!auth_allowed(false, Some(remote), false));
        assert!(!auth_allowed(false, Some(v6_remote), false));
        assert!(!auth_allowed(false, None, false));
        assert!(auth_allowed(true, Some(remote), false));
        assert!(auth_allowed(false, Some(remote), true));
        assert!(auth_allowed(
            false,
            Some("127.0.0.1".parse().unwrap()),
            false
        ));
        assert!(auth_allowed(false, Some("::1".parse().unwrap()), false));
    }

    #[test]
    fn malformed_envelopes_are_refused_before_connecting() {
        let mut s = Session::new();
        let e = s.sendmail("a@b\r\nRSET", &["c@d"], b"x").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        let e = s.sendmail("a@b", &[], b"x").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        let e = s.sendmail("a@b", &["c@d"], b"x").unwrap_err();
        assert_eq!(e.kind, ErrorKind::State);
        assert_eq!(s.last_error().unwrap().kind, ErrorKind::State);
    }
}
