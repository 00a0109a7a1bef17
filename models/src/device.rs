//! Which compute device inference would run on, as libtorch sees it.

use serde::Serialize;

/// The libtorch `lib/` directory this crate was built against (and whose path is in the rpath).
pub const TORCH_LIB_DIR: &str = env!("MEDGEMMA_X_TORCH_LIB_DIR");

/// What libtorch found in this process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ComputeDevice {
    /// Number of CUDA devices libtorch can use; 0 on a CPU-only machine.
    pub cuda_devices: usize,
    /// Whether libtorch_cuda is loaded in this process. False means the binary was linked without it
    /// and CUDA would be unavailable even on a GPU machine.
    pub cuda_runtime_linked: bool,
}

impl ComputeDevice {
    /// Asks libtorch. Cheap (no CUDA context is created), but it touches the driver on GPU machines,
    /// so call it once at start and keep the answer.
    pub fn detect() -> Self {
        Self { cuda_devices: tch::Cuda::device_count().max(0) as usize, cuda_runtime_linked: cuda_runtime_linked() }
    }

    /// The device inference would use: the first GPU when there is one.
    pub fn preferred(&self) -> tch::Device {
        if self.cuda_devices > 0 { tch::Device::Cuda(0) } else { tch::Device::Cpu }
    }

    /// "cuda:0" or "cpu", for status pages and logs.
    pub fn label(&self) -> String {
        match self.preferred() {
            tch::Device::Cuda(i) => format!("cuda:{i}"),
            _ => "cpu".to_string(),
        }
    }
}

/// True when libtorch_cuda.so is mapped into this process (read from /proc/self/maps on Linux).
fn cuda_runtime_linked() -> bool {
    std::fs::read_to_string("/proc/self/maps").map(|maps| maps.contains("libtorch_cuda.so")).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tensor_computes_on_the_detected_device() {
        let device = ComputeDevice::detect();
        let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]).to_device(device.preferred());
        let sum: f64 = t.sum(tch::Kind::Float).double_value(&[]);
        assert_eq!(sum, 6.0);
        assert_eq!(device.label() == "cpu", device.cuda_devices == 0);
    }

    /// The build script forces libtorch_cuda in when the torch install has it; without it CUDA would be
    /// silently unavailable on a GPU machine. The PyPI torch 2.11.0 wheel for Linux has it.
    #[test]
    fn libtorch_cuda_is_linked_when_the_torch_install_has_it() {
        let torch_has_cuda = std::path::Path::new(TORCH_LIB_DIR).join("libtorch_cuda.so").exists();
        assert_eq!(ComputeDevice::detect().cuda_runtime_linked, torch_has_cuda);
    }
}
