//! `cargo xtask bench [criterion|http|proxy|all] [--quick] [--duration SECS]`: runs the
//! benchmarks behind docs/BENCHMARKS.md and prints a summary. It writes no docs; the page is
//! written by hand from this output.
//!
//! - `criterion`: the criterion benches (catalog load and lookups, discovery queries with
//!   per-query p99, condensation strategies and tokenizer throughput).
//! - `http`: loopback throughput of cached `GET /api/models` and `GET /v2/models` served by
//!   the release gateway vs nginx serving the same response bodies as static files, same
//!   client (wrk), same concurrency, same run; once with access logs on (both servers'
//!   defaults) and once with them off.
//! - `proxy`: `crates/http/benches/proxy.rs`, the chat proxy's added latency, max throughput
//!   and streaming time to first chunk against the testkit mock.
//!
//! Missing tools (nginx, wrk) are installed from Debian's packages; if that fails, the
//! comparison that needs them is skipped with a message saying so.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{cargo, run};

const USAGE: &str =
    "usage: cargo xtask bench [criterion|http|proxy|all] [--quick] [--duration SECS]";

const CRITERION: &[(&str, &str)] = &[
    ("modelgate-catalog", "catalog"),
    ("modelgate-discovery", "query"),
    ("modelgate-condense", "condense"),
];

/// wrk's threads and connections, the same for both servers.
const WRK_THREADS: u32 = 2;
const WRK_CONNECTIONS: u32 = 64;

#[derive(Debug, Clone)]
struct Opts {
    quick: bool,
    duration: u64,
}

#[derive(Debug, Default)]
struct Summary {
    lines: Vec<String>,
}

impl Summary {
    fn push(&mut self, line: impl Into<String>) {
        let line = line.into();
        println!("{line}");
        self.lines.push(line);
    }
}

pub fn run_bench(args: &[String]) -> Result<()> {
    let mut what = "all";
    let mut opts = Opts {
        quick: false,
        duration: 10,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "criterion" | "http" | "proxy" | "all" => what = a,
            "--quick" => opts.quick = true,
            "--duration" => {
                let v = it.next().context("--duration needs a number of seconds")?;
                opts.duration = v
                    .parse()
                    .ok()
                    .filter(|d| *d > 0)
                    .with_context(|| format!("invalid --duration {v}"))?;
            }
            other => bail!("unknown bench argument '{other}'\n{USAGE}"),
        }
    }
    if opts.quick {
        opts.duration = opts.duration.min(2);
    }
    let started = Instant::now();
    let mut s = Summary::default();
    s.push(machine());
    if matches!(what, "criterion" | "all") {
        criterion(&opts, &mut s)?;
    }
    if matches!(what, "http" | "proxy" | "all") {
        run(cargo().args(["build", "--release", "-p", "modelgate"]))?;
    }
    if matches!(what, "http" | "all") {
        http(&opts, &mut s)?;
        s.push(format!("  (load average after: {})", loadavg()));
    }
    if matches!(what, "proxy" | "all") {
        proxy(&opts, &mut s)?;
        s.push(format!("  (load average after: {})", loadavg()));
    }
    println!("\n==================== summary ({what}) ====================");
    for l in &s.lines {
        println!("{l}");
    }
    println!(
        "finished in {:.0} s; load average now: {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "machine: {cores} cores, {cpu}; load average {}; commit {commit}",
        loadavg()
    )
}

/// Runs a command, echoing its stdout while keeping it, and fails if it fails.
fn run_captured(cmd: &mut Command) -> Result<String> {
    eprintln!("$ {cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let mut out = String::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading output")?;
            println!("{line}");
            out.push_str(&line);
            out.push('\n');
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("command failed ({status}): {cmd:?}");
    }
    Ok(out)
}

fn criterion(opts: &Opts, s: &mut Summary) -> Result<()> {
    for (pkg, bench) in CRITERION {
        s.push(format!(
            "\n## criterion: cargo bench -p {pkg} --bench {bench}{} (load {})",
            if opts.quick { " -- --quick" } else { "" },
            loadavg()
        ));
        let mut cmd = cargo();
        cmd.args(["bench", "-p", pkg, "--bench", bench]);
        if opts.quick {
            cmd.args(["--", "--quick"]);
        }
        let out = run_captured(&mut cmd)?;
        for l in criterion_lines(&out) {
            s.push(l);
        }
        s.push(format!("  (load average after: {})", loadavg()));
    }
    Ok(())
}

/// `name  time: [lo mid hi]` (and `thrpt:`) lines of criterion's report, with the name on
/// the same line even when criterion put it on the line before; `BENCH` lines as they are.
fn criterion_lines(out: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut name = String::new();
    for l in out.lines() {
        let t = l.trim();
        if let Some(rest) = l.strip_prefix("BENCH ") {
            lines.push(format!("  {rest}"));
            continue;
        }
        // `change:` blocks (against the previous run in target/criterion) say `[-3% +1% +4%]`.
        if l.contains('%') && l.contains('[') {
            continue;
        }
        for key in ["time:", "thrpt:"] {
            if let Some(i) = l.find(key) {
                let before = l[..i].trim();
                if !before.is_empty() {
                    name = before.to_owned();
                }
                lines.push(format!(
                    "  {name:<60} {key:<6} {}",
                    l[i + key.len()..].trim()
                ));
            }
        }
        if !l.starts_with(char::is_whitespace)
            && !t.is_empty()
            && !t.contains("time:")
            && !t.starts_with("Found ")
            && !t.starts_with("Benchmarking")
        {
            name = t.to_owned();
        }
    }
    lines
}

// ---------------------------------------------------------------- tools

fn find_bin(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Finds `bin`, installing Debian package `pkg` if it is missing. `None` (with a message)
/// when it cannot be had.
fn ensure_tool(bin: &str, pkg: &str) -> Option<PathBuf> {
    if let Some(p) = find_bin(bin) {
        return Some(p);
    }
    eprintln!("xtask bench: {bin} not found; installing the Debian package {pkg}");
    if find_bin("apt-get").is_none() {
        eprintln!("xtask bench: no apt-get on this machine; install {pkg} by hand");
        return None;
    }
    // Debian starts a packaged service on install unless policy-rc.d says no; the
    // benchmark runs its own nginx, so none may be left running on port 80.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let made_policy = !policy.exists()
        && std::fs::write(
            policy,
            "#!/bin/sh\n# written by cargo xtask bench for one apt-get install\nexit 101\n",
        )
        .is_ok()
        && Command::new("chmod")
            .args(["755", "/usr/sbin/policy-rc.d"])
            .status()
            .is_ok_and(|s| s.success());
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", pkg])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = install()
        || (Command::new("apt-get")
            .arg("update")
            .status()
            .is_ok_and(|s| s.success())
            && install());
    if made_policy {
        let _ = std::fs::remove_file(policy);
    }
    match (ok, find_bin(bin)) {
        (true, Some(p)) => Some(p),
        _ => {
            eprintln!("xtask bench: could not install {pkg} (apt-get install {pkg} failed)");
            None
        }
    }
}

/// A child stopped by PID with SIGTERM (then SIGKILL after 5 s) when dropped.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Result<Proc> {
        let file = std::fs::File::create(log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {name}: {cmd:?}"))?;
        Ok(Proc { name, child })
    }

    fn check_alive(&mut self, log: &Path) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            bail!("{} exited ({status}); its log:\n{tail}", self.name);
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "xtask bench: {} (pid {pid}) ignored SIGTERM; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A temp directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Result<TempDir> {
        let p = std::env::temp_dir().join(format!("modelgate-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A minimal HTTP/1.1 GET over loopback: (status, body). Handles `Content-Length`, chunked
/// and read-to-close bodies.
fn http_get(port: u16, path: &str) -> Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of response head")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = &raw[split + 4..];
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status code")?;
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .context("bad chunk")?;
            let size_hex = String::from_utf8_lossy(&rest[..eol]);
            let size = usize::from_str_radix(size_hex.split(';').next().unwrap_or("").trim(), 16)
                .context("bad chunk size")?;
            rest = &rest[eol + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size).context("short chunk")?);
            rest = rest.get(size + 2..).context("short chunk")?;
        }
        out
    } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.get(..n).context("short body")?.to_vec()
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn wait_for(port: u16, path: &str, proc: &mut Proc, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        proc.check_alive(log)?;
        if let Ok((200, _)) = http_get(port, path) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} did not answer {path} with 200 within 60 s", proc.name);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[derive(Debug)]
struct Wrk {
    rps: f64,
    p50: String,
    p99: String,
    non_2xx: u64,
    errors: String,
}

fn wrk(wrk: &Path, url: &str, secs: u64) -> Result<Wrk> {
    let out = Command::new(wrk)
        .args([
            &format!("-t{WRK_THREADS}"),
            &format!("-c{WRK_CONNECTIONS}"),
            &format!("-d{secs}s"),
            "--latency",
            url,
        ])
        .output()
        .context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let find = |key: &str| {
        text.lines()
            .map(str::trim_start)
            .find(|l| l.starts_with(key))
            .map(|l| l[key.len()..].trim().to_owned())
    };
    Ok(Wrk {
        rps: find("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no Requests/sec in wrk's output:\n{text}"))?,
        p50: find("50%").unwrap_or_default(),
        p99: find("99%").unwrap_or_default(),
        non_2xx: find("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        errors: find("Socket errors:").unwrap_or_else(|| "none".to_owned()),
    })
}

// ---------------------------------------------------------------- http

const LISTINGS: &[(&str, &str)] = &[
    ("/api/models", "api-models.json"),
    ("/v2/models", "v2-models.json"),
];

fn gateway_bin() -> PathBuf {
    PathBuf::from("target/release/modelgate")
}

fn start_gateway(dir: &Path, log_level: &str) -> Result<(Proc, u16, PathBuf)> {
    let port = free_port()?;
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            "# default config, but: rate limiting off (one client sends everything), temp data_dir\n\
             server:\n  host: 127.0.0.1\n  port: {port}\nlogging:\n  level: {log_level}\n\
             discovery:\n  data_dir: {}\nrate_limit:\n  enabled: false\n",
            dir.join("data").display()
        ),
    )?;
    let log = dir.join(format!("gateway-{log_level}.log"));
    let mut p = Proc::spawn(
        "modelgate",
        Command::new(gateway_bin()).arg("--config").arg(&config),
        &log,
    )?;
    wait_for(port, "/health", &mut p, &log)?;
    Ok((p, port, log))
}

fn start_nginx(nginx: &Path, dir: &Path, access_log: bool) -> Result<(Proc, u16)> {
    let port = free_port()?;
    let conf = dir.join("nginx.conf");
    let p = |s: &str| dir.join(s).display().to_string();
    let access = if access_log {
        format!("access_log {};", p("nginx-access.log"))
    } else {
        "access_log off;".to_owned()
    };
    std::fs::write(
        &conf,
        format!(
            "# static files, as fast as nginx serves them: sendfile, long keep-alive\n\
             worker_processes auto;\ndaemon off;\npid {pid};\nerror_log {err} warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  {access}\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n\
               client_body_temp_path {t}/body;\n  proxy_temp_path {t}/proxy;\n  fastcgi_temp_path {t}/fastcgi;\n\
               uwsgi_temp_path {t}/uwsgi;\n  scgi_temp_path {t}/scgi;\n\
               default_type application/json;\n\
               server {{\n    listen 127.0.0.1:{port};\n    root {www};\n\
                 location = /api/models {{ try_files /api-models.json =404; }}\n\
                 location = /v2/models {{ try_files /v2-models.json =404; }}\n  }}\n}}\n",
            pid = p("nginx.pid"),
            err = p("nginx-error.log"),
            t = p("tmp"),
            www = p("www"),
        ),
    )?;
    std::fs::create_dir_all(dir.join("tmp"))?;
    let log = dir.join("nginx-stderr.log");
    let mut proc = Proc::spawn(
        "nginx",
        Command::new(nginx)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("nginx-error.log")),
        &log,
    )?;
    wait_for(port, "/api/models", &mut proc, &log)?;
    Ok((proc, port))
}

fn http(opts: &Opts, s: &mut Summary) -> Result<()> {
    s.push(format!(
        "\n## http: cached listings, release gateway vs nginx static file, wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{}s (load {})",
        opts.duration,
        loadavg()
    ));
    let nginx = ensure_tool("nginx", "nginx");
    let wrk_bin = ensure_tool("wrk", "wrk");
    let Some(wrk_bin) = wrk_bin else {
        s.push("  SKIPPED: wrk is not installed and could not be installed (apt-get install wrk)");
        return Ok(());
    };
    if nginx.is_none() {
        s.push("  nginx is not installed and could not be installed (apt-get install nginx): gateway numbers only, no comparison");
    }
    let warmup = if opts.quick { 1 } else { 2 };
    for (label, level, access_log) in [
        (
            "access logs on (gateway logging.level info, nginx access_log to a file)",
            "info",
            true,
        ),
        (
            "access logs off (gateway logging.level warn, nginx access_log off)",
            "warn",
            false,
        ),
    ] {
        s.push(format!("  -- {label}"));
        let dir = TempDir::new("http")?;
        std::fs::create_dir_all(dir.0.join("www"))?;
        let (mut gw, gw_port, gw_log) = start_gateway(&dir.0, level)?;
        // The response bodies, saved for nginx: equally sized by construction.
        for (path, file) in LISTINGS {
            let (status, body) = http_get(gw_port, path)?;
            if status != 200 {
                bail!("gateway answered {path} with {status}");
            }
            std::fs::write(dir.0.join("www").join(file), &body)?;
        }
        let mut ng = match &nginx {
            Some(bin) => Some(start_nginx(bin, &dir.0, access_log)?),
            None => None,
        };
        for (path, file) in LISTINGS {
            let size = std::fs::metadata(dir.0.join("www").join(file))?.len();
            let ng_rps = match &mut ng {
                Some((_, port)) => {
                    let (st, body) = http_get(*port, path)?;
                    if st != 200 || body.len() as u64 != size {
                        bail!(
                            "nginx served {path} with {st}, {} bytes (expected {size})",
                            body.len()
                        );
                    }
                    let url = format!("http://127.0.0.1:{port}{path}");
                    wrk(&wrk_bin, &url, warmup)?;
                    let r = wrk(&wrk_bin, &url, opts.duration)?;
                    s.push(format!(
                        "  BENCH http.{path}.nginx_static body_bytes={size} rps={:.0} p50={} p99={} non_2xx={} socket_errors={}",
                        r.rps, r.p50, r.p99, r.non_2xx, r.errors
                    ));
                    Some(r.rps)
                }
                None => None,
            };
            let url = format!("http://127.0.0.1:{gw_port}{path}");
            wrk(&wrk_bin, &url, warmup)?;
            let r = wrk(&wrk_bin, &url, opts.duration)?;
            gw.check_alive(&gw_log)?;
            s.push(format!(
                "  BENCH http.{path}.modelgate body_bytes={size} rps={:.0} p50={} p99={} non_2xx={} socket_errors={}",
                r.rps, r.p50, r.p99, r.non_2xx, r.errors
            ));
            if r.non_2xx > 0 {
                s.push(format!(
                    "  WARNING: {} non-2xx responses from the gateway (rate limiting?)",
                    r.non_2xx
                ));
            }
            if let Some(n) = ng_rps {
                let ratio = r.rps / n;
                s.push(format!(
                    "  BENCH http.{path}.ratio modelgate/nginx={ratio:.2} (target >= 0.50: {})",
                    if ratio >= 0.5 { "met" } else { "NOT met" }
                ));
            }
        }
        drop(ng);
        drop(gw);
    }
    Ok(())
}

// ---------------------------------------------------------------- proxy

fn proxy(opts: &Opts, s: &mut Summary) -> Result<()> {
    let mut args = vec!["bench", "-p", "modelgate-http", "--bench", "proxy", "--"];
    let d = opts.duration.to_string();
    if opts.quick {
        args.push("--quick");
    } else {
        args.extend(["--duration", &d]);
    }
    s.push(format!(
        "\n## proxy: cargo {} (load {})",
        args.join(" "),
        loadavg()
    ));
    if ensure_tool("wrk", "wrk").is_none() {
        s.push("  wrk is not installed and could not be installed: max throughput uses the bench's own closed loop");
    }
    let bin = std::env::current_dir()?.join(gateway_bin());
    let out = run_captured(cargo().args(&args).env("MODELGATE_BIN", bin))?;
    for l in out
        .lines()
        .filter(|l| l.starts_with("BENCH ") || l.starts_with("proxy bench:"))
    {
        s.push(format!("  {l}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::criterion_lines;

    #[test]
    fn criterion_names_are_joined_to_their_times() {
        let out = "\
query_5276_models/search_gpt
                        time:   [1.0 ms 1.1 ms 1.2 ms]
short                   time:   [2.0 µs 2.1 µs 2.2 µs]
                        thrpt:  [10 Melem/s 11 Melem/s 12 Melem/s]
                 change:
                        time:   [−35.621% −33.427% −30.448%] (p = 0.00 < 0.05)
                        thrpt:  [+43.777% +50.212% +55.330%]
                        Performance has improved.
Found 3 outliers among 100 measurements (3.00%)
BENCH discovery.query.mix p99_us=5.0
";
        let lines = criterion_lines(out);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(
            lines[0].contains("query_5276_models/search_gpt")
                && lines[0].contains("[1.0 ms 1.1 ms 1.2 ms]")
        );
        assert!(lines[1].starts_with("  short") && lines[1].contains("2.1 µs"));
        assert!(lines[2].contains("short") && lines[2].contains("thrpt:"));
        assert_eq!(lines[3], "  discovery.query.mix p99_us=5.0");
    }
}
