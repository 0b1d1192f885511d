//! Nothing lost, nothing falsely reported: the library against real servers
//! behind a fault-injecting proxy (`tests/support/fault_proxy.rs`).
//!
//! Seeded runs send a mix of messages (1 KiB to ~600 KiB, some to refused
//! recipients) with `sendmail` (one at a time, reconnecting and resending
//! what was NotSent) and with the batch API, while the proxy resets, closes,
//! stalls, fragments and delays connections at offsets drawn from the seed.
//! Then what the server really delivered (Postfix Maildirs, aiosmtpd
//! captures, the smtp-sink dump) is held against what the library reported:
//! * Accepted: arrived exactly once, byte-exact;
//! * Refused, NotSent: did not arrive (so resending NotSent ones never
//!   makes a duplicate);
//! * Unknown: counted (it may or may not have arrived), never resent.
//!
//! Environment (defaults keep `cargo test` short):
//! * `SMTPC_FAULT_SEEDS` — seeds per server (default 2);
//! * `SMTPC_FAULT_SEED_BASE` — the first seed (default 1);
//! * `SMTPC_FAULT_SEED` — run this one seed only (replay);
//! * `SMTPC_FAULT_MESSAGES` — messages per seed (default 8);
//! * `SMTPC_FAULT_DEBUG` — print every connection's plan after each seed.
//!
//! Every failure names its seed and the command that replays it. Each
//! seeded test prints one `FAULT-TOTALS` line that `scripts/fault-run.sh`
//! adds up.

mod support;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use smtpc::client::data::reference::normalized;
use smtpc::client::transaction::Delivery;
use smtpc::{Session, Step};

use support::fault_proxy::{
    CutKind, Dir, FaultPlan, FaultProxy, Profile, Rng, Shaping, STALL_FREEZE,
};
use support::*;

/// The session's timeout through the proxy: short, so stalls end quickly.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Bounds one whole body; longer than TIMEOUT so that shaping (delays,
/// 1-byte writes) does not by itself fail large bodies.
const BODY_TIMEOUT: Duration = Duration::from_secs(4);
// A stall must outlast the client's patience, or it is only a delay.
const _: () = assert!(BODY_TIMEOUT.as_secs() < STALL_FREEZE.as_secs());
/// No call may take longer than this (per message in a batch): with the
/// timeouts above, a call that does has stopped honouring them.
const CALL_BOUND: Duration = Duration::from_secs(30);
/// Tries per message (the first send and resends after NotSent).
const MAX_ATTEMPTS: usize = 4;
/// Connection attempts per message before it is given up as not sent.
const MAX_CONNECTS: usize = 6;
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
const UNKNOWN: &str = "unknown@example.test";
/// Postfix refuses it at MAIL (501 5.1.7).
const BAD_SENDER: &str = "bad@[1.2.3]";
const SENDER: &str = "sender@client.test";

// ---------------------------------------------------------------------------
// Run configuration
// ---------------------------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

struct RunConfig {
    seeds: Vec<u64>,
    messages: usize,
}

fn run_config() -> RunConfig {
    let seeds = match env_u64("SMTPC_FAULT_SEED") {
        Some(one) => vec![one],
        None => {
            let n = env_u64("SMTPC_FAULT_SEEDS").unwrap_or(2);
            let base = env_u64("SMTPC_FAULT_SEED_BASE").unwrap_or(1);
            (base..base + n).collect()
        }
    };
    let messages = env_u64("SMTPC_FAULT_MESSAGES").unwrap_or(8).max(2) as usize;
    RunConfig { seeds, messages }
}

fn replay_hint(test: &str, seed: u64, messages: usize) -> String {
    format!(
        "replay: SMTPC_FAULT_SEED={seed} SMTPC_FAULT_MESSAGES={messages} \
         cargo test --release --test faults {test} -- --nocapture"
    )
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A stable number for a name (FNV-1a), to give each server its own streams.
fn tag(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

struct Msg {
    id: String,
    from: String,
    to: Vec<String>,
    body: Vec<u8>,
    /// What a server must store: the body with CRLF line ends.
    want: Vec<u8>,
    /// Where it lands when accepted (empty: nowhere, every recipient or
    /// the sender is refused).
    mailboxes: Vec<String>,
    /// The recipients a capturing server must list (the accepted ones).
    good_rcpts: Vec<String>,
}

/// A size from 1 KiB to ~600 KiB: mostly small, a fifth large enough for
/// several 256 KiB BDAT chunks or close to it.
fn draw_size(r: &mut Rng) -> usize {
    match r.below(100) {
        0..=54 => r.between(1024, 8 * 1024) as usize,
        55..=79 => r.between(8 * 1024, 100 * 1024) as usize,
        _ => r.between(100 * 1024, 600 * 1024) as usize,
    }
}

/// Headers with the id (to find arrivals), then lines of every kind the
/// encoder must handle: dot lines, lone dots, empty lines, bare LF ends,
/// and sometimes no final line break.
fn make_body(r: &mut Rng, id: &str, to: &[String], size: usize) -> Vec<u8> {
    let mut b = format!(
        "X-Fault-Id: {id}\r\nFrom: Fault Tester <{SENDER}>\r\nTo: {}\r\n\
         Subject: fault run {id}\r\nMessage-ID: <{id}@client.test>\r\n\
         Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n",
        to.join(", ")
    )
    .into_bytes();
    const CHARS: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_=+*#@!?()<>/";
    while b.len() < size {
        match r.below(100) {
            0..=4 => b.extend_from_slice(b"."),
            5..=14 => b.extend_from_slice(b".."),
            15..=17 => {}
            _ => {
                let len = r.below(100);
                for _ in 0..len {
                    b.push(*r.pick(CHARS));
                }
            }
        }
        if r.chance(5) {
            b.push(b'\n');
        } else {
            b.extend_from_slice(b"\r\n");
        }
    }
    if r.chance(10) {
        b.extend_from_slice(b"no final line break");
    }
    b
}

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

/// One message as a server stored it.
struct Arrival {
    mailbox: String,
    /// The message as CRLF bytes without the server's own trace headers.
    bytes: Vec<u8>,
    /// The recipients the server recorded, when it records them.
    rcpts: Option<Vec<String>>,
}

impl Arrival {
    fn id(&self) -> Option<String> {
        let needle = b"X-Fault-Id: ";
        let at = self.bytes.windows(needle.len()).position(|w| w == needle)? + needle.len();
        let end = self.bytes[at..].iter().position(|&b| b == b'\r')? + at;
        Some(show(&self.bytes[at..end]))
    }
}

/// A real server under test.
trait Target {
    fn name(&self) -> &'static str;
    fn port(&self) -> u16;
    /// Sender, recipients, mailboxes it lands in, recipients accepted.
    fn envelope(&self, r: &mut Rng) -> (String, Vec<String>, Vec<String>, Vec<String>);
    /// Per-seed session settings.
    fn configure(&self, r: &mut Rng, s: &mut Session) -> String;
    /// How many messages are stored (cheap: no contents).
    fn count(&self) -> usize;
    /// Messages still in the server's queue (not yet stored).
    fn busy(&self) -> usize {
        0
    }
    fn arrivals(&self) -> Vec<Arrival>;
    fn clear(&self);
    fn log_tail(&self) -> String;
}

fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

fn remove_files(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

struct PostfixTarget {
    pf: Postfix,
}

impl Target for PostfixTarget {
    fn name(&self) -> &'static str {
        "postfix"
    }
    fn port(&self) -> u16 {
        self.pf.submit
    }
    fn envelope(&self, r: &mut Rng) -> (String, Vec<String>, Vec<String>, Vec<String>) {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (from, to, boxes): (&str, Vec<String>, Vec<String>) = match r.below(100) {
            0..=39 => (SENDER, s(&[ALICE]), s(&["alice"])),
            40..=59 => (SENDER, s(&[BOB]), s(&["bob"])),
            60..=74 => (SENDER, s(&[ALICE, BOB]), s(&["alice", "bob"])),
            75..=84 => (SENDER, s(&[UNKNOWN]), vec![]),
            85..=94 => (SENDER, s(&[ALICE, UNKNOWN]), s(&["alice"])),
            _ => (BAD_SENDER, s(&[ALICE]), vec![]),
        };
        let good = to.iter().filter(|t| *t != UNKNOWN).cloned().collect();
        (from.to_string(), to, boxes, good)
    }
    fn configure(&self, r: &mut Rng, s: &mut Session) -> String {
        // Mostly BDAT (CHUNKING), pipelined or lock-step; some pipelined DATA.
        let chunking = r.chance(85);
        let pipelining = r.chance(75);
        s.set_chunking(chunking);
        s.set_pipelining(pipelining);
        format!("chunking={chunking} pipelining={pipelining}")
    }
    fn count(&self) -> usize {
        Postfix::USERS
            .iter()
            .map(|u| count_files(&self.pf.maildir(u).join("new")))
            .sum()
    }
    fn busy(&self) -> usize {
        let q = self.pf.dir.join("queue");
        ["maildrop", "incoming", "active", "deferred", "hold"]
            .iter()
            .map(|d| count_files(&q.join(d)))
            .sum()
    }
    fn arrivals(&self) -> Vec<Arrival> {
        let mut out = Vec::new();
        for user in Postfix::USERS {
            for m in self.pf.delivered(user) {
                out.push(Arrival {
                    mailbox: user.to_string(),
                    bytes: lf_to_crlf(strip_trace_headers(&m)),
                    rcpts: None,
                });
            }
        }
        out
    }
    fn clear(&self) {
        for user in Postfix::USERS {
            for sub in ["new", "cur"] {
                remove_files(&self.pf.maildir(user).join(sub));
            }
        }
    }
    fn log_tail(&self) -> String {
        let log = self.pf.maillog();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

struct AioTarget {
    server: Aiosmtpd,
}

impl Target for AioTarget {
    fn name(&self) -> &'static str {
        "aiosmtpd"
    }
    fn port(&self) -> u16 {
        self.server.port
    }
    fn envelope(&self, r: &mut Rng) -> (String, Vec<String>, Vec<String>, Vec<String>) {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let to = match r.below(100) {
            0..=49 => s(&["a@aio.test"]),
            50..=69 => s(&["a@aio.test", "b@aio.test"]),
            70..=84 => s(&[UNKNOWN]),
            _ => s(&["a@aio.test", UNKNOWN]),
        };
        let good: Vec<String> = to.iter().filter(|t| *t != UNKNOWN).cloned().collect();
        let boxes = if good.is_empty() {
            vec![]
        } else {
            vec!["capture".to_string()]
        };
        (SENDER.to_string(), to, boxes, good)
    }
    fn configure(&self, _r: &mut Rng, _s: &mut Session) -> String {
        "lock-step DATA (no PIPELINING offered)".to_string()
    }
    fn count(&self) -> usize {
        std::fs::read_dir(&self.server.capture_dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.ends_with(".json") && !n.contains(".tmp")
                    })
                    .count()
            })
            .unwrap_or(0)
    }
    fn arrivals(&self) -> Vec<Arrival> {
        self.server
            .messages()
            .into_iter()
            .map(|c| Arrival {
                mailbox: "capture".to_string(),
                bytes: c.data,
                rcpts: Some(c.rcpt_tos),
            })
            .collect()
    }
    fn clear(&self) {
        remove_files(&self.server.capture_dir);
    }
    fn log_tail(&self) -> String {
        let log = self.server.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

const DUMP_MARK: &str = "=====SMTPC-FAULT-DUMP=====";

/// smtp-sink with `-D`: each complete message appended to one dump file
/// (a connection lost mid-message dumps nothing).
struct SinkTarget {
    sink: SmtpSink,
    _dir: TempDir,
    dump: PathBuf,
}

impl SinkTarget {
    fn start() -> SinkTarget {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("faults-sink");
        // smtp-sink writes the dump as "nobody".
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let dump = dir.path().join("dump");
        let dump_s = dump.to_string_lossy().into_owned();
        let mark = format!("{DUMP_MARK}\\n");
        let sink = SmtpSink::start_with(&["-D", &dump_s, "-S", &mark]);
        SinkTarget {
            sink,
            _dir: dir,
            dump,
        }
    }

    fn records(&self) -> Vec<Vec<u8>> {
        let raw = std::fs::read(&self.dump).unwrap_or_default();
        let mark = format!("{DUMP_MARK}\n");
        let mut parts = Vec::new();
        let mut rest: &[u8] = &raw;
        while let Some(p) = rest.windows(mark.len()).position(|w| w == mark.as_bytes()) {
            parts.push(rest[..p].to_vec());
            rest = &rest[p + mark.len()..];
        }
        parts.push(rest.to_vec());
        parts.into_iter().skip(1).collect()
    }
}

impl Target for SinkTarget {
    fn name(&self) -> &'static str {
        "smtp-sink"
    }
    fn port(&self) -> u16 {
        self.sink.port
    }
    fn envelope(&self, r: &mut Rng) -> (String, Vec<String>, Vec<String>, Vec<String>) {
        let to: Vec<String> = if r.chance(70) {
            vec!["a@sink.test".into()]
        } else {
            vec!["a@sink.test".into(), "b@sink.test".into()]
        };
        (SENDER.to_string(), to.clone(), vec!["dump".to_string()], to)
    }
    fn configure(&self, r: &mut Rng, s: &mut Session) -> String {
        let pipelining = r.chance(85);
        s.set_pipelining(pipelining);
        format!("DATA, pipelining={pipelining}")
    }
    fn count(&self) -> usize {
        let raw = std::fs::read(&self.dump).unwrap_or_default();
        let mark = format!("{DUMP_MARK}\n");
        raw.windows(mark.len())
            .filter(|w| *w == mark.as_bytes())
            .count()
    }
    fn arrivals(&self) -> Vec<Arrival> {
        self.records()
            .into_iter()
            .map(|part| {
                // X-… records, a three-line Received:, the message (LF line
                // ends, unstuffed), then one empty line.
                let mut rcpts = Vec::new();
                let mut at = 0;
                let line_end = |at: usize| {
                    part[at..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(part.len(), |i| at + i + 1)
                };
                while at < part.len() {
                    let end = line_end(at);
                    let line = show(&part[at..end]);
                    at = end;
                    if let Some(v) = line.strip_prefix("X-Rcpt-Args: ") {
                        let a = v.trim().trim_start_matches('<');
                        rcpts.push(a.split('>').next().unwrap_or("").to_string());
                    } else if line.starts_with("Received: ") {
                        while at < part.len() && part[at] == b'\t' {
                            at = line_end(at);
                        }
                        break;
                    }
                }
                let body = &part[at..];
                let data = body.strip_suffix(b"\n").unwrap_or(body);
                Arrival {
                    mailbox: "dump".to_string(),
                    bytes: lf_to_crlf(data),
                    rcpts: Some(rcpts),
                }
            })
            .collect()
    }
    fn clear(&self) {
        // smtp-sink appends; an emptied file simply grows again.
        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&self.dump) {
            let _ = f.set_len(0);
        }
    }
    fn log_tail(&self) -> String {
        self.sink.log()
    }
}

/// Waits until the proxy has no connection left and the server's store has
/// not changed (and its queue is empty) for a while: what arrives after
/// that was never going to.
fn settle(target: &dyn Target, proxy: &FaultProxy, what: &str) {
    let t0 = Instant::now();
    let idle = proxy.wait_idle(SETTLE_TIMEOUT);
    let conns = || {
        proxy
            .reports()
            .iter()
            .map(|r| {
                format!(
                    "  conn {} [{}] fired {:?} forwarded {:?} finished {}",
                    r.index, r.plan, r.fired, r.forwarded, r.finished
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    if std::env::var_os("SMTPC_FAULT_DEBUG").is_some() {
        eprintln!("{what}: proxy idle after {:?}\n{}", t0.elapsed(), conns());
    }
    assert!(
        idle,
        "{what}: proxy connections still open after {SETTLE_TIMEOUT:?}:\n{}",
        conns()
    );
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut last = usize::MAX;
    let mut stable = 0;
    loop {
        let (busy, n) = (target.busy(), target.count());
        if busy == 0 && n == last {
            stable += 1;
            if stable >= 4 {
                return;
            }
        } else {
            stable = 0;
        }
        last = n;
        assert!(
            Instant::now() < deadline,
            "{what}: {} did not settle within {SETTLE_TIMEOUT:?} ({busy} queued); log:\n{}",
            target.name(),
            target.log_tail()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------

#[derive(Debug, Default, Clone)]
struct Totals {
    seeds: u64,
    messages: u64,
    attempts: u64,
    accepted: u64,
    refused: u64,
    not_sent: u64,
    unknown: u64,
    unknown_arrived: u64,
    resent: u64,
    notsent_attempts: u64,
    falsely_accepted: u64,
    refused_delivered: u64,
    notsent_delivered: u64,
    duplicates: u64,
    corrupt: u64,
    contract: u64,
    connections: u64,
    resets: u64,
    fins: u64,
    stalls: u64,
}

impl Totals {
    fn violations(&self) -> u64 {
        self.falsely_accepted
            + self.refused_delivered
            + self.notsent_delivered
            + self.duplicates
            + self.corrupt
            + self.contract
    }

    fn add(&mut self, o: &Totals) {
        macro_rules! sum {
            ($($f:ident),*) => { $( self.$f += o.$f; )* };
        }
        sum!(
            seeds,
            messages,
            attempts,
            accepted,
            refused,
            not_sent,
            unknown,
            unknown_arrived,
            resent,
            notsent_attempts,
            falsely_accepted,
            refused_delivered,
            notsent_delivered,
            duplicates,
            corrupt,
            contract,
            connections,
            resets,
            fins,
            stalls
        );
    }
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seeds={} messages={} attempts={} accepted={} refused={} not_sent={} unknown={} \
             unknown_arrived={} resent={} notsent_attempts={} falsely_accepted={} refused_delivered={} \
             notsent_delivered={} duplicates={} corrupt={} contract={} connections={} \
             resets={} fins={} stalls={}",
            self.seeds,
            self.messages,
            self.attempts,
            self.accepted,
            self.refused,
            self.not_sent,
            self.unknown,
            self.unknown_arrived,
            self.resent,
            self.notsent_attempts,
            self.falsely_accepted,
            self.refused_delivered,
            self.notsent_delivered,
            self.duplicates,
            self.corrupt,
            self.contract,
            self.connections,
            self.resets,
            self.fins,
            self.stalls
        )
    }
}

// ---------------------------------------------------------------------------
// One seed
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Sendmail,
    Batch,
}

#[derive(Debug, Clone)]
struct Attempt {
    api: Api,
    /// The proxy connection it went over.
    conn: u64,
    delivery: Delivery,
    detail: String,
    took: Duration,
}

struct SeedRun<'a> {
    target: &'a dyn Target,
    test: &'a str,
    seed: u64,
    n: usize,
    proxy: FaultProxy,
    settings: String,
    rng: Rng,
    msgs: Vec<Msg>,
    attempts: Vec<Vec<Attempt>>,
    violations: Vec<String>,
    totals: Totals,
}

impl SeedRun<'_> {
    fn open(&mut self) -> Option<Session> {
        let mut s = Session::new();
        s.set_timeout(TIMEOUT);
        s.set_body_timeout(Some(BODY_TIMEOUT));
        // The same settings on every connection of the seed.
        let mut r = Rng::derive(self.seed ^ tag(self.target.name()), 0xC0F1);
        self.settings = self.target.configure(&mut r, &mut s);
        match s.connect("127.0.0.1", self.proxy.port) {
            Ok(g) if g.code == 220 => {}
            _ => return None,
        }
        // batch_send and sendmail say EHLO when needed; sometimes do it first.
        if self.rng.chance(50) {
            match s.ehlo(None) {
                Ok(r) if r.code == 250 => {}
                _ => return None,
            }
        }
        Some(s)
    }

    fn conn(&self) -> u64 {
        self.proxy.connections().saturating_sub(1)
    }

    fn contract(&mut self, i: usize, what: String) {
        self.totals.contract += 1;
        let id = self.msgs[i].id.clone();
        self.violations.push(format!(
            "[{}] seed {}: contract: message {id} (#{i}): {what}\n  {}",
            self.target.name(),
            self.seed,
            replay_hint(self.test, self.seed, self.n)
        ));
    }

    /// One message at a time; after an error the connection is dropped and
    /// a NotSent message is sent again on a new one.
    fn run_sendmail(&mut self, which: Vec<usize>, sess: &mut Option<Session>) {
        for i in which {
            let mut connects = 0;
            while self.attempts[i].len() < MAX_ATTEMPTS && connects < MAX_CONNECTS {
                if sess.is_none() {
                    connects += 1;
                    *sess = self.open();
                    if sess.is_none() {
                        continue;
                    }
                }
                let s = sess.as_mut().unwrap();
                let m = &self.msgs[i];
                let to: Vec<&str> = m.to.iter().map(String::as_str).collect();
                let t0 = Instant::now();
                let res = s.sendmail(&m.from, &to, &m.body);
                let took = t0.elapsed();
                let d = s.last_outcome().delivery();
                let step = s.failed_step();
                let detail = match &res {
                    Ok(r) => format!("Ok({} {}) step={step:?}", r.code, r.text),
                    Err(e) => format!("Err({e})"),
                };
                let broken = res.is_err() || !s.is_connected();
                if broken {
                    s.close();
                    *sess = None;
                }
                let conn = self.conn();
                let bad = match (&res, d) {
                    (Ok(r), Delivery::Accepted) => {
                        !(200..300).contains(&r.code) || step != Step::None
                    }
                    (Ok(_), Delivery::Refused) => step == Step::None,
                    (Ok(_), _) => true,
                    (Err(_), Delivery::NotSent | Delivery::Unknown) => false,
                    (Err(_), _) => true,
                };
                if bad {
                    self.contract(i, format!("sendmail gave {detail} with delivery {d:?}"));
                }
                if took > CALL_BOUND {
                    self.contract(i, format!("sendmail took {took:?} ({detail})"));
                }
                self.attempts[i].push(Attempt {
                    api: Api::Sendmail,
                    conn,
                    delivery: d,
                    detail,
                    took,
                });
                if d != Delivery::NotSent {
                    break;
                }
            }
        }
    }

    /// Groups of 1..6 queued and sent with `batch_send`; NotSent ones go
    /// back in the queue for another connection.
    fn run_batch(&mut self, which: Vec<usize>, sess: &mut Option<Session>) {
        let mut pending: VecDeque<usize> = which.into();
        let mut connects = 0;
        let max_connects = MAX_CONNECTS * (pending.len() + 1);
        while !pending.is_empty() && connects < max_connects {
            if sess.is_none() {
                connects += 1;
                *sess = self.open();
                if sess.is_none() {
                    continue;
                }
            }
            let k = (self.rng.between(1, 6) as usize).min(pending.len());
            let group: Vec<usize> = pending.drain(..k).collect();
            let s = sess.as_mut().unwrap();
            for &i in &group {
                let m = &self.msgs[i];
                let to: Vec<&str> = m.to.iter().map(String::as_str).collect();
                let seed = self.seed;
                s.batch_add(&m.from, &to, &m.body).unwrap_or_else(|e| {
                    panic!("seed {seed}: batch_add refused valid message {}: {e}", m.id)
                });
            }
            let t0 = Instant::now();
            let res = s.batch_send();
            let took = t0.elapsed();
            let results: Vec<_> = s.batch_results().to_vec();
            let res_text = match &res {
                Ok(None) => "Ok".to_string(),
                Ok(Some(r)) => format!("Ok(refused {} {})", r.code, r.text),
                Err(e) => format!("Err({e})"),
            };
            if res.is_err() || !s.is_connected() {
                s.close();
                *sess = None;
            }
            let conn = self.conn();
            let bound = CALL_BOUND * group.len() as u32;
            if took > bound {
                self.contract(
                    group[0],
                    format!("batch_send of {} took {took:?} ({res_text})", group.len()),
                );
            }
            if results.len() != group.len() {
                self.contract(
                    group[0],
                    format!(
                        "batch_send ({res_text}) left {} outcome(s) for {} queued message(s)",
                        results.len(),
                        group.len()
                    ),
                );
            }
            for (j, &i) in group.iter().enumerate() {
                let d = results.get(j).map_or(Delivery::None, |o| o.delivery());
                let detail = match results.get(j).map(|o| o.result()) {
                    Some(Ok((step, r))) => format!("{step:?} {} {}", r.code, r.text),
                    Some(Err(e)) => format!("Err({e})"),
                    None => "no outcome".to_string(),
                };
                if d == Delivery::None {
                    self.contract(i, format!("batch outcome {j} is None ({detail})"));
                }
                self.attempts[i].push(Attempt {
                    api: Api::Batch,
                    conn,
                    delivery: d,
                    detail: format!("{detail} [batch_send {res_text}]"),
                    took,
                });
                if d == Delivery::NotSent && self.attempts[i].len() < MAX_ATTEMPTS {
                    pending.push_back(i);
                }
            }
        }
    }

    fn describe(&self, i: usize) -> String {
        let m = &self.msgs[i];
        let plans: BTreeMap<u64, String> = self
            .proxy
            .reports()
            .into_iter()
            .map(|r| {
                let fired = r
                    .fired
                    .map(|(k, d, at)| format!(" (fired: {k} {d} at byte {at})"))
                    .unwrap_or_default();
                (r.index, format!("{}{fired}", r.plan))
            })
            .collect();
        let mut s = format!(
            "message {} (#{i}, {} bytes, from {} to {:?}):",
            m.id,
            m.body.len(),
            m.from,
            m.to
        );
        for a in &self.attempts[i] {
            s.push_str(&format!(
                "\n    {:?} over connection {} [{}]: {:?} — {} ({:.1}s)",
                a.api,
                a.conn,
                plans.get(&a.conn).map_or("?", String::as_str),
                a.delivery,
                a.detail,
                a.took.as_secs_f64()
            ));
        }
        s
    }

    /// Holds every message's final report against what arrived.
    fn check(&mut self) {
        let mut by_id: BTreeMap<String, Vec<Arrival>> = BTreeMap::new();
        for a in self.target.arrivals() {
            let id = a.id().unwrap_or_else(|| {
                panic!(
                    "seed {}: a stored message without X-Fault-Id: {:?}",
                    self.seed,
                    show(&a.bytes[..a.bytes.len().min(300)])
                )
            });
            by_id.entry(id).or_default().push(a);
        }
        for i in 0..self.msgs.len() {
            let last = self.attempts[i].last().map(|a| a.delivery);
            let m = &self.msgs[i];
            let arrived = by_id.remove(&m.id).unwrap_or_default();
            self.totals.attempts += self.attempts[i].len() as u64;
            self.totals.resent += self.attempts[i].len().saturating_sub(1) as u64;
            self.totals.notsent_attempts += self.attempts[i]
                .iter()
                .filter(|a| a.delivery == Delivery::NotSent)
                .count() as u64;
            match last {
                Some(Delivery::Accepted) => self.totals.accepted += 1,
                Some(Delivery::Refused) => self.totals.refused += 1,
                Some(Delivery::Unknown) => self.totals.unknown += 1,
                // Never tried, or given up after NotSent every time.
                Some(Delivery::NotSent) | None => self.totals.not_sent += 1,
                // Already a contract violation; judged like Unknown.
                Some(Delivery::None) => self.totals.unknown += 1,
            }
            let accepted = last == Some(Delivery::Accepted);
            let maybe = matches!(last, Some(Delivery::Unknown | Delivery::None));
            let (lo, hi) = (accepted as usize, (accepted || maybe) as usize);
            let mut problems = Vec::new();
            if accepted && m.mailboxes.is_empty() {
                self.totals.falsely_accepted += 1;
                problems.push("reported Accepted, but the server refuses it".to_string());
            }
            for mb in &m.mailboxes {
                let n = arrived.iter().filter(|a| &a.mailbox == mb).count();
                if n < lo {
                    self.totals.falsely_accepted += 1;
                    problems.push(format!("reported Accepted, but not in {mb}"));
                } else if n > hi {
                    match last {
                        Some(Delivery::Refused) => self.totals.refused_delivered += 1,
                        Some(Delivery::NotSent) | None => self.totals.notsent_delivered += 1,
                        _ => self.totals.duplicates += 1,
                    }
                    problems.push(format!("{n} cop(ies) in {mb}, at most {hi} allowed"));
                }
            }
            if maybe && !arrived.is_empty() {
                self.totals.unknown_arrived += 1;
            }
            for a in &arrived {
                if !m.mailboxes.contains(&a.mailbox) {
                    match last {
                        Some(Delivery::Refused) => self.totals.refused_delivered += 1,
                        _ => self.totals.corrupt += 1,
                    }
                    problems.push(format!("arrived in {} where it does not belong", a.mailbox));
                }
                if a.bytes != m.want {
                    self.totals.corrupt += 1;
                    let at = a
                        .bytes
                        .iter()
                        .zip(&m.want)
                        .position(|(x, y)| x != y)
                        .unwrap_or(a.bytes.len().min(m.want.len()));
                    problems.push(format!(
                        "stored copy in {} differs: {} bytes, {} expected, first difference at {at}",
                        a.mailbox,
                        a.bytes.len(),
                        m.want.len()
                    ));
                }
                if let Some(rcpts) = &a.rcpts {
                    let norm = |v: &[String]| {
                        let mut v: Vec<String> = v.iter().map(|x| x.to_lowercase()).collect();
                        v.sort();
                        v
                    };
                    if norm(rcpts) != norm(&m.good_rcpts) {
                        self.totals.corrupt += 1;
                        problems.push(format!(
                            "stored with recipients {rcpts:?}, expected {:?}",
                            m.good_rcpts
                        ));
                    }
                }
            }
            if !problems.is_empty() {
                let d = self.describe(i);
                self.violations.push(format!(
                    "[{}] seed {}: {}\n  {d}\n  {}",
                    self.target.name(),
                    self.seed,
                    problems.join("; "),
                    replay_hint(self.test, self.seed, self.n)
                ));
            }
        }
        for (id, a) in by_id {
            self.totals.corrupt += 1;
            self.violations.push(format!(
                "[{}] seed {}: {} stored message(s) with unknown id {id}",
                self.target.name(),
                self.seed,
                a.len()
            ));
        }
    }
}

/// One seed against one server: messages, sends, settling, the check.
fn run_seed(target: &dyn Target, test: &str, seed: u64, n: usize) -> (Totals, Vec<String>) {
    let started = Instant::now();
    let stream = seed ^ tag(target.name());
    let mut r = Rng::derive(stream, 0x3E55_A6E5);
    let msgs: Vec<Msg> = (0..n)
        .map(|i| {
            let id = format!("{}-s{seed}-m{i}", target.name());
            let (from, to, mailboxes, good_rcpts) = target.envelope(&mut r);
            let size = draw_size(&mut r);
            let body = make_body(&mut r, &id, &to, size);
            let want = normalized(&body);
            Msg {
                id,
                from,
                to,
                body,
                want,
                mailboxes,
                good_rcpts,
            }
        })
        .collect();
    let total: u64 = msgs.iter().map(|m| m.body.len() as u64 + 200).sum();
    // Spans of about half of what a seed sends: a connection usually dies
    // a few messages in, so most messages meet a fault or a reconnect.
    let profile = Profile {
        c2s_span: total / 2 + 200,
        s2c_span: 300 + 60 * n as u64,
        cut_pct: 75,
        ..Profile::default()
    };
    let proxy = FaultProxy::start(target.port(), move |i| {
        FaultPlan::random(stream, i, &profile)
    });
    let mut run = SeedRun {
        target,
        test,
        seed,
        n,
        proxy,
        settings: String::new(),
        rng: Rng::derive(stream, 0xAB1),
        attempts: vec![Vec::new(); msgs.len()],
        msgs,
        violations: Vec::new(),
        totals: Totals {
            seeds: 1,
            messages: n as u64,
            ..Totals::default()
        },
    };
    let mut sess = None;
    let half = n / 2;
    run.run_sendmail((0..half).collect(), &mut sess);
    run.run_batch((half..n).collect(), &mut sess);
    if let Some(mut s) = sess.take() {
        s.close();
    }
    settle(target, &run.proxy, &format!("seed {seed}"));
    run.check();
    let reports = run.proxy.reports();
    run.totals.connections = reports.len() as u64;
    for rep in &reports {
        match rep.fired.map(|f| f.0) {
            Some(CutKind::Reset) => run.totals.resets += 1,
            Some(CutKind::Fin) => run.totals.fins += 1,
            Some(CutKind::Stall) => run.totals.stalls += 1,
            None => {}
        }
    }
    let t = &run.totals;
    println!(
        "[{}] seed {seed} ({}): {} messages, {} attempts: {} accepted, {} refused, {} not sent, \
         {} unknown ({} arrived); {} connections, {} resets, {} fins, {} stalls injected; \
         {} violation(s); {:.1}s",
        target.name(),
        run.settings,
        t.messages,
        t.attempts,
        t.accepted,
        t.refused,
        t.not_sent,
        t.unknown,
        t.unknown_arrived,
        t.connections,
        t.resets,
        t.fins,
        t.stalls,
        t.violations(),
        started.elapsed().as_secs_f64()
    );
    target.clear();
    (run.totals, run.violations)
}

/// All configured seeds against `target`; one FAULT-TOTALS line; a panic
/// listing every violation (with its seed) if there was any.
fn run_seeds(target: &dyn Target, test: &str) {
    let cfg = run_config();
    let mut totals = Totals::default();
    let mut violations = Vec::new();
    for &seed in &cfg.seeds {
        let (t, v) = run_seed(target, test, seed, cfg.messages);
        totals.add(&t);
        violations.extend(v);
    }
    println!("FAULT-TOTALS server={} {totals}", target.name());
    assert!(
        totals.violations() == 0 && violations.is_empty(),
        "{} violation(s) against {} ({totals}):\n{}",
        violations.len().max(totals.violations() as usize),
        target.name(),
        violations.join("\n")
    );
    // Faults must really have been injected, or the run proved nothing.
    assert!(
        totals.resets + totals.fins + totals.stalls > 0 || cfg.seeds.len() == 1,
        "no fault fired in seeds {:?} against {} ({totals})",
        cfg.seeds,
        target.name()
    );
}

// ===========================================================================
// Seeded runs
// ===========================================================================

#[test]
fn seeded_faults_lose_nothing_and_report_nothing_falsely_postfix_bdat() {
    let target = PostfixTarget {
        pf: Postfix::start(),
    };
    run_seeds(
        &target,
        "seeded_faults_lose_nothing_and_report_nothing_falsely_postfix_bdat",
    );
}

#[test]
fn seeded_faults_lose_nothing_and_report_nothing_falsely_aiosmtpd_lockstep_data() {
    let target = AioTarget {
        server: Aiosmtpd::start(AioOpts {
            reject_rcpts: vec![UNKNOWN.to_string()],
            ..AioOpts::default()
        }),
    };
    run_seeds(
        &target,
        "seeded_faults_lose_nothing_and_report_nothing_falsely_aiosmtpd_lockstep_data",
    );
}

#[test]
fn seeded_faults_lose_nothing_and_report_nothing_falsely_smtp_sink_pipelined_data() {
    let target = SinkTarget::start();
    run_seeds(
        &target,
        "seeded_faults_lose_nothing_and_report_nothing_falsely_smtp_sink_pipelined_data",
    );
}

// ===========================================================================
// Deterministic cuts
// ===========================================================================

/// A session through `proxy` with the given settings, connected, EHLO done,
/// its transcript captured.
fn traced_session(
    port: u16,
    chunking: bool,
    pipelining: bool,
) -> (Session, Arc<Mutex<Vec<String>>>) {
    let trace: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = trace.clone();
    let mut s = Session::new();
    s.set_timeout(Duration::from_secs(5));
    s.set_chunking(chunking);
    s.set_pipelining(pipelining);
    s.set_debuglevel(1);
    s.set_trace_sink(Some(Box::new(move |l: &str| {
        sink.lock().unwrap().push(l.to_string())
    })));
    let g = s
        .connect("127.0.0.1", port)
        .expect("connect through the proxy");
    assert_eq!(g.code, 220, "{g:?}");
    let e = s.ehlo(Some("client.test")).expect("EHLO through the proxy");
    assert_eq!(e.code, 250, "{e:?}");
    (s, trace)
}

/// A ~600 KiB message (three BDAT chunks of at most 256 KiB).
fn big_message(id: &str) -> Vec<u8> {
    let mut r = Rng::new(tag(id));
    make_body(&mut r, id, &[ALICE.to_string()], 600 * 1024)
}

/// The final reply lines the proxy passed to the client.
fn replies_forwarded(s2c: &[u8]) -> Vec<String> {
    show(s2c)
        .split("\r\n")
        .filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
        .map(str::to_string)
        .collect()
}

/// Postfix's copies of message `id` in alice's Maildir, once settled.
fn postfix_copies(target: &PostfixTarget, proxy: &FaultProxy, id: &str) -> usize {
    settle(target, proxy, id);
    target
        .arrivals()
        .iter()
        .filter(|a| a.id().as_deref() == Some(id))
        .count()
}

fn cut_after_first_chunk_reply(kind: CutKind) {
    let target = PostfixTarget {
        pf: Postfix::start(),
    };
    // Replies: greeting, EHLO, MAIL, RCPT, first BDAT chunk = the 5th. The
    // pause lets that 250 reach the client's reader before the cut, while
    // the client's later chunks still flow to Postfix.
    let plan = FaultPlan::cut_server_to_client_after_replies(5, kind, Duration::from_millis(300));

    // sendmail
    let id = format!("cut-bdat-{kind}-sendmail");
    let msg = big_message(&id);
    let proxy = FaultProxy::with_plan(target.port(), plan.clone());
    let (mut s, trace) = traced_session(proxy.port, true, true);
    assert!(s.has_extn("CHUNKING") && s.has_extn("PIPELINING"));
    let res = s.sendmail(SENDER, &[ALICE], &msg);
    let d = s.last_outcome().delivery();
    let text = trace.lock().unwrap().join("\n");
    s.close();
    let rep = &proxy.reports()[0];
    let fired = rep.fired.expect("the cut fired");
    assert_eq!((fired.0, fired.1), (kind, Dir::ServerToClient), "{rep:?}");
    let replies = replies_forwarded(&rep.s2c);
    assert_eq!(replies.len(), 5, "forwarded replies: {replies:#?}");
    let chunk_reply = &replies[4];
    assert!(
        chunk_reply.starts_with("250 ") && chunk_reply.ends_with(" bytes"),
        "the 5th reply should be Postfix's 250 for the first chunk (\"Ok: N bytes\"): \
         {replies:#?}"
    );
    assert!(
        text.contains(&format!("reply: '{chunk_reply}\\r\\n'")),
        "the client should have read the first chunk's 250 ({chunk_reply}); trace:\n{}",
        &text[text.len().saturating_sub(3000)..]
    );
    assert!(
        text.contains("BDAT") && text.contains(" LAST"),
        "BDAT … LAST should have been sent:\n{}",
        &text[text.len().saturating_sub(3000)..]
    );
    assert!(
        res.is_err(),
        "{kind} after the first chunk's 250: sendmail must fail, got {res:?} ({d:?})"
    );
    assert!(
        matches!(d, Delivery::Unknown | Delivery::NotSent),
        "{kind}: delivery must be Unknown or NotSent, got {d:?} ({res:?})"
    );
    let copies = postfix_copies(&target, &proxy, &id);
    assert!(
        copies <= usize::from(d == Delivery::Unknown),
        "{kind}: reported {d:?}, Postfix stored {copies} copies"
    );
    println!("{kind}, sendmail: {res:?} → {d:?}; Postfix stored {copies} copies");
    drop(proxy);

    // batch: the big message and a small one behind it
    let id1 = format!("cut-bdat-{kind}-batch-big");
    let id2 = format!("cut-bdat-{kind}-batch-small");
    let big = big_message(&id1);
    let small = make_body(&mut Rng::new(7), &id2, &[ALICE.to_string()], 2000);
    let proxy = FaultProxy::with_plan(target.port(), plan);
    let (mut s, _trace) = traced_session(proxy.port, true, true);
    s.batch_add(SENDER, &[ALICE], &big).unwrap();
    s.batch_add(SENDER, &[ALICE], &small).unwrap();
    let res = s.batch_send();
    let results: Vec<Delivery> = s.batch_results().iter().map(|o| o.delivery()).collect();
    s.close();
    assert!(
        proxy.reports()[0].fired.is_some(),
        "{:?}",
        proxy.reports()[0]
    );
    assert_eq!(results.len(), 2, "one outcome per queued message ({res:?})");
    for (d, id) in results.iter().zip([&id1, &id2]) {
        assert!(
            matches!(d, Delivery::Unknown | Delivery::NotSent),
            "{kind}, batch: {id} must be Unknown or NotSent, got {d:?} (batch_send: {res:?})"
        );
        let copies = postfix_copies(&target, &proxy, id);
        assert!(
            copies <= usize::from(*d == Delivery::Unknown),
            "{kind}, batch: {id} reported {d:?}, Postfix stored {copies} copies"
        );
    }
    println!("{kind}, batch: {res:?} → {results:?}");
}

#[test]
fn proxy_reset_after_first_bdat_chunk_reply_is_not_reported_accepted_postfix() {
    cut_after_first_chunk_reply(CutKind::Reset);
}

#[test]
fn proxy_fin_after_first_bdat_chunk_reply_is_not_reported_accepted_postfix() {
    cut_after_first_chunk_reply(CutKind::Fin);
}

/// A cut inside the first chunk's data: Postfix never gets the whole
/// message, so whatever the client says it must not be Accepted, and
/// nothing may be stored.
#[test]
fn proxy_cut_inside_first_bdat_chunk_is_not_accepted_nor_delivered_postfix() {
    let target = PostfixTarget {
        pf: Postfix::start(),
    };
    for kind in [CutKind::Reset, CutKind::Fin] {
        let id = format!("cut-inside-chunk-{kind}");
        let msg = big_message(&id);
        // 100 KiB after the start of the message's data.
        let plan = FaultPlan::cut_after_pattern(
            Dir::ClientToServer,
            &msg[100 * 1024..100 * 1024 + 64],
            1,
            kind,
        );
        let proxy = FaultProxy::with_plan(target.port(), plan);
        let (mut s, _t) = traced_session(proxy.port, true, true);
        let res = s.sendmail(SENDER, &[ALICE], &msg);
        let d = s.last_outcome().delivery();
        s.close();
        assert!(proxy.reports()[0].fired.is_some(), "{:?}", proxy.reports());
        assert!(res.is_err(), "{kind}: {res:?} ({d:?})");
        assert!(
            matches!(d, Delivery::Unknown | Delivery::NotSent),
            "{kind}: {d:?}"
        );
        assert_eq!(postfix_copies(&target, &proxy, &id), 0, "{kind}");
    }
}

/// DATA on smtp-sink: the 354 passes, the reply to the end of data never
/// does. Not Accepted; and when NotSent, not stored.
#[test]
fn proxy_cut_after_354_is_not_reported_accepted_smtp_sink() {
    let target = SinkTarget::start();
    for (kind, pipelining) in [
        (CutKind::Reset, true),
        (CutKind::Fin, true),
        (CutKind::Reset, false),
    ] {
        let id = format!("cut-354-{kind}-{pipelining}");
        let mut r = Rng::new(tag(&id));
        let msg = make_body(&mut r, &id, &["a@sink.test".to_string()], 50_000);
        // Replies: greeting, EHLO, MAIL, RCPT, 354 = the 5th.
        let plan =
            FaultPlan::cut_server_to_client_after_replies(5, kind, Duration::from_millis(200));
        let proxy = FaultProxy::with_plan(target.port(), plan);
        let (mut s, _t) = traced_session(proxy.port, false, pipelining);
        let res = s.sendmail(SENDER, &["a@sink.test"], &msg);
        let d = s.last_outcome().delivery();
        s.close();
        let rep = &proxy.reports()[0];
        let replies = replies_forwarded(&rep.s2c);
        assert!(
            replies.last().is_some_and(|l| l.starts_with("354 ")),
            "the last reply forwarded should be the 354: {replies:#?}"
        );
        assert!(res.is_err(), "{kind}: {res:?}");
        assert!(
            matches!(d, Delivery::Unknown | Delivery::NotSent),
            "{kind}: {d:?}"
        );
        settle(&target, &proxy, &id);
        let copies = target
            .arrivals()
            .iter()
            .filter(|a| a.id().as_deref() == Some(id.as_str()))
            .count();
        assert!(
            copies <= usize::from(d == Delivery::Unknown),
            "{kind}: reported {d:?}, smtp-sink stored {copies}"
        );
    }
}

// ===========================================================================
// The proxy itself
// ===========================================================================

/// Cuts land on the exact byte, FIN reads as end-of-file and RST as a
/// reset, and a clean plan passes everything unchanged.
#[test]
fn fault_proxy_cuts_at_the_exact_offset_and_passes_clean_streams_unchanged() {
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for (plan, want_len, want_reset) in [
        (FaultPlan::clean(), payload.len(), false),
        (
            FaultPlan::cut_at_offset(Dir::ClientToServer, 123_457, CutKind::Fin),
            123_457,
            false,
        ),
        (
            FaultPlan::cut_at_offset(Dir::ClientToServer, 0, CutKind::Fin),
            0,
            false,
        ),
        (
            FaultPlan {
                c2s: Shaping {
                    fragment: Some((1000, 3000, 0)),
                    chunk_delay: Duration::from_millis(2),
                },
                ..FaultPlan::cut_at_offset(Dir::ClientToServer, 2500, CutKind::Fin)
            },
            2500,
            false,
        ),
        (
            FaultPlan::cut_at_offset(Dir::ClientToServer, 77_777, CutKind::Reset),
            77_777,
            true,
        ),
    ] {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let reader = thread::spawn(move || {
            let (mut c, _) = server.accept().unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 65536];
            loop {
                match c.read(&mut buf) {
                    Ok(0) => return (got, false),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                        return (got, true)
                    }
                    Err(e) => panic!("server read: {e}"),
                }
            }
        });
        let what = plan.to_string();
        let proxy = FaultProxy::with_plan(port, plan);
        let mut c = std::net::TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        // The cut may stop the write: the peer is gone by then.
        let _ = c.write_all(&payload);
        let _ = c.shutdown(Shutdown::Write);
        let (got, reset) = reader.join().unwrap();
        // A reset may lose what was still in flight; a FIN never does.
        if want_reset {
            assert!(reset, "{what}: the server should see a reset");
            assert!(got.len() <= want_len, "{what}: {} bytes passed", got.len());
        } else {
            assert!(!reset, "{what}: the server should see end-of-file");
            assert_eq!(got.len(), want_len, "{what}");
        }
        assert_eq!(got[..], payload[..got.len()], "{what}: bytes changed");
        assert!(proxy.wait_idle(Duration::from_secs(10)), "{what}");
    }
}

/// Plans are a function of (seed, connection index) alone.
#[test]
fn fault_plans_replay_from_the_seed() {
    let p = Profile::default();
    let a: Vec<FaultPlan> = (0..200).map(|i| FaultPlan::random(42, i, &p)).collect();
    let b: Vec<FaultPlan> = (0..200).map(|i| FaultPlan::random(42, i, &p)).collect();
    let c: Vec<FaultPlan> = (0..200).map(|i| FaultPlan::random(43, i, &p)).collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let kinds = |v: &[FaultPlan], k: CutKind, d: Dir| {
        v.iter()
            .filter(|p| p.cut.as_ref().is_some_and(|c| c.kind == k && c.dir == d))
            .count()
    };
    for k in [CutKind::Reset, CutKind::Fin, CutKind::Stall] {
        for d in [Dir::ClientToServer, Dir::ServerToClient] {
            assert!(kinds(&a, k, d) > 0, "no {k} {d} in 200 plans");
        }
    }
}
