//! Report templates and phrases (正常胸片, 肺炎, 肺结节随访 …): the department's, which every reader uses
//! and a department head edits, and each reader's own. The report panel inserts one with a click or its
//! short code; what it inserts keeps the five-part frame of the findings. A template holds no patient's
//! data: no measurements, cited images or prior sizes, which belong to a study.

use app::templates::{Template, TemplateContent, TemplateEdit, TemplateList, TemplateScope};

use crate::domain::DomainError;
use crate::domain::auth::{Permission, Principal};
use crate::domain::reports::limits;
use crate::store::db::Pool;
use crate::store::templates::{self as rows, TemplateRow, TemplateText};

/// Templates one owner (or the department) may hold: a list to choose from, not a store of reports.
pub const MAX_PER_OWNER: i64 = 200;
pub const MAX_CODE_CHARS: usize = 8;
pub const MAX_NAME_CHARS: usize = 40;
/// Findings one template inserts.
pub const MAX_FINDINGS: usize = 20;

pub async fn list(pool: &Pool, caller: &Principal) -> Result<TemplateList, DomainError> {
    let templates = rows::visible_to(pool, &caller.author()).await?.into_iter().map(template).collect();
    Ok(TemplateList { templates })
}

pub async fn create(pool: &Pool, caller: &Principal, edit: TemplateEdit) -> Result<Template, DomainError> {
    let scope = edit.scope;
    may_change(caller, scope)?;
    let owner = owner_of(caller, scope);
    let content = checked(edit.content())?;
    if rows::count(pool, scope.as_str(), &owner).await? >= MAX_PER_OWNER {
        return Err(DomainError::invalid(
            format!("模板已达上限（{MAX_PER_OWNER} 个），请先删除不用的模板"),
            format!("at most {MAX_PER_OWNER} templates: delete unused ones first"),
        ));
    }
    let findings = findings_json(&content);
    let text = text_of(&content, &findings, caller);
    let id = rows::insert(pool, scope.as_str(), &owner, &text).await?.ok_or_else(|| code_taken(&content.code))?;
    one(pool, id).await
}

pub async fn update(pool: &Pool, caller: &Principal, id: i64, edit: TemplateEdit) -> Result<Template, DomainError> {
    let (stored, scope) = changeable(pool, caller, id).await?;
    if edit.scope != scope {
        return Err(DomainError::invalid(
            "模板的归属不能修改，请另存为新模板",
            "a template's scope cannot change: add it as a new one",
        ));
    }
    let content = checked(edit.content())?;
    if rows::code_taken(pool, &stored.scope, &stored.owner, &content.code, id).await? {
        return Err(code_taken(&content.code));
    }
    let findings = findings_json(&content);
    rows::update(pool, id, &text_of(&content, &findings, caller)).await?;
    one(pool, id).await
}

pub async fn delete(pool: &Pool, caller: &Principal, id: i64) -> Result<Template, DomainError> {
    let (stored, _) = changeable(pool, caller, id).await?;
    let deleted = template(stored);
    if rows::delete(pool, id).await? { Ok(deleted) } else { Err(no_such_template()) }
}

async fn one(pool: &Pool, id: i64) -> Result<Template, DomainError> {
    rows::one(pool, id).await?.map(template).ok_or_else(no_such_template)
}

/// A stored template the caller may change, with its scope. Somebody else's personal template does not
/// exist for the caller (its code and text are theirs): 404, not 403.
async fn changeable(pool: &Pool, caller: &Principal, id: i64) -> Result<(TemplateRow, TemplateScope), DomainError> {
    let stored = rows::one(pool, id).await?.ok_or_else(no_such_template)?;
    let scope = TemplateScope::parse(&stored.scope).ok_or_else(no_such_template)?;
    if scope == TemplateScope::Personal && stored.owner != caller.author() {
        return Err(no_such_template());
    }
    may_change(caller, scope)?;
    Ok((stored, scope))
}

/// The department's templates are a department head's to add, change or delete; one's own are one's own.
fn may_change(caller: &Principal, scope: TemplateScope) -> Result<(), DomainError> {
    if scope == TemplateScope::Site && !caller.can(Permission::ReportReview) {
        return Err(DomainError::NotYours {
            zh: "科室模板只有科室主任可以添加、修改或删除".into(),
            en: "only a department head adds, edits or deletes the department's templates".into(),
        });
    }
    Ok(())
}

fn owner_of(caller: &Principal, scope: TemplateScope) -> String {
    match scope {
        TemplateScope::Site => String::new(),
        TemplateScope::Personal => caller.author(),
    }
}

/// The content as stored: code and name as the rules allow, text within the report's limits, findings in
/// the five-part frame without anything of a study's.
fn checked(mut content: TemplateContent) -> Result<TemplateContent, DomainError> {
    let code_ok = (1..=MAX_CODE_CHARS).contains(&content.code.chars().count())
        && content.code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !code_ok {
        return Err(DomainError::invalid(
            format!("模板代码须为 1–{MAX_CODE_CHARS} 位小写字母或数字（如 zc）"),
            format!("a template code is 1 to {MAX_CODE_CHARS} lower-case letters or digits (e.g. zc)"),
        ));
    }
    if content.name.is_empty() || content.name.chars().count() > MAX_NAME_CHARS {
        return Err(DomainError::invalid(
            format!("模板名称须为 1–{MAX_NAME_CHARS} 字"),
            format!("a template name is 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    let too_long = |text: &str, max: usize| text.chars().count() > max;
    if too_long(&content.report_summary, limits::SUMMARY_CHARS)
        || too_long(&content.recommendation, limits::RECOMMENDATION_CHARS)
    {
        return Err(DomainError::invalid("模板文字过长", "the template's text is too long"));
    }
    if content.findings.len() > MAX_FINDINGS {
        return Err(DomainError::invalid(
            format!("一个模板最多 {MAX_FINDINGS} 条所见"),
            format!("a template holds at most {MAX_FINDINGS} findings"),
        ));
    }
    for f in &mut content.findings {
        let texts = [Some(&f.location), Some(&f.feature), f.density.as_ref(), f.boundary.as_ref()]
            .into_iter()
            .chain([f.morphology.as_ref(), f.adjacent_structures.as_ref()])
            .flatten();
        if texts.into_iter().any(|t| too_long(t, limits::FIELD_CHARS)) {
            return Err(DomainError::invalid("模板所见的文字过长", "a template finding's text is too long"));
        }
        if f.measurements.is_some() || f.prior.is_some() || !f.measurement_ids.is_empty() || !f.image_ids.is_empty() {
            return Err(DomainError::invalid(
                "模板不能包含测量、既往大小或图像引用（它们属于具体检查）",
                "a template holds no measurements, prior sizes or cited images: those belong to a study",
            ));
        }
        // What the server writes or the model drafted is never a template's.
        f.change = None;
        f.ai_drafted = false;
    }
    let empty = content.report_summary.trim().is_empty()
        && content.recommendation.trim().is_empty()
        && content.findings.is_empty();
    if empty {
        return Err(DomainError::invalid("模板没有内容", "the template is empty"));
    }
    Ok(content)
}

fn findings_json(content: &TemplateContent) -> String {
    serde_json::to_string(&content.findings).expect("findings serialize")
}

fn text_of<'a>(content: &'a TemplateContent, findings: &'a str, caller: &'a Principal) -> TemplateText<'a> {
    TemplateText {
        code: &content.code,
        name: &content.name,
        report_summary: &content.report_summary,
        findings,
        recommendation: &content.recommendation,
        updated_by: caller.name(),
    }
}

fn template(row: TemplateRow) -> Template {
    Template {
        id: row.id,
        scope: TemplateScope::parse(&row.scope).unwrap_or(TemplateScope::Personal),
        content: TemplateContent {
            code: row.code,
            name: row.name,
            report_summary: row.report_summary,
            // Written by this module from checked findings.
            findings: serde_json::from_str(&row.findings).unwrap_or_default(),
            recommendation: row.recommendation,
        },
        updated_by: row.updated_by,
        updated_at: row.updated_at,
    }
}

fn no_such_template() -> DomainError {
    DomainError::not_found("没有这个模板", "No such template")
}

fn code_taken(code: &str) -> DomainError {
    DomainError::invalid(format!("模板代码 {code} 已被使用"), format!("the template code {code} is taken"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(code: &str) -> TemplateContent {
        TemplateContent {
            code: code.into(),
            name: "正常胸片".into(),
            report_summary: "两肺清晰。".into(),
            ..Default::default()
        }
    }

    #[test]
    fn codes_names_and_content_are_checked() {
        assert!(checked(content("zc")).is_ok());
        assert!(checked(content("zc2")).is_ok());
        for bad in ["", "ZC", "z c", "正常", "abcdefghi", "z-c"] {
            assert!(checked(content(bad)).is_err(), "code {bad:?}");
        }
        assert!(checked(TemplateContent { name: String::new(), ..content("zc") }).is_err());
        assert!(checked(TemplateContent { name: "名".repeat(41), ..content("zc") }).is_err());
        assert!(checked(TemplateContent { report_summary: " ".into(), ..content("zc") }).is_err(), "empty");
        let measured = report::model::Finding {
            measurements: Some(report::model::Measurements { long_axis: 8.0, ..Default::default() }),
            ..Default::default()
        };
        assert!(checked(TemplateContent { findings: vec![measured], ..content("zc") }).is_err());
        let drafted = report::model::Finding { feature: "结节".into(), ai_drafted: true, ..Default::default() };
        let kept = checked(TemplateContent { findings: vec![drafted], ..content("jj") }).unwrap();
        assert!(!kept.findings[0].ai_drafted, "a template's finding is never the model's");
    }
}
