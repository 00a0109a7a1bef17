//! The tokenizer a GGUF file describes (`tokenizer.ggml.*`), rebuilt as the `tokenizer.json` transformers
//! builds from the same file (its `gguf_tokenizer_mapping.py`: `gemma_tokenizer` into `GemmaTokenizer`),
//! so that both produce the same ids for the same text.
//!
//! Gemma's vocabulary is SentencePiece BPE. The file stores the tokens, their scores and types but no
//! merges, so the merges are recovered from the vocabulary: every way of cutting a token into two tokens
//! is a merge, ranked by where the whole token stands in the file (Gemma's scores do not follow its merge
//! order; the file order does). Tokens of two or more spaces are stored as real spaces while the model
//! looks them up as "▁▁", so they are respelled first. Control tokens (type 3) become special added tokens,
//! user-defined ones (type 4, e.g. "\n\n") plain added tokens, both matched whole in the raw text.

use std::collections::HashMap;

use serde_json::{Value as Json, json};

use super::{GgufFile, Value};
use crate::error::{EngineError, Result};

/// SentencePiece's word-boundary mark, which Gemma's normalizer puts in place of every space.
const SPACE_MARK: char = '\u{2581}';
/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

/// The tokenizer.json of the file's vocabulary; `Tokenizer::from_str(&json.to_string())` loads it.
pub fn tokenizer_json(file: &GgufFile) -> Result<Json> {
    let err = |m: String| EngineError::checkpoint(&file.path, m);
    let model = file.get("tokenizer.ggml.model").and_then(Value::as_str).unwrap_or("");
    if model != "llama" {
        return Err(err(format!(
            "tokenizer.ggml.model is {model:?}: a Gemma 3 file has a SentencePiece (\"llama\") vocabulary"
        )));
    }
    let tokens: Vec<&str> = file
        .get("tokenizer.ggml.tokens")
        .and_then(Value::as_array)
        .and_then(|items| items.iter().map(Value::as_str).collect())
        .ok_or_else(|| err("tokenizer.ggml.tokens is missing or not a list of strings".into()))?;
    let types: Vec<i64> = match file.get("tokenizer.ggml.token_type") {
        None => vec![1; tokens.len()],
        Some(v) => v
            .as_array()
            .and_then(|items| items.iter().map(Value::as_i64).collect::<Option<Vec<_>>>())
            .filter(|t| t.len() == tokens.len())
            .ok_or_else(|| err("tokenizer.ggml.token_type is not one integer per token".into()))?,
    };
    let unk = file
        .get("tokenizer.ggml.unknown_token_id")
        .and_then(Value::as_u64)
        .and_then(|id| tokens.get(id as usize).copied())
        .unwrap_or("<unk>");

    let respelled: Vec<String> = tokens.iter().map(|t| respell(t)).collect();
    // Like a Python dict built in file order: a token spelled twice keeps its last id.
    let mut vocab: HashMap<&str, usize> = HashMap::with_capacity(respelled.len());
    for (id, token) in respelled.iter().enumerate() {
        vocab.insert(token, id);
    }
    let merges = recover_merges(&respelled, &vocab);

    let mut added = Vec::new();
    for (id, (&token, &kind)) in tokens.iter().zip(&types).enumerate() {
        // A user-defined token is added only under a spelling the vocabulary has (transformers looks the
        // file's spelling up in the respelled vocabulary, so the whitespace tokens are left to BPE).
        let special = match kind {
            CONTROL => true,
            USER_DEFINED if vocab.contains_key(token) => false,
            _ => continue,
        };
        added.push(json!({
            "id": vocab.get(token).copied().unwrap_or(id),
            "content": token,
            "single_word": false,
            "lstrip": false,
            "rstrip": false,
            "normalized": false,
            "special": special,
        }));
    }
    // Each respelled token once, under the id the dict above kept, in id order.
    let mut ordered: Vec<(&str, usize)> = vocab.iter().map(|(&t, &id)| (t, id)).collect();
    ordered.sort_unstable_by_key(|&(_, id)| id);
    let vocab_json: serde_json::Map<String, Json> =
        ordered.into_iter().map(|(token, id)| (token.to_string(), json!(id))).collect();
    let merges_json: Vec<Json> = merges.into_iter().map(|(l, r)| json!([l, r])).collect();
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": { "type": "Replace", "pattern": { "String": " " }, "content": SPACE_MARK.to_string() },
        "pre_tokenizer": { "type": "Split", "pattern": { "String": " " }, "behavior": "MergedWithPrevious", "invert": false },
        "post_processor": null,
        "decoder": { "type": "Sequence", "decoders": [
            { "type": "Replace", "pattern": { "String": SPACE_MARK.to_string() }, "content": " " },
            { "type": "ByteFallback" },
            { "type": "Fuse" },
        ]},
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": unk,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": true,
            "byte_fallback": true,
            "ignore_merges": false,
            "vocab": vocab_json,
            "merges": merges_json,
        },
    }))
}

/// A token made only of whitespace, with at least one space, is looked up as that many "▁".
fn respell(token: &str) -> String {
    if token.contains(' ') && token.chars().all(python_isspace) {
        std::iter::repeat_n(SPACE_MARK, token.chars().count()).collect()
    } else {
        token.to_string()
    }
}

/// Python's `str.isspace` (what `not t.strip()` tests): Unicode whitespace and the four ASCII
/// separators \x1c–\x1f, which Rust's `char::is_whitespace` leaves out.
fn python_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// transformers' `generate_merges(vocab, vocab_scores)` with score = −(file position): each token cut at
/// every character into two tokens of the vocabulary (the cuts of one token ordered by the ids of their
/// halves), then all merges ordered best first (an earlier token first; for one token, the longer left
/// half first), ties kept in that order.
fn recover_merges<'a>(tokens: &'a [String], vocab: &HashMap<&'a str, usize>) -> Vec<(&'a str, &'a str)> {
    // (position of the whole token, left length in chars, right length, left, right)
    let mut merges: Vec<(usize, usize, usize, &str, &str)> = Vec::new();
    let mut seen: HashMap<&str, ()> = HashMap::with_capacity(tokens.len());
    for token in tokens {
        // Python iterates the dict: each spelling once, at its first place, scored by its last id.
        if seen.insert(token.as_str(), ()).is_some() {
            continue;
        }
        let position = vocab[token.as_str()];
        let chars = token.chars().count();
        let mut local: Vec<(usize, usize, usize, &str, &str)> = token
            .char_indices()
            .skip(1)
            .enumerate()
            .filter_map(|(i, (at, _))| {
                let (left, right) = token.split_at(at);
                (vocab.contains_key(left) && vocab.contains_key(right)).then_some((
                    position,
                    i + 1,
                    chars - i - 1,
                    left,
                    right,
                ))
            })
            .collect();
        local.sort_by_key(|&(_, _, _, l, r)| (vocab[l], vocab[r]));
        merges.extend(local);
    }
    // Python's sorted(key=(score, len l, len r), reverse=True) with score = −position: ascending position,
    // descending lengths; a stable sort keeps equal keys in the order above.
    merges.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
    merges.into_iter().map(|(_, _, _, l, r)| (l, r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_tokens_are_respelled_and_others_kept() {
        assert_eq!(respell("   "), "▁▁▁");
        assert_eq!(respell(" \n"), "▁▁");
        assert_eq!(respell("\n\n"), "\n\n");
        assert_eq!(respell("a b"), "a b");
        assert_eq!(respell("\u{1f} "), "▁▁");
    }

    #[test]
    fn merges_follow_the_file_order_and_prefer_the_longer_left_half() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"].iter().map(|s| s.to_string()).collect();
        let vocab: HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
        // "ab" (position 3) before "bc" (4) before "abc" (5), whose cuts are ab+c (left 2) then a+bc.
        assert_eq!(recover_merges(&tokens, &vocab), [("a", "b"), ("b", "c"), ("ab", "c"), ("a", "bc")]);
    }
}
