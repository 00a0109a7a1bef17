use std::path::PathBuf;

/// Everything that can go wrong in the engine. Messages name the file and tensor involved, so an
/// operator can tell a truncated download from a wrong model.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("invalid input: {0}")]
    Input(String),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl EngineError {
    pub fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Checkpoint { path: path.into(), message: message.into() }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
