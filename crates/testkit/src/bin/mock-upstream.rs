//! `mock-upstream`: runs the testkit's mock provider server until Ctrl-C
//! (`cargo xtask mock --port N` runs this).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use modelgate_testkit::MockUpstream;
use modelgate_types::ProviderKind;

const USAGE: &str = "usage: mock-upstream [--host IP] [--port N]\n\
    Serves every provider's wire format; the only accepted key is \"mock-valid-key\".\n\
    --host IP   address to bind (default 127.0.0.1)\n\
    --port N    port to bind (default 9999, 0 picks a free one)";

fn parse_args() -> Result<SocketAddr, String> {
    let mut host: IpAddr = IpAddr::from([127, 0, 0, 1]);
    let mut port: u16 = 9999;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--port" | "-p" => {
                let v = value("--port")?;
                port = v.parse().map_err(|_| format!("invalid port: {v}"))?;
            }
            "--host" => {
                let v = value("--host")?;
                host = v
                    .parse()
                    .map_err(|_| format!("invalid host address: {v}"))?;
            }
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(SocketAddr::new(host, port))
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr = match parse_args() {
        Ok(a) => a,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("mock-upstream: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mock = match MockUpstream::start_on(addr).await {
        Ok(m) => m,
        Err(e) => {
            eprintln!("mock-upstream: cannot bind {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "mock-upstream listening on {} (key: {})",
        mock.url(),
        MockUpstream::API_KEY
    );
    for kind in ProviderKind::ALL {
        println!("  {:<18} base_url: {}", kind.as_str(), mock.base_url(kind));
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("mock-upstream: cannot listen for Ctrl-C: {e}");
        return ExitCode::from(1);
    }
    println!("mock-upstream: shutting down");
    drop(mock);
    ExitCode::SUCCESS
}
