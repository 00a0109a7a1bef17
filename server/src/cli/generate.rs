//! `medgemma-x generate`: one answer from a checkpoint folder, for integrators' checks and benchmarks.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;
use models::Engine;
use models::device::ComputeDevice;
use models::generate::GenerateOptions;
use models::prompt::{Role, Turn};
use models::weights::Quantization;
use tch::{Device, Kind};

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Hugging Face checkpoint folder (config.json, tokenizer.json, *.safetensors, …), a `.gguf` file, or a
    /// folder holding one.
    #[arg(long, env = "MEDGEMMA_X_MODEL_DIR")]
    model_dir: PathBuf,
    /// The user's question.
    #[arg(long)]
    prompt: String,
    /// System text, put before the question.
    #[arg(long)]
    system: Option<String>,
    /// Image files (PNG or JPEG), in order; repeat the flag for several.
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// No end of answer before this many tokens (fixed-length runs for benchmarks).
    #[arg(long, default_value_t = 0)]
    min_new_tokens: usize,
    /// 0 means greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// 0 means no top-k cut.
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// Default: bf16 on a GPU, f32 on the CPU.
    #[arg(long, value_enum)]
    dtype: Option<DtypeChoice>,
    /// Hold the decoder's projections quantized (computing in the dtype above): int8 per output channel.
    #[arg(long, value_enum, default_value_t = QuantizeChoice::None)]
    quantize: QuantizeChoice,
    /// After the streamed text, print one JSON line with ids, log-probabilities and timings.
    #[arg(long)]
    json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum DeviceChoice {
    Auto,
    Cpu,
    Cuda,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum QuantizeChoice {
    None,
    Int8,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum DtypeChoice {
    F32,
    Bf16,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let found = ComputeDevice::detect();
    let device = match args.device {
        DeviceChoice::Cpu => Device::Cpu,
        DeviceChoice::Auto => found.preferred(),
        DeviceChoice::Cuda if found.cuda_devices > 0 => Device::Cuda(0),
        DeviceChoice::Cuda => anyhow::bail!("--device cuda: no CUDA device found (libtorch sees {})", found.label()),
    };
    let kind = match (args.dtype, device) {
        (Some(DtypeChoice::F32), _) | (None, Device::Cpu) => Kind::Float,
        (Some(DtypeChoice::Bf16), _) | (None, _) => Kind::BFloat16,
    };

    let load_started = Instant::now();
    let quantization = match args.quantize {
        QuantizeChoice::None => Quantization::None,
        QuantizeChoice::Int8 => Quantization::Int8,
    };
    let engine = Engine::load_with(&args.model_dir, device, kind, quantization)?;
    let load_ms = load_started.elapsed().as_secs_f64() * 1000.0;
    let pixels = args.images.iter().map(|p| image_pixels(&engine, p)).collect::<anyhow::Result<Vec<_>>>()?;
    let turns =
        [Turn { role: Role::User, text: args.prompt.clone(), images: args.images.len(), image_captions: Vec::new() }];
    let ids = engine.encode_chat(args.system.as_deref(), &turns)?;
    let options = GenerateOptions {
        max_new_tokens: args.max_new_tokens,
        min_new_tokens: args.min_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        repetition_penalty: args.repetition_penalty,
        seed: args.seed,
        image_attention: !args.images.is_empty(),
    };

    let mut stdout = std::io::stdout().lock();
    let generation = engine.generate(&ids, &pixels, &options, &AtomicBool::new(false), &mut |piece| {
        let _ = stdout.write_all(piece.as_bytes());
        let _ = stdout.flush();
    })?;
    writeln!(stdout)?;
    if args.json {
        let mut json = serde_json::to_value(&generation).context("serialize")?;
        json["timings"]["load_ms"] = load_ms.into();
        json["device"] = format!("{device:?}").into();
        json["dtype"] = format!("{kind:?}").into();
        writeln!(stdout, "{json}")?;
    }
    Ok(())
}

/// JPEG/PNG as they are; DICOM (first frame) prepared as the model expects (imaging::model_input).
fn image_pixels(engine: &Engine, path: &std::path::Path) -> anyhow::Result<tch::Tensor> {
    let bytes = std::fs::read(path).with_context(|| format!("无法读取 / cannot read {}", path.display()))?;
    if !imaging::dicom::is_dicom(&bytes) {
        return Ok(engine.load_image(path)?);
    }
    let fail =
        |e: imaging::ImagingError| anyhow::anyhow!("{}: {} / {}", path.display(), e.message_zh(), e.message_en());
    let image = imaging::dicom::read(&bytes, &imaging::Limits::default()).map_err(fail)?;
    let frames = image.decode().map_err(fail)?;
    let windows = image.info.file_windows();
    let preprocessor = engine.preprocessor.as_ref().context("this model is text-only: it reads no images")?;
    let size = preprocessor.height.max(preprocessor.width) as u32;
    let input = imaging::model_input::for_frame(&frames, 0, image.info.modality.as_deref(), &windows, size)
        .context("the DICOM file has no frame to show the model")?;
    Ok(engine.image_tensor(&image::DynamicImage::ImageRgb8(input.rgb))?)
}
