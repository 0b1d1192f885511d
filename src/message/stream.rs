//! The thin streaming layer around mail-builder: a rendered message is a
//! list of segments, bytes rendered by mail-builder and file attachments
//! that are read and base64-encoded only while the message is read, a chunk
//! at a time, so a 20 MB attachment costs a few hundred KiB.
//!
//! The encoding is mail-builder's own (`Base64Encoder` with line wrapping:
//! 76 characters and CRLF per line), fed whole lines of input (multiples of
//! 57 bytes), so a file part is byte for byte what mail-builder writes for
//! the same bytes held in memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use mail_builder::encoders::base64::base64_encoded_len;
use mail_builder::encoders::Base64Encoder;

use crate::client::{Error, ErrorKind, Result};

/// Input bytes per base64 line (76 output characters).
const LINE_INPUT: u64 = 57;
/// Input bytes encoded per read of a file part: 1024 lines.
const FILE_CHUNK: usize = 57 * 1024;

/// A piece of a rendered message.
#[derive(Debug, Clone)]
pub(crate) enum Segment {
    Bytes(Arc<Vec<u8>>),
    /// A file sent base64-encoded; `len` is its size when rendered.
    File {
        path: PathBuf,
        len: u64,
    },
}

/// The size of `n` bytes base64-encoded in lines of 76 characters, each
/// ending with CRLF.
pub(crate) fn encoded_len(n: u64) -> u64 {
    base64_encoded_len(n as usize) as u64 + n.div_ceil(LINE_INPUT) * 2
}

impl Segment {
    /// The segment's size as sent.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Segment::Bytes(b) => b.len() as u64,
            Segment::File { len, .. } => encoded_len(*len),
        }
    }
}

enum Piece {
    Bytes(Arc<Vec<u8>>),
    File {
        file: File,
        path: PathBuf,
        left: u64,
    },
}

/// Reads a rendered message: its bytes as they are, its files base64
/// encoded on the fly. Every file is opened when the reader is made, so a
/// missing file fails before anything is sent; a file that changes size
/// while it is read fails the read (and so the send).
pub struct MessageReader {
    pieces: std::vec::IntoIter<Piece>,
    current: Option<Piece>,
    /// Bytes ready to hand out: `out[pos..]` (a segment's own bytes, or
    /// the encoding of a chunk of a file).
    out: Arc<Vec<u8>>,
    pos: usize,
    input: Vec<u8>,
    has_file: bool,
    size: u64,
    failure: Option<String>,
}

impl MessageReader {
    pub(crate) fn open(segments: &[Segment]) -> Result<MessageReader> {
        let size = segments.iter().map(Segment::len).sum();
        let mut pieces = Vec::with_capacity(segments.len());
        let mut has_file = false;
        for s in segments {
            pieces.push(match s {
                Segment::Bytes(b) => Piece::Bytes(Arc::clone(b)),
                Segment::File { path, len } => {
                    let (path, len) = (path.clone(), *len);
                    has_file = true;
                    let file = open_attachment(&path)?;
                    let now = file
                        .metadata()
                        .map_err(|e| file_error(&path, "cannot read the size of", &e))?
                        .len();
                    if now != len {
                        return Err(Error::new(
                            ErrorKind::Io,
                            format!(
                                "attachment {} changed size ({len} bytes when added, {now} now)",
                                path.display()
                            ),
                        ));
                    }
                    Piece::File {
                        file,
                        path,
                        left: len,
                    }
                }
            });
        }
        Ok(MessageReader {
            pieces: pieces.into_iter(),
            current: None,
            out: Arc::new(Vec::new()),
            pos: 0,
            has_file,
            input: if has_file {
                vec![0; FILE_CHUNK]
            } else {
                Vec::new()
            },
            size,
            failure: None,
        })
    }

    /// The whole message's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the message has a file part (else it is all in memory).
    pub fn has_file(&self) -> bool {
        self.has_file
    }

    /// Why the last read failed (a file error), if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Fills `out` with the next bytes; false at the end.
    fn refill(&mut self) -> io::Result<bool> {
        loop {
            if self.current.is_none() {
                self.current = self.pieces.next();
            }
            match self.current.take() {
                None => return Ok(false),
                Some(Piece::Bytes(b)) => {
                    self.out = b;
                    self.pos = 0;
                    if !self.out.is_empty() {
                        return Ok(true);
                    }
                }
                Some(Piece::File {
                    mut file,
                    path,
                    left,
                }) => {
                    if left == 0 {
                        // It must not have grown either.
                        let mut probe = [0u8; 1];
                        if read_full(&mut file, &mut probe)? != 0 {
                            return Err(self.fail(format!(
                                "attachment {} grew while it was being sent",
                                path.display()
                            )));
                        }
                        continue;
                    }
                    let want = (left as usize).min(FILE_CHUNK);
                    let got = read_full(&mut file, &mut self.input[..want]).map_err(|e| {
                        self.fail(format!("reading attachment {}: {e}", path.display()))
                    })?;
                    if got < want {
                        return Err(self.fail(format!(
                            "attachment {} shrank while it was being sent",
                            path.display()
                        )));
                    }
                    // The previous chunk's buffer is reused (a segment's
                    // bytes are shared with the message, so not those).
                    let mut encoded =
                        Arc::try_unwrap(std::mem::take(&mut self.out)).unwrap_or_default();
                    encoded.clear();
                    Base64Encoder::new()
                        .wrap_lines()
                        .encode_into(&self.input[..got], &mut encoded);
                    self.out = Arc::new(encoded);
                    self.pos = 0;
                    self.current = Some(Piece::File {
                        file,
                        path,
                        left: left - got as u64,
                    });
                    return Ok(true);
                }
            }
        }
    }

    fn fail(&mut self, why: String) -> io::Error {
        self.failure = Some(why.clone());
        io::Error::other(why)
    }
}

impl Read for MessageReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos >= self.out.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads until `buf` is full or the end of the file.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn file_error(path: &std::path::Path, doing: &str, e: &io::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("{doing} attachment {}: {e}", path.display()),
    )
}

/// Opens a file attachment for reading; a directory or other non-file is
/// refused.
pub(crate) fn open_attachment(path: &std::path::Path) -> Result<File> {
    let file = File::open(path).map_err(|e| file_error(path, "cannot open", &e))?;
    let meta = file
        .metadata()
        .map_err(|e| file_error(path, "cannot read", &e))?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::Io,
            format!("attachment {} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, data: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("smtpc-stream-{}-{name}", std::process::id()));
        std::fs::write(&p, data).unwrap();
        p
    }

    #[test]
    fn file_parts_encode_exactly_like_mail_builder_in_memory() {
        for n in [
            0usize,
            1,
            2,
            3,
            56,
            57,
            58,
            FILE_CHUNK - 1,
            FILE_CHUNK,
            FILE_CHUNK * 2 + 5,
        ] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let path = temp_file(&format!("enc{n}"), &data);
            let mut r = MessageReader::open(&[
                Segment::Bytes(Arc::new(b"head\r\n".to_vec())),
                Segment::File {
                    path: path.clone(),
                    len: n as u64,
                },
                Segment::Bytes(Arc::new(b"tail".to_vec())),
            ])
            .unwrap();
            let size = r.size();
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            let mut want = b"head\r\n".to_vec();
            want.extend(Base64Encoder::new().wrap_lines().encode(&data).unwrap());
            want.extend_from_slice(b"tail");
            assert_eq!(got, want, "n = {n}");
            assert_eq!(size, got.len() as u64, "n = {n}");
            assert!(got.split(|&b| b == b'\n').all(|l| l.len() <= 78));
            std::fs::remove_file(path).unwrap();
        }
    }

    #[test]
    fn missing_and_resized_files_fail() {
        let missing = std::env::temp_dir().join("smtpc-stream-no-such-file");
        let e = MessageReader::open(&[Segment::File {
            path: missing,
            len: 1,
        }])
        .err()
        .unwrap();
        assert_eq!(e.kind, ErrorKind::Io);
        assert!(e.message.contains("cannot open"), "{e}");

        let path = temp_file("resized", b"12345");
        let e = MessageReader::open(&[Segment::File {
            path: path.clone(),
            len: 4,
        }])
        .err()
        .unwrap();
        assert!(e.message.contains("changed size"), "{e}");

        let mut r = MessageReader::open(&[Segment::File {
            path: path.clone(),
            len: 5,
        }])
        .unwrap();
        std::fs::write(&path, b"123").unwrap();
        let mut sink = Vec::new();
        assert!(r.read_to_end(&mut sink).is_err());
        assert!(r.failure().unwrap().contains("shrank"));
        std::fs::remove_file(path).unwrap();
    }
}
