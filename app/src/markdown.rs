//! The small part of Markdown the model writes — headings, bulleted and numbered lists, **bold**,
//! paragraphs — turned into elements, never into HTML text: whatever the model writes cannot become
//! markup in the page. Anything else stays as written.

use leptos::prelude::*;

/// One block of an answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    Heading(Vec<Span>),
    Bullets(Vec<Vec<Span>>),
    Numbered(Vec<Vec<Span>>),
    Paragraph(Vec<Span>),
}

/// A run of text, bold or not.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub text: String,
    pub bold: bool,
}

/// `**bold**` runs; an unpaired `**` stays as written (the stream may not have closed it yet).
fn spans(line: &str) -> Vec<Span> {
    let parts: Vec<&str> = line.split("**").collect();
    let paired = parts.len() % 2 == 1;
    let mut out: Vec<Span> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let bold = paired && i % 2 == 1;
        let text = if !paired && i > 0 { format!("**{part}") } else { part.to_string() };
        if text.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.bold == bold => last.text.push_str(&text),
            _ => out.push(Span { text, bold }),
        }
    }
    out
}

/// "1. x", "2) x" → "x".
fn numbered_item(line: &str) -> Option<&str> {
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = &line[digits..];
    (digits > 0 && digits <= 3).then_some(())?;
    rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")).or_else(|| rest.strip_prefix("、"))
}

pub fn parse(text: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            // A blank line ends a paragraph (the next text starts a new one).
            blocks.push(Block::Paragraph(Vec::new()));
            continue;
        }
        if let Some(h) = line.strip_prefix('#') {
            blocks.push(Block::Heading(spans(h.trim_start_matches('#').trim())));
        } else if let Some(item) =
            line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")).or_else(|| line.strip_prefix("• "))
        {
            match blocks.last_mut() {
                Some(Block::Bullets(items)) => items.push(spans(item)),
                _ => blocks.push(Block::Bullets(vec![spans(item)])),
            }
        } else if let Some(item) = numbered_item(line) {
            match blocks.last_mut() {
                Some(Block::Numbered(items)) => items.push(spans(item)),
                _ => blocks.push(Block::Numbered(vec![spans(item)])),
            }
        } else {
            match blocks.last_mut() {
                Some(Block::Paragraph(p)) if !p.is_empty() => {
                    p.push(Span { text: "\n".into(), bold: false });
                    p.extend(spans(line));
                }
                Some(Block::Paragraph(p)) => p.extend(spans(line)),
                _ => blocks.push(Block::Paragraph(spans(line))),
            }
        }
    }
    blocks.retain(|b| !matches!(b, Block::Paragraph(p) if p.is_empty()));
    blocks
}

fn inline(spans: Vec<Span>) -> impl IntoView {
    spans
        .into_iter()
        .map(|s| if s.bold { view! { <strong>{s.text}</strong> }.into_any() } else { s.text.into_any() })
        .collect_view()
}

/// The answer as elements.
#[component]
pub fn Markdown(text: String) -> impl IntoView {
    parse(&text)
        .into_iter()
        .map(|block| match block {
            Block::Heading(s) => view! { <h4 class="md-heading">{inline(s)}</h4> }.into_any(),
            Block::Paragraph(s) => view! { <p class="md-paragraph">{inline(s)}</p> }.into_any(),
            Block::Bullets(items) => view! {
                <ul class="md-list">{items.into_iter().map(|i| view! { <li>{inline(i)}</li> }).collect_view()}</ul>
            }
            .into_any(),
            Block::Numbered(items) => view! {
                <ol class="md-list">{items.into_iter().map(|i| view! { <li>{inline(i)}</li> }).collect_view()}</ol>
            }
            .into_any(),
        })
        .collect_view()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> Span {
        Span { text: text.into(), bold: false }
    }

    fn bold(text: &str) -> Span {
        Span { text: text.into(), bold: true }
    }

    #[test]
    fn headings_lists_bold_and_paragraphs() {
        let text =
            "## 检查所见\n右肺上叶见**结节**，\n边界清楚。\n\n- 部位：右肺上叶\n- 形态：类圆形\n1. 建议复查\n2) 随访";
        assert_eq!(
            parse(text),
            vec![
                Block::Heading(vec![plain("检查所见")]),
                Block::Paragraph(vec![
                    plain("右肺上叶见"),
                    bold("结节"),
                    plain("，"),
                    plain("\n"),
                    plain("边界清楚。")
                ]),
                Block::Bullets(vec![vec![plain("部位：右肺上叶")], vec![plain("形态：类圆形")]]),
                Block::Numbered(vec![vec![plain("建议复查")], vec![plain("随访")]]),
            ]
        );
    }

    #[test]
    fn markup_is_text_and_an_open_bold_stays_as_written() {
        assert_eq!(
            parse("<script>x</script> **未闭合"),
            vec![Block::Paragraph(vec![plain("<script>x</script> **未闭合")])]
        );
        assert_eq!(parse("2025. 年"), vec![Block::Paragraph(vec![plain("2025. 年")])]);
    }
}
