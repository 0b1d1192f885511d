//! What STARTTLS would cost with the `openssl` crate used directly, next
//! to what native-tls allows (bench/tls_handshake.sh runs it):
//!
//!   tls-openssl-probe handshake HOST PORT CAFILE N plain|full|resume
//!       connect, EHLO, STARTTLS, EHLO, QUIT, N times (one warm-up first)
//!       with one SslConnector; `resume` keeps the last session ticket and
//!       offers it on the next connection (SSL_set_session), which
//!       native-tls cannot do; `plain` skips STARTTLS and the second EHLO.
//!       Prints "n= cpu_s= wall_s= reused=".
//!   tls-openssl-probe build CAFILE N
//!       the CPU of building a connector trusting only CAFILE, N times:
//!       native-tls (as libsmtpc does; it loads the system roots and then
//!       drops them), openssl's SslConnector::builder (loads the system
//!       roots) and a bare SslContext (loads nothing else). Prints one
//!       line per kind: "build_<kind>_ms=..." per build.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use openssl::ssl::{
    SslConnector, SslContextBuilder, SslMethod, SslSession, SslSessionCacheMode, SslVerifyMode,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;

/// User + system CPU seconds of this process.
fn cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn reply<R: BufRead>(r: &mut R) -> u16 {
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("read reply");
        assert!(line.len() >= 4, "short reply {line:?}");
        if line.as_bytes()[3] != b'-' {
            return line[..3].parse().expect("reply code");
        }
    }
}

fn command<S: Read + Write>(r: &mut BufReader<S>, line: &str, want: u16) {
    r.get_mut().write_all(line.as_bytes()).expect("write");
    let code = reply(r);
    assert_eq!(code, want, "{line:?}");
}

fn connector(ca: &str, resume: Option<Arc<Mutex<Option<SslSession>>>>) -> SslConnector {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    let mut store = X509StoreBuilder::new().unwrap();
    for cert in X509::stack_from_pem(&std::fs::read(ca).unwrap()).unwrap() {
        store.add_cert(cert).unwrap();
    }
    b.set_cert_store(store.build());
    if let Some(slot) = resume {
        b.set_session_cache_mode(SslSessionCacheMode::CLIENT);
        b.set_new_session_callback(move |_, session| {
            *slot.lock().unwrap() = Some(session);
        });
    }
    b.build()
}

/// One connection; whether its TLS session was resumed.
fn one(
    c: Option<&SslConnector>,
    host: &str,
    port: u16,
    slot: Option<&Arc<Mutex<Option<SslSession>>>>,
) -> bool {
    // Nagle left on, as smtplib does (libsmtpc turns it on for the
    // handshake and the first reply after it; see transport.rs).
    let tcp = TcpStream::connect((host, port)).unwrap();
    let mut r = BufReader::new(tcp);
    assert_eq!(reply(&mut r), 220);
    command(&mut r, "EHLO probe.example\r\n", 250);
    let Some(c) = c else {
        command(&mut r, "QUIT\r\n", 221);
        return false;
    };
    command(&mut r, "STARTTLS\r\n", 220);
    let tcp = r.into_inner();
    let mut cfg = c.configure().unwrap();
    if let Some(session) = slot.and_then(|s| s.lock().unwrap().clone()) {
        // SAFETY: the session comes from a connector of the same context.
        unsafe { cfg.set_session(&session).unwrap() };
    }
    let tls = cfg.connect("localhost", tcp).expect("handshake");
    let reused = tls.ssl().session_reused();
    let mut r = BufReader::new(tls);
    command(&mut r, "EHLO probe.example\r\n", 250);
    command(&mut r, "QUIT\r\n", 221);
    reused
}

fn handshake(args: &[String]) {
    let (host, port, ca, n) = (
        &args[0],
        args[1].parse().unwrap(),
        &args[2],
        args[3].parse().unwrap(),
    );
    let resume = args[4] == "resume";
    let slot = resume.then(|| Arc::new(Mutex::new(None)));
    let connector = connector(ca, slot.clone());
    let c = (args[4] != "plain").then_some(&connector);
    one(c, host, port, slot.as_ref());
    let (c0, w0) = (cpu(), Instant::now());
    let mut reused = 0;
    for _ in 0..n {
        reused += usize::from(one(c, host, port, slot.as_ref()));
    }
    println!(
        "n={n} cpu_s={:.6} wall_s={:.6} reused={reused}",
        cpu() - c0,
        w0.elapsed().as_secs_f64()
    );
}

fn build(args: &[String]) {
    let (ca, n): (&str, u32) = (&args[0], args[1].parse().unwrap());
    let pem = std::fs::read(ca).unwrap();
    let time = |name: &str, f: &dyn Fn()| {
        f(); // warm-up (one-time probing of the system's paths)
        let c0 = cpu();
        for _ in 0..n {
            f();
        }
        println!("build_{name}_ms={:.3}", (cpu() - c0) * 1e3 / f64::from(n));
    };
    time("native_tls", &|| {
        let mut b = native_tls::TlsConnector::builder();
        for cert in X509::stack_from_pem(&pem).unwrap() {
            b.add_root_certificate(
                native_tls::Certificate::from_der(&cert.to_der().unwrap()).unwrap(),
            );
        }
        b.disable_built_in_roots(true);
        b.build().unwrap();
    });
    time("openssl_connector", &|| {
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        let mut store = X509StoreBuilder::new().unwrap();
        for cert in X509::stack_from_pem(&pem).unwrap() {
            store.add_cert(cert).unwrap();
        }
        b.set_cert_store(store.build());
        b.build();
    });
    time("openssl_bare_context", &|| {
        let mut b = SslContextBuilder::new(SslMethod::tls_client()).unwrap();
        b.set_verify(SslVerifyMode::PEER);
        for cert in X509::stack_from_pem(&pem).unwrap() {
            b.cert_store_mut().add_cert(cert).unwrap();
        }
        b.build();
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("handshake") if args.len() == 6 => handshake(&args[1..]),
        Some("build") if args.len() == 3 => build(&args[1..]),
        _ => {
            eprintln!("usage: tls-openssl-probe handshake HOST PORT CAFILE N full|resume | build CAFILE N");
            std::process::exit(2);
        }
    }
}
