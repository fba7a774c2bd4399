//! `cargo xtask`: the project's dev tasks (test, ci, bench, mock, catalog) in one small
//! binary instead of shell scripts.

mod bench;
mod catalog;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test              everything the tests need, then the whole workspace's tests
  ci                fmt check, clippy -D warnings, tidy + layering checks, tests
  mock [--port N]   run the mock upstream (every provider's wire format) on 127.0.0.1:N
  catalog <path|url> [--date YYYY-MM-DD]
                    check a models.dev api.json and embed it as the catalog snapshot
  bench [criterion|http|proxy|all] [--quick] [--duration SECS]
                    benchmarks of docs/BENCHMARKS.md (default all), printed, not saved;
                    installs nginx and wrk from apt if missing; --quick checks the
                    harness in short runs; --duration sets each HTTP run (default 10 s)
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root).with_context(|| format!("cannot enter {}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("ci") => ci(),
        Some("mock") => mock(&args[1..]),
        Some("catalog") => catalog::run(&args[1..]),
        Some("bench") => bench::run_bench(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task '{other}'\n\n{USAGE}"),
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("command failed ({status}): {cmd:?}");
    }
    Ok(())
}

/// Everything the tests need, then `cargo test --workspace`. Extra args go to cargo test.
fn test(extra: &[String]) -> Result<()> {
    run(cargo()
        .args(["test", "--workspace", "--all-targets"])
        .args(extra))?;
    // Doc tests are not covered by --all-targets.
    run(cargo().args(["test", "--workspace", "--doc"]))
}

fn ci() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    tidy::check_file_headers(Path::new("."))?;
    layering()?;
    test(&[])
}

/// Lower crates must not pull in the server stack: checked with `cargo tree`, not hope.
fn layering() -> Result<()> {
    let forbidden: &[(&str, &[&str])] = &[
        (
            "modelgate-types",
            &["hyper", "tokio", "reqwest", "modelgate-config"],
        ),
        ("modelgate-config", &["hyper", "tokio", "reqwest"]),
        ("modelgate-catalog", &["hyper", "tokio", "reqwest"]),
        (
            "modelgate-providers",
            &["modelgate-http", "modelgate-discovery", "modelgate-config"],
        ),
        ("modelgate-discovery", &["modelgate-http"]),
        (
            "modelgate-condense",
            &["modelgate-http", "modelgate-discovery"],
        ),
        (
            "modelgate-resilience",
            &["modelgate-http", "modelgate-discovery"],
        ),
    ];
    for (krate, deps) in forbidden {
        if !Path::new("crates")
            .join(krate.trim_start_matches("modelgate-"))
            .exists()
        {
            continue;
        }
        for dep in *deps {
            let out = cargo()
                .args(["tree", "-e", "normal", "-p", krate, "-i", dep])
                .output()
                .context("cannot run cargo tree")?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            if out.status.success() && !stdout.trim().is_empty() {
                bail!("layering violation: {krate} depends on {dep}:\n{stdout}");
            }
        }
        eprintln!("layering ok: {krate}");
    }
    Ok(())
}

fn mock(args: &[String]) -> Result<()> {
    run(cargo()
        .args([
            "run",
            "--quiet",
            "-p",
            "modelgate-testkit",
            "--bin",
            "mock-upstream",
            "--",
        ])
        .args(args))
}
