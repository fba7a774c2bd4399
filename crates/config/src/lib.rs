//! modelgate settings: the structs of the configuration file, loading them in layers
//! (built-in defaults, then a YAML file, then `MODELGATE__SECTION__KEY` environment
//! variables) and `validate()`, which reports every problem with its key path.
//!
//! Invariants: no network I/O; the only file read is the config file named by the caller.
//! Secrets are [`Secret`]s, so `Debug` and `Serialize` of any settings value print `***`.
#![forbid(unsafe_code)]

mod load;
mod settings;
mod validate;

pub use load::{load, resolve_path, ConfigSource, LoadError, Loaded, ENV_CONFIG_PATH, ENV_PREFIX};
pub use modelgate_types::{MockSettings, ProviderConfig, ProviderKind, Secret};
pub use settings::*;
pub use validate::{Problem, Problems};
