//! `medgemma-x audit-report`: the security self-check the product promises (安全自查报告), in Markdown —
//! data flows, the permission matrix (generated from the code's own role and route tables), configuration
//! checks, dependency advisories and the audit trail's chain. Every check says PASS, WARN or FAIL and why.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::domain::auth::{Access, Permission, ROUTES, Role, password, users};
use crate::store::db::Pool;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS 通过",
            Verdict::Warn => "WARN 注意",
            Verdict::Fail => "FAIL 不通过",
        }
    }
}

pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

pub struct SecurityReport {
    pub markdown: String,
    pub worst: Verdict,
}

pub async fn generate(pool: &Pool, data_dir: &Path) -> anyhow::Result<SecurityReport> {
    let mut md = String::new();
    writeln!(md, "# MedGemma-X 安全自查报告 / Security self-check\n")?;
    writeln!(
        md,
        "生成时间 / generated: {} · 版本 / version: {} · 数据目录 / data dir: `{}`\n",
        crate::support::clock::now_rfc3339(),
        crate::VERSION,
        data_dir.display()
    )?;

    writeln!(md, "## 1. 数据流 / Data flows\n")?;
    for line in DATA_FLOWS {
        writeln!(md, "- {line}")?;
    }

    writeln!(md, "\n## 2. 权限矩阵 / Permission matrix\n")?;
    writeln!(md, "Generated from `Role::permissions` (server/src/auth/mod.rs); ✓ = allowed.\n")?;
    write!(md, "| permission |")?;
    for role in Role::ALL {
        write!(md, " {} {} |", role.as_str(), role.label_zh())?;
    }
    writeln!(md, "\n|---|{}", "---|".repeat(Role::ALL.len()))?;
    for p in Permission::ALL {
        write!(md, "| `{}` |", p.as_str())?;
        for role in Role::ALL {
            write!(md, " {} |", if role.can(p) { "✓" } else { "" })?;
        }
        writeln!(md)?;
    }
    writeln!(md, "\nEvery API route and what it needs (`ROUTES`; a route missing here is refused to everybody):\n")?;
    writeln!(md, "| method | route | needs |\n|---|---|---|")?;
    for r in ROUTES {
        let needs = match r.access {
            Access::Public => "public (sign-in only)".to_string(),
            Access::SignedIn => "any signed-in caller".to_string(),
            Access::Person => "a signed-in person (no API token)".to_string(),
            Access::Needs(p) => format!("`{}`", p.as_str()),
        };
        writeln!(md, "| {} | `{}` | {needs} |", r.method, r.path)?;
    }

    let checks = configuration_checks(pool, data_dir).await?;
    writeln!(md, "\n## 3. 配置检查 / Configuration checks\n")?;
    writeln!(md, "| check | verdict | detail |\n|---|---|---|")?;
    for c in &checks {
        writeln!(md, "| {} | {} | {} |", c.name, c.verdict.label(), c.detail)?;
    }

    writeln!(md, "\n## 4. 依赖安全公告 / Dependency advisories\n")?;
    let advisories = dependency_advisories();
    writeln!(md, "{} — {}", advisories.verdict.label(), advisories.detail)?;

    writeln!(md, "\n## 5. 审计日志校验 / Audit trail chain\n")?;
    let chain = crate::domain::audit::verify(pool).await?;
    let chain_check = if chain.ok {
        Check { name: "audit chain", verdict: Verdict::Pass, detail: format!("{} rows, hash chain intact", chain.rows) }
    } else {
        Check {
            name: "audit chain",
            verdict: Verdict::Fail,
            detail: format!(
                "broken at row {}: {}",
                chain.first_bad_id.unwrap_or_default(),
                chain.problem.clone().unwrap_or_default()
            ),
        }
    };
    writeln!(md, "{} — {}", chain_check.verdict.label(), chain_check.detail)?;

    let worst = checks.iter().chain([&advisories, &chain_check]).map(|c| c.verdict).max().unwrap_or(Verdict::Pass);
    writeln!(md, "\n## 结论 / Verdict\n\n{}", worst.label())?;
    Ok(SecurityReport { markdown: md, worst })
}

const DATA_FLOWS: &[&str] = &[
    "浏览器 ↔ 服务器：HTTP（院内网），会话 Cookie（HttpOnly，SameSite=Strict）；建议由院内 HTTPS 反向代理接入 / browser ↔ server: HTTP on the hospital LAN, session cookie; put an HTTPS proxy in front",
    "系统对接（HIS/PACS）→ 服务器：API 令牌（Bearer），令牌仅存哈希 / integrators → server: API tokens, stored hashed",
    "服务器 → 数据库：本机 SQLite 文件 `<data-dir>/db/` / server → database: a local SQLite file",
    "影像：`<data-dir>/objects/`（按 SHA-256 命名）；报告：`<data-dir>/reports/` / images and reports: files in the data dir",
    "模型推理：本机 GPU/CPU，权重为本地文件，无任何外部调用 / inference: local GPU or CPU, local weights, no outbound calls",
    "日志：`<data-dir>/logs/`，患者标识以 HMAC-SHA256 假名代替 / logs: patient identifiers only as HMAC pseudonyms",
    "服务器不主动连接院外任何地址 / the server opens no connection to anything outside the hospital",
];

async fn configuration_checks(pool: &Pool, data_dir: &Path) -> anyhow::Result<Vec<Check>> {
    let mut checks = Vec::new();
    for (file, account) in [("initial-admin-password", "admin"), ("initial-doctor-password", "doctor")] {
        let path = data_dir.join("secrets").join(file);
        let Ok(initial) = std::fs::read_to_string(&path) else { continue };
        let still_valid = match users::by_username(pool, account).await? {
            Some(u) if !u.disabled => password::verify(initial.trim(), &u.password_hash),
            _ => false,
        };
        checks.push(Check {
            name: "initial password",
            verdict: if still_valid { Verdict::Fail } else { Verdict::Pass },
            detail: if still_valid {
                format!("账号 {account} 仍在使用初始密码（{}），请修改：`medgemma-x user passwd {account}` / still the initial password", path.display())
            } else {
                format!("{account}: the initial password no longer signs in")
            },
        });
    }
    let admins: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0").fetch_one(pool).await?;
    checks.push(Check {
        name: "administrators",
        verdict: if admins == 0 { Verdict::Warn } else { Verdict::Pass },
        detail: format!("{admins} enabled administrator account(s)"),
    });
    for (path, wanted, what) in [
        (data_dir.join("secrets"), 0o700, "secrets folder"),
        (data_dir.join("secrets/site.key"), 0o600, "site key"),
        (data_dir.join("db"), 0o700, "database folder"),
        (data_dir.join("objects"), 0o700, "images folder"),
    ] {
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        let mode = meta.permissions().mode() & 0o777;
        let open_to_others = mode & 0o007 != 0;
        checks.push(Check {
            name: "file permissions",
            verdict: if mode & !wanted == 0 {
                Verdict::Pass
            } else if open_to_others {
                Verdict::Fail
            } else {
                Verdict::Warn
            },
            detail: format!("{what} `{}` mode {mode:o} (want {wanted:o})", path.display()),
        });
    }
    match std::fs::read_to_string(crate::support::runfile::info_path(data_dir))
        .ok()
        .and_then(|t| serde_json::from_str::<crate::support::runfile::RunInfo>(&t).ok())
    {
        Some(run) => {
            let everywhere = run.addr.ip().is_unspecified();
            checks.push(Check {
                name: "bind address",
                verdict: if everywhere { Verdict::Warn } else { Verdict::Pass },
                detail: if everywhere {
                    format!("listening on all interfaces ({}): allow only the hospital LAN in the firewall", run.addr)
                } else {
                    format!("listening on {}", run.addr)
                },
            });
            checks.push(Check {
                name: "TLS",
                verdict: if run.secure_cookies { Verdict::Pass } else { Verdict::Warn },
                detail: if run.secure_cookies {
                    "cookies HTTPS-only (--secure-cookies): an HTTPS proxy fronts the server".into()
                } else {
                    "no HTTPS: the server speaks plain HTTP; 等保三级 sites put an HTTPS proxy in front and set --secure-cookies".into()
                },
            });
        }
        None => checks.push(Check {
            name: "bind address / TLS",
            verdict: Verdict::Warn,
            detail: "the server is not running: address and TLS not checked".into(),
        }),
    }
    Ok(checks)
}

/// `cargo audit` against a local advisory database, when both are on this machine; otherwise says so
/// (the server has no internet, and a check that did not run must not read as passed).
fn dependency_advisories() -> Check {
    let db = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/advisory-db"));
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    let available = db.as_ref().is_some_and(|d| d.is_dir())
        && lock.is_file()
        && std::process::Command::new("cargo").args(["audit", "--version"]).output().is_ok_and(|o| o.status.success());
    if !available {
        return Check {
            name: "dependencies",
            verdict: Verdict::Warn,
            detail: "未检查：本机没有 cargo-audit 或离线公告库（~/.cargo/advisory-db） / not checked: no cargo-audit or local advisory database on this machine".into(),
        };
    }
    let out = std::process::Command::new("cargo").args(["audit", "--no-fetch", "--file"]).arg(&lock).output();
    match out {
        Ok(o) if o.status.success() => Check {
            name: "dependencies",
            verdict: Verdict::Pass,
            detail: "cargo audit: no known vulnerabilities".into(),
        },
        Ok(o) => Check {
            name: "dependencies",
            verdict: Verdict::Fail,
            detail: format!(
                "cargo audit found advisories: {}",
                String::from_utf8_lossy(&o.stdout).lines().take(5).collect::<Vec<_>>().join("; ")
            ),
        },
        Err(e) => {
            Check { name: "dependencies", verdict: Verdict::Warn, detail: format!("cargo audit did not run: {e}") }
        }
    }
}
