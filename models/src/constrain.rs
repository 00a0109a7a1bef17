//! Generation that cannot leave a JSON Schema: before each token, llguidance computes which tokens keep
//! the output a valid prefix of some document the schema accepts, and every other token's logit is set
//! to −∞. A weak (or random) model then still writes JSON that parses and validates; the schema must
//! bound its strings and lists so that an answer always ends within the token budget.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};
use serde_json::Value;
use tch::Tensor;
use tokenizers::Tokenizer;

use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// What llguidance needs of our tokenizer: each token's bytes in a trie, and a way to tokenize.
struct TokenizerBytes {
    trie: TokTrie,
    tokenizer: Tokenizer,
}

impl TokenizerEnv for TokenizerBytes {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    /// The tokenizer's own tokens for text; bytes that are not whole UTF-8 (the grammar may force the
    /// rest of a character) go through the trie, byte tokens and all, never through a lossy string.
    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        match std::str::from_utf8(s) {
            Ok(text) => match self.tokenizer.encode(text, false) {
                Ok(encoding) => encoding.get_ids().to_vec(),
                Err(_) => self.trie.greedy_tokenize(s),
            },
            Err(_) => self.trie.greedy_tokenize(s),
        }
    }
}

/// Builds the parser factory for a checkpoint's tokenizer (once per engine: the trie over a 262 k
/// vocabulary takes a moment).
pub(crate) fn parser_factory(
    tokenizer_json: &Value,
    tokenizer: &Tokenizer,
    logits_len: usize,
    end_of_answer: TokenId,
) -> Result<ParserFactory> {
    let fail = |e: anyhow::Error| EngineError::Input(format!("constrained generation: {e}"));
    let mut token_bytes = llguidance::token_bytes_from_tokenizer_json(tokenizer_json).map_err(fail)?;
    // The embedding table may have rows past the tokenizer's last id: they spell nothing.
    token_bytes.resize(logits_len.max(token_bytes.len()), Vec::new());
    let info = TokRxInfo {
        vocab_size: token_bytes.len() as u32,
        tok_eos: end_of_answer,
        tok_bos: None,
        tok_pad: None,
        tok_unk: None,
        tok_end_of_turn: Some(end_of_answer),
    };
    let env: TokEnv =
        Arc::new(TokenizerBytes { trie: TokTrie::from(&info, &token_bytes), tokenizer: tokenizer.clone() });
    let mut factory = ParserFactory::new_simple(&env).map_err(fail)?;
    factory.quiet();
    Ok(factory)
}

/// A generation's grammar state.
pub struct Constraint {
    matcher: Matcher,
}

impl Engine {
    /// A constraint to the JSON Schema `schema`, written compactly (no free whitespace, which a weak
    /// model could otherwise produce forever).
    pub fn json_constraint(&self, schema: &Value) -> Result<Constraint> {
        let factory = self.constraint_factory()?;
        let mut schema = schema.clone();
        if let Some(object) = schema.as_object_mut() {
            object.insert("x-guidance".into(), serde_json::json!({ "whitespace_flexible": false }));
        }
        let parser = factory
            .create_parser(TopLevelGrammar::from_json_schema(schema))
            .map_err(|e| EngineError::Input(format!("the schema cannot constrain generation: {e}")))?;
        Ok(Constraint { matcher: Matcher::new(Ok(parser)) })
    }
}

/// `logits` ([vocab]) with every token but `allowed` at −∞.
pub(crate) fn keep_only(logits: &Tensor, allowed: &[i64]) -> Tensor {
    let index = Tensor::from_slice(allowed).to_device(logits.device());
    let kept = logits.index_select(0, &index);
    logits.full_like(f64::NEG_INFINITY).index_copy(0, &index, &kept)
}

impl Constraint {
    /// The tokens the grammar allows next. No tensors: streams compute theirs in parallel.
    pub(crate) fn allowed(&mut self) -> Result<Vec<i64>> {
        let allowed = self.matcher.compute_mask_or_eos().map_err(|e| self.error(e))?;
        let ids: Vec<i64> = allowed.to_list().into_iter().map(i64::from).collect();
        if ids.is_empty() {
            return Err(EngineError::Input("constrained generation: the grammar allows no token".into()));
        }
        Ok(ids)
    }

    /// Advances the grammar over the chosen token.
    pub(crate) fn accept(&mut self, token: i64) -> Result<()> {
        self.matcher.consume_token(token as TokenId).map_err(|e| self.error(e))
    }

    /// The document is complete: nothing but the end may follow.
    pub(crate) fn is_complete(&self) -> bool {
        self.matcher.is_stopped()
    }

    fn error(&self, e: anyhow::Error) -> EngineError {
        EngineError::Input(format!("constrained generation: {e}"))
    }
}
