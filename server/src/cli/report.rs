//! `medgemma-x report render --format json|hl7|fhir|pdf --input REPORT.json --out FILE` and
//! `medgemma-x report schema`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;

#[derive(clap::Subcommand, Debug)]
pub enum ReportCommand {
    /// Render a report JSON (the seed's format or the full model) as JSON, HL7 v2.5, FHIR R4 or PDF.
    Render(RenderArgs),
    /// Print the report's JSON Schema (published as report/report.schema.json).
    Schema,
}

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    #[arg(long, value_enum)]
    format: Format,
    /// The report as JSON; `-` reads standard input.
    #[arg(long)]
    input: PathBuf,
    /// Where to write; written whole or not at all (temporary file, then rename). `-` is standard output.
    #[arg(long)]
    out: PathBuf,
    /// MSH-4 sending facility (HL7).
    #[arg(long, env = "MEDGEMMA_X_HL7_FACILITY", default_value = "MEDGEMMA-X")]
    facility: String,
    /// MSH-5 receiving application (HL7).
    #[arg(long, env = "MEDGEMMA_X_HL7_RECEIVER", default_value = "HIS")]
    receiver: String,
    /// CJK font for PDF (default: WenQuanYi Micro Hei or Noto Sans CJK from Debian).
    #[arg(long, env = "MEDGEMMA_X_REPORT_FONT")]
    font: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Json,
    Hl7,
    Fhir,
    Pdf,
}

/// Largest report read: findings and text, no images.
const MAX_INPUT_BYTES: u64 = 4 << 20;

pub fn run(command: ReportCommand) -> anyhow::Result<()> {
    match command {
        ReportCommand::Schema => {
            println!("{}", serde_json::to_string_pretty(&report::json_schema())?);
            Ok(())
        }
        ReportCommand::Render(args) => render(args),
    }
}

fn render(args: RenderArgs) -> anyhow::Result<()> {
    let mut text = String::new();
    let source: Box<dyn Read> = if args.input.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&args.input)
                .with_context(|| format!("无法读取 / cannot read {}", args.input.display()))?,
        )
    };
    source
        .take(MAX_INPUT_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    if text.len() as u64 > MAX_INPUT_BYTES {
        anyhow::bail!("输入过大 / report larger than {MAX_INPUT_BYTES} bytes");
    }
    let report: report::Report = serde_json::from_str(&text)
        .with_context(|| format!("报告JSON无效 / invalid report JSON in {}", args.input.display()))?;

    let now = time::OffsetDateTime::now_utc();
    let output = match args.format {
        Format::Pdf => {
            let font = server::pdf::find_font(args.font.as_deref())?;
            return write_output(&args.out, &server::pdf::render(&report, &font)?);
        }
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Fhir => serde_json::to_string_pretty(&report::fhir::render(&report))? + "\n",
        Format::Hl7 => report::hl7::render(
            &report,
            &report::hl7::Envelope {
                sending_facility: args.facility,
                receiving_application: args.receiver,
                receiving_facility: String::new(),
                control_id: format!("{}-{}", report.exam_id, now.unix_timestamp()),
                timestamp: format!(
                    "{:04}{:02}{:02}{:02}{:02}{:02}",
                    now.year(),
                    u8::from(now.month()),
                    now.day(),
                    now.hour(),
                    now.minute(),
                    now.second()
                ),
            },
        ),
    };
    write_output(&args.out, output.as_bytes())
}

/// `-` is standard output; anything else is written atomically (a HIS polls the reports folder).
fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        use std::io::Write;
        return Ok(std::io::stdout().write_all(bytes)?);
    }
    server::files::write_atomically(path, bytes)
}
