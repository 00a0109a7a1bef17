//! The Gemma 3 chat template, rendered in Rust (the same text transformers renders from the
//! checkpoint's jinja template, then expands each image as Gemma3Processor does).

/// Who speaks a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Role {
    User,
    Model,
}

/// One turn: its text, then `images` images (user turns only carry images), each followed by its
/// caption where `image_captions` has one (Google's CT recipe labels each slice "SLICE n").
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Turn {
    pub role: Role,
    pub text: String,
    pub images: usize,
    pub image_captions: Vec<String>,
}

/// The token strings the template needs, read from the checkpoint's tokenizer and config.
#[derive(Clone, Debug)]
pub struct TemplateTokens {
    pub bos: String,
    pub start_of_image: String,
    pub image: String,
    pub end_of_image: String,
    pub image_tokens: usize,
}

pub const START_OF_TURN: &str = "<start_of_turn>";
pub const END_OF_TURN: &str = "<end_of_turn>";
/// MedGemma 1.5 thinks between these before answering (its model card's thinking mode).
pub const THINKING_START: &str = "<unused94>";
pub const THINKING_END: &str = "<unused95>";

/// One `<bos>`; `<start_of_turn>user\n…<end_of_turn>\n` per turn; the system text and a blank line
/// before the first turn's text; text (trimmed) first, then each image as
/// `\n\n<start_of_image>` + N × `<image_soft_token>` + `<end_of_image>\n\n`; finally
/// `<start_of_turn>model\n` for the answer.
pub fn render(system: Option<&str>, turns: &[Turn], t: &TemplateTokens) -> String {
    let mut out = t.bos.clone();
    let image = format!("\n\n{}{}{}\n\n", t.start_of_image, t.image.repeat(t.image_tokens), t.end_of_image);
    for (i, turn) in turns.iter().enumerate() {
        let role = match turn.role {
            Role::User => "user",
            Role::Model => "model",
        };
        out.push_str(START_OF_TURN);
        out.push_str(role);
        out.push('\n');
        if i == 0
            && let Some(system) = system
        {
            out.push_str(system);
            out.push_str("\n\n");
        }
        out.push_str(turn.text.trim());
        for i in 0..turn.images {
            out.push_str(&image);
            if let Some(caption) = turn.image_captions.get(i) {
                out.push_str(caption.trim());
            }
        }
        out.push_str(END_OF_TURN);
        out.push('\n');
    }
    out.push_str(START_OF_TURN);
    out.push_str("model\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_text_goes_before_the_first_turn_and_images_after_the_text() {
        let t = TemplateTokens {
            bos: "<bos>".into(),
            start_of_image: "<boi>".into(),
            image: "<img>".into(),
            end_of_image: "<eoi>".into(),
            image_tokens: 2,
        };
        let turns = [
            Turn { role: Role::User, text: " 描述这张胸片 ".into(), images: 1, image_captions: Vec::new() },
            Turn { role: Role::Model, text: "未见异常。".into(), images: 0, image_captions: Vec::new() },
            Turn { role: Role::User, text: "对比上次".into(), images: 0, image_captions: Vec::new() },
        ];
        assert_eq!(
            render(Some("你是助手。"), &turns, &t),
            "<bos><start_of_turn>user\n你是助手。\n\n描述这张胸片\n\n<boi><img><img><eoi>\n\n<end_of_turn>\n\
             <start_of_turn>model\n未见异常。<end_of_turn>\n\
             <start_of_turn>user\n对比上次<end_of_turn>\n<start_of_turn>model\n"
        );
    }
}
