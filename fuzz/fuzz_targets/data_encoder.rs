//! A message body through `DataEncoder` (DATA mode) in three pieces cut at
//! fuzzer-chosen points, as a large body is cut into write pieces. The wire
//! must hold no bare CR, no bare LF and no lone-dot line before the end
//! marker; unstuffing it must give the CRLF-normalized input; and the cuts
//! must not change a byte of the encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpc::client::data::{encode_data, DataEncoder, END_OF_DATA};

/// CRLF, lone CR and lone LF each become CRLF; a body not ending in a line
/// break gets one (as smtplib does).
fn normalized(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 8);
    let mut i = 0;
    while i < msg.len() {
        match msg[i] {
            b'\r' if msg.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (cuts, msg) = data.split_at(2);
    let a = usize::from(cuts[0]) * msg.len() / 255;
    let b = a + usize::from(cuts[1]) * (msg.len() - a) / 255;

    let mut enc = DataEncoder::for_data();
    let mut wire = Vec::new();
    enc.encode(&msg[..a], &mut wire);
    enc.encode(&msg[a..b], &mut wire);
    enc.encode(&msg[b..], &mut wire);
    enc.finish(&mut wire);
    assert_eq!(
        wire,
        encode_data(msg),
        "cuts at {a} and {b} changed the encoding"
    );

    let body = wire
        .strip_suffix(END_OF_DATA)
        .expect("the wire ends with the end marker");
    assert!(
        body.is_empty() || body.ends_with(b"\r\n"),
        "marker starts a line"
    );
    for (i, &c) in body.iter().enumerate() {
        if c == b'\r' {
            assert_eq!(body.get(i + 1), Some(&b'\n'), "bare CR at {i}");
        }
        if c == b'\n' {
            assert!(i > 0 && body[i - 1] == b'\r', "bare LF at {i}");
        }
    }
    let mut unstuffed = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&c| c == b'\n') {
        assert_ne!(line, b".\r\n", "a lone dot line ends DATA early");
        unstuffed.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    assert_eq!(unstuffed, normalized(msg));

    // BDAT mode: normalization only, no stuffing, no marker.
    let mut enc = DataEncoder::for_bdat();
    let mut bdat = Vec::new();
    enc.encode(&msg[..a], &mut bdat);
    enc.encode(&msg[a..], &mut bdat);
    enc.finish(&mut bdat);
    assert_eq!(bdat, normalized(msg));
});
