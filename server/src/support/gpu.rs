//! The GPUs' names and memory, from NVML (libnvidia-ml.so.1, loaded at run time: it comes with the
//! NVIDIA driver, so a CPU-only machine simply has none). Read for `medgemma-x status` (the whole card,
//! whoever uses it) and for /metrics.

use std::sync::OnceLock;

use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// NVML's index (the order `nvidia-smi` lists them).
    pub index: u32,
    /// e.g. "NVIDIA H200".
    pub name: String,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
}

/// What NVML said: the GPUs, or why there are none to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Gpus {
    Found {
        gpus: Vec<GpuInfo>,
    },
    /// No NVIDIA driver (the usual CPU-only case) or NVML refused; why, Chinese then English.
    Unavailable {
        reason: String,
    },
}

impl Gpus {
    /// Asks NVML now. The library is loaded and initialised once per process (that takes a while on a
    /// GPU machine); each call reads the current memory use.
    pub fn query() -> Gpus {
        static NVML: OnceLock<Result<Nvml, String>> = OnceLock::new();
        let init = || {
            Nvml::init().map_err(|e| match e {
                NvmlError::LibloadingError(_) => {
                    "未安装NVIDIA驱动 / no NVIDIA driver (libnvidia-ml.so.1 not found)".to_string()
                }
                other => format!("NVML不可用 / NVML unavailable: {other}"),
            })
        };
        let nvml = match NVML.get_or_init(init) {
            Ok(nvml) => nvml,
            Err(reason) => return Gpus::Unavailable { reason: reason.clone() },
        };
        let read = || -> Result<Vec<GpuInfo>, NvmlError> {
            (0..nvml.device_count()?)
                .map(|index| {
                    let device = nvml.device_by_index(index)?;
                    let memory = device.memory_info()?;
                    Ok(GpuInfo {
                        index,
                        name: device.name()?,
                        memory_used_bytes: memory.used,
                        memory_total_bytes: memory.total,
                    })
                })
                .collect()
        };
        match read() {
            Ok(gpus) => Gpus::Found { gpus },
            Err(e) => Gpus::Unavailable { reason: format!("NVML读取失败 / NVML query failed: {e}") },
        }
    }

    /// One line per GPU for the nurse: "NVIDIA H200  显存 12.3 / 139.8 GiB".
    pub fn lines_zh(&self) -> Vec<String> {
        match self {
            Gpus::Found { gpus } if !gpus.is_empty() => gpus
                .iter()
                .map(|g| {
                    format!(
                        "GPU {}：{}  显存 {:.1} / {:.1} GiB",
                        g.index,
                        g.name,
                        gib(g.memory_used_bytes),
                        gib(g.memory_total_bytes)
                    )
                })
                .collect(),
            Gpus::Found { .. } => vec!["GPU：驱动在，但没有可用的GPU".into()],
            Gpus::Unavailable { reason } => {
                vec![format!("GPU：无（{}）", reason.split(" / ").next().unwrap_or(reason))]
            }
        }
    }

    /// Prometheus gauges of memory used and total, per GPU; nothing without NVML.
    pub fn write_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let Gpus::Found { gpus } = self else { return };
        out.push_str("# HELP medgemma_x_gpu_memory_used_bytes GPU memory in use (all processes), from NVML.\n");
        out.push_str("# TYPE medgemma_x_gpu_memory_used_bytes gauge\n");
        for g in gpus {
            let _ = writeln!(out, "medgemma_x_gpu_memory_used_bytes{{gpu=\"{}\"}} {}", g.index, g.memory_used_bytes);
        }
        out.push_str("# HELP medgemma_x_gpu_memory_total_bytes GPU memory in all, from NVML.\n");
        out.push_str("# TYPE medgemma_x_gpu_memory_total_bytes gauge\n");
        for g in gpus {
            let _ = writeln!(out, "medgemma_x_gpu_memory_total_bytes{{gpu=\"{}\"}} {}", g.index, g.memory_total_bytes);
        }
    }
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the machine, the answer is consistent with it: a machine with the NVIDIA driver's NVML
    /// library lists its GPUs with sane memory figures; one without says so, and names no GPU.
    #[test]
    fn nvml_answers_match_the_machine() {
        let driver_present = ["/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1", "/usr/lib64/libnvidia-ml.so.1"]
            .iter()
            .any(|p| std::path::Path::new(p).exists());
        match Gpus::query() {
            Gpus::Found { gpus } => {
                assert!(driver_present || !gpus.is_empty(), "NVML loaded from an unexpected place without GPUs");
                for g in &gpus {
                    assert!(!g.name.is_empty());
                    assert!(g.memory_total_bytes > 0 && g.memory_used_bytes <= g.memory_total_bytes, "{g:?}");
                }
            }
            Gpus::Unavailable { reason } => {
                assert!(!driver_present, "the driver's NVML is installed but did not load: {reason}");
                assert!(!reason.is_empty());
            }
        }
    }

    #[test]
    fn lines_and_metrics_name_each_gpu() {
        let gpus = Gpus::Found {
            gpus: vec![GpuInfo {
                index: 0,
                name: "NVIDIA H200".into(),
                memory_used_bytes: 12 << 30,
                memory_total_bytes: 140 << 30,
            }],
        };
        assert_eq!(gpus.lines_zh(), ["GPU 0：NVIDIA H200  显存 12.0 / 140.0 GiB"]);
        let mut metrics = String::new();
        gpus.write_metrics(&mut metrics);
        assert!(metrics.contains(&format!("medgemma_x_gpu_memory_used_bytes{{gpu=\"0\"}} {}\n", 12u64 << 30)));
        assert!(metrics.contains(&format!("medgemma_x_gpu_memory_total_bytes{{gpu=\"0\"}} {}\n", 140u64 << 30)));

        let none = Gpus::Unavailable { reason: "未安装NVIDIA驱动 / no NVIDIA driver".into() };
        assert_eq!(none.lines_zh(), ["GPU：无（未安装NVIDIA驱动）"]);
        let mut metrics = String::new();
        none.write_metrics(&mut metrics);
        assert!(metrics.is_empty());
    }
}
