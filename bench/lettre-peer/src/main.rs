//! lettre 0.11 peer for the libsmtpc benchmark: a pooled SmtpTransport.
//!
//!   lettre-peer msgs PORT N FILE   N copies of FILE (send_raw)
//!   lettre-peer bulk PORT FILE     FILE as one message
//!
//! Prints elapsed=SECONDS (transport built to last message accepted).

use std::time::Instant;

use lettre::address::Envelope;
use lettre::{SmtpTransport, Transport};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args[1].as_str();
    let port: u16 = args[2].parse().expect("port");
    let (n, path) = match mode {
        "msgs" => (args[3].parse::<usize>().expect("N"), &args[4]),
        _ => (1, &args[3]),
    };
    let msg = std::fs::read(path).expect("read message");
    let envelope = Envelope::new(
        Some("bench@example.org".parse().unwrap()),
        vec!["sink@example.net".parse().unwrap()],
    )
    .unwrap();
    let t0 = Instant::now();
    let mailer = SmtpTransport::builder_dangerous("127.0.0.1").port(port).build();
    for _ in 0..n {
        mailer.send_raw(&envelope, &msg).expect("send");
    }
    let elapsed = t0.elapsed().as_secs_f64();
    drop(mailer);
    println!("elapsed={elapsed:.6}");
}
