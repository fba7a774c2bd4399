//! `cargo xtask catalog <path-or-url> [--date YYYY-MM-DD]`: refreshes the embedded
//! models.dev snapshot in `crates/catalog/data/` after checking that the input parses as
//! an `api.json` document with models in it.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

const DATA_DIR: &str = "crates/catalog/data";

pub fn run(args: &[String]) -> Result<()> {
    let mut source = None;
    let mut date = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--date" => date = Some(it.next().context("--date needs YYYY-MM-DD")?.clone()),
            s if source.is_none() => source = Some(s.to_owned()),
            other => bail!("unexpected argument '{other}'"),
        }
    }
    let Some(source) = source else {
        bail!("usage: cargo xtask catalog <path-or-url of an api.json> [--date YYYY-MM-DD]");
    };
    let date = match date {
        Some(d) => d,
        None => today()?,
    };
    if !is_date(&date) {
        bail!("--date must be YYYY-MM-DD, got '{date}'");
    }
    let bytes = if source.starts_with("http://") || source.starts_with("https://") {
        let out = Command::new("curl")
            .args(["-fsSL", "--max-time", "120", &source])
            .output()
            .context("cannot run curl (needed to fetch a URL; or pass a local path)")?;
        if !out.status.success() {
            bail!(
                "fetching {source} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        out.stdout
    } else {
        std::fs::read(&source).with_context(|| format!("cannot read {source}"))?
    };
    let summary = embed(&bytes, Path::new(DATA_DIR), &date)
        .with_context(|| format!("{source} is not a usable models.dev api.json document"))?;
    eprintln!("{summary}");
    eprintln!("next: cargo test -p modelgate-catalog, and update the counts the tests pin");
    Ok(())
}

/// Checks `bytes` with the catalog crate's own parser and writes them, gzipped, with the
/// snapshot date into `dir`. Returns a one-line summary.
fn embed(bytes: &[u8], dir: &Path, date: &str) -> Result<String> {
    let catalog = modelgate_catalog::Catalog::from_json(bytes)?;
    if catalog.model_count() == 0 {
        bail!("it has no models; refusing to embed an empty catalog");
    }
    // Embedded byte for byte: re-serializing through serde_json would round numbers such
    // as 0.049999999999999996 and change the data the catalog crate's tests pin.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    let gz = gz.finish()?;
    write_atomic(&dir.join("models.dev.json.gz"), &gz)?;
    write_atomic(&dir.join("SNAPSHOT_DATE"), format!("{date}\n").as_bytes())?;
    Ok(format!(
        "embedded {} models from {} providers ({} bytes gzip, {} bytes JSON), snapshot {date}",
        catalog.model_count(),
        catalog.provider_count(),
        gz.len(),
        bytes.len()
    ))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn today() -> Result<String> {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .context("cannot run `date`; pass --date YYYY-MM-DD")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Read;

    const DOC: &str = r#"{"openai":{"id":"openai","name":"OpenAI","env":["OPENAI_API_KEY"],"models":{"gpt-4o":{"id":"gpt-4o","name":"GPT-4o","cost":{"input":2.5,"output":10},"limit":{"context":128000,"output":16384}}}}}"#;

    fn tmp_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("xtask-catalog-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn embeds_the_input_byte_for_byte() {
        let dir = tmp_dir("ok");
        let summary = embed(DOC.as_bytes(), &dir, "2026-01-02").unwrap();
        assert!(summary.contains("1 models from 1 providers"), "{summary}");
        let gz = std::fs::read(dir.join("models.dev.json.gz")).unwrap();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, DOC);
        assert_eq!(
            std::fs::read_to_string(dir.join("SNAPSHOT_DATE")).unwrap(),
            "2026-01-02\n"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_empty_or_invalid_documents() {
        let dir = tmp_dir("bad");
        assert!(embed(b"{}", &dir, "2026-01-02").is_err());
        assert!(embed(b"not json", &dir, "2026-01-02").is_err());
        assert!(!dir.join("models.dev.json.gz").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn dates() {
        assert!(is_date("2026-07-02"));
        assert!(!is_date("2026-7-02"));
        assert!(!is_date("yesterday!"));
    }
}
