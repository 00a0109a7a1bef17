//! `medgemma-x guideline lung-rads|fleischner --input CASE.json`: a deterministic guideline result as JSON.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Subcommand, Debug)]
pub enum GuidelineCommand {
    /// ACR Lung-RADS v2022 for a screening CT (category, management, basis, per nodule).
    LungRads(InputArgs),
    /// Fleischner 2017 for incidental nodules (scope, recommendation per table row, basis).
    Fleischner(InputArgs),
}

#[derive(clap::Args, Debug)]
pub struct InputArgs {
    /// The case as JSON; `-` reads standard input.
    #[arg(long)]
    input: PathBuf,
}

/// Largest case file read: a case is a few nodules, not megabytes.
const MAX_INPUT_BYTES: u64 = 1 << 20;

pub fn run(command: GuidelineCommand) -> anyhow::Result<()> {
    let output = match command {
        GuidelineCommand::LungRads(args) => {
            serde_json::to_string_pretty(&guidelines::lung_rads::assess(&read_case(&args.input)?))?
        }
        GuidelineCommand::Fleischner(args) => {
            serde_json::to_string_pretty(&guidelines::fleischner::assess(&read_case(&args.input)?))?
        }
    };
    println!("{output}");
    Ok(())
}

fn read_case<T: serde::de::DeserializeOwned>(path: &PathBuf) -> anyhow::Result<T> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().take(MAX_INPUT_BYTES + 1).read_to_string(&mut text)
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("无法读取 / cannot read {}", path.display()))?
            .take(MAX_INPUT_BYTES + 1)
            .read_to_string(&mut text)
    }
    .with_context(|| format!("无法读取 / cannot read {}", path.display()))?;
    if read as u64 > MAX_INPUT_BYTES {
        anyhow::bail!("输入过大 / input larger than {MAX_INPUT_BYTES} bytes: {}", path.display());
    }
    serde_json::from_str(&text).with_context(|| format!("病例JSON无效 / invalid case JSON in {}", path.display()))
}
