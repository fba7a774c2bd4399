//! Tidy checks: every Rust source file starts with a `//!` line saying what it is for.

use std::path::Path;

use anyhow::{bail, Result};

pub fn check_file_headers(root: &Path) -> Result<()> {
    let mut missing = Vec::new();
    for dir in ["crates", "bins", "xtask"] {
        visit(&root.join(dir), &mut missing)?;
    }
    if !missing.is_empty() {
        bail!(
            "these files do not start with a `//!` line:\n  {}",
            missing.join("\n  ")
        );
    }
    eprintln!("tidy ok: every .rs file starts with //!");
    Ok(())
}

fn visit(dir: &Path, missing: &mut Vec<String>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            visit(&path, missing)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path)?;
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if !first.starts_with("//!") {
                missing.push(path.display().to_string());
            }
        }
    }
    Ok(())
}
