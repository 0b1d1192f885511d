//! The libsmtpc benchmark driver.
//!
//!   smtpc-bench run --smtp-sink PORT --discard PORT --discard-chunking PORT
//!                   --workdir DIR [--n N] [--bulk-bytes B] [--repeats R] [--bulk-repeats R]
//!                   [--lettre PATH] [--python PY] [--smoke]
//!       runs every client, prints the report (Markdown tables).
//!   smtpc-bench msgs CLIENT PORT N      one section-1 client alone (for profiling);
//!       CLIENT: lockstep | pipelined | batch | batch-from | raw2 | raw1
//!   smtpc-bench launch CMD [ARGS...]
//!       runs CMD, then prints maxrss_kib=N (its peak RSS, from wait4).
//!   smtpc-bench child-bulk --api buffer|stream --port P --bytes B [--no-chunking]
//!       one big message in a process of its own (for peak RSS); prints
//!       elapsed=SECONDS buffer=BYTES.
//!
//! Section 1 times 1 KiB messages over one connection to smtp-sink, and
//! counts round trips on the discard sink; section 2 sends one big message
//! from separate processes and reads their peak RSS with wait4().

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use smtpc::client::{Body, Message};
use smtpc::{Session, Step};
use smtpc_bench::{MessageGen, ReplyReader, FROM, TO};

type Res<T> = Result<T, String>;

const HOST: &str = "127.0.0.1";
const MSG_SIZE: usize = 1024;
const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("run") => match Opts::parse(&args[1..]).and_then(|o| run(&o)) {
            Ok(ok) => {
                if ok {
                    0
                } else {
                    1
                }
            }
            Err(e) => {
                eprintln!("smtpc-bench: {e}");
                1
            }
        },
        Some("msgs") => match one_client(&args[1..]) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("smtpc-bench msgs: {e}");
                1
            }
        },
        Some("gen-speed") => {
            let n = 500_000_000;
            let t0 = Instant::now();
            let mut g = MessageGen::new(n);
            let _ = std::io::copy(&mut g, &mut std::io::sink());
            println!("generator: {:.0} MB/s", n as f64 / 1e6 / t0.elapsed().as_secs_f64());
            0
        }
        Some("launch") => launch(&args[1..]),
        Some("child-bulk") => match child_bulk(&args[1..]) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("smtpc-bench child-bulk: {e}");
                1
            }
        },
        _ => {
            eprintln!("usage: smtpc-bench run ... | child-bulk ... (see the source)");
            2
        }
    };
    std::process::exit(code);
}

// ---- options ---------------------------------------------------------------

struct Opts {
    smtp_sink: u16,
    discard: u16,
    discard_chunking: u16,
    workdir: PathBuf,
    n: usize,
    bulk_bytes: usize,
    repeats: usize,
    bulk_repeats: usize,
    lettre: Option<PathBuf>,
    python: String,
    smoke: bool,
}

impl Opts {
    fn parse(args: &[String]) -> Res<Opts> {
        let mut m: BTreeMap<String, String> = BTreeMap::new();
        let mut smoke = false;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if a == "--smoke" {
                smoke = true;
                continue;
            }
            let key = a
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {a}"))?;
            let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
            m.insert(key.to_string(), v.clone());
        }
        let port = |k: &str| -> Res<u16> {
            m.get(k)
                .ok_or_else(|| format!("--{k} is required"))?
                .parse()
                .map_err(|e| format!("--{k}: {e}"))
        };
        let num = |k: &str, d: usize| -> Res<usize> {
            m.get(k)
                .map_or(Ok(d), |v| v.parse().map_err(|e| format!("--{k}: {e}")))
        };
        Ok(Opts {
            smtp_sink: port("smtp-sink")?,
            discard: port("discard")?,
            discard_chunking: port("discard-chunking")?,
            workdir: PathBuf::from(m.get("workdir").ok_or("--workdir is required")?),
            n: num("n", if smoke { 200 } else { 5000 })?,
            bulk_bytes: num("bulk-bytes", if smoke { 5_000_000 } else { 50_000_000 })?,
            repeats: num("repeats", if smoke { 1 } else { 5 })?.max(1),
            bulk_repeats: num("bulk-repeats", if smoke { 1 } else { 5 })?.max(1),
            lettre: m.get("lettre").map(PathBuf::from),
            python: m.get("python").cloned().unwrap_or_else(|| "python3".into()),
            smoke,
        })
    }
}

// ---- the report --------------------------------------------------------------

/// Clients of section 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Client {
    LockStep,
    Pipelined,
    Batch,
    BatchFrom,
    Smtplib,
    Curl,
    Lettre,
    Raw2,
    Raw1,
}

impl Client {
    fn label(self) -> &'static str {
        match self {
            Client::LockStep => "libsmtpc sendmail, lock-step (set_pipelining(false))",
            Client::Pipelined => "libsmtpc sendmail, pipelined",
            Client::Batch => "libsmtpc batch_add + batch_send",
            Client::BatchFrom => "libsmtpc batch_send_from (closure source)",
            Client::Smtplib => "Python smtplib (sendmail loop)",
            Client::Curl => "curl -K (one invocation, `next`)",
            Client::Lettre => "lettre 0.11 SmtpTransport (pooled)",
            Client::Raw2 => "raw socket, pipelined MAIL/RCPT/DATA",
            Client::Raw1 => "raw socket, pipelined across messages",
        }
    }

    /// Round trips per message the protocol exchange implies, for clients
    /// that cannot count their own.
    fn protocol_waits(self) -> Option<&'static str> {
        match self {
            Client::Smtplib | Client::Curl => Some("4 (protocol: MAIL, RCPT, DATA, end)"),
            Client::Lettre => Some("5 (protocol: NOOP, MAIL, RCPT, DATA, end)"),
            _ => None,
        }
    }
}

/// One timed run over one connection.
struct MsgRun {
    secs: f64,
    /// The client's own count of waits for the messages (not connect/EHLO).
    waits: Option<u64>,
}

#[derive(Default, Clone, Copy, Debug)]
struct SinkStats {
    conns: u64,
    msgs: u64,
    waits: u64,
    bytes: u64,
}

fn run(o: &Opts) -> Res<bool> {
    std::fs::create_dir_all(&o.workdir).map_err(|e| format!("workdir: {e}"))?;
    let started = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    header(o);

    // ---- section 1 ----
    let msg = MessageGen::to_vec(MSG_SIZE);
    let msg_file = o.workdir.join("msg-1k.eml");
    std::fs::write(&msg_file, &msg).map_err(|e| format!("write {msg_file:?}: {e}"))?;
    let curl_cfg = o.workdir.join("curl-msgs.cfg");
    write_curl_config(&curl_cfg, o.smtp_sink, o.n, &msg_file)?;
    let curl_cfg_discard = o.workdir.join("curl-msgs-discard.cfg");
    write_curl_config(&curl_cfg_discard, o.discard, o.n, &msg_file)?;

    let mut clients = vec![
        Client::LockStep,
        Client::Pipelined,
        Client::Batch,
        Client::BatchFrom,
        Client::Smtplib,
        Client::Curl,
    ];
    if o.lettre.is_some() {
        clients.push(Client::Lettre);
    }
    clients.push(Client::Raw2);
    clients.push(Client::Raw1);
    // lettre waits for the server's delayed ACK on every message (~40 ms):
    // it gets fewer messages so the run stays short.
    let n_for = |c: Client| {
        if c == Client::Lettre {
            o.n.min(100)
        } else {
            o.n
        }
    };
    let run_client = |c: Client, port: u16, cfg: &Path| -> Res<MsgRun> {
        let n = n_for(c);
        match c {
            Client::LockStep | Client::Pipelined | Client::Batch | Client::BatchFrom => {
                smtpc_msgs(c, port, n, &msg)
            }
            Client::Raw2 => raw_msgs(port, n, &msg, false),
            Client::Raw1 => raw_msgs(port, n, &msg, true),
            Client::Smtplib => {
                let out = run_cmd(Command::new(&o.python).args([
                    peer_script().to_str().unwrap(),
                    "msgs",
                    &port.to_string(),
                    &n.to_string(),
                    msg_file.to_str().unwrap(),
                ]))?;
                Ok(MsgRun {
                    secs: elapsed_of(&out.stdout)?,
                    waits: None,
                })
            }
            Client::Curl => {
                let t0 = Instant::now();
                run_cmd(Command::new("curl").args(["-s", "-S", "-K"]).arg(cfg))?;
                Ok(MsgRun {
                    secs: t0.elapsed().as_secs_f64(),
                    waits: None,
                })
            }
            Client::Lettre => {
                let out = run_cmd(Command::new(o.lettre.as_ref().unwrap()).args([
                    "msgs",
                    &port.to_string(),
                    &n.to_string(),
                    msg_file.to_str().unwrap(),
                ]))?;
                Ok(MsgRun {
                    secs: elapsed_of(&out.stdout)?,
                    waits: None,
                })
            }
        }
    };

    // Timed runs against smtp-sink, interleaved so drift in the machine's
    // load spreads over every client alike.
    let mut rates: BTreeMap<Client, Vec<f64>> = BTreeMap::new();
    let mut client_waits: BTreeMap<Client, f64> = BTreeMap::new();
    for r in 0..o.repeats {
        for &c in &clients {
            eprintln!("bench: 1 KiB x {} -> smtp-sink: {} (run {})", n_for(c), c.label(), r + 1);
            match run_client(c, o.smtp_sink, &curl_cfg) {
                Ok(run) => {
                    rates.entry(c).or_default().push(n_for(c) as f64 / run.secs);
                    if let Some(w) = run.waits {
                        client_waits.insert(c, w as f64 / n_for(c) as f64);
                    }
                }
                Err(e) => failures.push(format!("{} -> smtp-sink: {e}", c.label())),
            }
        }
    }
    // One counted run each against the discard sink (no CHUNKING offered,
    // so every client speaks DATA as it does to smtp-sink).
    let mut sink_counts: BTreeMap<Client, (f64, u64)> = BTreeMap::new();
    for &c in &clients {
        eprintln!("bench: 1 KiB x {} -> discard sink (counting): {}", n_for(c), c.label());
        let before = xstats(o.discard);
        let res = run_client(c, o.discard, &curl_cfg_discard);
        let after = xstats(o.discard);
        match (res, before, after) {
            (Ok(_), Ok(b), Ok(a)) => {
                let msgs = a.msgs - b.msgs;
                if msgs != n_for(c) as u64 {
                    failures.push(format!(
                        "{}: the discard sink got {msgs} messages, expected {}",
                        c.label(),
                        n_for(c)
                    ));
                }
                sink_counts.insert(
                    c,
                    ((a.waits - b.waits) as f64 / n_for(c) as f64, a.conns - b.conns),
                );
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                failures.push(format!("{} -> discard sink: {e}", c.label()))
            }
        }
    }

    let med = |c: Client| rates.get(&c).map(|v| median(v));
    println!(
        "## 1. 1 KiB messages over one connection\n\n\
         N = {} messages of {} bytes, one recipient, to smtp-sink; msgs/s is the median of {} \
         run(s), connect to QUIT (min–max in brackets). Waits per message: the client's own \
         count where it keeps one (libsmtpc: `Session::waits()` delta / N; raw clients: reads \
         that blocked), else the protocol's count; and independently the discard sink's count \
         of reply writes after which the client had to send more before the sink could go on \
         (a zero-timeout poll found no input), over a separate run of the same N messages, \
         with the number of connections that carried mail.\n",
        o.n, MSG_SIZE, o.repeats
    );
    println!("| client | msgs/s | × smtplib | waits/msg (client) | waits/msg (sink-counted) | connections |");
    println!("|---|---:|---:|---|---:|---:|");
    let smtplib = med(Client::Smtplib);
    for &c in &clients {
        let rate = match rates.get(&c) {
            Some(v) => format!(
                "{:.0} [{:.0}–{:.0}]",
                median(v),
                v.iter().cloned().fold(f64::MAX, f64::min),
                v.iter().cloned().fold(0.0, f64::max)
            ),
            None => "failed".into(),
        };
        let vs = match (med(c), smtplib) {
            (Some(a), Some(b)) if a / b < 0.1 => format!("{:.3}", a / b),
            (Some(a), Some(b)) => format!("{:.2}", a / b),
            _ => "—".into(),
        };
        let cw = match (client_waits.get(&c), c.protocol_waits()) {
            (Some(w), _) => format!("{w:.2}"),
            (None, Some(p)) => p.to_string(),
            (None, None) => "—".into(),
        };
        let (sw, conns) = match sink_counts.get(&c) {
            Some((w, k)) => (format!("{w:.2}"), k.to_string()),
            None => ("—".into(), "—".into()),
        };
        let label = if c == Client::Lettre && n_for(c) != o.n {
            format!("{} (N = {})", c.label(), n_for(c))
        } else {
            c.label().to_string()
        };
        println!("| {label} | {rate} | {vs} | {cw} | {sw} | {conns} |");
    }
    if o.lettre.is_none() {
        println!("\nlettre: skipped (built and run only in the full run, not with --smoke).");
    } else {
        println!(
            "\nlettre gets N = {} only: each of its messages waits ~40 ms for the sink's delayed \
             ACK (it writes the end-of-data marker apart from the body, without TCP_NODELAY); \
             that wait involves no SMTP reply, so neither waits column shows it.",
            n_for(Client::Lettre)
        );
    }
    if let Some((_, k)) = sink_counts.get(&Client::Curl) {
        println!(
            "\ncurl connection reuse: {} connection(s) for {} transfers in one invocation — {}.",
            k,
            o.n,
            if *k == 1 { "reused" } else { "NOT reused" }
        );
    }

    let mut targets: Vec<(String, Option<f64>, f64)> = Vec::new();
    let ratio = |a: Client, b: Client| match (med(a), med(b)) {
        (Some(x), Some(y)) => Some(x / y),
        _ => None,
    };
    targets.push(("pipelined sendmail / smtplib".into(), ratio(Client::Pipelined, Client::Smtplib), 2.0));
    targets.push(("pipelined sendmail / raw 2-wait".into(), ratio(Client::Pipelined, Client::Raw2), 0.95));
    targets.push(("batch_send / smtplib".into(), ratio(Client::Batch, Client::Smtplib), 3.5));
    targets.push(("batch_send / curl".into(), ratio(Client::Batch, Client::Curl), 3.5));
    targets.push(("batch_send_from / smtplib".into(), ratio(Client::BatchFrom, Client::Smtplib), 3.5));
    targets.push(("batch_send_from / curl".into(), ratio(Client::BatchFrom, Client::Curl), 3.5));

    // ---- section 2 ----
    let bulk_file = o.workdir.join("bulk.eml");
    {
        let mut f = std::fs::File::create(&bulk_file).map_err(|e| format!("{bulk_file:?}: {e}"))?;
        let mut g = MessageGen::new(o.bulk_bytes);
        std::io::copy(&mut g, &mut f).map_err(|e| format!("{bulk_file:?}: {e}"))?;
    }
    let sinks = [
        ("smtp-sink", o.smtp_sink),
        ("discard (DATA)", o.discard),
        ("discard + CHUNKING", o.discard_chunking),
    ];
    #[derive(Clone)]
    struct BulkCase {
        client: &'static str,
        sink: &'static str,
        port: u16,
        kind: &'static str,
    }
    let mut cases: Vec<BulkCase> = Vec::new();
    for &(sink, port) in &sinks {
        cases.push(BulkCase { client: "libsmtpc sendmail (buffer)", sink, port, kind: "buffer" });
        cases.push(BulkCase { client: "libsmtpc sendmail_stream", sink, port, kind: "stream" });
        if sink != "discard + CHUNKING" {
            cases.push(BulkCase { client: "curl --upload-file", sink, port, kind: "curl" });
            cases.push(BulkCase { client: "Python smtplib", sink, port, kind: "smtplib" });
        }
        if sink == "discard (DATA)" && o.lettre.is_some() {
            cases.push(BulkCase { client: "lettre 0.11", sink, port, kind: "lettre" });
        }
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bytes_s = o.bulk_bytes.to_string();
    let mut bulk: Vec<(Vec<f64>, Vec<f64>, Option<f64>)> = vec![(vec![], vec![], None); cases.len()];
    for r in 0..o.bulk_repeats {
        for (i, c) in cases.iter().enumerate() {
            eprintln!("bench: {} bytes -> {}: {} (run {})", o.bulk_bytes, c.sink, c.client, r + 1);
            let port = c.port.to_string();
            let mut cmd = match c.kind {
                "buffer" | "stream" => {
                    let mut cmd = Command::new(&exe);
                    cmd.args(["child-bulk", "--api", c.kind, "--port", &port, "--bytes", &bytes_s]);
                    cmd
                }
                "curl" => {
                    let mut cmd = Command::new("curl");
                    cmd.args(["-s", "-S", "--url", &format!("smtp://{HOST}:{port}")])
                        .args(["--mail-from", FROM, "--mail-rcpt", TO, "--upload-file"])
                        .arg(&bulk_file)
                        .args(["-w", "elapsed=%{time_total}\n"]);
                    cmd
                }
                "smtplib" => {
                    let mut cmd = Command::new(&o.python);
                    cmd.arg(peer_script()).args(["bulk", &port]).arg(&bulk_file);
                    cmd
                }
                _ => {
                    let mut cmd = Command::new(o.lettre.as_ref().unwrap());
                    cmd.args(["bulk", &port]).arg(&bulk_file);
                    cmd
                }
            };
            let before = if c.port != o.smtp_sink { xstats(c.port).ok() } else { None };
            match run_cmd(&mut cmd).and_then(|out| {
                let secs = elapsed_of(&out.stdout)?;
                let buffer = field_of(&out.stdout, "buffer").unwrap_or(0.0);
                Ok((secs, out.maxrss_kib, buffer))
            }) {
                Ok((secs, rss_kib, buffer)) => {
                    if let (Some(b), Ok(a)) = (before, xstats(c.port)) {
                        if a.msgs != b.msgs + 1 || a.bytes - b.bytes < o.bulk_bytes as u64 {
                            failures.push(format!(
                                "{} -> {}: the sink got {} message(s), {} bytes",
                                c.client, c.sink, a.msgs - b.msgs, a.bytes - b.bytes
                            ));
                        }
                    }
                    bulk[i].0.push(o.bulk_bytes as f64 / 1e6 / secs);
                    bulk[i].1.push(rss_kib as f64 * 1024.0);
                    if c.kind == "buffer" {
                        bulk[i].2 = Some(buffer);
                    }
                }
                Err(e) => failures.push(format!("{} -> {}: {e}", c.client, c.sink)),
            }
        }
    }

    println!(
        "\n## 2. One {:.0} MB message\n\n\
         Random printable text, {}-character lines ending in CRLF (some start with '.'). Each \
         client runs as a process of its own; MB/s (10^6 bytes) from connect to the final \
         reply (curl: its time_total), median of {} run(s); peak RSS is the process's \
         ru_maxrss from wait4() in a small launcher process (so it is exact above the \
         launcher's own ~4 MiB). libsmtpc uses its defaults: DATA to smtp-sink and to the \
         plain discard sink, BDAT where the sink offers CHUNKING. For the buffer API, the \
         column after peak RSS subtracts the caller's message buffer.\n",
        o.bulk_bytes as f64 / 1e6,
        smtpc_bench::LINE_CHARS,
        o.bulk_repeats
    );
    println!("| client | sink | MB/s | peak RSS | RSS beyond message buffer |");
    println!("|---|---|---:|---:|---:|");
    let mut bulk_med: BTreeMap<(&str, &str), (f64, f64, Option<f64>)> = BTreeMap::new();
    for (c, (mbs, rss, buffer)) in cases.iter().zip(&bulk) {
        if mbs.is_empty() {
            println!("| {} | {} | failed | — | — |", c.client, c.sink);
            continue;
        }
        let (m, r) = (median(mbs), median(rss));
        let beyond = buffer.map(|b| r - b);
        bulk_med.insert((c.client, c.sink), (m, r, beyond));
        println!(
            "| {} | {} | {:.0} | {:.1} MiB | {} |",
            c.client,
            c.sink,
            m,
            r / MIB,
            beyond.map_or("—".into(), |b| format!("{:.1} MiB", b / MIB))
        );
    }
    if o.lettre.is_none() {
        println!("\nlettre: skipped (--smoke).");
    }

    let mbs = |client: &str, sink: &str| bulk_med.get(&(client, sink)).map(|v| v.0);
    let curl = mbs("curl --upload-file", "discard (DATA)");
    for (client, sink, name) in [
        ("libsmtpc sendmail (buffer)", "discard (DATA)", "sendmail (DATA) / curl, discard sink"),
        ("libsmtpc sendmail_stream", "discard (DATA)", "sendmail_stream (DATA) / curl, discard sink"),
        ("libsmtpc sendmail (buffer)", "discard + CHUNKING", "sendmail (BDAT) / curl (DATA), discard sink"),
        ("libsmtpc sendmail_stream", "discard + CHUNKING", "sendmail_stream (BDAT) / curl (DATA), discard sink"),
    ] {
        let v = match (mbs(client, sink), curl) {
            (Some(a), Some(b)) => Some(a / b),
            _ => None,
        };
        targets.push((format!("MB/s {name}"), v, 1.5));
    }

    println!("\n## Targets\n");
    println!("| ratio | value | target | met |");
    println!("|---|---:|---:|:---:|");
    for (name, v, t) in &targets {
        let (val, met) = match v {
            Some(v) => (format!("{v:.2}"), if *v >= *t { "✓" } else { "✗" }),
            None => ("—".into(), "✗"),
        };
        println!("| {name} | {val} | ≥ {t} | {met} |");
    }
    // Memory limits (lower is better).
    let mut worst_buffer: Option<f64> = None;
    let mut worst_stream: Option<f64> = None;
    for ((client, _), (_, rss, beyond)) in &bulk_med {
        if *client == "libsmtpc sendmail (buffer)" {
            let b = beyond.unwrap_or(*rss);
            worst_buffer = Some(worst_buffer.map_or(b, |w: f64| w.max(b)));
        }
        if *client == "libsmtpc sendmail_stream" {
            worst_stream = Some(worst_stream.map_or(*rss, |w: f64| w.max(*rss)));
        }
    }
    for (name, v) in [
        ("buffer API: peak RSS beyond the message buffer (worst sink)", worst_buffer),
        ("streaming API: peak RSS (worst sink)", worst_stream),
    ] {
        let (val, met) = match v {
            Some(v) => (format!("{:.1} MiB", v / MIB), if v <= 16.0 * MIB { "✓" } else { "✗" }),
            None => ("—".into(), "✗"),
        };
        println!("| {name} | {val} | ≤ 16 MiB | {met} |");
    }

    println!("\nTotal benchmark time: {:.0} s.", started.elapsed().as_secs_f64());
    if !failures.is_empty() {
        println!("\n## Failures\n");
        for f in &failures {
            println!("- {f}");
        }
        return Ok(false);
    }
    Ok(true)
}

fn header(o: &Opts) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let date = cmd_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M:%S UTC"]));
    let curl = cmd_line(Command::new("curl").arg("--version"));
    let py = cmd_line(Command::new(&o.python).arg("--version"));
    let postfix = cmd_line(Command::new("postconf").args(["-d", "-h", "mail_version"]));
    println!("# libsmtpc benchmark{}\n", if o.smoke { " (--smoke)" } else { "" });
    println!("- date: {date}");
    println!("- machine: {nproc} CPUs ({cpu}), Linux {kernel}, load average at start {load}");
    println!(
        "- peers: {py}; {}; smtp-sink from Postfix {postfix}{}",
        curl.split(" (").next().unwrap_or(&curl),
        if o.lettre.is_some() {
            format!("; lettre {}", lettre_version())
        } else {
            String::new()
        }
    );
    println!("- sinks: smtp-sink (`-u nobody -m 1024`), bench/src/bin/discard_sink.rs (with and without CHUNKING), all on 127.0.0.1\n");
}

/// lettre's version as resolved in bench/lettre-peer/Cargo.lock.
fn lettre_version() -> String {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("lettre-peer/Cargo.lock");
    std::fs::read_to_string(lock)
        .ok()
        .and_then(|l| {
            let at = l.find("name = \"lettre\"")?;
            let rest = &l[at..];
            let v = rest.split("version = \"").nth(1)?;
            Some(v.split('"').next()?.to_string())
        })
        .unwrap_or_else(|| "0.11".into())
}

fn cmd_line(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| {
            let s = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&s).lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_else(|| "?".into())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/smtplib_peer.py")
}

fn write_curl_config(path: &Path, port: u16, n: usize, msg: &Path) -> Res<()> {
    let mut cfg = String::new();
    for i in 0..n {
        if i > 0 {
            cfg.push_str("next\n");
        }
        cfg.push_str(&format!(
            "url = \"smtp://{HOST}:{port}\"\nmail-from = \"{FROM}\"\nmail-rcpt = \"{TO}\"\nupload-file = \"{}\"\n",
            msg.display()
        ));
    }
    std::fs::write(path, cfg).map_err(|e| format!("write {path:?}: {e}"))
}

// ---- child processes ---------------------------------------------------------

struct CmdOut {
    stdout: String,
    maxrss_kib: i64,
}

/// Runs a command to completion through `smtpc-bench launch`, which
/// reports the command's peak RSS.
///
/// Why the detour: a child started with vfork/posix_spawn shares its
/// parent's memory until exec, and Linux folds that memory's high-water
/// mark into the child's ru_maxrss at exec. Measured straight from this
/// driver, every child would show at least the driver's own peak. The
/// launcher is a fresh, small process, so the floor is its ~2 MiB.
fn run_cmd(cmd: &mut Command) -> Res<CmdOut> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut launched = Command::new(exe);
    launched.arg("launch").arg(cmd.get_program()).args(cmd.get_args());
    let out = wait_cmd(&mut launched)?;
    let maxrss_kib = field_of(&out.stdout, "maxrss_kib")
        .ok_or_else(|| format!("launcher printed no maxrss_kib: {:?}", out.stdout))?;
    Ok(CmdOut {
        stdout: out.stdout,
        maxrss_kib: maxrss_kib as i64,
    })
}

/// `launch`: runs a command with this process's stdio, then prints its
/// peak RSS; exits with its status.
fn launch(args: &[String]) -> i32 {
    let Some((prog, rest)) = args.split_first() else {
        eprintln!("usage: smtpc-bench launch CMD [ARGS...]");
        return 2;
    };
    let child = match Command::new(prog).args(rest).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("launch {prog}: {e}");
            return 127;
        }
    };
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is written by the kernel.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    if unsafe { libc::wait4(pid, &mut status, 0, &mut ru) } != pid {
        eprintln!("launch: wait4: {}", std::io::Error::last_os_error());
        return 1;
    }
    println!("maxrss_kib={}", ru.ru_maxrss);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    }
}

/// Runs a command to completion, capturing its output.
fn wait_cmd(cmd: &mut Command) -> Res<CmdOut> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut err_pipe = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let _ = err_pipe.read_to_string(&mut stderr);
        stderr
    });
    let _ = child.stdout.take().unwrap().read_to_string(&mut stdout);
    let stderr = err_reader.join().unwrap_or_default();
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is written by the kernel.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r != pid {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let name = cmd.get_program().to_string_lossy().into_owned();
        return Err(format!(
            "{name} failed (status {status:#x}): {}",
            stderr.trim().lines().last().unwrap_or("")
        ));
    }
    Ok(CmdOut {
        stdout,
        maxrss_kib: ru.ru_maxrss,
    })
}

fn field_of(out: &str, key: &str) -> Option<f64> {
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
}

fn elapsed_of(out: &str) -> Res<f64> {
    field_of(out, "elapsed").ok_or_else(|| format!("no elapsed= in output {out:?}"))
}

/// `child-bulk`: one big message through libsmtpc, in this process alone.
fn child_bulk(args: &[String]) -> Res<()> {
    let mut api = String::new();
    let mut port = 0u16;
    let mut bytes = 0usize;
    let mut chunking = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--api" => api = it.next().cloned().unwrap_or_default(),
            "--port" => port = it.next().and_then(|v| v.parse().ok()).ok_or("--port")?,
            "--bytes" => bytes = it.next().and_then(|v| v.parse().ok()).ok_or("--bytes")?,
            "--no-chunking" => chunking = false,
            _ => return Err(format!("unexpected {a}")),
        }
    }
    let buffer = if api == "buffer" {
        Some(MessageGen::to_vec(bytes))
    } else {
        None
    };
    let t0 = Instant::now();
    let mut s = Session::new();
    s.set_chunking(chunking);
    s.connect(HOST, port).map_err(|e| e.to_string())?;
    s.ehlo(None).map_err(|e| e.to_string())?;
    let r = match &buffer {
        Some(b) => s.sendmail(FROM, &[TO], b),
        None => {
            let mut g = MessageGen::new(bytes);
            s.sendmail_stream(FROM, &[TO], &mut g, Some(bytes as u64))
        }
    }
    .map_err(|e| e.to_string())?;
    if s.failed_step() != Step::None || !(200..300).contains(&r.code) {
        return Err(format!("refused: {} {}", r.code, r.text));
    }
    let secs = t0.elapsed().as_secs_f64();
    let _ = s.quit();
    println!(
        "elapsed={secs:.6} buffer={}",
        buffer.as_ref().map_or(0, |b| b.capacity())
    );
    Ok(())
}

fn one_client(args: &[String]) -> Res<()> {
    let [c, port, n] = args else {
        return Err("usage: msgs CLIENT PORT N".into());
    };
    let c = match c.as_str() {
        "lockstep" => Client::LockStep,
        "pipelined" => Client::Pipelined,
        "batch" => Client::Batch,
        "batch-from" => Client::BatchFrom,
        "raw2" => Client::Raw2,
        "raw1" => Client::Raw1,
        _ => return Err(format!("unknown client {c}")),
    };
    let port: u16 = port.parse().map_err(|e| format!("port: {e}"))?;
    let n: usize = n.parse().map_err(|e| format!("N: {e}"))?;
    let msg = MessageGen::to_vec(MSG_SIZE);
    let run = match c {
        Client::Raw2 => raw_msgs(port, n, &msg, false),
        Client::Raw1 => raw_msgs(port, n, &msg, true),
        _ => smtpc_msgs(c, port, n, &msg),
    }?;
    println!(
        "{}: {:.0} msgs/s, {:.2} waits/msg",
        c.label(),
        n as f64 / run.secs,
        run.waits.unwrap_or(0) as f64 / n as f64
    );
    Ok(())
}

// ---- section 1 clients -----------------------------------------------------------

fn smtpc_msgs(c: Client, port: u16, n: usize, msg: &[u8]) -> Res<MsgRun> {
    let e = |e: smtpc::Error| e.to_string();
    let t0 = Instant::now();
    let mut s = Session::new();
    if c == Client::LockStep {
        s.set_pipelining(false);
    }
    s.connect(HOST, port).map_err(e)?;
    s.ehlo(None).map_err(e)?;
    let w0 = s.waits();
    let check = |r: &smtpc::Reply, s: &Session| -> Res<()> {
        if s.failed_step() != Step::None || r.code != 250 {
            return Err(format!("refused: {} {}", r.code, r.text));
        }
        Ok(())
    };
    match c {
        Client::LockStep | Client::Pipelined => {
            for _ in 0..n {
                let r = s.sendmail(FROM, &[TO], msg).map_err(e)?;
                check(&r, &s)?;
            }
        }
        Client::Batch => {
            for _ in 0..n {
                s.batch_add(FROM, &[TO], msg).map_err(e)?;
            }
            if let Some(r) = s.batch_send().map_err(e)? {
                return Err(format!("EHLO refused: {}", r.code));
            }
        }
        Client::BatchFrom => {
            let mut left = n;
            let mut source = || -> smtpc::client::Result<Option<Message<'_>>> {
                if left == 0 {
                    return Ok(None);
                }
                left -= 1;
                Ok(Some(Message {
                    from: FROM,
                    to: vec![TO],
                    body: Body::Bytes(msg),
                }))
            };
            if let Some(r) = s.batch_send_from(&mut source).map_err(e)? {
                return Err(format!("EHLO refused: {}", r.code));
            }
        }
        _ => unreachable!(),
    }
    if matches!(c, Client::Batch | Client::BatchFrom) {
        let results = s.batch_results();
        if results.len() != n {
            return Err(format!("{} results for {n} messages", results.len()));
        }
        for o in results {
            match o.result() {
                Ok((Step::None, _)) => {}
                Ok((step, r)) => return Err(format!("refused at {step:?}: {} {}", r.code, r.text)),
                Err(err) => return Err(err.to_string()),
            }
        }
    }
    let waits = s.waits() - w0;
    s.quit().map_err(e)?;
    Ok(MsgRun {
        secs: t0.elapsed().as_secs_f64(),
        waits: Some(waits),
    })
}

/// A reference client on a bare socket, pre-encoded message.
/// `across`: the next message's MAIL/RCPT/DATA travel with this body, so one
/// wait per message; otherwise two (for 250/250/354, then for the 250).
fn raw_msgs(port: u16, n: usize, msg: &[u8], across: bool) -> Res<MsgRun> {
    let e = |e: std::io::Error| e.to_string();
    let t0 = Instant::now();
    let sock = TcpStream::connect((HOST, port)).map_err(e)?;
    sock.set_nodelay(true).map_err(e)?;
    let mut w = sock.try_clone().map_err(e)?;
    let mut r = ReplyReader::new(sock);
    r.expect(220).map_err(e)?;
    w.write_all(b"EHLO bench.example\r\n").map_err(e)?;
    r.expect(250).map_err(e)?;
    let envelope = format!("MAIL FROM:<{FROM}>\r\nRCPT TO:<{TO}>\r\nDATA\r\n");
    let body = dot_stuff(msg);
    let w0 = r.waits;
    let envelope_replies = |r: &mut ReplyReader<TcpStream>| -> std::io::Result<()> {
        r.expect(250)?;
        r.expect(250)?;
        r.expect(354)
    };
    if across {
        let mut next = body.clone();
        next.extend_from_slice(envelope.as_bytes());
        w.write_all(envelope.as_bytes()).map_err(e)?;
        envelope_replies(&mut r).map_err(e)?;
        for i in 0..n {
            let last = i + 1 == n;
            w.write_all(if last { &body } else { &next }).map_err(e)?;
            r.expect(250).map_err(e)?;
            if !last {
                envelope_replies(&mut r).map_err(e)?;
            }
        }
    } else {
        for _ in 0..n {
            w.write_all(envelope.as_bytes()).map_err(e)?;
            envelope_replies(&mut r).map_err(e)?;
            w.write_all(&body).map_err(e)?;
            r.expect(250).map_err(e)?;
        }
    }
    let waits = r.waits - w0;
    w.write_all(b"QUIT\r\n").map_err(e)?;
    r.expect(221).map_err(e)?;
    Ok(MsgRun {
        secs: t0.elapsed().as_secs_f64(),
        waits: Some(waits),
    })
}

/// A CRLF message as it goes after DATA: leading dots doubled, end marker.
fn dot_stuff(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 16);
    for line in msg.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The discard sink's counters.
fn xstats(port: u16) -> Res<SinkStats> {
    let e = |e: std::io::Error| format!("XSTATS: {e}");
    let sock = TcpStream::connect((HOST, port)).map_err(e)?;
    let mut w = sock.try_clone().map_err(e)?;
    let mut line = String::new();
    w.write_all(b"XSTATS\r\nQUIT\r\n").map_err(e)?;
    let mut rd = std::io::BufReader::new(sock);
    use std::io::BufRead;
    rd.read_line(&mut line).map_err(e)?; // greeting
    line.clear();
    rd.read_line(&mut line).map_err(e)?;
    let get = |k: &str| -> Res<u64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("bad XSTATS reply {line:?}"))
    };
    Ok(SinkStats {
        conns: get("conns")?,
        msgs: get("msgs")?,
        waits: get("waits")?,
        bytes: get("bytes")?,
    })
}
