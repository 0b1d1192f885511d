//! The byte stream under a session: TCP or TLS, with timeouts on every
//! connect, read and write, and a buffered line reader.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket as RawSocket, Type};

use native_tls::{HandshakeError, TlsStream};

use super::cancel::{self, Canceller, SLICE};
use super::error::{Error, ErrorKind, Result};
use super::reply::MAX_REPLY_BYTES;
use super::tls::{classify_tls_error, TlsSettings};

/// How far the socket's own receive timeout may exceed the time left to a
/// reply's deadline before it is set again: saves a setsockopt per read
/// while keeping any overshoot this small.
const RCVTIMEO_SLACK: Duration = Duration::from_millis(50);

/// The TCP socket, reading and writing under the deadline of the operation
/// in progress (a reply, a write, a message body, the handshake). TLS goes
/// through it too, so a peer that drips bytes — or reads them a few at a
/// time — cannot stretch one timeout into one per system call.
struct Socket {
    sock: RawSocket,
    /// Shuts `sock` down when another thread cancels; told before `sock`
    /// closes (see `Drop`).
    cancel: Arc<Canceller>,
    deadline: Option<Instant>,
    /// The receive and send timeouts currently set on the socket.
    rcvtimeo: Duration,
    sndtimeo: Duration,
}

/// What a socket call waits on: its timeout option and its current value.
#[derive(Clone, Copy)]
enum Dir {
    Read,
    Write,
}

impl Socket {
    /// Sets the socket's timeout for `dir` to the time left before the
    /// deadline (when far off); `WouldBlock` once the deadline has passed.
    fn arm(&mut self, dir: Dir) -> io::Result<()> {
        let Some(deadline) = self.deadline else {
            return Ok(());
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let left = deadline - now;
        let current = match dir {
            Dir::Read => &mut self.rcvtimeo,
            Dir::Write => &mut self.sndtimeo,
        };
        if *current > left + RCVTIMEO_SLACK || left > *current + RCVTIMEO_SLACK {
            let t = left.max(Duration::from_millis(1));
            match dir {
                Dir::Read => self.sock.set_read_timeout(Some(t))?,
                Dir::Write => self.sock.set_write_timeout(Some(t))?,
            }
            *current = t;
        }
        Ok(())
    }

    /// Retries `op` until it succeeds, fails, or the deadline passes: the
    /// socket's timeout may end before the deadline (it is only re-set
    /// when far off), and a blocking send that timed out may have sent
    /// part of the buffer, which `op` reports.
    fn with_deadline<T>(
        &mut self,
        dir: Dir,
        mut op: impl FnMut(&mut RawSocket) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            if self.cancel.is_requested() {
                return Err(io::Error::other("cancelled"));
            }
            self.arm(dir)?;
            match op(&mut self.sock) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) && self.deadline.is_some_and(|d| Instant::now() < d) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.cancel.watch(None);
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.with_deadline(Dir::Read, |s| s.read(buf))
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.with_deadline(Dir::Write, |s| s.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.with_deadline(Dir::Write, |s| s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Stream {
    Plain(Socket),
    Tls(Box<TlsStream<Socket>>),
}

impl Stream {
    fn socket(&self) -> &Socket {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }

    fn socket_mut(&mut self) -> &mut Socket {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_mut(),
        }
    }

    fn sock(&self) -> &RawSocket {
        &self.socket().sock
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write_vectored(bufs),
            Stream::Tls(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Initial size of the read buffer; it grows only for replies longer.
const READ_CHUNK: usize = 16 * 1024;

pub struct Transport {
    stream: Stream,
    /// Received bytes: `rbuf[rpos..rend]` is not yet consumed.
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
    /// Nagle is on for a TLS handshake just made; TCP_NODELAY comes back
    /// with the first bytes read (see `start_tls`).
    nodelay_after_read: bool,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("tls", &self.is_tls())
            .field("buffered", &self.buffered())
            .finish()
    }
}

/// How to open a connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub timeout: Duration,
    /// The local address (and port, 0 for any) to connect from; addresses
    /// of the other family are skipped.
    pub source: Option<SocketAddr>,
    pub cancel: Arc<Canceller>,
}

impl Transport {
    /// Connects to the first address of `host` that answers, trying every
    /// resolved address (IPv4 and IPv6) with `timeout` each; a `host`
    /// starting with `/` is the path of a UNIX-domain socket.
    pub fn connect(host: &str, port: u16, opts: &ConnectOptions) -> Result<Self> {
        opts.cancel.check()?;
        if host.starts_with('/') {
            return Self::connect_unix(host, opts);
        }
        let mut addrs = resolve(host, port, opts.timeout, &opts.cancel)?;
        if let Some(source) = opts.source {
            addrs.retain(|a| a.is_ipv4() == source.is_ipv4());
            if addrs.is_empty() {
                return Err(Error::new(
                    ErrorKind::Connect,
                    format!(
                        "{host} has no {} address to reach from source address {}",
                        if source.is_ipv4() { "IPv4" } else { "IPv6" },
                        source.ip()
                    ),
                ));
            }
        }
        let mut failures = Vec::new();
        let mut timed_out = true;
        for addr in &addrs {
            match connect_one(addr, opts) {
                Ok(sock) => return Self::from_socket(sock, opts, true),
                Err(e) if e.kind == ErrorKind::Cancelled => return Err(e),
                Err(e) => {
                    timed_out &= e.kind == ErrorKind::Timeout;
                    failures.push(format!("{addr}: {}", e.message));
                }
            }
        }
        let kind = if timed_out {
            ErrorKind::Timeout
        } else {
            ErrorKind::Connect
        };
        Err(Error::new(
            kind,
            format!(
                "cannot connect to {host} port {port}: {}",
                failures.join("; ")
            ),
        ))
    }

    fn connect_unix(path: &str, opts: &ConnectOptions) -> Result<Self> {
        let failed = |e: io::Error| {
            Error::new(
                ErrorKind::Connect,
                format!("cannot connect to UNIX socket {path}: {e}"),
            )
        };
        let addr = SockAddr::unix(path).map_err(failed)?;
        let sock = RawSocket::new(Domain::UNIX, Type::STREAM, None).map_err(failed)?;
        // A local connect completes or fails at once; no wait to bound.
        sock.connect(&addr).map_err(failed)?;
        Self::from_socket(sock, opts, false)
    }

    fn from_socket(sock: RawSocket, opts: &ConnectOptions, tcp: bool) -> Result<Self> {
        let setup = |e: io::Error| Error::io("socket setup", &e);
        if tcp {
            // Commands are small and each waits for a reply: Nagle would
            // hold them for the peer's delayed ACK.
            sock.set_nodelay(true).map_err(setup)?;
        }
        sock.set_write_timeout(Some(opts.timeout)).map_err(setup)?;
        sock.set_read_timeout(Some(opts.timeout)).map_err(setup)?;
        opts.cancel.watch(Some(sock.as_raw_fd()));
        let socket = Socket {
            sock,
            cancel: opts.cancel.clone(),
            deadline: None,
            rcvtimeo: opts.timeout,
            sndtimeo: opts.timeout,
        };
        // A cancel that came before `watch` found no socket to shut down.
        opts.cancel.check()?;
        Ok(Self::over(Stream::Plain(socket)))
    }

    fn over(stream: Stream) -> Self {
        Transport {
            stream,
            rbuf: vec![0; READ_CHUNK],
            rpos: 0,
            rend: 0,
            nodelay_after_read: false,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// The server's address; `None` over a UNIX-domain socket.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.sock().peer_addr().ok()?.as_socket()
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.stream.sock().local_addr().ok()?.as_socket()
    }

    /// Over a UNIX-domain socket: the peer is on this machine.
    pub fn is_unix(&self) -> bool {
        self.stream
            .sock()
            .local_addr()
            .is_ok_and(|a| a.domain() == Domain::UNIX)
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.rend - self.rpos
    }

    /// Wraps the connection in TLS, with the settings' connector (built
    /// once per change of the settings), verifying the settings' server
    /// name if one is set, else `host`. Anything already buffered was sent
    /// before the handshake and is discarded, never read as a post-TLS reply
    /// (STARTTLS response injection, CVE-2021-22947).
    pub fn start_tls(self, host: &str, settings: &TlsSettings, timeout: Duration) -> Result<Self> {
        let Transport { stream, .. } = self;
        let mut socket = match stream {
            Stream::Plain(socket) => socket,
            Stream::Tls(_) => return Err(Error::state("TLS is already active")),
        };
        let name = settings.name_to_verify(host)?;
        let connector = settings.connector()?;
        // Nagle until the first reply over TLS: the command written right
        // after the handshake (EHLO) then waits for the ACK of our Finished,
        // which comes with the server's TLS 1.3 session tickets, and so
        // acknowledges them. Sent at once instead, it reaches a server
        // (Postfix) that then holds its reply behind the unacknowledged
        // tickets until our delayed ACK: 20-40 ms per STARTTLS. Not on a
        // UNIX-domain socket (no TCP options there).
        let nagle =
            socket.sock.nodelay().unwrap_or(false) && socket.sock.set_nodelay(false).is_ok();
        socket.deadline = Some(Instant::now() + timeout);
        let cancel = socket.cancel.clone();
        let mut tls = match connector.connect(name, socket) {
            Ok(tls) => tls,
            Err(_) if cancel.is_requested() => return Err(cancel::cancelled()),
            Err(HandshakeError::WouldBlock(_)) => {
                return Err(Error::new(ErrorKind::Timeout, "TLS handshake: timed out"))
            }
            Err(HandshakeError::Failure(e)) => return Err(classify_tls_error(&e)),
        };
        tls.get_mut().deadline = None;
        let mut t = Self::over(Stream::Tls(Box::new(tls)));
        t.nodelay_after_read = nagle;
        Ok(t)
    }

    /// Reads one line, terminator included (CRLF, or a bare LF from a lax
    /// server), finishing before `deadline`. The line borrows the buffer.
    pub fn read_line(&mut self, deadline: Instant) -> Result<&[u8]> {
        // Offset from `rpos` already searched; `fill` may move the data.
        let mut scanned = 0;
        loop {
            let pending = &self.rbuf[self.rpos..self.rend];
            if let Some(off) = memchr::memchr(b'\n', &pending[scanned..]) {
                let start = self.rpos;
                self.rpos += scanned + off + 1;
                return Ok(&self.rbuf[start..self.rpos]);
            }
            scanned = pending.len();
            // "ddd-" + the text + CR may legally precede the LF.
            if scanned > MAX_REPLY_BYTES + 5 {
                return Err(Error::protocol(format!(
                    "reply line longer than {MAX_REPLY_BYTES} bytes"
                )));
            }
            self.fill(deadline)?;
        }
    }

    /// Whether a whole line is already buffered (no wait needed).
    pub fn has_line(&self) -> bool {
        memchr::memchr(b'\n', &self.rbuf[self.rpos..self.rend]).is_some()
    }

    /// Reads more bytes into the buffer, before `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<()> {
        if self.rpos == self.rend {
            self.rpos = 0;
            self.rend = 0;
        } else if self.rend == self.rbuf.len() {
            if self.rpos > 0 {
                self.rbuf.copy_within(self.rpos..self.rend, 0);
                self.rend -= self.rpos;
                self.rpos = 0;
            } else {
                // A line longer than the buffer: bounded by the reply cap.
                self.rbuf.resize(self.rbuf.len() * 2, 0);
            }
        }
        // One deadline covers the whole reply, so a server dripping a byte
        // at a time cannot stretch it.
        self.stream.socket_mut().deadline = Some(deadline);
        let got = self.stream.read(&mut self.rbuf[self.rend..]);
        self.stream.socket_mut().deadline = None;
        match got {
            _ if self.cancelled() => Err(cancel::cancelled()),
            Ok(0) => Err(Error::new(ErrorKind::Closed, "connection closed by server")),
            Ok(n) => {
                if self.nodelay_after_read {
                    self.nodelay_after_read = false;
                    let _ = self.stream.sock().set_nodelay(true);
                }
                self.rend += n;
                Ok(())
            }
            Err(e) => Err(Error::io("reading reply", &e)),
        }
    }

    /// Writes all of `bytes` before `deadline` — one deadline for the
    /// whole write, however slowly the peer reads. `sent` grows by every
    /// byte handed to the kernel, also when the write then fails, so the
    /// caller knows how far the stream got.
    pub fn write_all(&mut self, mut bytes: &[u8], deadline: Instant, sent: &mut u64) -> Result<()> {
        self.stream.socket_mut().deadline = Some(deadline);
        let mut written = || -> io::Result<()> {
            while !bytes.is_empty() {
                match self.stream.write(bytes) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        *sent += n as u64;
                        bytes = &bytes[n..];
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.stream.flush()
        };
        let result = written();
        self.stream.socket_mut().deadline = None;
        match result {
            Err(_) if self.cancelled() => Err(cancel::cancelled()),
            r => r.map_err(|e| Error::io("sending", &e)),
        }
    }

    /// Another thread cancelled the call in flight: whatever the socket
    /// said after its shutdown is not the server's doing.
    fn cancelled(&self) -> bool {
        self.stream.socket().cancel.is_requested()
    }

    /// Closes the socket (TLS close_notify is best effort).
    pub fn close(mut self) {
        if let Stream::Tls(tls) = &mut self.stream {
            let _ = tls.shutdown();
        }
        let _ = self.stream.sock().shutdown(Shutdown::Both);
    }
}

/// The addresses of `host`, within `timeout`. getaddrinfo has no timeout
/// of its own, so a name lookup runs on a thread of its own that the
/// connect stops waiting for (as libcurl's threaded resolver); an IP
/// literal needs no lookup.
fn resolve(
    host: &str,
    port: u16,
    timeout: Duration,
    cancel: &Canceller,
) -> Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::channel();
    let name = host.to_string();
    thread::Builder::new()
        .name("smtpc-resolve".into())
        .spawn(move || {
            let found = (name.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>());
            let _ = tx.send(found);
        })
        .map_err(|e| Error::new(ErrorKind::Resolve, format!("cannot resolve {host}: {e}")))?;
    let deadline = Instant::now() + timeout;
    let found = loop {
        cancel.check()?;
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(SLICE)) {
            Ok(found) => break found,
            Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {}
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("resolving {host}: timed out"),
                ))
            }
        }
    };
    let addrs =
        found.map_err(|e| Error::new(ErrorKind::Resolve, format!("cannot resolve {host}: {e}")))?;
    if addrs.is_empty() {
        return Err(Error::new(
            ErrorKind::Resolve,
            format!("{host} has no addresses"),
        ));
    }
    Ok(addrs)
}

/// One TCP connect to `addr` (from `opts.source` when set), within the
/// timeout, woken every `SLICE` to see whether it was cancelled.
fn connect_one(addr: &SocketAddr, opts: &ConnectOptions) -> Result<RawSocket> {
    let failed = |e: io::Error| Error::new(ErrorKind::Connect, e.to_string());
    let sock = RawSocket::new(Domain::for_address(*addr), Type::STREAM, None).map_err(failed)?;
    if let Some(source) = opts.source {
        sock.bind(&source.into()).map_err(|e| {
            Error::new(
                ErrorKind::Connect,
                format!("cannot bind source address {source}: {e}"),
            )
        })?;
    }
    sock.set_nonblocking(true).map_err(failed)?;
    match sock.connect(&(*addr).into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            let deadline = Instant::now() + opts.timeout;
            loop {
                opts.cancel.check()?;
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::new(ErrorKind::Timeout, "connect timed out"));
                }
                if poll_writable(&sock, left.min(SLICE)).map_err(failed)? {
                    break;
                }
            }
            if let Some(e) = sock.take_error().map_err(failed)? {
                return Err(failed(e));
            }
        }
        Err(e) => return Err(failed(e)),
    }
    sock.set_nonblocking(false).map_err(failed)?;
    Ok(sock)
}

/// Whether `sock` became writable (its connect finished) within `wait`.
fn poll_writable(sock: &RawSocket, wait: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = wait.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd.
    match unsafe { libc::poll(&mut pfd, 1, ms) } {
        -1 => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// Connects with implicit TLS: the handshake comes before any SMTP.
pub fn connect_tls(
    host: &str,
    port: u16,
    opts: &ConnectOptions,
    settings: &TlsSettings,
) -> Result<Transport> {
    Transport::connect(host, port, opts)?.start_tls(host, settings, opts.timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_need_no_lookup_and_names_resolve() {
        let t = Duration::from_secs(5);
        let c = Canceller::default();
        assert_eq!(
            resolve("::1", 25, t, &c).unwrap(),
            ["[::1]:25".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(resolve("127.0.0.1", 25, t, &c).unwrap().len(), 1);
        let local = resolve("localhost", 25, t, &c).unwrap();
        assert!(local.iter().all(|a| a.ip().is_loopback() && a.port() == 25));
        let e = resolve("nonexistent.invalid", 25, t, &c).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Resolve);
    }
}
