use models::device::{ComputeDevice, TORCH_LIB_DIR};

pub fn run() -> anyhow::Result<()> {
    let device = ComputeDevice::detect();
    println!("medgemma-x {}", server::VERSION);
    println!("libtorch: {TORCH_LIB_DIR}");
    println!(
        "cuda: runtime {}, {} device(s); inference device: {}",
        if device.cuda_runtime_linked { "linked" } else { "NOT linked" },
        device.cuda_devices,
        device.label()
    );
    Ok(())
}
