//! `medgemma-x`: one binary for the server and its operations. Each subcommand is a thin call into
//! the library (`server::…`) or the engine (`models::…`).

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "medgemma-x", version, about = "MedGemma-X 基层胸部影像智能辅助系统 / chest imaging assistant")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the web server (启动服务). Boxed: its many flags would make every other command as large.
    Serve(Box<server::startup::config::ServeArgs>),
    /// Read a DICOM file: metadata, or one frame rendered to PNG (DICOM 文件信息与渲染).
    Dicom {
        #[command(subcommand)]
        which: cli::dicom::DicomCommand,
    },
    /// Models: check a checkpoint folder or GGUF file before serving it (模型检查).
    Model {
        #[command(subcommand)]
        which: cli::model::ModelCommand,
    },
    /// An inference worker: one device, one loaded model; `serve` starts its own (推理进程).
    Inference(Box<cli::inference::InferenceArgs>),
    /// Generate one answer from a checkpoint folder or GGUF file (单次推理，用于集成检查与基准测试).
    Generate(cli::generate::GenerateArgs),
    /// Lung nodule guidelines: Lung-RADS v2022 or Fleischner 2017 for a case (肺结节指南分类).
    Guideline {
        #[command(subcommand)]
        which: cli::guideline::GuidelineCommand,
    },
    /// Structured reports: render as JSON, HL7 v2.5 or FHIR R4; print the JSON Schema (结构化报告导出).
    Report {
        #[command(subcommand)]
        which: cli::report::ReportCommand,
    },
    /// Stop the server of a data dir: SIGTERM, wait for a clean exit (停止服务).
    Stop(cli::ops::DataDirArgs),
    /// Is the server of a data dir running and well? Exit 0 running, 1 stale PID, 2 unhealthy, 3 stopped (状态检查).
    Status(cli::ops::StatusArgs),
    /// Back up the data dir (database snapshot, images, reports) into one file, while serving (数据备份).
    Backup(cli::backup::BackupArgs),
    /// Restore a backup into an empty data dir, checking every file (数据恢复).
    Restore(cli::backup::RestoreArgs),
    /// Accounts: add, passwd, disable, enable, list (用户管理).
    User {
        #[command(subcommand)]
        which: cli::accounts::UserCommand,
    },
    /// API tokens for integrators: create, list, revoke (接口令牌).
    Token {
        #[command(subcommand)]
        which: cli::accounts::TokenCommand,
    },
    /// The audit trail: verify its hash chain, export it (审计日志).
    Audit {
        #[command(subcommand)]
        which: cli::accounts::AuditCommand,
    },
    /// The security self-check: data flows, permission matrix, configuration, advisories, audit chain (安全自查报告).
    AuditReport(cli::accounts::AuditReportArgs),
    /// Print version, libtorch and compute device (版本信息).
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cli::serve::run(*args).map(|()| ExitCode::SUCCESS),
        Command::Dicom { which } => cli::dicom::run(which).map(|()| ExitCode::SUCCESS),
        Command::Model { which } => cli::model::run(which),
        Command::Inference(args) => cli::inference::run(*args).map(|()| std::process::ExitCode::SUCCESS),
        Command::Generate(args) => cli::generate::run(args).map(|()| ExitCode::SUCCESS),
        Command::Guideline { which } => cli::guideline::run(which).map(|()| ExitCode::SUCCESS),
        Command::Report { which } => cli::report::run(which).map(|()| ExitCode::SUCCESS),
        Command::Stop(args) => cli::ops::stop(args),
        Command::Status(args) => cli::ops::status(args),
        Command::Backup(args) => cli::backup::backup(args).map(|()| ExitCode::SUCCESS),
        Command::Restore(args) => cli::backup::restore(args).map(|()| ExitCode::SUCCESS),
        Command::User { which } => cli::accounts::user(which),
        Command::Token { which } => cli::accounts::token(which),
        Command::Audit { which } => cli::accounts::audit(which),
        Command::AuditReport(args) => cli::accounts::audit_report(args),
        Command::Version => cli::version::run().map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("medgemma-x: {err:#}");
            ExitCode::FAILURE
        }
    }
}
