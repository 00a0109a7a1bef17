//! `medgemma-x model check PATH`: for the IT person installing a model — what the folder or GGUF file is,
//! whether its configs, tokenizer and tensor table read, the memory its weights need, and whether this
//! machine holds them the way `serve` would load them (bf16 on a GPU, f32 on the CPU).

use std::path::PathBuf;
use std::process::ExitCode;

use models::check::ModelCheck;
use server::support::gpu::Gpus;

#[derive(clap::Subcommand, Debug)]
pub enum ModelCommand {
    /// Read a checkpoint folder or GGUF file without loading it: what it is and what it needs
    /// (模型检查). Exit 0 when this machine can run it, 3 when it reads but does not fit.
    Check {
        /// A Hugging Face checkpoint folder, a `.gguf` file, or a folder holding one.
        path: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Room left beside the weights for activations, the KV cache and libtorch itself.
const HEADROOM: f64 = 1.2;

pub fn run(command: ModelCommand) -> anyhow::Result<ExitCode> {
    let ModelCommand::Check { path, json } = command;
    let check = models::check::check(&path)?;
    let machine = Machine::read();
    let verdict = machine.verdict(&check);
    if json {
        let out = serde_json::json!({
            "path": path,
            "model": check,
            "machine": { "memory_available_bytes": machine.memory_available, "gpus": machine.gpus },
            "runs_here": verdict.fits,
            "device": verdict.device,
            "dtype": verdict.dtype,
        });
        println!("{out:#}");
    } else {
        print_text(&path, &check, &machine, &verdict);
    }
    Ok(if verdict.fits { ExitCode::SUCCESS } else { ExitCode::from(3) })
}

struct Machine {
    /// MemAvailable of /proc/meminfo.
    memory_available: u64,
    gpus: Gpus,
}

struct Verdict {
    device: String,
    dtype: &'static str,
    needed: u64,
    room: u64,
    fits: bool,
}

impl Machine {
    fn read() -> Self {
        let memory_available = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemAvailable:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(0, |kib| kib * 1024);
        Self { memory_available, gpus: Gpus::query() }
    }

    /// Where `serve` would load the model and whether it fits there.
    fn verdict(&self, check: &ModelCheck) -> Verdict {
        let size = |dtype: &str| check.loaded_bytes.iter().find(|l| l.dtype == dtype).map_or(0, |l| l.bytes);
        let (device, dtype, room) = match &self.gpus {
            Gpus::Found { gpus } if !gpus.is_empty() => {
                let gpu = &gpus[0];
                (format!("GPU 0 ({})", gpu.name), "bf16", gpu.memory_total_bytes.saturating_sub(gpu.memory_used_bytes))
            }
            _ => ("CPU".to_string(), "f32", self.memory_available),
        };
        let needed = (size(dtype) as f64 * HEADROOM) as u64;
        Verdict { device, dtype, needed, room, fits: needed <= room }
    }
}

fn gb(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

fn print_text(path: &std::path::Path, c: &ModelCheck, machine: &Machine, v: &Verdict) {
    println!("模型 / model: {}", path.display());
    println!("格式 / format: {}", c.format);
    let kind = if c.reads_images {
        "图文模型 / text and images"
    } else {
        "纯文本模型，不读图像 / text only, reads no images"
    };
    println!("架构 / architecture: {} — {kind}", c.architecture);
    println!(
        "结构 / shape: {} 层 / layers, hidden {}, 上下文 / context {} tokens, 词表 / vocabulary {} tokens",
        c.layers, c.hidden_size, c.context_tokens, c.vocab_size
    );
    let storage: Vec<String> =
        c.storage.iter().map(|s| format!("{} ×{} ({})", s.kind, s.tensors, gb(s.bytes))).collect();
    println!(
        "参数 / parameters: {:.1} M, 存储 / stored as {} — {}",
        c.parameters as f64 / 1e6,
        gb(c.stored_bytes),
        storage.join(", ")
    );
    let loaded: Vec<String> = c.loaded_bytes.iter().map(|l| format!("{} {}", l.dtype, gb(l.bytes))).collect();
    println!("加载后权重 / weights when loaded: {}", loaded.join(", "));
    println!("本机内存 / memory available: {}", gb(machine.memory_available));
    for line in machine.gpus.lines_zh() {
        println!("{line}");
    }
    if v.fits {
        println!(
            "结论 / verdict: 可以运行：{} 上 {}，需约 {}（含余量），可用 {} / runs here on {} in {}",
            v.device,
            v.dtype,
            gb(v.needed),
            gb(v.room),
            v.device,
            v.dtype
        );
    } else {
        let int8 = c.loaded_bytes.iter().find(|l| l.dtype.starts_with("int8")).map_or(0, |l| l.bytes);
        println!(
            "提示 / hint: --weights int8 约需 {}（含余量） / needs about {} with headroom",
            gb((int8 as f64 * HEADROOM) as u64),
            gb((int8 as f64 * HEADROOM) as u64)
        );
        println!(
            "结论 / verdict: 内存不足：{} 上 {} 需约 {}（含余量），可用 {} / does not fit on {} in {}: needs {}, {} free",
            v.device,
            v.dtype,
            gb(v.needed),
            gb(v.room),
            v.device,
            v.dtype,
            gb(v.needed),
            gb(v.room)
        );
    }
}
