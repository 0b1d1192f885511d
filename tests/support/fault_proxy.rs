//! A fault-injecting TCP proxy for the fault tests (`tests/faults.rs`).
//!
//! [`FaultProxy::start`] listens on 127.0.0.1:0 and forwards every accepted
//! connection to a real server on 127.0.0.1. For each connection it asks a
//! planner for a [`FaultPlan`]: at most one cut (reset, FIN close or stall,
//! in either direction, at a byte offset, after the Nth reply line or after
//! a byte pattern) plus shaping per direction (1-byte fragmentation over a
//! window, a fixed delay per forwarded chunk).
//!
//! [`FaultPlan::random`] draws a plan from a seed and the connection's index
//! with the small PRNG below, so a failing run replays from its seed alone
//! (the byte positions of the faults are exact; only the kernel's timing
//! around them may differ).
//!
//! Each connection is two threads, one per direction, so neither direction
//! can block the other (a proxy that writes to a server which is itself
//! blocked writing to the proxy would deadlock in one thread). Every wait
//! is bounded: sockets have short timeouts and every connection has a
//! maximum life, after which it is reset.
#![allow(dead_code)]

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A connection older than this is reset, whatever its plan: bounds every
/// stall and every silent peer.
pub const MAX_CONN_LIFE: Duration = Duration::from_secs(60);

/// After a FIN cut, how long the proxy keeps reading (and dropping) what
/// the peers still send, so that closing does not turn the FIN into a RST.
const FIN_DRAIN: Duration = Duration::from_secs(3);

/// Socket timeouts of the proxy's own reads and writes: how often a blocked
/// pump looks at the connection's state.
const POLL: Duration = Duration::from_millis(100);

/// How long a stall holds its direction without reading: longer than any
/// client timeout the tests set, so the client has given up by then.
pub const STALL_FREEZE: Duration = Duration::from_secs(5);

/// How much of what the server sent is kept per connection for assertions.
const S2C_LOG_MAX: usize = 256 * 1024;

// ---------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------

/// SplitMix64: tiny, fast, and every seed (even 0) gives a good stream.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The stream for item `index` of `seed` (independent of how many
    /// numbers other items drew, so plans do not shift when one changes).
    pub fn derive(seed: u64, index: u64) -> Rng {
        let mut r = Rng(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let s = r.next_u64();
        Rng(s)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    /// Log-uniform in `0..=max`: small values as likely as large magnitudes,
    /// so offsets land in greetings and envelopes as often as in bodies.
    pub fn log_uniform(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let bits = 64 - max.leading_zeros() as u64;
        let b = self.below(bits + 1);
        if b == 0 {
            return 0;
        }
        let hi = if b >= 64 { u64::MAX } else { (1u64 << b) - 1 };
        self.between(1u64 << (b - 1), hi).min(max)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    ClientToServer,
    ServerToClient,
}

impl Dir {
    fn idx(self) -> usize {
        match self {
            Dir::ClientToServer => 0,
            Dir::ServerToClient => 1,
        }
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dir::ClientToServer => "c2s",
            Dir::ServerToClient => "s2c",
        })
    }
}

/// What a cut does to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CutKind {
    /// Both sockets closed with SO_LINGER 0: each peer gets a RST.
    Reset,
    /// Both sockets shut down for writing: each peer reads end-of-file.
    Fin,
    /// The direction stops forwarding (nothing read for STALL_FREEZE, so
    /// the sender's buffers fill; then read and dropped) while the
    /// connection stays open; it ends when the client hangs up or the
    /// connection's life is over.
    Stall,
}

impl fmt::Display for CutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CutKind::Reset => "reset",
            CutKind::Fin => "fin",
            CutKind::Stall => "stall",
        })
    }
}

/// Where in a direction's byte stream a cut fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// After exactly this many bytes were forwarded (0: before the first).
    Offset(u64),
    /// Right after the `n`th (1-based) final reply line (`ddd ` … LF) was
    /// forwarded: counts replies, not the lines of multi-line ones.
    AfterReplies(usize),
    /// Right after the `nth` (1-based) occurrence of `pattern` was forwarded.
    AfterPattern { pattern: Vec<u8>, nth: usize },
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Offset(o) => write!(f, "@{o}"),
            Trigger::AfterReplies(n) => write!(f, "after-reply#{n}"),
            Trigger::AfterPattern { pattern, nth } => write!(
                f,
                "after-{:?}#{nth}",
                String::from_utf8_lossy(pattern).into_owned()
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub dir: Dir,
    pub at: Trigger,
    pub kind: CutKind,
    /// Time between forwarding the last byte and cutting (nothing more is
    /// forwarded in `dir` meanwhile): lets that byte reach the peer's reader.
    pub pause: Duration,
}

/// Shaping of one direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shaping {
    /// Bytes at offsets `start..start + len` go one per write, `delay_us`
    /// microseconds apart.
    pub fragment: Option<(u64, u64, u64)>,
    /// Sleep before forwarding each chunk read.
    pub chunk_delay: Duration,
}

impl Shaping {
    fn is_plain(&self) -> bool {
        self.fragment.is_none() && self.chunk_delay.is_zero()
    }
}

/// Everything the proxy does to one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub cut: Option<Cut>,
    pub c2s: Shaping,
    pub s2c: Shaping,
}

/// Sizes the random plans are drawn against.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// About how many bytes the client may send on one connection (offsets
    /// of client-to-server cuts are drawn up to this).
    pub c2s_span: u64,
    /// The same for what the server sends (replies).
    pub s2c_span: u64,
    /// Percent of connections that get a cut.
    pub cut_pct: u64,
    /// Percent of cuts that are stalls (the slow kind: each costs the
    /// client a timeout).
    pub stall_pct: u64,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            c2s_span: 1 << 20,
            s2c_span: 4096,
            cut_pct: 60,
            stall_pct: 12,
        }
    }
}

impl FaultPlan {
    /// A connection forwarded untouched.
    pub fn clean() -> FaultPlan {
        FaultPlan::default()
    }

    /// Cut `dir` after exactly `offset` bytes.
    pub fn cut_at_offset(dir: Dir, offset: u64, kind: CutKind) -> FaultPlan {
        FaultPlan {
            cut: Some(Cut {
                dir,
                at: Trigger::Offset(offset),
                kind,
                pause: Duration::ZERO,
            }),
            ..FaultPlan::default()
        }
    }

    /// Cut right after the server's `n`th reply (greeting = 1) reached the
    /// client, `pause` after it was forwarded; nothing the server sends
    /// later is forwarded.
    pub fn cut_server_to_client_after_replies(n: usize, kind: CutKind, pause: Duration) -> Self {
        FaultPlan {
            cut: Some(Cut {
                dir: Dir::ServerToClient,
                at: Trigger::AfterReplies(n),
                kind,
                pause,
            }),
            ..FaultPlan::default()
        }
    }

    /// Cut `dir` right after the `nth` occurrence of `pattern` passed.
    pub fn cut_after_pattern(dir: Dir, pattern: &[u8], nth: usize, kind: CutKind) -> Self {
        FaultPlan {
            cut: Some(Cut {
                dir,
                at: Trigger::AfterPattern {
                    pattern: pattern.to_vec(),
                    nth,
                },
                kind,
                pause: Duration::ZERO,
            }),
            ..FaultPlan::default()
        }
    }

    /// The plan of connection `index` under `seed`: the same pair gives the
    /// same plan, always.
    pub fn random(seed: u64, index: u64, p: &Profile) -> FaultPlan {
        let mut r = Rng::derive(seed, index);
        let mut plan = FaultPlan::default();
        if r.chance(p.cut_pct) {
            let dir = if r.chance(55) {
                Dir::ClientToServer
            } else {
                Dir::ServerToClient
            };
            let span = match dir {
                Dir::ClientToServer => p.c2s_span,
                Dir::ServerToClient => p.s2c_span,
            };
            // Half log-uniform (greeting, EHLO, envelope, small bodies),
            // half uniform (anywhere inside large bodies).
            let offset = if r.chance(50) {
                r.log_uniform(span)
            } else {
                r.below(span + 1)
            };
            let kind = if r.chance(p.stall_pct) {
                CutKind::Stall
            } else if r.chance(55) {
                CutKind::Reset
            } else {
                CutKind::Fin
            };
            let at = if dir == Dir::ServerToClient && r.chance(35) {
                // On a reply boundary: the hardest place, where a reply is
                // complete and the next one never comes.
                Trigger::AfterReplies(r.between(1, 12) as usize)
            } else {
                Trigger::Offset(offset)
            };
            let pause = if r.chance(30) {
                Duration::from_millis(r.between(1, 150))
            } else {
                Duration::ZERO
            };
            plan.cut = Some(Cut {
                dir,
                at,
                kind,
                pause,
            });
        }
        for (shaping, span) in [(&mut plan.c2s, p.c2s_span), (&mut plan.s2c, p.s2c_span)] {
            if r.chance(15) {
                // A bounded window: one byte per write over a whole 600 KiB
                // body would take minutes.
                let start = r.log_uniform(span);
                let len = r.between(1, 4096);
                let delay_us = if r.chance(50) { 0 } else { r.between(1, 300) };
                shaping.fragment = Some((start, len, delay_us));
            }
            if r.chance(15) {
                shaping.chunk_delay = Duration::from_millis(r.between(1, 25));
            }
        }
        plan
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(c) = &self.cut {
            let pause = if c.pause.is_zero() {
                String::new()
            } else {
                format!("+{}ms", c.pause.as_millis())
            };
            parts.push(format!("{} {} {}{pause}", c.kind, c.dir, c.at));
        }
        for (d, s) in [("c2s", &self.c2s), ("s2c", &self.s2c)] {
            if let Some((start, len, us)) = s.fragment {
                parts.push(format!("{d} 1-byte writes @{start}+{len} {us}us"));
            }
            if !s.chunk_delay.is_zero() {
                parts.push(format!("{d} delay {}ms/chunk", s.chunk_delay.as_millis()));
            }
        }
        if parts.is_empty() {
            f.write_str("clean")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

// ---------------------------------------------------------------------------
// Trigger matching
// ---------------------------------------------------------------------------

/// Finds where in a direction's stream its trigger fires.
struct Matcher {
    at: Trigger,
    seen: u64,
    /// AfterReplies: the first bytes (up to 4) of the current line.
    line_head: Vec<u8>,
    count: usize,
    /// AfterPattern: the last `pattern.len() - 1` bytes seen.
    tail: Vec<u8>,
}

impl Matcher {
    fn new(at: Trigger) -> Matcher {
        Matcher {
            at,
            seen: 0,
            line_head: Vec::new(),
            count: 0,
            tail: Vec::new(),
        }
    }

    /// Fires before anything is forwarded?
    fn fires_at_start(&self) -> bool {
        matches!(
            self.at,
            Trigger::Offset(0) | Trigger::AfterReplies(0) | Trigger::AfterPattern { nth: 0, .. }
        )
    }

    /// `Some(k)`: the trigger fires once the first `k` bytes of `data` are
    /// forwarded; `None`: not within `data`.
    fn feed(&mut self, data: &[u8]) -> Option<usize> {
        let hit = match &self.at {
            Trigger::Offset(o) => {
                let left = o.saturating_sub(self.seen);
                (left <= data.len() as u64).then_some(left as usize)
            }
            Trigger::AfterReplies(n) => {
                let n = *n;
                let mut hit = None;
                for (i, &b) in data.iter().enumerate() {
                    if b == b'\n' {
                        // A final line is "ddd", "ddd " or "ddd\r" (not "ddd-").
                        let h = &self.line_head;
                        let is_final = h.len() >= 3
                            && h[..3].iter().all(u8::is_ascii_digit)
                            && matches!(h.get(3), None | Some(b' ') | Some(b'\r'));
                        self.line_head.clear();
                        if is_final {
                            self.count += 1;
                            if self.count == n {
                                hit = Some(i + 1);
                                break;
                            }
                        }
                    } else if self.line_head.len() < 4 {
                        self.line_head.push(b);
                    }
                }
                hit
            }
            Trigger::AfterPattern { pattern, nth } => {
                let nth = *nth;
                let plen = pattern.len();
                let mut window = std::mem::take(&mut self.tail);
                let carried = window.len();
                window.extend_from_slice(data);
                let mut hit = None;
                if plen > 0 {
                    for i in 0..(window.len() + 1).saturating_sub(plen) {
                        if window[i..i + plen] == pattern[..] {
                            self.count += 1;
                            if self.count == nth {
                                hit = Some(i + plen - carried);
                                break;
                            }
                        }
                    }
                    if hit.is_none() {
                        self.tail = window[window.len().saturating_sub(plen - 1)..].to_vec();
                    }
                }
                hit
            }
        };
        self.seen += hit.unwrap_or(data.len()) as u64;
        hit
    }
}

// ---------------------------------------------------------------------------
// The proxy
// ---------------------------------------------------------------------------

const KILL_NONE: u8 = 0;
const KILL_RESET: u8 = 1;
const KILL_FIN: u8 = 2;

/// What happened on one connection.
#[derive(Debug, Clone)]
pub struct ConnReport {
    pub index: u64,
    pub plan: FaultPlan,
    /// The cut that fired: kind, direction and the offset it fired at.
    pub fired: Option<(CutKind, Dir, u64)>,
    /// Bytes forwarded client→server and server→client.
    pub forwarded: [u64; 2],
    /// The bytes forwarded server→client (the first 256 KiB).
    pub s2c: Vec<u8>,
    pub finished: bool,
    /// Connecting to the server failed (the client was reset).
    pub upstream_failed: bool,
}

struct Conn {
    index: u64,
    plan: FaultPlan,
    born: Instant,
    /// KILL_*: set once, by the cut (or teardown) that ends the connection.
    kill: AtomicU8,
    /// Directions that finished, so that a stalled other one can end too.
    done: [AtomicBool; 2],
    forwarded: [AtomicU64; 2],
    fired: Mutex<Option<(CutKind, Dir, u64)>>,
    s2c_log: Mutex<Vec<u8>>,
    /// Control handles (client, server) for shutting both sockets down
    /// from either pump; the last pump out drops them, since a socket only
    /// closes (and only then sends its RST) with its last descriptor.
    ctl: Mutex<Option<(TcpStream, TcpStream)>>,
    threads_left: AtomicUsize,
    upstream_failed: bool,
}

impl Conn {
    fn killed(&self) -> u8 {
        self.kill.load(Ordering::SeqCst)
    }

    fn expired(&self) -> bool {
        self.born.elapsed() > MAX_CONN_LIFE
    }

    /// Resets both sides: SO_LINGER 0, then SHUT_RD to wake the pumps
    /// (it sends nothing); the RSTs go out when the pumps drop their handles.
    fn reset(&self) {
        if self
            .kill
            .compare_exchange(KILL_NONE, KILL_RESET, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        if let Some((c, s)) = &*self.ctl.lock().unwrap() {
            for sock in [c, s] {
                set_linger_zero(sock);
                let _ = sock.shutdown(Shutdown::Read);
            }
        }
    }

    /// FIN to both sides; the pumps then drain until the peers close.
    fn fin(&self) {
        if self
            .kill
            .compare_exchange(KILL_NONE, KILL_FIN, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        if let Some((c, s)) = &*self.ctl.lock().unwrap() {
            for sock in [c, s] {
                let _ = sock.shutdown(Shutdown::Write);
            }
        }
    }

    fn client_gone(&self) -> bool {
        self.ctl
            .lock()
            .unwrap()
            .as_ref()
            .is_none_or(|(c, _)| peer_gone(c))
    }

    fn report(&self) -> ConnReport {
        ConnReport {
            index: self.index,
            plan: self.plan.clone(),
            fired: *self.fired.lock().unwrap(),
            forwarded: [
                self.forwarded[0].load(Ordering::SeqCst),
                self.forwarded[1].load(Ordering::SeqCst),
            ],
            s2c: self.s2c_log.lock().unwrap().clone(),
            finished: self.threads_left.load(Ordering::SeqCst) == 0,
            upstream_failed: self.upstream_failed,
        }
    }
}

/// SO_LINGER {on, 0}: closing then sends a RST instead of a FIN.
fn set_linger_zero(s: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// True once the peer has closed or reset `s` (seen without reading).
fn peer_gone(s: &TcpStream) -> bool {
    let mut p = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

type Planner = dyn Fn(u64) -> FaultPlan + Send + Sync;

/// The proxy; dropping it resets every connection still open.
pub struct FaultProxy {
    pub port: u16,
    pub target: u16,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<Arc<Conn>>>>,
    accepted: Arc<AtomicU64>,
    acceptor: Option<JoinHandle<()>>,
    pumps: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl FaultProxy {
    /// Forwards to 127.0.0.1:`target`, connection `i` (from 0) getting
    /// `planner(i)`.
    pub fn start(target: u16, planner: impl Fn(u64) -> FaultPlan + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("fault proxy: bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<Arc<Conn>>>> = Arc::default();
        let pumps: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accepted = Arc::new(AtomicU64::new(0));
        let planner: Arc<Planner> = Arc::new(planner);
        let acceptor = {
            let (stop, conns, pumps, accepted) =
                (stop.clone(), conns.clone(), pumps.clone(), accepted.clone());
            thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let index = accepted.fetch_add(1, Ordering::SeqCst);
                    let (conn, ends) = open_conn(index, planner(index), client, target);
                    conns.lock().unwrap().push(conn.clone());
                    let Some([c_read, c_write, s_read, s_write]) = ends else {
                        continue;
                    };
                    let mut p = pumps.lock().unwrap();
                    // Forget finished pumps: the list stays short in long runs.
                    p.retain(|h| !h.is_finished());
                    let c = conn.clone();
                    p.push(thread::spawn(move || {
                        pump(&c, Dir::ClientToServer, c_read, s_write)
                    }));
                    p.push(thread::spawn(move || {
                        pump(&conn, Dir::ServerToClient, s_read, c_write)
                    }));
                }
            })
        };
        FaultProxy {
            port,
            target,
            stop,
            conns,
            accepted,
            acceptor: Some(acceptor),
            pumps,
        }
    }

    /// Every connection with the same plan.
    pub fn with_plan(target: u16, plan: FaultPlan) -> Self {
        FaultProxy::start(target, move |_| plan.clone())
    }

    /// Connection `i` gets `plans[i]`; later ones are clean.
    pub fn with_plans(target: u16, plans: Vec<FaultPlan>) -> Self {
        FaultProxy::start(target, move |i| {
            plans.get(i as usize).cloned().unwrap_or_default()
        })
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn reports(&self) -> Vec<ConnReport> {
        self.conns
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.report())
            .collect()
    }

    /// Forgets the reports of finished connections (between runs).
    pub fn forget_finished(&self) {
        self.conns
            .lock()
            .unwrap()
            .retain(|c| c.threads_left.load(Ordering::SeqCst) > 0);
    }

    /// Waits until every connection has ended (true) or `timeout` passed.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let busy = self
                .conns
                .lock()
                .unwrap()
                .iter()
                .any(|c| c.threads_left.load(Ordering::SeqCst) > 0);
            if !busy {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for c in self.conns.lock().unwrap().iter() {
            c.reset();
        }
        let pumps: Vec<JoinHandle<()>> = std::mem::take(&mut *self.pumps.lock().unwrap());
        for p in pumps {
            let _ = p.join();
        }
    }
}

/// Connects upstream; the four pump ends (client read, client write,
/// server read, server write), or None when the server cannot be reached.
fn open_conn(
    index: u64,
    plan: FaultPlan,
    client: TcpStream,
    target: u16,
) -> (Arc<Conn>, Option<[TcpStream; 4]>) {
    let server = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], target)),
        Duration::from_secs(5),
    )
    .ok();
    let ends = server.as_ref().and_then(|server| {
        for s in [&client, server] {
            let _ = s.set_nodelay(true);
            let _ = s.set_read_timeout(Some(POLL));
            let _ = s.set_write_timeout(Some(POLL));
        }
        Some([
            client.try_clone().ok()?,
            client.try_clone().ok()?,
            server.try_clone().ok()?,
            server.try_clone().ok()?,
        ])
    });
    let upstream_failed = ends.is_none();
    let ctl = match (server, upstream_failed) {
        (Some(server), false) => Some((client, server)),
        _ => {
            set_linger_zero(&client);
            None
        }
    };
    let conn = Arc::new(Conn {
        index,
        plan,
        born: Instant::now(),
        kill: AtomicU8::new(KILL_NONE),
        done: [AtomicBool::new(false), AtomicBool::new(false)],
        forwarded: [AtomicU64::new(0), AtomicU64::new(0)],
        fired: Mutex::new(None),
        s2c_log: Mutex::new(Vec::new()),
        ctl: Mutex::new(ctl),
        threads_left: AtomicUsize::new(if upstream_failed { 0 } else { 2 }),
        upstream_failed,
    });
    (conn, ends)
}

/// One direction of a connection: read, shape, forward, fire the cut.
fn pump(conn: &Conn, dir: Dir, mut src: TcpStream, mut dst: TcpStream) {
    run_pump(conn, dir, &mut src, &mut dst);
    conn.done[dir.idx()].store(true, Ordering::SeqCst);
    drop((src, dst));
    if conn.threads_left.fetch_sub(1, Ordering::SeqCst) == 1 {
        // The last descriptors: the sockets close here.
        conn.ctl.lock().unwrap().take();
    }
}

fn run_pump(conn: &Conn, dir: Dir, src: &mut TcpStream, dst: &mut TcpStream) {
    let shaping = match dir {
        Dir::ClientToServer => conn.plan.c2s.clone(),
        Dir::ServerToClient => conn.plan.s2c.clone(),
    };
    let cut = conn.plan.cut.clone().filter(|c| c.dir == dir);
    let mut matcher = cut.as_ref().map(|c| Matcher::new(c.at.clone()));
    if let (Some(c), Some(m)) = (&cut, &matcher) {
        if m.fires_at_start() {
            return fire(conn, dir, c, 0, src);
        }
    }
    let mut forwarded: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match conn.killed() {
            KILL_RESET => return,
            KILL_FIN => return drain(conn, src),
            _ => {}
        }
        if conn.expired() {
            return conn.reset();
        }
        let n = match src.read(&mut buf) {
            Ok(0) => {
                // An orderly end passes on as a half-close (unless this EOF
                // is the wake-up of a reset).
                if conn.killed() == KILL_NONE {
                    let _ = dst.shutdown(Shutdown::Write);
                }
                return;
            }
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            // The peer reset: reset the other side too.
            Err(_) => return conn.reset(),
        };
        let hit = matcher.as_mut().and_then(|m| m.feed(&buf[..n]));
        let take = hit.unwrap_or(n);
        if !forward(conn, dir, dst, &buf[..take], forwarded, &shaping) {
            return;
        }
        forwarded += take as u64;
        if let (Some(c), Some(_)) = (&cut, hit) {
            return fire(conn, dir, c, forwarded, src);
        }
    }
}

/// Writes all of `data`; false when the connection is over.
fn write_all(dst: &mut TcpStream, mut data: &[u8], conn: &Conn) -> bool {
    while !data.is_empty() {
        if conn.killed() != KILL_NONE {
            return false;
        }
        if conn.expired() {
            conn.reset();
            return false;
        }
        match dst.write(data) {
            Ok(0) => return false,
            Ok(n) => data = &data[n..],
            Err(e) if is_timeout(&e) => {}
            Err(_) => {
                conn.reset();
                return false;
            }
        }
    }
    true
}

/// Forwards `data` (which starts at stream offset `at`) with the
/// direction's shaping; false when the connection is over.
fn forward(
    conn: &Conn,
    dir: Dir,
    dst: &mut TcpStream,
    data: &[u8],
    at: u64,
    shaping: &Shaping,
) -> bool {
    if data.is_empty() {
        return true;
    }
    if !shaping.chunk_delay.is_zero() {
        thread::sleep(shaping.chunk_delay);
    }
    // Before / inside / after the fragmentation window.
    let (a, b, delay_us) = match shaping.fragment {
        Some((start, len, us)) => {
            let end = at + data.len() as u64;
            let w0 = start.clamp(at, end);
            let w1 = start.saturating_add(len).clamp(at, end);
            ((w0 - at) as usize, (w1 - at) as usize, us)
        }
        None => (data.len(), data.len(), 0),
    };
    if !write_all(dst, &data[..a], conn) {
        return false;
    }
    for byte in data[a..b].chunks(1) {
        if !write_all(dst, byte, conn) {
            return false;
        }
        if delay_us > 0 {
            thread::sleep(Duration::from_micros(delay_us));
        }
    }
    if !write_all(dst, &data[b..], conn) {
        return false;
    }
    conn.forwarded[dir.idx()].fetch_add(data.len() as u64, Ordering::SeqCst);
    if dir == Dir::ServerToClient {
        let mut log = conn.s2c_log.lock().unwrap();
        let room = S2C_LOG_MAX.saturating_sub(log.len());
        log.extend_from_slice(&data[..data.len().min(room)]);
    }
    true
}

/// Fires `cut` in `dir`, `at` bytes into the stream.
fn fire(conn: &Conn, dir: Dir, cut: &Cut, at: u64, src: &mut TcpStream) {
    if !cut.pause.is_zero() {
        thread::sleep(cut.pause);
    }
    if conn.killed() != KILL_NONE {
        return;
    }
    *conn.fired.lock().unwrap() = Some((cut.kind, dir, at));
    match cut.kind {
        CutKind::Reset => conn.reset(),
        CutKind::Fin => {
            conn.fin();
            drain(conn, src);
        }
        CutKind::Stall => stall(conn, dir, src),
    }
}

/// Reads and drops what `src` still sends after a FIN cut, until it closes
/// or FIN_DRAIN passes.
fn drain(conn: &Conn, src: &mut TcpStream) {
    let until = Instant::now() + FIN_DRAIN;
    let mut buf = vec![0u8; 64 * 1024];
    while Instant::now() < until && conn.killed() != KILL_RESET {
        match src.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => return,
        }
    }
}

/// Holds `dir` without reading (the sender's buffers fill and its writes
/// block) for STALL_FREEZE, then reads and drops what arrives — a client
/// closing with unsent data queues its FIN behind that data, so only
/// reading shows it — until the client hangs up, the other direction ends,
/// or the connection's life is over; then resets both sides (what the
/// stalled side left unread would make any close a RST anyway).
fn stall(conn: &Conn, dir: Dir, src: &mut TcpStream) {
    let other = match dir {
        Dir::ClientToServer => Dir::ServerToClient,
        Dir::ServerToClient => Dir::ClientToServer,
    };
    let thaw = Instant::now() + STALL_FREEZE;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if conn.killed() != KILL_NONE {
            return;
        }
        if conn.expired() || conn.done[other.idx()].load(Ordering::SeqCst) || conn.client_gone() {
            return conn.reset();
        }
        if Instant::now() < thaw {
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        match src.read(&mut buf) {
            Ok(0) => return conn.reset(),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => return conn.reset(),
        }
    }
}
