//! What the server knows about the model: configured or not, usable or not, on which device.
//! The engine itself lives in the `models` crate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use models::device::ComputeDevice;

/// The model as configured at start, and the compute device once it has been detected.
#[derive(Clone, Debug)]
pub struct ModelSetup {
    pub state: ModelState,
    /// Filled in the background at start: CUDA detection can take a second on GPU machines and
    /// /healthz must answer before that.
    pub device: Arc<OnceLock<ComputeDevice>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelState {
    NotConfigured,
    /// The folder's config.json (or the GGUF file's metadata) is a Gemma 3 (MedGemma) configuration the
    /// engine can run; the inference worker loads it (its state says how far it got).
    Checked(PathBuf),
    /// The folder is missing or its config.json is not one the engine runs; the server runs without a model.
    Unreadable {
        dir: PathBuf,
        reason: String,
    },
}

impl ModelSetup {
    pub fn inspect(model_dir: Option<&Path>) -> Self {
        let state = match model_dir {
            None => ModelState::NotConfigured,
            Some(dir) => match models::check::config(dir) {
                Ok(_) => ModelState::Checked(dir.to_path_buf()),
                Err(err) => ModelState::Unreadable { dir: dir.to_path_buf(), reason: err.to_string() },
            },
        };
        Self { state, device: Arc::new(OnceLock::new()) }
    }

    /// One line for the operator, Chinese then English.
    pub fn describe(&self) -> String {
        match &self.state {
            ModelState::NotConfigured => "未配置模型：可阅片、测量和出报告，对话功能不可用 / \
                No model configured: viewing, measuring and reporting work; chat is unavailable"
                .into(),
            ModelState::Checked(dir) => {
                format!("模型目录 {} 配置有效，正在加载 / Model folder configuration is valid; loading", dir.display())
            }
            ModelState::Unreadable { dir, reason } => format!(
                "模型目录不可用（{}），服务在无模型状态下运行 / \
                 Model folder {} unusable ({reason}); running without a model",
                dir.display(),
                dir.display()
            ),
        }
    }

    pub fn device_label(&self) -> String {
        match self.device.get() {
            Some(device) => device.label(),
            None => "检测中 / detecting".into(),
        }
    }
}
