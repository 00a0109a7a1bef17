//! The interface language: Chinese first, English on request. The choice lives in a cookie, so the
//! server renders every page in it and the browser hydrates the same text; switching sets the cookie and
//! reloads the page (a radiologist switches once, not per click).
//!
//! Labels are written once, as "中文 / English", where they are used; [`tr`] picks the side. A text
//! without " / " is the same in both languages (a number, "HU", a patient's name).

/// The cookie that holds the choice (`en`; anything else or none is Chinese).
pub const COOKIE: &str = "medgemma_x_lang";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// From a `Cookie` header or `document.cookie`: "a=1; medgemma_x_lang=en".
    pub fn from_cookies(cookies: &str) -> Lang {
        let chosen =
            cookies.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(name, _)| *name == COOKIE);
        match chosen {
            Some((_, "en")) => Lang::En,
            _ => Lang::Zh,
        }
    }

    /// For `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
}

/// The language of the page being rendered (server) or shown (browser).
pub fn lang() -> Lang {
    #[cfg(feature = "hydrate")]
    {
        thread_local! {
            // Read once: the page reloads when it changes.
            static LANG: Lang = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlDocument>(d).ok())
                .and_then(|d| d.cookie().ok())
                .map(|c| Lang::from_cookies(&c))
                .unwrap_or_default();
        }
        LANG.with(|l| *l)
    }
    #[cfg(all(feature = "ssr", not(feature = "hydrate")))]
    {
        leptos::prelude::use_context::<Lang>().unwrap_or_else(request_lang)
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        Lang::Zh
    }
}

/// On the server: the language the request's cookie asks for (the app provides it as context once).
#[cfg(feature = "ssr")]
pub fn request_lang() -> Lang {
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|parts| parts.headers.get(http::header::COOKIE).and_then(|v| v.to_str().ok()).map(Lang::from_cookies))
        .unwrap_or_default()
}

/// "中文 / English" → the side of the current language.
pub fn tr(text: &str) -> &str {
    pick(lang(), text)
}

/// One of two values given in both languages (a server's `message_zh`/`message_en`, a preset's names).
pub fn choose<T>(zh: T, en: T) -> T {
    match lang() {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// "（…）" after Chinese, " (…)" after English.
pub fn parenthesized(inner: &str) -> String {
    match lang() {
        Lang::Zh => format!("（{inner}）"),
        Lang::En => format!(" ({inner})"),
    }
}

/// `tr` for a language given, e.g. in tests.
pub fn pick(lang: Lang, text: &str) -> &str {
    match (text.split_once(" / "), lang) {
        (Some((zh, _)), Lang::Zh) => zh,
        (Some((_, en)), Lang::En) => en,
        (None, _) => text,
    }
}

/// The button that switches to the other language (on every page's header and on the sign-in page).
#[leptos::component]
pub fn LangSwitch() -> impl leptos::IntoView {
    use leptos::prelude::*;
    let (label, other) = match lang() {
        Lang::Zh => ("English", "en"),
        Lang::En => ("中文", "zh"),
    };
    let switch = move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(window) = web_sys::window() {
            if let Some(document) =
                window.document().and_then(|d| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlDocument>(d).ok())
            {
                let _ = document.set_cookie(&format!("{COOKIE}={other}; path=/; max-age=31536000; samesite=lax"));
            }
            let _ = window.location().reload();
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = other;
    };
    view! {
        <button type="button" class="lang-switch" lang=if label == "English" { "en" } else { "zh-CN" } on:click=switch>
            {label}
        </button>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_chooses_and_chinese_is_the_default() {
        assert_eq!(Lang::from_cookies(""), Lang::Zh);
        assert_eq!(Lang::from_cookies("id=abc; medgemma_x_lang=en"), Lang::En);
        assert_eq!(Lang::from_cookies("medgemma_x_lang=zh; other=en"), Lang::Zh);
        assert_eq!(Lang::from_cookies("xmedgemma_x_lang=en"), Lang::Zh);
    }

    #[test]
    fn a_label_gives_the_side_of_the_language() {
        assert_eq!(pick(Lang::Zh, "进入工作列表 / Open the worklist"), "进入工作列表");
        assert_eq!(pick(Lang::En, "进入工作列表 / Open the worklist"), "Open the worklist");
        // Only the first " / " separates: the English side may hold one.
        assert_eq!(pick(Lang::En, "窗宽窗位 / Window / level"), "Window / level");
        assert_eq!(pick(Lang::En, "HU"), "HU");
    }
}
