//! Pieces shared by the benchmark driver and its child processes: the
//! deterministic message content and a minimal SMTP reply reader for the
//! raw-socket reference clients.

use std::io::{self, Read};

/// Characters of the generated text: 64 of them, so 6 random bits pick one.
/// The '.' makes some lines start with a dot, so dot-stuffing is exercised.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .";

/// Text characters per line (plus CRLF).
pub const LINE_CHARS: usize = 76;

pub const FROM: &str = "bench@example.org";
pub const TO: &str = "sink@example.net";

/// Distinct random lines the generator picks from.
const POOL_LINES: usize = 2048;

/// A message of exactly `total` bytes: a few header lines, then lines of 76
/// random printable characters ending in CRLF, generated on the fly (each
/// line drawn at random from a pool of 2048 random lines made up front, so
/// the generator runs at memcpy speed and never limits a streaming send).
/// The same size gives the same bytes, whether read all at once or piecewise.
pub struct MessageGen {
    rng: u64,
    remaining: usize,
    pool: Vec<u8>,
    /// The current line: a range of `pool`, or of `tail` for the header and
    /// the shortened last line.
    cur: (usize, usize),
    in_tail: bool,
    tail: Vec<u8>,
}

const HEADER: &[u8] = b"From: <bench@example.org>\r\nTo: <sink@example.net>\r\n\
Subject: libsmtpc benchmark\r\nMessage-ID: <bench@example.org>\r\n\r\n";

const LINE: usize = LINE_CHARS + 2;

impl MessageGen {
    pub fn new(total: usize) -> Self {
        assert!(total >= HEADER.len() + 3, "message too small");
        let mut g = MessageGen {
            rng: 0x9E37_79B9_7F4A_7C15,
            remaining: total,
            pool: Vec::with_capacity(POOL_LINES * LINE),
            cur: (0, HEADER.len()),
            in_tail: true,
            tail: HEADER.to_vec(),
        };
        for _ in 0..POOL_LINES {
            let mut chars = 0;
            while chars < LINE_CHARS {
                let mut r = g.next_u64();
                for _ in 0..8 {
                    if chars == LINE_CHARS {
                        break;
                    }
                    g.pool.push(ALPHABET[(r & 63) as usize]);
                    r >>= 8;
                    chars += 1;
                }
            }
            g.pool.extend_from_slice(b"\r\n");
        }
        g
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Picks the next line; the last one is shortened so the total is exact
    /// and the message still ends in CRLF.
    fn next_line(&mut self) {
        let rest = self.remaining;
        let k = (self.next_u64() >> 40) as usize % POOL_LINES;
        let line = k * LINE;
        if rest >= LINE + 3 || rest == LINE {
            self.cur = (line, line + LINE);
            self.in_tail = false;
            return;
        }
        // The last line or two: at most LINE chars, never less than 3.
        let len = if rest > LINE { rest - 3 } else { rest };
        self.tail.clear();
        self.tail.extend_from_slice(&self.pool[line..line + len - 2]);
        self.tail.extend_from_slice(b"\r\n");
        self.cur = (0, len);
        self.in_tail = true;
    }

    /// The whole message in one buffer.
    pub fn to_vec(total: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(total);
        MessageGen::new(total).read_to_end(&mut v).unwrap();
        assert_eq!(v.len(), total);
        v
    }
}

impl Read for MessageGen {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() && self.remaining > 0 {
            if self.cur.0 == self.cur.1 {
                self.next_line();
            }
            let src = if self.in_tail { &self.tail } else { &self.pool };
            let take = (self.cur.1 - self.cur.0).min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&src[self.cur.0..self.cur.0 + take]);
            self.cur.0 += take;
            self.remaining -= take;
            n += take;
        }
        Ok(n)
    }
}

/// Reads SMTP replies from a socket; counts the reads that had to block
/// for more input (the client's waits).
pub struct ReplyReader<R: Read> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    pub waits: u64,
}

impl<R: Read> ReplyReader<R> {
    pub fn new(inner: R) -> Self {
        ReplyReader {
            inner,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            waits: 0,
        }
    }

    /// Reads one complete reply (multi-line ones included); returns its code.
    pub fn reply(&mut self) -> io::Result<u16> {
        let mut waited = false;
        loop {
            if let Some(off) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let line = &self.buf[self.start..self.start + off + 1];
                self.start += off + 1;
                if line.len() < 4 {
                    return Err(io::Error::other("short reply line"));
                }
                let code = std::str::from_utf8(&line[..3])
                    .ok()
                    .and_then(|s| s.parse::<u16>().ok())
                    .ok_or_else(|| io::Error::other("bad reply code"))?;
                if line[3] == b'-' {
                    continue;
                }
                return Ok(code);
            }
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            } else if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if !waited {
                waited = true;
                self.waits += 1;
            }
            let n = self.inner.read(&mut self.buf[self.end..])?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            self.end += n;
        }
    }

    /// Reads a reply and checks its code.
    pub fn expect(&mut self, code: u16) -> io::Result<()> {
        let got = self.reply()?;
        if got != code {
            return Err(io::Error::other(format!("expected {code}, got {got}")));
        }
        Ok(())
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_message_is_exact_and_the_same_piecewise() {
        for total in [200usize, 1024, 1025, 1026, 4096 + 77] {
            let whole = MessageGen::to_vec(total);
            assert!(whole.ends_with(b"\r\n"));
            let mut g = MessageGen::new(total);
            let mut piecewise = Vec::new();
            let mut buf = [0u8; 7];
            loop {
                let n = g.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                piecewise.extend_from_slice(&buf[..n]);
            }
            assert_eq!(whole, piecewise);
            for line in whole.split(|&b| b == b'\n') {
                assert!(line.is_empty() || line.ends_with(b"\r"));
            }
        }
    }
}
