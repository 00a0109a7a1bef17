//! `medgemma-x dicom info FILE [--json]` and `medgemma-x dicom render FILE … --out OUT.png`: the same
//! reading and rendering as the server's endpoints, for checking a file at the command line.

use std::path::{Path, PathBuf};

use anyhow::Context;
use imaging::Limits;
use imaging::render::RenderOptions;
use measure::window::Window;

#[derive(clap::Subcommand, Debug)]
pub enum DicomCommand {
    /// Metadata: patient, study, sizes, pixel spacing and its source, rescale, windows, transfer syntax.
    Info {
        file: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One frame as an 8-bit PNG through a window (the file's first window, or the full range, if none given).
    Render {
        file: PathBuf,
        /// Frame number, from 1.
        #[arg(long, default_value_t = 1)]
        frame: usize,
        #[arg(long, requires = "window_width", allow_hyphen_values = true)]
        window_center: Option<f64>,
        #[arg(long, requires = "window_center")]
        window_width: Option<f64>,
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(command: DicomCommand) -> anyhow::Result<()> {
    match command {
        DicomCommand::Info { file, json } => {
            let bytes = read_file(&file)?;
            let image = parse(&file, &bytes)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&image.info)?);
            } else {
                print_table(&image.info);
            }
        }
        DicomCommand::Render { file, frame, window_center, window_width, out } => {
            let bytes = read_file(&file)?;
            let image = parse(&file, &bytes)?;
            let frames = image.decode().map_err(|e| anyhow::anyhow!("{} / {}", e.message_zh(), e.message_en()))?;
            anyhow::ensure!(
                (1..=frames.count).contains(&frame),
                "没有第 {frame} 帧 / no frame {frame}: the image has {} frame(s)",
                frames.count
            );
            let window = window_center.zip(window_width).map(|(center, width)| Window { center, width });
            if let Some(w) = window {
                anyhow::ensure!(w.width >= 1.0, "窗宽须 ≥ 1 / window width must be at least 1");
            }
            let file_windows = image.info.file_windows();
            let options = RenderOptions { frame: frame - 1, window, invert: false, max_side: None };
            let png = imaging::render::png(&imaging::render::to_8bit(&frames, &options, &file_windows)?);
            server::support::files::write_atomically(&out, &png)?;
        }
    }
    Ok(())
}

fn read_file(file: &Path) -> anyhow::Result<Vec<u8>> {
    let size = std::fs::metadata(file).with_context(|| format!("无法读取 / cannot read {}", file.display()))?.len();
    let limit = Limits::default().max_file_bytes;
    anyhow::ensure!(size <= limit, "文件过大 / {} is {size} bytes, over the limit of {limit}", file.display());
    std::fs::read(file).with_context(|| format!("无法读取 / cannot read {}", file.display()))
}

fn parse<'a>(file: &Path, bytes: &'a [u8]) -> anyhow::Result<imaging::dicom::DicomImage<'a>> {
    imaging::dicom::read(bytes, &Limits::default())
        .map_err(|e| anyhow::anyhow!("{}: {} / {}", file.display(), e.message_zh(), e.message_en()))
}

fn print_table(info: &imaging::dicom::DicomInfo) {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let spacing = match (info.pixel_spacing_mm, info.pixel_spacing_source) {
        (Some([r, c]), Some(source)) => {
            let caveat = source.caveat_zh().map(|c| format!("（{c}）")).unwrap_or_default();
            format!("{r} × {c} mm, {source:?}{caveat}")
        }
        _ => "-".into(),
    };
    let windows: Vec<String> = info.windows.iter().map(|w| format!("C {} / W {}", w.center, w.width)).collect();
    let rows = [
        ("patient_name 姓名", or_dash(&info.patient_name)),
        ("patient_id 患者ID", or_dash(&info.patient_id)),
        ("modality 模态", or_dash(&info.modality)),
        ("study_date 检查日期", or_dash(&info.study_date)),
        ("size 尺寸", format!("{} × {} × {} frame(s)", info.columns, info.rows, info.frames)),
        ("photometric", info.photometric_interpretation.clone()),
        (
            "bits",
            format!(
                "{} allocated, {} stored, {}",
                info.bits_allocated,
                info.bits_stored,
                if info.pixel_representation == 1 { "signed" } else { "unsigned" }
            ),
        ),
        ("pixel_spacing 像素间距", spacing),
        ("rescale", format!("slope {} intercept {}", info.rescale.slope, info.rescale.intercept)),
        ("windows 窗", if windows.is_empty() { "-".into() } else { windows.join(", ") }),
        (
            "transfer_syntax",
            format!("{} ({})", info.transfer_syntax.name.clone().unwrap_or_default(), info.transfer_syntax.uid),
        ),
        ("charset 字符集", or_dash(&info.specific_character_set)),
    ];
    for (k, v) in rows {
        println!("{k:<24} {v}");
    }
}
