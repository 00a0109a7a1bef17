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
    /// A prompt run stopped between layers because its caller asked it to make way (a question
    /// somebody watches came while a background one ran its prompt); nothing of it is kept.
    #[error("the prompt run made way for a more urgent question")]
    MadeWay,
}

impl EngineError {
    pub fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Checkpoint { path: path.into(), message: message.into() }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
