//! `medgemma-x dicom info FILE [--json]` and `medgemma-x dicom render FILE … --out OUT.png`: the same
//! reading and rendering as the server's endpoints, for checking a file at the command line.
//! `medgemma-x dicom peer add|list|remove`: the DICOM nodes that may send to this server.
//! `medgemma-x dicom find|move`: ask a PACS for studies and have one sent here, for integrators.

use std::path::{Path, PathBuf};

use anyhow::Context;
use imaging::Limits;
use imaging::render::RenderOptions;
use measure::window::Window;
use server::domain::pacs_query::{self, StudyKeys};

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
    /// The DICOM nodes that may associate with this server (modalities, the PACS): add, list, remove.
    Peer {
        #[command(subcommand)]
        which: PeerCommand,
    },
    /// Ask a PACS for studies (C-FIND): by patient ID, accession number, study date or UID. Without
    /// --peer, every peer added with --query is asked.
    Find {
        #[arg(long)]
        peer: Option<String>,
        #[arg(long)]
        patient_id: Option<String>,
        #[arg(long)]
        accession: Option<String>,
        /// YYYYMMDD, or a range: 20240101-20241231, 20240101-, -20241231.
        #[arg(long)]
        study_date: Option<String>,
        #[arg(long)]
        study_uid: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: Node,
    },
    /// Ask a PACS to send a study to this server (C-MOVE to our AE title): the server must be running,
    /// and the PACS must know our AE title, host and DICOM port.
    Move {
        study_uid: String,
        #[arg(long)]
        peer: String,
        #[command(flatten)]
        node: Node,
    },
}

/// Who we are on the network, and where the peers are kept.
#[derive(clap::Args, Debug)]
pub struct Node {
    /// Our AE title, as `serve --dicom-ae` has it.
    #[arg(long, env = "MEDGEMMA_X_DICOM_AE", default_value = "MEDGEMMAX")]
    dicom_ae: String,
    #[command(flatten)]
    db: crate::cli::accounts::Db,
}

#[derive(clap::Subcommand, Debug)]
pub enum PeerCommand {
    /// Add a peer, or change the one with this AE title.
    Add {
        /// Its AE title (what it calls itself), 1–16 characters.
        ae_title: String,
        /// Its host name or address (where we reach it, for queries and for sending reports).
        #[arg(long)]
        host: String,
        /// Its DICOM port.
        #[arg(long, default_value_t = 104)]
        port: u16,
        /// It may not send images to us (a PACS that is only queried).
        #[arg(long)]
        no_store: bool,
        /// It may query what we hold, and is asked for priors.
        #[arg(long)]
        query: bool,
        #[command(flatten)]
        db: crate::cli::accounts::Db,
    },
    List {
        #[command(flatten)]
        db: crate::cli::accounts::Db,
    },
    Remove {
        ae_title: String,
        #[command(flatten)]
        db: crate::cli::accounts::Db,
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
        DicomCommand::Peer { which } => peer(which)?,
        DicomCommand::Find { peer, patient_id, accession, study_date, study_uid, json, node } => {
            let keys = StudyKeys { patient_id, accession_number: accession, study_date, study_uid };
            find(peer.as_deref(), &keys, json, &node)?;
        }
        DicomCommand::Move { study_uid, peer, node } => retrieve(&peer, &study_uid, &node)?,
    }
    Ok(())
}

fn find(peer: Option<&str>, keys: &StudyKeys, json: bool, node: &Node) -> anyhow::Result<()> {
    let (runtime, pool, _) = node.db.open()?;
    let found = runtime.block_on(pacs_query::find_studies(&pool, &node.dicom_ae, peer, keys));
    let asked = format!("peer={}", peer.unwrap_or("(all query peers)"));
    let (outcome, detail) = match &found {
        Ok(found) => ("ok", format!("{asked} matches={}", found.len())),
        Err(e) => ("failed", format!("{asked} {e}")),
    };
    crate::cli::accounts::record_console_outcome(&runtime, &pool, "dicom.find", outcome, detail)?;
    let found = found.map_err(|e| anyhow::anyhow!("{e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!(
        "{:<10} {:<8} {:<12} {:<16} {:<24} {:>5}  {:<6} study UID",
        "date", "mod.", "peer", "accession", "description", "inst.", "here"
    );
    for s in found {
        println!(
            "{:<10} {:<8} {:<12} {:<16} {:<24} {:>5}  {:<6} {}",
            or_dash(&s.study_date),
            s.modalities.join("/"),
            s.peer,
            or_dash(&s.accession_number),
            or_dash(&s.description),
            s.instances.map_or_else(|| "-".into(), |n| n.to_string()),
            s.held.map_or_else(|| "-".into(), |id| format!("#{id}")),
            s.study_uid
        );
    }
    Ok(())
}

fn retrieve(peer: &str, study_uid: &str, node: &Node) -> anyhow::Result<()> {
    let (runtime, pool, _) = node.db.open()?;
    let moved = runtime.block_on(pacs_query::retrieve(&pool, &node.dicom_ae, peer, study_uid));
    let (outcome, detail) = match &moved {
        Ok(moved) if moved.study_id.is_some() => {
            ("ok", format!("peer={peer} completed={} failed={}", moved.completed, moved.failed))
        }
        Ok(moved) => {
            ("failed", format!("peer={peer} completed={} failed={} nothing arrived", moved.completed, moved.failed))
        }
        Err(e) => ("failed", format!("peer={peer} {e}")),
    };
    crate::cli::accounts::record_console_outcome(&runtime, &pool, "dicom.move", outcome, detail)?;
    let moved = moved.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "已调取 / retrieved: {} sent, {} failed, {} with warnings; study {}",
        moved.completed,
        moved.failed,
        moved.warning,
        moved
            .study_id
            .map_or_else(|| "not here (is the server running and known to the PACS?)".into(), |id| format!("#{id}"))
    );
    anyhow::ensure!(moved.study_id.is_some(), "the study did not arrive");
    Ok(())
}

fn peer(command: PeerCommand) -> anyhow::Result<()> {
    use server::domain::dicom;
    let shown = |e: server::domain::DomainError| anyhow::anyhow!("{e}");
    match command {
        PeerCommand::Add { ae_title, host, port, no_store, query, db } => {
            let (runtime, pool, _) = db.open()?;
            let peer =
                runtime.block_on(dicom::put_peer(&pool, &ae_title, &host, port, !no_store, query)).map_err(shown)?;
            let detail = format!(
                "ae={} host={} port={} store={} query={}",
                peer.ae_title, peer.host, peer.port, peer.may_store, peer.may_query
            );
            crate::cli::accounts::record_console(&runtime, &pool, "dicom.peer.add", detail)?;
            println!("已添加 DICOM 节点 / peer added: {} {}:{}", peer.ae_title, peer.host, peer.port);
        }
        PeerCommand::List { db } => {
            let (runtime, pool, _) = db.open()?;
            let peers = runtime.block_on(dicom::peers(&pool)).map_err(shown)?;
            println!("{:<16} {:<24} {:>5}  {:<5} {:<5}", "AE", "host", "port", "store", "query");
            for p in peers {
                println!("{:<16} {:<24} {:>5}  {:<5} {:<5}", p.ae_title, p.host, p.port, p.may_store, p.may_query);
            }
        }
        PeerCommand::Remove { ae_title, db } => {
            let (runtime, pool, _) = db.open()?;
            runtime.block_on(dicom::remove_peer(&pool, &ae_title)).map_err(shown)?;
            crate::cli::accounts::record_console(
                &runtime,
                &pool,
                "dicom.peer.remove",
                format!("ae={}", ae_title.trim()),
            )?;
            println!("已删除 DICOM 节点 / peer removed: {}", ae_title.trim());
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
