//! What a chat is made of besides the model: the versioned prompts, the way back from the model's
//! picture to the radiologist's pixels (heatmap cells, localization boxes), and the conversation
//! history kept per study.

use imaging::model_input::ImageTransform;
use models::generate::ImageAttention;
use models::prompt::{Role, Turn};
use serde::{Deserialize, Serialize};

use crate::store::chat::Message;

/// Changes whenever a prompt file under server/prompts changes: every answer records it.
pub const PROMPT_VERSION: &str = "zh-2";
pub const SYSTEM_ZH: &str = include_str!("../../prompts/system.zh.md");
const LOCALIZE_ZH: &str = include_str!("../../prompts/localize.zh.md");
const COMPARE_ZH: &str = include_str!("../../prompts/compare.zh.md");
const CT_ZH: &str = include_str!("../../prompts/ct.zh.md");
const REPORT_DRAFT_ZH: &str = include_str!("../../prompts/report_draft.zh.md");
const TRIAGE_ZH: &str = include_str!("../../prompts/triage.zh.md");
pub const QUICK_PROMPTS_ZH: &str = include_str!("../../prompts/quick.zh.json");

/// Printed with every answer, in the UI, the report and the exports.
pub const ADVISORY: &str = "【AI辅助分析】结论仅供参考，须由执业医师复核确认";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A question about the current images.
    #[default]
    Chat,
    /// Asks for boxes (MedGemma 1.5's `box_2d` JSON) besides the answer.
    Localize,
    /// The prior exam's image, then the current one, with the comparison instruction.
    Compare,
    /// A structured report draft, generated under the draft JSON Schema (report/draft.schema.json).
    ReportDraft,
    /// The triage flags of a study (prompts/triage.schema.json), asked with its pre-read.
    Triage,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Chat => "chat",
            Mode::Localize => "localize",
            Mode::Compare => "compare",
            Mode::ReportDraft => "report_draft",
            Mode::Triage => "triage",
        }
    }
}

/// The question's text as the model gets it: the instruction the mode needs, then the radiologist's
/// words. CT slices are labelled "SLICE n" after each image (Google's CT recipe).
pub fn question_text(mode: Mode, ct_slices: bool, question: &str, prior_date: &str, current_date: &str) -> String {
    let mut text = String::new();
    if ct_slices {
        text.push_str(CT_ZH.trim());
        text.push('\n');
    }
    match mode {
        Mode::Chat => {}
        Mode::Localize => {
            text.push_str(LOCALIZE_ZH.trim());
            text.push('\n');
        }
        Mode::Compare => {
            text.push_str(
                COMPARE_ZH.trim().replace("{prior_date}", prior_date).replace("{current_date}", current_date).as_str(),
            );
            text.push('\n');
        }
        Mode::ReportDraft => {
            text.push_str(REPORT_DRAFT_ZH.trim());
            text.push('\n');
        }
        Mode::Triage => {
            text.push_str(TRIAGE_ZH.trim());
            text.push('\n');
        }
    }
    text.push_str(question.trim());
    text
}

/// One image in the prompt and the way back to its pixels.
#[derive(Clone, Debug, Serialize)]
pub struct PromptImage {
    pub instance_id: i64,
    /// 1-based, as the API counts frames.
    pub frame: usize,
    /// current / prior / slice
    pub role: &'static str,
    #[serde(skip)]
    pub transform: ImageTransform,
}

/// Where the answer looked in one image, on the image's own pixels.
#[derive(Debug, Serialize)]
pub struct Heatmap {
    pub instance_id: i64,
    pub frame: usize,
    pub role: &'static str,
    /// Grid side (MedGemma: 16 soft tokens per side).
    pub side: i64,
    /// side × side values, row by row from the top left, summing to 1 over the image: the share of this
    /// image's attention on each cell.
    pub grid: Vec<f32>,
    /// Share of all the answer's attention that went to this image.
    pub share: f32,
    /// Per cell, `[x0, y0, x1, y1]` in the image's pixel-edge coordinates (0 = left/top edge), or
    /// null for a cell that lies in the padding around the image.
    pub cells: Vec<Option<[f64; 4]>>,
}

pub fn heatmap(image: &PromptImage, attention: &ImageAttention) -> Heatmap {
    let total: f32 = attention.grid.iter().sum();
    let grid = attention.grid.iter().map(|v| if total > 0.0 { v / total } else { 0.0 }).collect();
    let side = attention.side.max(1) as u32;
    let cells = (0..side)
        .flat_map(|row| (0..side).map(move |col| (row, col)))
        .map(|(row, col)| image.transform.cell_to_original(side, row, col))
        .collect();
    Heatmap {
        instance_id: image.instance_id,
        frame: image.frame,
        role: image.role,
        side: attention.side,
        grid,
        share: attention.share,
        cells,
    }
}

/// A localization box, as the model wrote it and on the image's pixels.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct LocatedBox {
    pub label: String,
    /// `[y0, x0, y1, x1]`, 0–1000 over the model's square image.
    pub box_2d: [f64; 4],
    pub instance_id: i64,
    pub frame: usize,
    /// Corners in the image's pixel coordinates (pixel centres, as measurements use), clamped to it.
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

/// Boxes read from an answer, and what could not be read (shown, not hidden).
#[derive(Debug, Default, Serialize)]
pub struct Boxes {
    pub boxes: Vec<(String, [f64; 4])>,
    pub problems: Vec<String>,
}

/// Reads MedGemma's localization output: fenced ```json blocks holding `{"box_2d": [y0, x0, y1, x1],
/// "label": …}` objects (a list or one), coordinates 0–1000. A box out of range or with its corners
/// crossed is reported as a problem, not guessed at.
pub fn parse_boxes(answer: &str) -> Boxes {
    let mut out = Boxes::default();
    let mut rest = answer;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map_or(after.len(), |i| i + 1);
        let language = after[..body_start].trim();
        let Some(end) = after[body_start..].find("```") else { break };
        let body = &after[body_start..body_start + end];
        rest = &after[body_start + end + 3..];
        if !(language.is_empty() || language.eq_ignore_ascii_case("json")) {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(body.trim()) {
            Ok(v) => v,
            Err(e) => {
                out.problems.push(format!("JSON 无法解析 / unreadable JSON: {e}"));
                continue;
            }
        };
        let items = match value {
            serde_json::Value::Array(items) => items,
            other => vec![other],
        };
        for item in items {
            match read_box(&item) {
                Ok(found) => out.boxes.push(found),
                Err(problem) => out.problems.push(problem),
            }
        }
    }
    out
}

fn read_box(item: &serde_json::Value) -> Result<(String, [f64; 4]), String> {
    let label = item.get("label").and_then(|l| l.as_str()).unwrap_or("").trim().to_string();
    let coords: Vec<f64> = item
        .get("box_2d")
        .and_then(|b| b.as_array())
        .map(|b| b.iter().filter_map(|v| v.as_f64()).collect())
        .unwrap_or_default();
    let [y0, x0, y1, x1] = coords[..] else {
        return Err(format!("box_2d 须为 4 个数字 / box_2d needs 4 numbers: {item}"));
    };
    if [y0, x0, y1, x1].iter().any(|v| !(0.0..=1000.0).contains(v)) {
        return Err(format!("坐标须在 0–1000 之间 / coordinates must lie in 0–1000: {item}"));
    }
    if y0 >= y1 || x0 >= x1 {
        return Err(format!("框的角点顺序应为 [y0, x0, y1, x1] 且 y0<y1、x0<x1 / crossed corners: {item}"));
    }
    Ok((label, [y0, x0, y1, x1]))
}

/// A parsed box on the image it refers to.
pub fn locate(image: &PromptImage, label: String, box_2d: [f64; 4]) -> LocatedBox {
    let [a, b] = image.transform.box_1000_to_original(box_2d);
    LocatedBox { label, box_2d, instance_id: image.instance_id, frame: image.frame, x0: a.x, y0: a.y, x1: b.x, y1: b.y }
}

/// The earlier conversation as model turns: each question with its complete answer (answers that were
/// cut short or failed, and their questions, are left out). Text only: the images of earlier turns
/// would cost hundreds of tokens each.
pub fn context_turns(messages: &[Message]) -> Vec<Turn> {
    let mut turns = Vec::new();
    for pair in messages.windows(2) {
        let (question, answer) = (&pair[0], &pair[1]);
        let complete = matches!(answer.stop.as_deref(), Some("eos") | Some("max_tokens"));
        // A triage answer is a row of booleans for the worklist, not part of the conversation.
        let conversational = answer.mode != Mode::Triage.as_str();
        if question.role == "user"
            && answer.role == "assistant"
            && complete
            && conversational
            && !answer.content.trim().is_empty()
        {
            turns.push(Turn { role: Role::User, text: question.content.clone(), images: 0, image_captions: vec![] });
            turns.push(Turn { role: Role::Model, text: answer.content.clone(), images: 0, image_captions: vec![] });
        }
    }
    turns
}

/// Defaults for chat requests.
#[derive(Clone, Copy, Debug)]
pub struct ChatSettings {
    pub max_new_tokens: usize,
    pub max_ct_slices: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transform() -> ImageTransform {
        // 300 × 200 into 600 × 600: scale 2, 100 rows of padding on top.
        ImageTransform { original_columns: 300, original_rows: 200, size: 600, scale: 2.0, pad_x: 0.0, pad_y: 100.0 }
    }

    #[test]
    fn boxes_are_read_from_fenced_json_and_mapped_to_image_pixels() {
        let answer =
            "右肺上叶见一结节。\n```json\n[{\"box_2d\": [250, 100, 500, 400], \"label\": \"右肺上叶结节\"}]\n```\n";
        let parsed = parse_boxes(answer);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(parsed.boxes, vec![("右肺上叶结节".to_string(), [250.0, 100.0, 500.0, 400.0])]);
        let image = PromptImage { instance_id: 7, frame: 1, role: "current", transform: transform() };
        let (label, b) = parsed.boxes.into_iter().next().unwrap();
        let located = locate(&image, label, b);
        // x: 100/1000 × 600 = model 60 → original 30 (edge) → pixel centre 29.5; 400 → 240 → 119.5.
        // y: 250/1000 × 600 = model 150 → (150 − 100) / 2 = 25 → 24.5; 500 → 300 → 100 → 99.5.
        assert_eq!((located.x0, located.y0, located.x1, located.y1), (29.5, 24.5, 119.5, 99.5));
    }

    #[test]
    fn bad_boxes_are_reported_and_good_ones_kept() {
        let answer = "```json\n[{\"box_2d\": [10, 10, 5, 50], \"label\": \"a\"}, {\"box_2d\": [1, 2, 3], \"label\": \"b\"}, \
                      {\"box_2d\": [0, 0, 1200, 10]}, {\"box_2d\": [100, 200, 300, 400], \"label\": \"c\"}]\n```\n\
                      ```json\n{not json}\n```\n```python\nprint(1)\n```";
        let parsed = parse_boxes(answer);
        assert_eq!(parsed.boxes, vec![("c".to_string(), [100.0, 200.0, 300.0, 400.0])]);
        assert_eq!(parsed.problems.len(), 4, "{:?}", parsed.problems);
        assert!(parse_boxes("no boxes here").boxes.is_empty());
        // A single object, not a list; a fence left open is ignored.
        assert_eq!(parse_boxes("```json\n{\"box_2d\": [1, 2, 3, 4], \"label\": \"x\"}\n```").boxes.len(), 1);
        assert!(parse_boxes("```json\n[{\"box_2d\": [1, 2, 3, 4]}]").boxes.is_empty());
    }

    #[test]
    fn heatmap_grids_are_normalized_and_carry_their_cells() {
        let image = PromptImage { instance_id: 7, frame: 1, role: "current", transform: transform() };
        let attention = ImageAttention { side: 2, grid: vec![1.0, 3.0, 0.0, 4.0], share: 0.5 };
        let map = heatmap(&image, &attention);
        assert_eq!(map.grid, vec![0.125, 0.375, 0.0, 0.5]);
        // 2 × 2 cells of 300 model pixels: the top-left covers model 0..300 = original x 0..150,
        // y (0 − 100)/2 .. (300 − 100)/2 = 0..100 after the cut.
        assert_eq!(map.cells[0], Some([0.0, 0.0, 150.0, 100.0]));
        assert_eq!(map.cells[3], Some([150.0, 100.0, 300.0, 200.0]));
    }

    #[test]
    fn only_complete_conversational_answers_and_their_questions_become_context() {
        let message = |id, role: &str, content: &str, stop: Option<&str>| Message {
            id,
            role: role.into(),
            content: content.into(),
            mode: if content.starts_with('{') || content.starts_with("AI预读：分诊") { "triage" } else { "chat" }
                .into(),
            images: serde_json::json!([]),
            stop: stop.map(str::to_string),
            model: None,
            prompt_version: None,
            prompt_tokens: None,
            answer_tokens: None,
            details: None,
            created_at: String::new(),
        };
        let messages = [
            message(1, "user", "描述这张胸片", None),
            message(2, "assistant", "双肺纹理清晰。", Some("eos")),
            message(3, "user", "有结节吗", None),
            message(4, "assistant", "右肺", Some("cancelled")),
            message(5, "user", "请再看一次", None),
            message(6, "assistant", "右肺上叶见结节。", Some("max_tokens")),
            message(7, "user", "AI预读：分诊", None),
            message(8, "assistant", "{\"pneumothorax\": false}", Some("eos")),
        ];
        let turns = context_turns(&messages);
        let texts: Vec<&str> = turns.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["描述这张胸片", "双肺纹理清晰。", "请再看一次", "右肺上叶见结节。"]);
        assert_eq!(turns[1].role, Role::Model);
    }
}
