//! The template bar of the report panel: the reader's and the department's templates and phrases, each
//! inserted with one click, or by its short code typed into the code box (M puts the cursor there) and
//! Enter; what is on screen saved as a template of one's own (a department head's: also the
//! department's), and a template deleted by whoever may change it.

use leptos::prelude::*;

use crate::api;
use crate::i18n::tr;
use crate::templates::{Template, TemplateList, TemplateScope};

/// A new template's code, name and whether it is the department's.
pub type NewTemplate = (String, String, bool);

/// `apply`: inserts a template into the report (the panel decides how: a new report, or appended to the
/// draft); `save_as`: the report on screen as a new template (None while there is none);
/// `site_editor`: the caller changes the department's templates (a department head).
#[component]
pub fn TemplateBar(
    templates: LocalResource<Result<TemplateList, api::ApiError>>,
    code_input: NodeRef<leptos::html::Input>,
    apply: Callback<Template>,
    save_as: Signal<Option<Callback<NewTemplate>>>,
    site_editor: Signal<bool>,
) -> impl IntoView {
    let code = RwSignal::new(String::new());
    let message = RwSignal::new(String::new());
    let list = move || templates.get().and_then(|l| l.ok()).unwrap_or_default();
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        // Ctrl+Enter is the panel's (sign); an Enter in an empty box inserts nothing.
        let modified = ev.ctrl_key() || ev.meta_key() || ev.alt_key() || ev.shift_key();
        if ev.key() != "Enter" || ev.is_composing() || modified || code.with_untracked(|c| c.trim().is_empty()) {
            return;
        }
        ev.prevent_default();
        let typed = code.get_untracked();
        match list().by_code(&typed).cloned() {
            Some(template) => {
                code.set(String::new());
                message.set(String::new());
                apply.run(template);
            }
            None => message.set(format!("{}{}", tr("没有这个模板代码： / No template has the code "), typed.trim())),
        }
    };
    let remove = move |template: Template| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match api::delete(&format!("/api/v1/templates/{}", template.id)).await {
                Ok(()) => templates.refetch(),
                Err(e) => message.set(e.text()),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = template;
    };
    let new_code = RwSignal::new(String::new());
    let new_name = RwSignal::new(String::new());
    let for_site = RwSignal::new(false);
    let save = move |_| {
        if let Some(save_as) = save_as.get_untracked() {
            save_as.run((new_code.get_untracked(), new_name.get_untracked(), for_site.get_untracked()));
        }
    };
    view! {
        <div class="template-bar">
            <label>{tr("模板 / Template")}
                <input class="template-code" node_ref=code_input size="10"
                    placeholder=tr("代码，如 zc / code, e.g. zc")
                    title=tr("输入模板代码后按回车插入（快捷键 M） / Type a code and press Enter (key M)")
                    prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev)) on:keydown=on_key/>
            </label>
            <span class="template-list">
                {move || list().templates.into_iter().map(|t| {
                    let label = format!("{} {}", t.content.name, t.content.code);
                    let (class, title) = match t.scope {
                        TemplateScope::Site => ("template template-site", tr("科室模板 / department template")),
                        TemplateScope::Personal => ("template template-personal", tr("我的模板 / my template")),
                    };
                    let removable = t.scope == TemplateScope::Personal || site_editor.get();
                    let (to_apply, to_remove) = (t.clone(), t.clone());
                    view! {
                        <span class=class>
                            <button class="template-insert" title=title data-code=t.content.code.clone()
                                on:click=move |_| apply.run(to_apply.clone())>{label}</button>
                            <Show when=move || removable>
                                {
                                    let to_remove = to_remove.clone();
                                    view! { <button class="template-delete" title=tr("删除此模板 / Delete this template")
                                        on:click=move |_| remove(to_remove.clone())>"×"</button> }
                                }
                            </Show>
                        </span>
                    }
                }).collect_view()}
            </span>
            <Show when=move || save_as.get().is_some()>
                <details class="template-save">
                    <summary>{tr("存为模板 / Save as a template")}</summary>
                    <input class="template-new-code" size="6" placeholder=tr("代码 / code")
                        on:input=move |ev| new_code.set(event_target_value(&ev))/>
                    <input class="template-new-name" placeholder=tr("名称 / name")
                        on:input=move |ev| new_name.set(event_target_value(&ev))/>
                    <Show when=move || site_editor.get()>
                        <label><input type="checkbox" class="template-new-site"
                            on:change=move |ev| for_site.set(event_target_checked(&ev))/>{tr("科室模板 / for the department")}</label>
                    </Show>
                    <button class="template-save-button" on:click=save>{tr("保存模板 / Save template")}</button>
                </details>
            </Show>
            {move || (!message.get().is_empty()).then(|| view! { <span class="status-error">{message.get()}</span> })}
        </div>
    }
}
