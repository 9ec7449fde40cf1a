//! Host failures. A task's verdict is never an error: see [`crate::Outcome`].

use std::path::PathBuf;
use std::time::Duration;

/// A failure of the host itself (not of the task): the task could not be judged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine could not be created from the configuration.
    #[error("invalid runtime configuration: {0}")]
    Config(String),
    /// A limit asks for more than this runtime was configured to allow.
    #[error("limit out of range: {0}")]
    Limit(String),
    /// The task ran longer in real time than the wall-clock backstop allows. This is not a
    /// verdict: real time is not deterministic, so no receipt may claim it.
    #[error("the task exceeded the wall-clock backstop of {0:?}")]
    WallClockBackstop(Duration),
    /// The pooling allocator has no free slot (too many concurrent tasks).
    #[error("no free instance slot: {0}")]
    Capacity(String),
    /// Reading or writing the on-disk module cache failed.
    #[error("module cache at {path}: {source}")]
    Cache {
        /// The file or directory involved.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// wasmtime failed in a way that says nothing about the task.
    #[error("engine failure: {0}")]
    Engine(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
