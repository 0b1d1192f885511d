//! The session: one connection's state machine and its verbs.
//!
//! Commands are queued in a write buffer together with a count of replies
//! they expect, and flushed when the next reply is needed. Lock-step is a
//! queue one deep; PIPELINING lets MAIL, every RCPT and DATA share a write.

use std::collections::VecDeque;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::auth::{self, Mechanism};
use super::cancel::Canceller;
use super::command::{self, check_arg, check_hostname, quote_addr};
use super::error::{Error, ErrorKind, Result};
use super::extensions::Extensions;
use super::hostname;
use super::reply::{Reply, ReplyParser};
use super::trace::{TraceSink, Tracer};
use super::transaction::{
    Body, Dsn, Expect, Message, MessageSource, Outcome, OwnedMessage, SliceSource,
};
use super::transport::{self, ConnectOptions, TlsSettings, Transport};

/// The default for the name lookup, connect, greeting, each reply, each
/// write and each message body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

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

/// When the session uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsPolicy {
    /// The caller decides (calls `starttls`), as smtplib.
    #[default]
    Manual,
    /// `connect` runs EHLO and STARTTLS when offered; clear text otherwise.
    Opportunistic,
    /// `connect` runs EHLO and STARTTLS, and fails (sending nothing more)
    /// when STARTTLS is not offered or does not succeed.
    Required,
    /// `connect` speaks TLS from the first byte (port 465).
    Implicit,
}

#[derive(Debug)]
pub struct Session {
    transport: Option<Transport>,
    host: String,
    timeout: Duration,
    /// The bound on one whole message body; `None`: `timeout`.
    body_timeout: Option<Duration>,
    /// The local address to connect from.
    source: Option<SocketAddr>,
    cancel: Arc<Canceller>,
    tls: TlsSettings,
    tls_policy: TlsPolicy,
    allow_insecure_auth: bool,
    local_hostname: Option<String>,
    pub(crate) pipelining: bool,
    pub(crate) chunking: bool,
    pub(crate) binarymime: bool,
    pub(crate) lmtp: bool,
    pub(crate) dsn: Option<Dsn>,
    /// An envelope was accepted since the last EHLO: BDAT chunks may be
    /// pipelined behind MAIL/RCPT (see `send_bdat`).
    pub(crate) bdat_proven: bool,
    pub(crate) tracer: Tracer,
    /// The server's EHLO extensions, once EHLO succeeded.
    extensions: Option<Extensions>,
    helo_done: bool,
    last_reply: Option<Reply>,
    last_error: Option<Error>,
    last_outcome: Outcome,
    failed_step: Step,
    batch_queue: Vec<OwnedMessage>,
    batch: Vec<Outcome>,
    pub(crate) wbuf: Vec<u8>,
    /// Bytes handed to the kernel on this connection (kept after a close):
    /// with a message's end offset, it tells whether its end of data left.
    pub(crate) sent: u64,
    /// While a message body is written, the deadline all its writes share,
    /// up to the write that carries its end; `body_open` until then.
    pub(crate) body_deadline: Option<Instant>,
    pub(crate) body_open: bool,
    /// A write failed inside the transaction engine, which closes the
    /// connection once it has read the replies already on their way.
    pub(crate) write_failed: bool,
    /// The replies that queued commands will get, oldest first.
    pub(crate) expects: VecDeque<Expect>,
    /// Set while the transaction engine files replies itself, so that
    /// `read_reply` need not copy each into `last_reply`.
    pub(crate) in_transaction: bool,
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
            body_timeout: None,
            source: None,
            cancel: Arc::default(),
            tls: TlsSettings::default(),
            tls_policy: TlsPolicy::default(),
            allow_insecure_auth: false,
            local_hostname: None,
            pipelining: true,
            chunking: true,
            binarymime: false,
            lmtp: false,
            dsn: None,
            bdat_proven: false,
            tracer: Tracer::default(),
            extensions: None,
            helo_done: false,
            last_reply: None,
            last_error: None,
            last_outcome: Outcome::default(),
            failed_step: Step::None,
            batch_queue: Vec::new(),
            batch: Vec::new(),
            wbuf: Vec::new(),
            sent: 0,
            body_deadline: None,
            body_open: false,
            write_failed: false,
            expects: VecDeque::new(),
            in_transaction: false,
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

    /// Bounds the writing of one whole message body (DATA or every BDAT
    /// chunk of it, from its first byte to its end); `None`: the timeout.
    pub fn set_body_timeout(&mut self, timeout: Option<Duration>) {
        self.body_timeout = timeout;
    }

    pub fn body_timeout(&self) -> Duration {
        self.body_timeout.unwrap_or(self.timeout)
    }

    /// The local address (and port; 0 for any) to connect from; `None`
    /// lets the system choose. Resolved addresses of the other family are
    /// skipped.
    pub fn set_source_address(&mut self, address: Option<&str>, port: u16) -> Result<()> {
        self.source = match address {
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

    /// Whether bodies go as BDAT chunks when the server offers CHUNKING
    /// (and PIPELINING). On by default.
    pub fn set_chunking(&mut self, on: bool) {
        self.chunking = on;
    }

    /// Send bodies as BODY=BINARYMIME over BDAT, untouched (no line-ending
    /// normalization). Messages fail with `NotSupported` when the server
    /// does not offer BINARYMIME and CHUNKING.
    pub fn set_binarymime(&mut self, on: bool) {
        self.binarymime = on;
    }

    /// Speak LMTP (RFC 2033): LHLO instead of EHLO, and one reply after
    /// the body for each accepted recipient.
    pub fn set_lmtp(&mut self, on: bool) {
        self.lmtp = on;
    }

    /// DSN parameters for the messages sent from now on; `None` for none.
    pub fn set_dsn(&mut self, dsn: Option<Dsn>) -> Result<()> {
        if let Some(d) = &dsn {
            d.validate()?;
        }
        self.dsn = dsn;
        Ok(())
    }

    pub fn set_tls_policy(&mut self, policy: TlsPolicy) {
        self.tls_policy = policy;
    }

    pub fn tls_policy(&self) -> TlsPolicy {
        self.tls_policy
    }

    /// Allow AUTH over an unencrypted connection to a non-loopback host.
    pub fn set_allow_insecure_auth(&mut self, on: bool) {
        self.allow_insecure_auth = on;
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
        &self.last_outcome.rcpts
    }

    /// LMTP: each recipient's delivery reply in the last transaction
    /// (`None` for refused recipients); empty when not LMTP.
    pub fn lmtp_replies(&self) -> &[Option<Reply>] {
        &self.last_outcome.lmtp
    }

    /// Every reply of the last `sendmail`, by step.
    pub fn last_outcome(&self) -> &Outcome {
        &self.last_outcome
    }

    /// One `Outcome` per message of the last batch sent.
    pub fn batch_results(&self) -> &[Outcome] {
        &self.batch
    }

    /// How many messages are queued for the next `batch_send`.
    pub fn batch_queued(&self) -> usize {
        self.batch_queue.len()
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
        self.run(|s| {
            let implicit = s.tls_policy == TlsPolicy::Implicit;
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

    /// Switches the session to LMTP (see `set_lmtp`) and sends LHLO.
    pub fn lhlo(&mut self, name: Option<&str>) -> Result<Reply> {
        self.set_lmtp(true);
        self.ehlo(name)
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
        self.run(|s| {
            s.send_one(Message {
                from,
                to: to.to_vec(),
                body: Body::Bytes(msg),
            })
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
        self.run(|s| {
            s.send_one(Message {
                from,
                to: to.to_vec(),
                body: Body::Stream { reader, size_hint },
            })
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
            let untried = queue.len().saturating_sub(self.batch.len());
            self.batch
                .extend(std::iter::repeat_n(Outcome::not_sent(e.clone()), untried));
        }
        result
    }

    /// Like `batch_send`, with messages pulled from `source`.
    pub fn batch_send_from<'m>(
        &mut self,
        source: &mut dyn MessageSource<'m>,
    ) -> Result<Option<Reply>> {
        self.run(|s| {
            s.batch.clear();
            s.transport()?;
            if let Some(refused) = s.ehlo_or_helo_if_needed()? {
                return Ok(Some(refused));
            }
            let mut out = Vec::new();
            let result = s.run_transactions(source, &mut out);
            s.batch = out;
            result.map(|_| None)
        })
    }

    /// Forgets queued messages and the last batch's results.
    pub fn batch_clear(&mut self) {
        self.batch_queue.clear();
        self.batch.clear();
    }

    /// AUTH with one named mechanism (PLAIN, LOGIN, CRAM-MD5, XOAUTH2);
    /// for XOAUTH2, `secret` is the OAuth 2.0 access token.
    pub fn auth(&mut self, mechanism: &str, user: &str, secret: &str) -> Result<Reply> {
        self.run(|s| {
            let mech = Mechanism::from_name(mechanism)
                .ok_or_else(|| Error::invalid(format!("unknown AUTH mechanism {mechanism:?}")))?;
            check_arg("user name", user)?;
            check_arg("secret", secret)?;
            if let Some(refused) = s.ehlo_or_helo_if_needed()? {
                return Ok(refused);
            }
            s.check_auth_allowed()?;
            let offered = s
                .extensions
                .as_ref()
                .map(Extensions::auth_mechanisms)
                .unwrap_or_default();
            if !offered.iter().any(|o| o == mech.name()) {
                return Err(Error::new(
                    ErrorKind::NotSupported,
                    format!("server does not offer AUTH {}", mech.name()),
                ));
            }
            s.authenticate(mech, user, secret)
        })
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
        self.bdat_proven = false;
        self.wbuf.clear();
        self.expects.clear();
        self.body_deadline = None;
        self.body_open = false;
        self.write_failed = false;
    }

    // ---- internals ------------------------------------------------------

    /// Runs a verb: resets the per-call error, records a failure, and makes
    /// the reply the verb returns the last reply (whatever else it read).
    fn run<T: Answer>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.last_error = None;
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
                    self.last_reply = Some(r.clone());
                }
            }
            Err(e) => self.last_error = Some(e.clone()),
        }
        result
    }

    pub(crate) fn transport(&mut self) -> Result<&mut Transport> {
        self.transport
            .as_mut()
            .ok_or_else(|| Error::state("not connected"))
    }

    fn open(&mut self, host: &str, port: u16, implicit_tls: bool) -> Result<Reply> {
        if host.starts_with('/') {
            check_arg("socket path", host)?;
        } else {
            check_hostname("host", host)?;
        }
        if self.transport.is_some() {
            return Err(Error::state("already connected; quit or close first"));
        }
        self.tracer.connect(host, port);
        let opts = ConnectOptions {
            timeout: self.timeout,
            source: self.source,
            cancel: self.cancel.clone(),
        };
        let t = if implicit_tls {
            transport::connect_tls(host, port, &opts, &self.tls)?
        } else {
            Transport::connect(host, port, &opts)?
        };
        self.transport = Some(t);
        // A new connection starts with nothing queued from an old one.
        self.wbuf.clear();
        self.expects.clear();
        self.sent = 0;
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
        self.bdat_proven = false;
        let verb = if self.lmtp { "lhlo" } else { "ehlo" };
        let r = self.command(command::line(verb, &name))?;
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
        if r.code == 250 || self.lmtp {
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
        self.check_auth_allowed()?;
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
                    // A bad challenge leaves the exchange mid-way: the next command
                    // would be read as a SASL response, so the connection closes.
                    let challenge =
                        auth::decode_challenge(&r.text).inspect_err(|_| self.close())?;
                    auth::login_response(user, secret, &challenge, round)
                }
                Mechanism::CramMd5 => {
                    // A bad challenge leaves the exchange mid-way: the next command
                    // would be read as a SASL response, so the connection closes.
                    let challenge =
                        auth::decode_challenge(&r.text).inspect_err(|_| self.close())?;
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

    /// Connect-time TLS for the Opportunistic and Required policies: EHLO,
    /// STARTTLS, EHLO. Under Required nothing past EHLO is sent in clear.
    fn apply_tls_policy(&mut self) -> Result<()> {
        let required = match self.tls_policy {
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
        let r = self.do_starttls()?;
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

    /// Credentials go only over TLS or to a loopback peer, unless the
    /// caller explicitly allowed otherwise (as Go's PlainAuth).
    fn check_auth_allowed(&self) -> Result<()> {
        let peer = self
            .transport
            .as_ref()
            .and_then(Transport::peer_addr)
            .map(|a| a.ip());
        // A UNIX-domain socket never leaves the machine.
        let local = self.transport.as_ref().is_some_and(Transport::is_unix);
        if local || auth_allowed(self.is_tls(), peer, self.allow_insecure_auth) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Insecure,
                "refusing to send credentials over an unencrypted connection to a \
                 non-loopback host: call starttls first, or allow insecure AUTH explicitly",
            ))
        }
    }

    fn send_one(&mut self, msg: Message<'_>) -> Result<Reply> {
        self.last_outcome = Outcome::default();
        self.failed_step = Step::None;
        let greeted = self.greet_for_message(&msg).inspect_err(|e| {
            self.last_outcome = Outcome::not_sent(e.clone());
        })?;
        if let Some(refused) = greeted {
            self.failed_step = Step::Helo;
            self.last_outcome = Outcome::not_sent(Error::new(
                ErrorKind::Protocol,
                format!("EHLO and HELO refused ({})", refused.code),
            ));
            return Ok(refused);
        }
        let mut one = Some(msg);
        let mut source = || Ok(one.take());
        let mut out = Vec::with_capacity(1);
        let run = self.run_transactions(&mut source, &mut out);
        self.last_outcome = out.pop().unwrap_or_default();
        let (step, reply) = match self.last_outcome.result() {
            Ok(answer) => answer,
            Err(e) => return Err(run.err().unwrap_or(e)),
        };
        self.failed_step = step;
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
        if self.extensions.is_none() && !self.helo_done {
            check_envelope(msg.from, &msg.to)?;
        }
        self.transport()?;
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

    pub(crate) fn queue(&mut self, line: &[u8]) {
        self.tracer.send(line);
        self.wbuf.extend_from_slice(line);
    }

    /// Writes the write buffer within one timeout, or within the deadline
    /// of the message body it holds. A failed write closes the connection,
    /// except inside the transaction engine, which first reads the replies
    /// already on their way (see `run_transactions`).
    pub(crate) fn flush(&mut self) -> Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let deadline = self
            .body_deadline
            .unwrap_or_else(|| Instant::now() + self.timeout);
        let buf = std::mem::take(&mut self.wbuf);
        let mut sent = self.sent;
        let r = self.transport()?.write_all(&buf, deadline, &mut sent);
        self.sent = sent;
        self.wbuf = buf;
        self.wbuf.clear();
        if !self.body_open {
            self.body_deadline = None;
        }
        if r.is_err() {
            if self.in_transaction {
                self.write_failed = true;
            } else {
                self.close();
            }
        }
        r
    }

    /// Flushes queued commands, then reads the next reply within one timeout.
    /// A failure here leaves the stream out of step, so it closes.
    pub(crate) fn read_reply(&mut self) -> Result<Reply> {
        self.flush()?;
        self.read_reply_by(Instant::now() + self.timeout)
    }

    /// Reads the next reply, whole, before `deadline`.
    pub(crate) fn read_reply_by(&mut self, deadline: Instant) -> Result<Reply> {
        let mut parser = ReplyParser::new();
        if !self.transport()?.has_line() {
            self.waits += 1;
        }
        let result = loop {
            let Some(t) = self.transport.as_mut() else {
                break Err(Error::state("not connected"));
            };
            let line = match t.read_line(deadline) {
                Ok(l) => l,
                Err(e) => break Err(e),
            };
            self.tracer.reply_line(line);
            let text = line.strip_suffix(b"\n").unwrap_or(line);
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
                if !self.in_transaction {
                    self.last_reply = Some(reply.clone());
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
trait Answer {
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
