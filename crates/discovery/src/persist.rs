//! Persistence of the last good model lists: one JSON file in `data_dir`, written
//! atomically (temp file, fsync, rename) so a crash never leaves a torn file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use modelgate_types::Model;
use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "models.json";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct PersistedProvider {
    pub models: Vec<Model>,
    pub last_success: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PersistedFile {
    pub version: u32,
    pub saved_at: String,
    pub providers: BTreeMap<String, PersistedProvider>,
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the persisted lists; a missing file is `Ok(None)`, a corrupt one an error
/// (the caller logs it and starts empty).
pub fn load(dir: &Path) -> Result<Option<PersistedFile>, String> {
    let p = path(dir);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", p.display())),
    };
    let file: PersistedFile = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not a model snapshot: {e}", p.display()))?;
    if file.version != FORMAT_VERSION {
        return Err(format!(
            "{} has format version {}, expected {FORMAT_VERSION}",
            p.display(),
            file.version
        ));
    }
    Ok(Some(file))
}

/// Writes atomically: a temp file in the same directory, fsync, then rename.
pub fn save(dir: &Path, providers: BTreeMap<String, PersistedProvider>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file = PersistedFile {
        version: FORMAT_VERSION,
        saved_at: modelgate_types::now_rfc3339(),
        providers,
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| format!("cannot serialise: {e}"))?;
    let final_path = path(dir);
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &final_path)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", final_path.display())
    })
}
