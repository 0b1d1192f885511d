//! A minimal, fast SMTP sink that accepts and discards everything.
//!
//! One thread per connection, 1 MiB reads, the end of DATA found with a
//! SIMD substring search (memchr::memmem) that also catches a marker split
//! across reads. Offers PIPELINING, 8BITMIME, SIZE and, with --chunking,
//! CHUNKING (BDAT).
//!
//! It also counts, for the benchmark, how often a client had to wait: it
//! writes replies only when it has no more complete input, and first polls
//! the socket without blocking; a write of transaction replies (MAIL, RCPT,
//! DATA, end of data, BDAT, RSET, NOOP) after which the socket really was
//! empty is one round trip the client waited for. `XSTATS` answers the
//! counters.
//!
//! Usage: discard-sink [--chunking] [--port N] [--port-file FILE]

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use memchr::memmem::Finder;

static CONNS: AtomicU64 = AtomicU64::new(0);
static MSGS: AtomicU64 = AtomicU64::new(0);
static WAITS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

const RBUF: usize = 1 << 20;
/// Replies held back at most before a write regardless of input.
const MAX_HELD_REPLIES: usize = 64 * 1024;
const EOD: &[u8] = b"\r\n.\r\n";

fn main() {
    let mut chunking = false;
    let mut port = 0u16;
    let mut port_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--chunking" => chunking = true,
            "--port" => port = args.next().and_then(|p| p.parse().ok()).expect("--port N"),
            "--port-file" => port_file = Some(args.next().expect("--port-file FILE")),
            _ => {
                eprintln!("usage: discard-sink [--chunking] [--port N] [--port-file FILE]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let port = listener.local_addr().unwrap().port();
    if let Some(f) = port_file {
        let tmp = format!("{f}.tmp");
        std::fs::write(&tmp, format!("{port}\n")).expect("write port file");
        std::fs::rename(&tmp, &f).expect("rename port file");
    } else {
        println!("{port}");
    }
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        std::thread::spawn(move || {
            let _ = Conn::new(conn, chunking).run();
        });
    }
}

enum State {
    Command,
    /// In a DATA body; `carry` holds the last bytes seen (up to 4), so a
    /// marker split across reads is still found.
    Data { carry: [u8; 4], carry_len: usize },
    Bdat { remaining: u64, last: bool, size: u64 },
}

struct Conn {
    sock: TcpStream,
    chunking: bool,
    rbuf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    /// `out` holds a reply to a transaction command.
    txn_reply: bool,
    counted: bool,
    state: State,
    finder: Finder<'static>,
    quit: bool,
}

impl Conn {
    fn new(sock: TcpStream, chunking: bool) -> Self {
        let _ = sock.set_nodelay(true);
        Conn {
            sock,
            chunking,
            rbuf: vec![0; RBUF],
            start: 0,
            end: 0,
            out: Vec::with_capacity(4096),
            txn_reply: false,
            counted: false,
            state: State::Command,
            finder: Finder::new(EOD),
            quit: false,
        }
    }

    fn run(&mut self) -> io::Result<()> {
        self.sock.write_all(b"220 discard-sink ESMTP\r\n")?;
        loop {
            self.process();
            if self.quit {
                self.sock.write_all(&self.out)?;
                return Ok(());
            }
            if !self.out.is_empty() {
                let more_input = self.out.len() < MAX_HELD_REPLIES && readable_now(&self.sock);
                if !more_input {
                    if self.txn_reply {
                        WAITS.fetch_add(1, Relaxed);
                    }
                    self.sock.write_all(&self.out)?;
                    self.out.clear();
                    self.txn_reply = false;
                }
            }
            // Make room: everything before `start` is consumed.
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            } else if self.end == self.rbuf.len() {
                self.rbuf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let n = self.sock.read(&mut self.rbuf[self.end..])?;
            if n == 0 {
                return Ok(());
            }
            self.end += n;
        }
    }

    fn reply(&mut self, text: &[u8], txn: bool) {
        self.out.extend_from_slice(text);
        self.txn_reply |= txn;
    }

    /// Consumes every complete command and all body bytes in the buffer.
    fn process(&mut self) {
        while self.start < self.end && !self.quit {
            match &mut self.state {
                State::Command => {
                    let pending = &self.rbuf[self.start..self.end];
                    let Some(nl) = memchr::memchr(b'\n', pending) else {
                        if pending.len() > 4096 {
                            // No command is that long: drop it.
                            self.start = self.end;
                            self.reply(b"500 5.5.2 line too long\r\n", false);
                        }
                        return;
                    };
                    let line_end = self.start + nl + 1;
                    let line = self.rbuf[self.start..line_end].to_vec();
                    self.start = line_end;
                    self.command(&line);
                }
                State::Data { carry, carry_len } => {
                    let region = &self.rbuf[self.start..self.end];
                    // A marker that straddles the carried bytes and this read.
                    let mut joint = [0u8; 8];
                    let head = region.len().min(4);
                    joint[..*carry_len].copy_from_slice(&carry[..*carry_len]);
                    joint[*carry_len..*carry_len + head].copy_from_slice(&region[..head]);
                    let found = match self.finder.find(&joint[..*carry_len + head]) {
                        Some(p) if p < *carry_len => Some(p + EOD.len() - *carry_len),
                        _ => self.finder.find(region).map(|p| p + EOD.len()),
                    };
                    match found {
                        Some(end) => {
                            BYTES.fetch_add(end as u64, Relaxed);
                            MSGS.fetch_add(1, Relaxed);
                            self.start += end;
                            self.state = State::Command;
                            self.reply(b"250 2.0.0 Ok: queued\r\n", true);
                        }
                        None => {
                            // Keep the last 4 bytes of carry + region.
                            let total = *carry_len + region.len();
                            let keep = total.min(4);
                            let mut next = [0u8; 4];
                            for (k, slot) in next[..keep].iter_mut().enumerate() {
                                let idx = total - keep + k;
                                *slot = if idx < *carry_len {
                                    carry[idx]
                                } else {
                                    region[idx - *carry_len]
                                };
                            }
                            *carry = next;
                            *carry_len = keep;
                            BYTES.fetch_add(region.len() as u64, Relaxed);
                            self.start = self.end;
                        }
                    }
                }
                State::Bdat {
                    remaining,
                    last,
                    size,
                } => {
                    let take = (*remaining).min((self.end - self.start) as u64);
                    *remaining -= take;
                    self.start += take as usize;
                    BYTES.fetch_add(take, Relaxed);
                    if *remaining == 0 {
                        let (last, size) = (*last, *size);
                        self.state = State::Command;
                        if last {
                            MSGS.fetch_add(1, Relaxed);
                            self.reply(b"250 2.0.0 Ok: queued\r\n", true);
                        } else {
                            let r = format!("250 2.0.0 {size} octets received\r\n");
                            self.reply(r.as_bytes(), true);
                        }
                    }
                }
            }
        }
    }

    fn command(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        let mut words = text.split_ascii_whitespace();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                let mut r = String::from("250-discard-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n");
                if self.chunking {
                    r.push_str("250-CHUNKING\r\n");
                }
                r.push_str("250 SIZE 0\r\n");
                self.reply(r.as_bytes(), false);
            }
            "HELO" => self.reply(b"250 discard-sink\r\n", false),
            "MAIL" => {
                if !self.counted {
                    self.counted = true;
                    CONNS.fetch_add(1, Relaxed);
                }
                self.reply(b"250 2.1.0 Ok\r\n", true)
            }
            "RCPT" => self.reply(b"250 2.1.5 Ok\r\n", true),
            "DATA" => {
                self.state = State::Data {
                    // The DATA line's own CRLF: an empty body is just ".\r\n".
                    carry: *b"\r\n\0\0",
                    carry_len: 2,
                };
                self.reply(b"354 End data with <CR><LF>.<CR><LF>\r\n", true);
            }
            "BDAT" if self.chunking => {
                let size = words.next().and_then(|s| s.parse::<u64>().ok());
                let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
                match size {
                    Some(size) => {
                        self.state = State::Bdat {
                            remaining: size,
                            last,
                            size,
                        };
                        // A zero-length chunk is complete at once.
                        if size == 0 {
                            self.state = State::Command;
                            if last {
                                MSGS.fetch_add(1, Relaxed);
                                self.reply(b"250 2.0.0 Ok: queued\r\n", true);
                            } else {
                                self.reply(b"250 2.0.0 0 octets received\r\n", true);
                            }
                        }
                    }
                    None => self.reply(b"501 5.5.4 BDAT needs a size\r\n", true),
                }
            }
            "RSET" | "NOOP" => self.reply(b"250 2.0.0 Ok\r\n", true),
            "QUIT" => {
                self.reply(b"221 2.0.0 Bye\r\n", false);
                self.quit = true;
            }
            "XSTATS" => {
                let r = format!(
                    "250 conns={} msgs={} waits={} bytes={}\r\n",
                    CONNS.load(Relaxed),
                    MSGS.load(Relaxed),
                    WAITS.load(Relaxed),
                    BYTES.load(Relaxed)
                );
                self.reply(r.as_bytes(), false);
            }
            _ => self.reply(b"502 5.5.2 command not recognized\r\n", false),
        }
    }
}

/// Whether input is waiting on the socket right now (a zero-timeout poll).
fn readable_now(sock: &TcpStream) -> bool {
    let mut p = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && (p.revents & libc::POLLIN) != 0
}
