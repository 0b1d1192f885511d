//! A message body through `DataEncoder` (DATA mode) in three pieces cut at
//! fuzzer-chosen points, as a large body is cut into write pieces. The wire
//! must hold no bare CR, no bare LF and no lone-dot line before the end
//! marker; unstuffing it must give the CRLF-normalized input; and the cuts
//! must not change a byte of the encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpc::client::data::reference::{check_wire, normalized};
use smtpc::client::data::{encode_data, DataEncoder};

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

    assert_eq!(check_wire(&wire, "fuzzed body"), normalized(msg));

    // BDAT mode: normalization only, no stuffing, no marker.
    let mut enc = DataEncoder::for_bdat();
    let mut bdat = Vec::new();
    enc.encode(&msg[..a], &mut bdat);
    enc.encode(&msg[a..], &mut bdat);
    enc.finish(&mut bdat);
    assert_eq!(bdat, normalized(msg));
});
