//! `medgemma-x report render --format json|hl7|fhir|pdf --input REPORT.json --out FILE` and
//! `medgemma-x report schema`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use server::domain::exports::{self, Format, Hl7Site};

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

    let site = Hl7Site { facility: args.facility, receiver: args.receiver };
    write_output(&args.out, &exports::render(&report, args.format, &site, args.font.as_deref(), &[])?)
}

/// `-` is standard output; anything else is written atomically (a HIS polls the reports folder).
fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        use std::io::Write;
        return Ok(std::io::stdout().write_all(bytes)?);
    }
    server::support::files::write_atomically(path, bytes)
}
