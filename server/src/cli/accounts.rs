//! `medgemma-x user …`, `medgemma-x token …` and `medgemma-x audit …`: accounts, API tokens and the audit
//! trail from the server's console (the server may be running: SQLite lets both write).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use server::domain::auth::{Permission, Role, tokens, users};
use server::store::db::DatabaseLocation;
use server::support::data_dir::DataDir;

#[derive(clap::Args, Debug)]
pub struct Db {
    /// The data dir of the server (as given to `serve`).
    #[arg(long, env = "MEDGEMMA_X_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// As given to `serve` (default: the SQLite file in the data dir).
    #[arg(long, env = "MEDGEMMA_X_DATABASE_URL")]
    database_url: Option<String>,
}

impl Db {
    pub(crate) fn open(&self) -> anyhow::Result<(tokio::runtime::Runtime, server::store::db::Pool, DataDir)> {
        let data_dir = DataDir::create(&self.data_dir)?;
        let location = match &self.database_url {
            Some(url) => DatabaseLocation::Url(url.clone()),
            None => DatabaseLocation::SqliteFile(data_dir.default_sqlite_file()),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let pool = runtime.block_on(server::store::db::connect(&location))?;
        Ok((runtime, pool, data_dir))
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Add an account. The password is read from standard input (one line), or made up and printed once.
    Add {
        username: String,
        #[arg(long, value_enum)]
        role: Role,
        /// The name shown in the app and on signed reports (default: the username).
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from standard input instead of making one up.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: Db,
    },
    /// Set a new password (read from standard input, or made up and printed); ends the user's sessions.
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: Db,
    },
    /// Disable an account: it cannot sign in, and its open sessions end at their next request.
    Disable {
        username: String,
        #[command(flatten)]
        db: Db,
    },
    Enable {
        username: String,
        #[command(flatten)]
        db: Db,
    },
    /// Remove an account's second factor (a lost phone): it signs in with its password until it enrols again.
    TotpReset {
        username: String,
        #[command(flatten)]
        db: Db,
    },
    List {
        #[command(flatten)]
        db: Db,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
    /// Make an API token for an integrator; it is printed once and stored only as a hash.
    Create {
        name: String,
        /// Comma-separated: study_upload, report_read, report_export, read_metrics.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        #[command(flatten)]
        db: Db,
    },
    List {
        #[command(flatten)]
        db: Db,
    },
    Revoke {
        id: i64,
        #[command(flatten)]
        db: Db,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain of the whole trail. Exit 0 intact, 1 broken (the first bad row is named).
    Verify {
        #[command(flatten)]
        db: Db,
    },
    /// Write the trail (newest first) as CSV or JSON to standard output.
    Export {
        #[arg(long, default_value = "csv")]
        format: String,
        /// RFC 3339, inclusive.
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339, exclusive.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 1_000_000)]
        limit: i64,
        #[command(flatten)]
        db: Db,
    },
}

/// Changes made at the console are in the audit trail too (actor "console", the operating-system user).
pub(crate) fn record_console(
    runtime: &tokio::runtime::Runtime,
    pool: &server::store::db::Pool,
    action: &str,
    detail: String,
) -> anyhow::Result<()> {
    record_console_outcome(runtime, pool, action, "ok", detail)
}

/// As [`record_console`], for an action that may have failed (`outcome` "ok" or "failed").
pub(crate) fn record_console_outcome(
    runtime: &tokio::runtime::Runtime,
    pool: &server::store::db::Pool,
    action: &str,
    outcome: &'static str,
    detail: String,
) -> anyhow::Result<()> {
    let who = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "console".into());
    let event = server::domain::audit::AuditEvent {
        actor_kind: "console",
        actor_name: Some(who),
        action: action.into(),
        outcome,
        detail: Some(detail),
        ..Default::default()
    };
    runtime.block_on(server::domain::audit::AuditLog::new(pool.clone()).record(event))?;
    Ok(())
}

fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((users::random_password(), true));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    Ok((line.trim_end_matches(['\r', '\n']).to_string(), false))
}

fn user_named(
    runtime: &tokio::runtime::Runtime,
    pool: &server::store::db::Pool,
    username: &str,
) -> anyhow::Result<users::User> {
    runtime
        .block_on(users::by_username(pool, username))?
        .with_context(|| format!("没有这个用户 / no user named {username}"))
}

pub fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add { username, role, display_name, password_stdin, db } => {
            let (runtime, pool, _) = db.open()?;
            let (new_password, made_up) = password(password_stdin)?;
            let display_name = display_name.unwrap_or_else(|| username.clone());
            let user = runtime
                .block_on(users::create(&pool, &username, &display_name, role, &new_password))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            record_console(&runtime, &pool, "user.add", format!("{} role={}", user.username, user.role.as_str()))?;
            println!("已添加用户 / added: {} ({}, {})", user.username, user.role.label_zh(), user.display_name);
            if made_up {
                println!("初始密码（仅显示这一次） / password (shown once): {new_password}");
            }
        }
        UserCommand::Passwd { username, password_stdin, db } => {
            let (runtime, pool, _) = db.open()?;
            let user = user_named(&runtime, &pool, &username)?;
            let (new_password, made_up) = password(password_stdin)?;
            runtime.block_on(users::set_password(&pool, user.id, &new_password)).map_err(|e| anyhow::anyhow!("{e}"))?;
            record_console(&runtime, &pool, "user.password", format!("{username} (all sessions ended)"))?;
            println!("已修改密码，该用户的所有会话已结束 / password changed; the user's sessions have ended");
            if made_up {
                println!("新密码（仅显示这一次） / password (shown once): {new_password}");
            }
        }
        UserCommand::Disable { username, db } => {
            let (runtime, pool, _) = db.open()?;
            let user = user_named(&runtime, &pool, &username)?;
            runtime.block_on(users::set_disabled(&pool, user.id, true)).map_err(|e| anyhow::anyhow!("{e}"))?;
            record_console(&runtime, &pool, "user.disable", format!("{username} (all sessions ended)"))?;
            println!("已停用 {username}，其会话已全部结束 / disabled; all sessions ended");
        }
        UserCommand::Enable { username, db } => {
            let (runtime, pool, _) = db.open()?;
            let user = user_named(&runtime, &pool, &username)?;
            runtime.block_on(users::set_disabled(&pool, user.id, false)).map_err(|e| anyhow::anyhow!("{e}"))?;
            record_console(&runtime, &pool, "user.enable", username.clone())?;
            println!("已启用 {username} / enabled");
        }
        UserCommand::TotpReset { username, db } => {
            let (runtime, pool, _) = db.open()?;
            let user = user_named(&runtime, &pool, &username)?;
            runtime.block_on(users::disable_totp(&pool, user.id))?;
            record_console(&runtime, &pool, "user.totp_reset", username.clone())?;
            println!("已移除 {username} 的动态验证码 / second factor removed");
        }
        UserCommand::List { db } => {
            let (runtime, pool, _) = db.open()?;
            for u in runtime.block_on(users::list(&pool))? {
                println!(
                    "{:<4} {:<20} {:<16} {:<12} {:<8} {}  last sign-in {}",
                    u.id,
                    u.username,
                    u.role.as_str(),
                    if u.disabled { "disabled" } else { "enabled" },
                    if u.totp_enabled { "2FA" } else { "-" },
                    u.display_name,
                    u.last_login_at.as_deref().unwrap_or("-")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn token(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create { name, scopes, db } => {
            let scopes = scopes
                .iter()
                .map(|s| Permission::parse(s.trim()).with_context(|| format!("unknown scope {s}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let (runtime, pool, _) = db.open()?;
            let (info, token) = runtime.block_on(tokens::create(&pool, &name, &scopes, "console", None))?;
            record_console(&runtime, &pool, "token.add", format!("id={} name={}", info.id, info.name))?;
            println!("令牌 {} 已创建（编号 {}），仅显示这一次 / token created, shown once:", info.name, info.id);
            println!("{token}");
        }
        TokenCommand::List { db } => {
            let (runtime, pool, _) = db.open()?;
            for t in runtime.block_on(tokens::list(&pool))? {
                let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "{:<4} {:<24} {:<50} {}",
                    t.id,
                    t.name,
                    scopes.join(","),
                    t.revoked_at.map_or("live".to_string(), |at| format!("revoked {at}"))
                );
            }
        }
        TokenCommand::Revoke { id, db } => {
            let (runtime, pool, _) = db.open()?;
            if !runtime.block_on(tokens::revoke(&pool, id))? {
                bail!("没有编号为 {id} 的有效令牌 / no live token {id}");
            }
            record_console(&runtime, &pool, "token.revoke", format!("id={id}"))?;
            println!("已吊销令牌 {id} / revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { db } => {
            let (runtime, pool, _) = db.open()?;
            let v = runtime.block_on(server::domain::audit::verify(&pool))?;
            if v.ok {
                println!("审计日志完整：{} 条记录，哈希链校验通过 / audit trail intact: {} rows", v.rows, v.rows);
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "审计日志被篡改：第 {} 条记录起哈希链断裂（{}） / audit trail broken at row {}: {}",
                    v.first_bad_id.unwrap_or_default(),
                    v.problem.as_deref().unwrap_or(""),
                    v.first_bad_id.unwrap_or_default(),
                    v.problem.as_deref().unwrap_or("")
                );
                Ok(ExitCode::from(1))
            }
        }
        AuditCommand::Export { format, from, to, limit, db } => {
            let (runtime, pool, _) = db.open()?;
            let query = server::domain::audit::Query { from, to, patient_ref: None, limit: Some(limit) };
            let rows = runtime.block_on(server::domain::audit::rows(&pool, &query))?;
            match format.as_str() {
                "csv" => print!("{}", server::domain::audit::to_csv(&rows)),
                "json" => println!("{}", serde_json::to_string_pretty(&rows)?),
                other => bail!("unknown format {other}: csv or json"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct AuditReportArgs {
    /// Write the Markdown here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    db: Db,
}

/// Exit 0 when nothing failed (warnings allowed), 1 when a check failed.
pub fn audit_report(args: AuditReportArgs) -> anyhow::Result<ExitCode> {
    let (runtime, pool, data_dir) = args.db.open()?;
    let report = runtime.block_on(server::domain::security_report::generate(&pool, data_dir.root()))?;
    match &args.out {
        Some(path) => {
            server::support::files::write_atomically(path, report.markdown.as_bytes())?;
            println!("安全自查报告已写入 / written: {}", path.display());
        }
        None => print!("{}", report.markdown),
    }
    Ok(if report.worst == server::domain::security_report::Verdict::Fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
