//! Benchmark: chat-proxy overhead (issue 5). The testkit mock upstream alone vs the same mock
//! behind the release `modelgate` binary (one `openai` provider pointed at it), same load,
//! same run: added latency at p50/p99 at a fixed open-loop rate (requests scheduled by time
//! on a high-resolution timer, latency from the scheduled send time, exact percentiles over
//! every request), closed-loop max throughput (wrk, else an in-process closed loop), and
//! streaming time to first chunk with a paced mock stream.
//!
//! Needs the release binary: run it through `cargo xtask bench proxy` (which builds it),
//! or `cargo build --release -p modelgate && cargo bench -p modelgate-http --bench proxy`.
//! Options after `--`: `--quick`, `--rounds N`, `--duration SECS`, `--rps N`,
//! `--log-level LEVEL` (the gateway's `logging.level`, default `info` as shipped),
//! `--bin PATH` (else `$MODELGATE_BIN`, else `target/release/modelgate`).
//! Under `cargo test --all-targets` (no `--bench` argument) it only says so and exits.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // bench code: a failure should panic

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use modelgate_resilience::load::Outcome;
use modelgate_testkit::MockUpstream;
use modelgate_types::ProviderKind;

const MODEL: &str = "gpt-4o-mini";
const PROVIDER: &str = "bench";
const PROMPT: &str = "Say hello to the benchmark";

#[derive(Debug, Clone)]
struct Options {
    rounds: usize,
    duration: Duration,
    warmup: Duration,
    rps: f64,
    streams: usize,
    stream_interval: Duration,
    wrk_duration: u64,
    log_level: String,
    bin: PathBuf,
}

fn options() -> Options {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut o = Options {
        rounds: 3,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        rps: 1000.0,
        streams: 200,
        stream_interval: Duration::from_millis(5),
        wrk_duration: 10,
        log_level: "info".to_owned(),
        bin: std::env::var_os("MODELGATE_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/release/modelgate")),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        match a.as_str() {
            "--quick" => {
                o.rounds = 1;
                o.duration = Duration::from_secs(2);
                o.warmup = Duration::from_millis(500);
                o.streams = 20;
                o.wrk_duration = 2;
            }
            "--rounds" => o.rounds = value("--rounds").parse().expect("--rounds N"),
            "--duration" => {
                o.duration =
                    Duration::from_secs(value("--duration").parse().expect("--duration SECS"));
                o.wrk_duration = o.duration.as_secs().max(1);
            }
            "--rps" => o.rps = value("--rps").parse().expect("--rps N"),
            "--log-level" => o.log_level = value("--log-level"),
            "--bin" => o.bin = PathBuf::from(value("--bin")),
            _ => {} // `--bench` and cargo's own flags
        }
    }
    o
}

/// A child process stopped with SIGTERM (then SIGKILL) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn chat_body(model: &str, stream: bool) -> String {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": stream,
    })
    .to_string()
}

#[derive(Debug, Clone)]
struct Target {
    name: &'static str,
    url: String,
    model: String,
}

impl Target {
    fn request(&self, client: &reqwest::Client, stream: bool) -> reqwest::RequestBuilder {
        client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", MockUpstream::API_KEY))
            .body(chat_body(&self.model, stream))
    }
}

async fn send_once(client: &reqwest::Client, t: &Target) -> Outcome {
    match t.request(client, false).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let ok = resp.bytes().await.is_ok() && status == 200;
            Outcome {
                ok,
                status: Some(status),
                provider: None,
            }
        }
        Err(_) => Outcome::default(),
    }
}

/// What one open-loop run measured: latencies from each request's scheduled send time.
#[derive(Debug)]
struct Run {
    ok: usize,
    failed: usize,
    dropped: usize,
    achieved_rps: f64,
    /// Sorted, microseconds, successful requests only.
    latencies_us: Vec<u64>,
}

impl Run {
    fn q(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let n = self.latencies_us.len();
        let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// Open loop at `rps` for `duration`: a dedicated thread sleeps until each request's
/// scheduled time (`start + i / rps`, `std::thread::sleep`, i.e. a high-resolution timer)
/// and spawns it on the client runtime; latency runs from the scheduled time, so a slow
/// server cannot hide its latency by slowing the sender (no coordinated omission). At most
/// `MAX_IN_FLIGHT` requests are outstanding; a request due beyond that is dropped and
/// counted. `target: None` sends nothing and measures the harness itself.
///
/// Not resilience's `LoadGenerator`: it schedules with tokio timers, whose 1 ms resolution
/// puts a random 0–1 ms offset (different in every run) into each latency, larger than
/// the 0.3 ms this benchmark has to resolve.
fn open_loop(
    rt: &tokio::runtime::Handle,
    target: Option<&Target>,
    rps: f64,
    duration: Duration,
) -> Run {
    const MAX_IN_FLIGHT: usize = 512;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build()
        .expect("client");
    // Open the connections the run will mostly reuse before the clock starts.
    if let Some(t) = target {
        rt.block_on(async {
            for _ in 0..4 {
                send_once(&client, t).await;
            }
        });
    }
    let total = (duration.as_secs_f64() * rps).floor() as u64;
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel::<Option<u64>>();
    let mut dropped = 0;
    let start = Instant::now() + Duration::from_millis(5);
    for i in 0..total {
        let scheduled = start + Duration::from_secs_f64(i as f64 / rps);
        let now = Instant::now();
        if scheduled > now {
            std::thread::sleep(scheduled - now);
        }
        if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            dropped += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (tx, in_flight, client) = (tx.clone(), in_flight.clone(), client.clone());
        let target = target.cloned();
        rt.spawn(async move {
            let ok = match &target {
                Some(t) => send_once(&client, t).await.ok,
                None => true,
            };
            let us = scheduled.elapsed().as_micros() as u64;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send(ok.then_some(us));
        });
    }
    let sent_for = start.elapsed().max(duration);
    drop(tx);
    let mut run = Run {
        ok: 0,
        failed: 0,
        dropped,
        achieved_rps: 0.0,
        latencies_us: Vec::with_capacity(total as usize),
    };
    let drain = Instant::now() + Duration::from_secs(10);
    while let Ok(r) = rx.recv_timeout(drain.saturating_duration_since(Instant::now())) {
        match r {
            Some(us) => {
                run.ok += 1;
                run.latencies_us.push(us);
            }
            None => run.failed += 1,
        }
    }
    run.achieved_rps = (run.ok + run.failed) as f64 / sent_for.as_secs_f64();
    run.latencies_us.sort_unstable();
    run
}

fn line(name: &str, r: &Run) {
    println!(
        "BENCH proxy.open_loop.{name} achieved_rps={:.0} ok={} failed={} dropped={} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3}",
        r.achieved_rps, r.ok, r.failed, r.dropped,
        r.q(0.50), r.q(0.90), r.q(0.99), r.q(0.999), r.q(1.0)
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// One streamed request: (time to the first non-empty body chunk, time to `data: [DONE]`).
async fn stream_once(client: &reqwest::Client, t: &Target) -> Option<(Duration, Duration)> {
    let start = Instant::now();
    let mut resp = t.request(client, true).send().await.ok()?;
    if resp.status() != 200 {
        return None;
    }
    let (mut first, mut done) = (None, None);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.ok()? {
        if !chunk.is_empty() && first.is_none() {
            first = Some(start.elapsed());
        }
        body.extend_from_slice(&chunk);
        if done.is_none() && body.windows(12).any(|w| w == b"data: [DONE]") {
            done = Some(start.elapsed());
        }
    }
    Some((first?, done?))
}

/// Paired streaming runs: mock and gateway requests alternate, one at a time.
async fn streaming(mock: &Target, gw: &Target, n: usize, interval: Duration) {
    let client = reqwest::Client::new();
    let mut ttfc = [Vec::new(), Vec::new()];
    let mut total = [Vec::new(), Vec::new()];
    let mut failed = [0usize, 0];
    for i in 0..n + 5 {
        for (k, t) in [mock, gw].into_iter().enumerate() {
            match stream_once(&client, t).await {
                Some((first, all)) if i >= 5 => {
                    ttfc[k].push(first);
                    total[k].push(all);
                }
                Some(_) => {}
                _ => failed[k] += 1,
            }
        }
    }
    for k in 0..2 {
        ttfc[k].sort();
        total[k].sort();
        println!(
            "BENCH proxy.stream.{} streams={} failed={} ttfc_p50_ms={:.3} ttfc_p99_ms={:.3} to_done_p50_ms={:.3} (mock pace {} ms between events)",
            [mock.name, gw.name][k],
            ttfc[k].len(),
            failed[k],
            quantile(&ttfc[k], 0.5),
            quantile(&ttfc[k], 0.99),
            quantile(&total[k], 0.5),
            interval.as_millis()
        );
    }
    println!(
        "BENCH proxy.stream.added ttfc_p50_ms={:.3} ttfc_p99_ms={:.3}",
        quantile(&ttfc[1], 0.5) - quantile(&ttfc[0], 0.5),
        quantile(&ttfc[1], 0.99) - quantile(&ttfc[0], 0.99)
    );
}

/// Closed loop: wrk when installed (the same client as the listing benchmark), else
/// `conns` in-process workers sending back to back.
async fn max_throughput(dir: &Path, t: &Target, secs: u64) {
    let conns = 32;
    let script = dir.join(format!("{}.lua", t.name));
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = '{}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer {}\"\n",
        chat_body(&t.model, false),
        MockUpstream::API_KEY
    );
    std::fs::write(&script, lua).expect("write wrk script");
    let wrk = |d: u64| {
        Command::new("wrk")
            .args([
                "-t1",
                &format!("-c{conns}"),
                &format!("-d{d}s"),
                "--latency",
                "-s",
            ])
            .arg(&script)
            .arg(&t.url)
            .output()
    };
    match wrk(1) {
        Ok(out) if out.status.success() => {
            let out = wrk(secs).expect("wrk");
            let text = String::from_utf8_lossy(&out.stdout);
            let find = |key: &str| {
                text.lines()
                    .find(|l| l.trim_start().starts_with(key))
                    .map(|l| l.trim_start()[key.len()..].trim().to_owned())
                    .unwrap_or_else(|| "-".to_owned())
            };
            let p50 = find("50%");
            let p99 = find("99%");
            let non2xx = find("Non-2xx or 3xx responses:");
            println!(
                "BENCH proxy.max_throughput.{} client=wrk(-t1,-c{conns},{secs}s) rps={} p50={p50} p99={p99} non_2xx={}",
                t.name,
                find("Requests/sec:"),
                if non2xx == "-" { "0".to_owned() } else { non2xx }
            );
        }
        _ => {
            eprintln!("proxy bench: wrk is not installed (apt-get install wrk, or `cargo xtask bench proxy`); using the in-process closed loop");
            let client = reqwest::Client::new();
            let deadline = Instant::now() + Duration::from_secs(secs);
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..conns {
                let (client, t) = (client.clone(), t.clone());
                tasks.spawn(async move {
                    let (mut ok, mut bad) = (0u64, 0u64);
                    while Instant::now() < deadline {
                        if send_once(&client, &t).await.ok {
                            ok += 1;
                        } else {
                            bad += 1;
                        }
                    }
                    (ok, bad)
                });
            }
            let (mut ok, mut bad) = (0, 0);
            while let Some(r) = tasks.join_next().await {
                let (o, b) = r.expect("worker");
                ok += o;
                bad += b;
            }
            println!(
                "BENCH proxy.max_throughput.{} client=reqwest-closed-loop(c{conns},{secs}s) rps={:.0} failed={bad}",
                t.name,
                ok as f64 / secs as f64
            );
        }
    }
}

fn start_gateway(o: &Options, dir: &Path, mock_url: &str) -> (Proc, String) {
    assert!(
        o.bin.exists(),
        "{} not found: build it first (`cargo build --release -p modelgate`) or run `cargo xtask bench proxy`",
        o.bin.display()
    );
    let port = free_port();
    let config = dir.join("gateway.yaml");
    let yaml = format!(
        "server:\n  host: 127.0.0.1\n  port: {port}\nlogging:\n  level: {level}\n\
         discovery:\n  data_dir: {data}\nrate_limit:\n  enabled: false\n\
         providers:\n  {PROVIDER}:\n    kind: openai\n    base_url: {mock_url}\n    api_key: {key}\n",
        level = o.log_level,
        data = dir.join("data").display(),
        key = MockUpstream::API_KEY,
    );
    std::fs::write(&config, yaml).expect("write gateway config");
    let log = std::fs::File::create(dir.join("gateway.log")).expect("gateway log");
    let child = Command::new(&o.bin)
        .arg("--config")
        .arg(&config)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", o.bin.display()));
    (Proc(child), format!("http://127.0.0.1:{port}"))
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("proxy bench: nothing to do without --bench (run `cargo xtask bench proxy`)");
        return;
    }
    let o = options();
    let dir = std::env::temp_dir().join(format!("modelgate-proxy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    // The mock gets its own runtime (own worker threads), as if it were another process.
    let mock_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mock")
        .enable_all()
        .build()
        .expect("mock runtime");
    let mock = mock_rt.block_on(MockUpstream::start());
    let mock_base = mock.base_url(ProviderKind::Openai);

    let (gateway, gw_url) = start_gateway(&o, &dir, &mock_base);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    let mock_t = Target {
        name: "mock_alone",
        url: format!("{mock_base}/chat/completions"),
        model: MODEL.to_owned(),
    };
    let gw_t = Target {
        name: "through_modelgate",
        url: format!("{gw_url}/v1/chat/completions"),
        model: format!("{PROVIDER}/{MODEL}"),
    };
    rt.block_on(async {
        // Ready when a chat through the gateway answers 200 (discovery has run).
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if send_once(&client, &gw_t).await.ok {
                break;
            }
            assert!(Instant::now() < deadline, "gateway did not answer a chat within 60 s; see {}", dir.join("gateway.log").display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "proxy bench: mock {} ; gateway {} (logging.level {}, rate_limit off) ; {} rps open loop, {} round(s) of {:?}",
            mock_base, gw_url, o.log_level, o.rps, o.rounds, o.duration
        );

    });

    let h = rt.handle();
    line("generator_only", &open_loop(h, None, o.rps, o.duration));
    let _ = open_loop(h, Some(&mock_t), o.rps, o.warmup);
    let _ = open_loop(h, Some(&gw_t), o.rps, o.warmup);
    let (mut d50, mut d99) = (Vec::new(), Vec::new());
    for round in 1..=o.rounds {
        let m = open_loop(h, Some(&mock_t), o.rps, o.duration);
        line(&format!("r{round}.mock_alone"), &m);
        let g = open_loop(h, Some(&gw_t), o.rps, o.duration);
        line(&format!("r{round}.through_modelgate"), &g);
        let (a50, a99) = (g.q(0.50) - m.q(0.50), g.q(0.99) - m.q(0.99));
        println!("BENCH proxy.open_loop.r{round}.added p50_ms={a50:.3} p99_ms={a99:.3}");
        d50.push(a50);
        d99.push(a99);
    }
    println!(
        "BENCH proxy.open_loop.added_median_of_rounds p50_ms={:.3} p99_ms={:.3} (targets: p50 < 0.300, p99 < 1.000 at {} rps)",
        median(d50),
        median(d99),
        o.rps
    );

    rt.block_on(async {
        max_throughput(&dir, &mock_t, o.wrk_duration).await;
        max_throughput(&dir, &gw_t, o.wrk_duration).await;

        mock.set_stream_interval(ProviderKind::Openai, o.stream_interval);
        streaming(&mock_t, &gw_t, o.streams, o.stream_interval).await;
    });
    drop(gateway);
    drop(mock);
    let _ = std::io::stdout().flush();
    let _ = std::fs::remove_dir_all(&dir);
}
