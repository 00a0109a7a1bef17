//! Who may do what. One role table ([`Role::permissions`]), one route table ([`ROUTES`]) that says what
//! each API route needs, and one guard (`web::guard::guard`) every request passes: it finds the caller (a
//! session cookie or an API token), checks the route's need against the caller's permissions, checks the
//! CSRF token on state changes, and writes the audit event.

pub mod password;
pub mod sign_in;
pub mod throttle;
pub mod tokens;
pub mod totp;
pub mod users;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Role {
    /// Reads, measures, asks the model, drafts and signs reports.
    Radiologist,
    /// A radiologist who also reviews and countersigns, and sees the change history.
    DepartmentHead,
    /// A hospital system (HIS/RIS/PACS bridge): API tokens only, never a password login.
    Integrator,
    /// Accounts, settings and the audit trail; no patient images and no clinical signing.
    Admin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Worklist, study, images, pixel values, chat history.
    StudyRead,
    StudyUpload,
    /// Saving the viewer's measurements with a study, and the automatic nodule measurement.
    Measure,
    /// Questions to the model, report drafts included.
    Chat,
    ReportRead,
    ReportSign,
    ReportReview,
    ReportExport,
    /// Users, API tokens and DICOM peers.
    ManageUsers,
    ReadAudit,
    /// The Prometheus endpoint.
    ReadMetrics,
}

impl Permission {
    pub const ALL: [Permission; 11] = [
        Permission::StudyRead,
        Permission::StudyUpload,
        Permission::Measure,
        Permission::Chat,
        Permission::ReportRead,
        Permission::ReportSign,
        Permission::ReportReview,
        Permission::ReportExport,
        Permission::ManageUsers,
        Permission::ReadAudit,
        Permission::ReadMetrics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::StudyRead => "study_read",
            Permission::StudyUpload => "study_upload",
            Permission::Measure => "measure",
            Permission::Chat => "chat",
            Permission::ReportRead => "report_read",
            Permission::ReportSign => "report_sign",
            Permission::ReportReview => "report_review",
            Permission::ReportExport => "report_export",
            Permission::ManageUsers => "manage_users",
            Permission::ReadAudit => "read_audit",
            Permission::ReadMetrics => "read_metrics",
        }
    }

    pub fn parse(name: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Shows a patient's images, reports or the model's answers about them. Uploading does not: it
    /// answers with ids only.
    pub fn reads_patient_data(self) -> bool {
        use Permission::*;
        matches!(self, StudyRead | Measure | Chat | ReportRead | ReportSign | ReportReview | ReportExport)
    }
}

const CLINICAL: [Permission; 7] = [
    Permission::StudyRead,
    Permission::StudyUpload,
    Permission::Measure,
    Permission::Chat,
    Permission::ReportRead,
    Permission::ReportSign,
    Permission::ReportExport,
];

/// What the administration page may do, as against the server's console. An administrator sees no
/// patient data and must not be able to give themself any: an account with a clinical role, a new password
/// for one, and a token that reads patient data are made at the console (`medgemma-x user add`, `user
/// passwd`, `token create`), by whoever already holds the server, its database and its key. Each of those
/// console actions is audited with the operating-system user as the actor.
pub mod web_admin {
    use super::{Permission, Role};
    use crate::domain::DomainError;

    fn console_only(what_zh: &str, what_en: &str, command: &str) -> DomainError {
        DomainError::ConsoleOnly {
            zh: format!("{what_zh}须在服务器控制台执行：{command}（管理员不经网页接触患者数据）"),
            en: format!(
                "{what_en} is done at the server's console: {command} (an administrator gets no path to patient data through the web)"
            ),
        }
    }

    /// Admin and integrator accounts, yes; radiologists and department heads only at the console.
    pub fn may_create_account(role: Role) -> Result<(), DomainError> {
        if role.is_clinical() {
            return Err(console_only(
                "创建临床账号（放射科医师、科室主任）",
                "Creating a clinical account",
                "medgemma-x user add",
            ));
        }
        Ok(())
    }

    /// A new password for a clinical account would let the administrator sign in as that doctor.
    pub fn may_set_password(role: Role) -> Result<(), DomainError> {
        if role.is_clinical() {
            return Err(console_only(
                "重置临床账号的密码",
                "Resetting a clinical account's password",
                "medgemma-x user passwd",
            ));
        }
        Ok(())
    }

    /// Tokens that only send images in or read metrics, yes; any scope that reads patient data, console.
    pub fn may_create_token(scopes: &[Permission]) -> Result<(), DomainError> {
        if let Some(scope) = scopes.iter().find(|s| s.reads_patient_data()) {
            return Err(console_only(
                &format!("创建含 {} 权限（可读取患者数据）的令牌", scope.as_str()),
                &format!("Creating a token with {} (it reads patient data)", scope.as_str()),
                "medgemma-x token create",
            ));
        }
        Ok(())
    }
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Radiologist, Role::DepartmentHead, Role::Integrator, Role::Admin];

    /// The permission matrix. The route table, the tests and `audit-report` all read it from here.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Radiologist => &CLINICAL,
            Role::DepartmentHead => {
                &[StudyRead, StudyUpload, Measure, Chat, ReportRead, ReportSign, ReportExport, ReportReview]
            }
            Role::Integrator => &[StudyUpload, ReportRead, ReportExport, ReadMetrics],
            Role::Admin => &[ManageUsers, ReadAudit, ReadMetrics],
        }
    }

    pub fn can(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    /// Radiologists and department heads: they read patient data.
    pub fn is_clinical(self) -> bool {
        matches!(self, Role::Radiologist | Role::DepartmentHead)
    }

    /// Integrators are systems: they authenticate with API tokens, never with a password.
    pub fn signs_in_with_password(self) -> bool {
        self != Role::Integrator
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Radiologist => "radiologist",
            Role::DepartmentHead => "department_head",
            Role::Integrator => "integrator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Role::Radiologist => "放射科医师",
            Role::DepartmentHead => "科室主任",
            Role::Integrator => "系统对接",
            Role::Admin => "系统管理员",
        }
    }
}

/// What a route needs from its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone (the login itself).
    Public,
    /// Any signed-in user or valid token.
    SignedIn,
    /// A person signed in with a session (their own account settings); API tokens are refused.
    Person,
    Needs(Permission),
}

/// One API route: what it needs and what it does (the OpenAPI document is generated from these).
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
}

const fn route(method: &'static str, path: &'static str, access: Access, summary: &'static str) -> Route {
    Route { method, path, access, summary }
}

/// Every route under /api/v1 and /metrics, with what it needs. A route the router has and this table
/// lacks is refused to everybody (fail closed); `auth_api.rs` checks every row for every role.
pub const ROUTES: &[Route] = {
    use Access::*;
    use Permission::*;
    &[
        route(
            "POST",
            "/api/v1/auth/login",
            Public,
            "Sign in with username and password; answers who you are and the CSRF token",
        ),
        route("POST", "/api/v1/auth/logout", SignedIn, "Sign out (ends the session)"),
        route("GET", "/api/v1/auth/me", SignedIn, "The caller: name, role, permissions, CSRF token"),
        route("POST", "/api/v1/auth/password", Person, "Change one's own password (other sessions end)"),
        route("POST", "/api/v1/auth/totp/setup", Person, "Start second-factor enrolment: the secret to scan"),
        route(
            "POST",
            "/api/v1/auth/totp/enable",
            Person,
            "Confirm the second factor with a code; sign-in asks for one",
        ),
        route("POST", "/api/v1/auth/totp/disable", Person, "Turn the second factor off (with a current code)"),
        route("GET", "/api/v1/openapi.json", Public, "This document"),
        route("POST", "/api/v1/uploads", Needs(StudyUpload), "Upload DICOM, JPEG, PNG or zip files (multipart)"),
        route(
            "GET",
            "/api/v1/studies",
            Needs(StudyRead),
            "The worklist (search with q=, page with limit= and offset=)",
        ),
        route("GET", "/api/v1/studies/{id}", Needs(StudyRead), "A study with its series and instances"),
        route(
            "POST",
            "/api/v1/studies/{id}/triage",
            Needs(ReportSign),
            "Confirm or dismiss the AI's triage flag ({\"decision\": \"confirmed\" | \"dismissed\"})",
        ),
        route(
            "GET",
            "/api/v1/studies/{id}/pacs-priors",
            Needs(StudyRead),
            "The patient's other studies on the PACS (C-FIND by Patient ID)",
        ),
        route(
            "POST",
            "/api/v1/studies/{id}/pacs-priors/retrieve",
            Needs(StudyUpload),
            "Have the PACS send one of them here (C-MOVE; {\"peer\", \"study_uid\"}); answers with its id",
        ),
        route("GET", "/api/v1/studies/{id}/chat", Needs(StudyRead), "The study's conversation with the model"),
        route(
            "POST",
            "/api/v1/studies/{id}/chat",
            Needs(Chat),
            "Ask the model about the study; answered as server-sent events",
        ),
        route("GET", "/api/v1/chat/prompts", Needs(Chat), "Quick prompts and the prompt version"),
        route(
            "GET",
            "/api/v1/studies/{id}/measurements",
            Needs(StudyRead),
            "The viewer's measurements saved with the study",
        ),
        route(
            "POST",
            "/api/v1/studies/{id}/measurements",
            Needs(Measure),
            "Save a length, bidirectional or ellipse measurement (measured again by the server)",
        ),
        route("DELETE", "/api/v1/measurements/{id}", Needs(Measure), "Remove a measurement from its study"),
        route("GET", "/api/v1/studies/{id}/reports", Needs(ReportRead), "Every version of the study's reports"),
        route(
            "POST",
            "/api/v1/studies/{id}/reports",
            Needs(ReportSign),
            "Start the study's report (from the model's draft or blank)",
        ),
        route(
            "GET",
            "/api/v1/reports/{id}",
            Needs(ReportRead),
            "A report with its history and the changes since the AI draft",
        ),
        route("PUT", "/api/v1/reports/{id}", Needs(ReportSign), "Edit a draft or returned report"),
        route("POST", "/api/v1/reports/{id}/sign", Needs(ReportSign), "Sign: freeze the content and record its hash"),
        route("POST", "/api/v1/reports/{id}/review", Needs(ReportReview), "Countersign, or return with a comment"),
        route(
            "POST",
            "/api/v1/reports/{id}/amend",
            Needs(ReportSign),
            "Amend a signed report: a new version, the old kept",
        ),
        route(
            "GET",
            "/api/v1/reports/{id}/export",
            Needs(ReportExport),
            "The report as JSON, HL7 v2.5, FHIR R4 or PDF",
        ),
        route(
            "GET",
            "/api/v1/templates",
            Needs(ReportSign),
            "Report templates and phrases: the caller's own, then the department's",
        ),
        route(
            "POST",
            "/api/v1/templates",
            Needs(ReportSign),
            "Add a template (personal; scope site for a department head)",
        ),
        route(
            "PUT",
            "/api/v1/templates/{id}",
            Needs(ReportSign),
            "Edit one's own template (a site one: department head)",
        ),
        route(
            "DELETE",
            "/api/v1/templates/{id}",
            Needs(ReportSign),
            "Delete one's own template (a site one: department head)",
        ),
        route("GET", "/api/v1/instances/{id}", Needs(StudyRead), "An image's metadata, spacing and windows"),
        route("GET", "/api/v1/instances/{id}/file", Needs(StudyRead), "The stored file"),
        route(
            "GET",
            "/api/v1/instances/{id}/frames/{number}/image.png",
            Needs(StudyRead),
            "A frame rendered through a window",
        ),
        route(
            "GET",
            "/api/v1/instances/{id}/frames/{number}/values",
            Needs(StudyRead),
            "A frame's raw modality values (HU on CT)",
        ),
        route(
            "POST",
            "/api/v1/instances/{id}/frames/{number}/nodule",
            Needs(Measure),
            "Automatic nodule measurement from a click",
        ),
        route("GET", "/api/v1/admin/users", Needs(ManageUsers), "Accounts"),
        route("POST", "/api/v1/admin/users", Needs(ManageUsers), "Add an account"),
        route("POST", "/api/v1/admin/users/{id}/disable", Needs(ManageUsers), "Disable an account (ends its sessions)"),
        route("POST", "/api/v1/admin/users/{id}/enable", Needs(ManageUsers), "Enable an account"),
        route(
            "POST",
            "/api/v1/admin/users/{id}/password",
            Needs(ManageUsers),
            "Set a new password (ends its sessions)",
        ),
        route(
            "POST",
            "/api/v1/admin/users/{id}/totp/reset",
            Needs(ManageUsers),
            "Remove an account's second factor (lost phone)",
        ),
        route("GET", "/api/v1/admin/tokens", Needs(ManageUsers), "API tokens (never the tokens themselves)"),
        route("POST", "/api/v1/admin/tokens", Needs(ManageUsers), "Make an API token (shown once)"),
        route("POST", "/api/v1/admin/tokens/{id}/revoke", Needs(ManageUsers), "Revoke an API token"),
        route("GET", "/api/v1/admin/dicom-peers", Needs(ManageUsers), "The DICOM peers (who may send, who may query)"),
        route(
            "POST",
            "/api/v1/admin/dicom-peers",
            Needs(ManageUsers),
            "Add a DICOM peer or change it ({\"ae_title\", \"host\", \"port\", \"may_store\", \"may_query\"})",
        ),
        route("DELETE", "/api/v1/admin/dicom-peers/{ae_title}", Needs(ManageUsers), "Remove a DICOM peer"),
        route("GET", "/api/v1/audit", Needs(ReadAudit), "The audit trail as JSON or CSV"),
        route("GET", "/api/v1/audit/verify", Needs(ReadAudit), "Check the audit trail's hash chain"),
        route("GET", "/api/v1/deliveries", Needs(ReadMetrics), "Report deliveries to the HIS (filter with state=)"),
        route("POST", "/api/v1/deliveries/{id}/retry", Needs(ManageUsers), "Queue a failed delivery again"),
        route("GET", "/metrics", Needs(ReadMetrics), "Prometheus metrics"),
    ]
};

pub fn access_for(method: &str, path: &str) -> Option<Access> {
    ROUTES.iter().find(|r| r.method == method && r.path == path).map(|r| r.access)
}

/// The caller of a request, as the guard found it. Handlers take it as `Extension<Principal>`.
#[derive(Clone, Debug)]
pub struct Principal {
    pub actor: Actor,
    pub role: Role,
    /// Tokens carry scopes (a subset of their role's permissions); users have their role's.
    pub scopes: Option<Vec<Permission>>,
}

#[derive(Clone, Debug)]
pub enum Actor {
    User { id: i64, username: String, display_name: String },
    Token { id: i64, name: String },
}

impl Principal {
    pub fn can(&self, permission: Permission) -> bool {
        self.role.can(permission) && self.scopes.as_ref().is_none_or(|s| s.contains(&permission))
    }

    pub fn permissions(&self) -> Vec<Permission> {
        Permission::ALL.into_iter().filter(|p| self.can(*p)).collect()
    }

    /// What the audit trail and fair scheduling call this caller: "user:12" or "token:3".
    pub fn key(&self) -> String {
        match &self.actor {
            Actor::User { id, .. } => format!("user:{id}"),
            Actor::Token { id, .. } => format!("token:{id}"),
        }
    }

    pub fn name(&self) -> &str {
        match &self.actor {
            Actor::User { username, .. } => username,
            Actor::Token { name, .. } => name,
        }
    }

    /// Who made a row (a measurement, a deletion), as stored beside it: the username, or `token:NAME`.
    pub fn author(&self) -> String {
        match &self.actor {
            Actor::User { username, .. } => username.clone(),
            Actor::Token { name, .. } => format!("token:{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_never_see_patients_and_integrators_never_sign() {
        assert!(!Role::Admin.can(Permission::StudyRead));
        assert!(!Role::Admin.can(Permission::ReportSign));
        assert!(!Role::Integrator.can(Permission::ReportSign));
        assert!(!Role::Integrator.can(Permission::Chat));
        assert!(!Role::Radiologist.can(Permission::ReportReview));
        // A department head can do everything a radiologist can, and review.
        for p in Role::Radiologist.permissions() {
            assert!(Role::DepartmentHead.can(*p), "{p:?}");
        }
        assert!(Role::DepartmentHead.can(Permission::ReportReview));
    }

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }

    #[test]
    fn every_route_is_listed_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(
                ROUTES[i + 1..].iter().all(|b| (b.method, b.path) != (a.method, a.path)),
                "{} {} twice",
                a.method,
                a.path
            );
        }
    }
}
