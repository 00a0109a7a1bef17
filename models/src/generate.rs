//! Token generation: greedy or sampled, stopping on any eos id, streaming text pieces as they form.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::constrain::Constraint;
use crate::engine::{Engine, image_block_ids};
use crate::error::{EngineError, Result};
use crate::text::{Logits, PromptAttention, Sequence};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    /// No eos before this many tokens (transformers' min_new_tokens): fixed-length answers for load
    /// tests and benchmarks.
    pub min_new_tokens: usize,
    /// 0 means greedy.
    pub temperature: f64,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches top_p (1 = off).
    pub top_p: f64,
    /// Keep the k most likely tokens (0 = off).
    pub top_k: usize,
    /// transformers' definition: logits of tokens already in the sequence divided (if > 0) or
    /// multiplied (if < 0) by this (1 = off).
    pub repetition_penalty: f64,
    pub seed: u64,
    /// Also return where the answer looked in each image (for heatmaps).
    pub image_attention: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            min_new_tokens: 0,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            repetition_penalty: 1.0,
            seed: 0,
            image_attention: false,
        }
    }
}

/// Where the answer looked in one image: attention from the queries that chose the answer's tokens,
/// averaged over heads and full-attention layers, on each of the image's soft tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageAttention {
    /// Soft tokens per side: the grid is `side` × `side`, row by row from the top left, over the image
    /// as the model saw it (resized to the preprocessor's size).
    pub side: i64,
    /// side × side attention values.
    pub grid: Vec<f32>,
    /// Share of all the answer's attention that went to this image (0–1).
    pub share: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Eos,
    MaxTokens,
    Cancelled,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Timings {
    pub prefill_ms: f64,
    pub decode_ms: f64,
    /// Generated tokens per second of decode time (the first token comes from the prefill).
    pub decode_tokens_per_s: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Generation {
    pub prompt_token_ids: Vec<i64>,
    /// Generated ids, excluding the prompt; includes the eos id that stopped generation, if any.
    pub token_ids: Vec<i64>,
    /// log-softmax of the model's logits at each chosen token (before temperature or penalties).
    pub logprobs: Vec<f64>,
    /// The answer text, without the stopping eos token.
    pub text: String,
    pub stop: StopReason,
    pub timings: Timings,
    /// One per image, when asked for ([`GenerateOptions::image_attention`]).
    pub image_attention: Vec<ImageAttention>,
}

/// A generation in progress: its sequence, sampling state and answer so far. Several advance together,
/// one token per [`Engine::step`], which is how the server decodes many conversations at once.
pub struct Stream {
    seq: Sequence,
    options: GenerateOptions,
    rng: SplitMix64,
    prompt_ids: Vec<i64>,
    /// Logits for the next token ([vocab], f32).
    next_logits: Tensor,
    token_ids: Vec<i64>,
    logprobs: Vec<f64>,
    /// Visible tokens whose text has been handed out. The decoder (Replace, ByteFallback, Fuse) joins at
    /// settled points, so each step decodes only the newly settled tokens, not the whole answer again.
    emitted_ids: usize,
    stop: Option<StopReason>,
    prefill_ms: f64,
    decode_started: Instant,
    /// A grammar the answer must follow (JSON Schema), if any.
    constraint: Option<Constraint>,
}

impl Stream {
    /// From the next token on, only tokens the constraint allows are chosen; the answer ends when the
    /// constrained document is complete.
    pub fn constrain(&mut self, constraint: Constraint) {
        self.constraint = Some(constraint);
    }

    pub fn is_finished(&self) -> bool {
        self.stop.is_some()
    }

    /// Stops before the next token; [`Engine::finish`] then reports [`StopReason::Cancelled`].
    pub fn cancel(&mut self) {
        self.stop.get_or_insert(StopReason::Cancelled);
    }
}

impl Engine {
    /// Runs the prompt (with `pixel_values`, one per image) and returns the stream, ready for its first
    /// token.
    pub fn start(&self, prompt_ids: &[i64], pixel_values: &[Tensor], options: &GenerateOptions) -> Result<Stream> {
        self.start_unless(prompt_ids, pixel_values, options, &crate::engine::never)
    }

    /// [`Engine::start`] for work that can wait: the prompt run stops with
    /// [`crate::EngineError::MadeWay`] as soon as `make_way` answers true between two layers.
    pub fn start_unless(
        &self,
        prompt_ids: &[i64],
        pixel_values: &[Tensor],
        options: &GenerateOptions,
        make_way: &dyn Fn() -> bool,
    ) -> Result<Stream> {
        let started = Instant::now();
        let (logits, seq) =
            self.prefill_unless(prompt_ids, pixel_values, options.image_attention, Logits::Last, make_way)?;
        let stop = (options.max_new_tokens == 0).then_some(StopReason::MaxTokens);
        Ok(Stream {
            seq,
            options: options.clone(),
            rng: SplitMix64(options.seed),
            prompt_ids: prompt_ids.to_vec(),
            next_logits: logits.get(0),
            token_ids: Vec::new(),
            logprobs: Vec::new(),
            emitted_ids: 0,
            stop,
            prefill_ms: ms(started),
            decode_started: Instant::now(),
            constraint: None,
        })
    }

    /// Advances every unfinished stream by one token. Returns, per stream, the text that became final
    /// with it (often empty: a character split over byte tokens, hidden thinking); a stream that stops
    /// here hands out all its remaining text. The streams still going then run one decode step together.
    pub fn step(&self, streams: &mut [&mut Stream]) -> Result<Vec<String>> {
        let mut pieces = vec![String::new(); streams.len()];
        let mut running = Vec::new();
        // The grammar masks of constrained streams, all at once: the parser is most of a constrained step.
        let allowed: Vec<Option<Result<Vec<i64>>>> = streams
            .par_iter_mut()
            .map(|stream| {
                let finished = stream.is_finished();
                stream.constraint.as_mut().filter(|_| !finished).map(Constraint::allowed)
            })
            .collect();
        for ((i, stream), allowed) in streams.iter_mut().enumerate().zip(allowed) {
            if stream.is_finished() {
                continue;
            }
            // The tokens a repetition penalty looks at (none without one: a CT prompt is 20 000 tokens).
            let context: Vec<i64> = if stream.options.repetition_penalty != 1.0 {
                stream.prompt_ids.iter().chain(&stream.token_ids).copied().collect()
            } else {
                Vec::new()
            };
            let mut logits = if stream.token_ids.len() < stream.options.min_new_tokens && !self.eos_token_ids.is_empty()
            {
                let eos = Tensor::from_slice(&self.eos_token_ids).to_device(stream.next_logits.device());
                stream.next_logits.index_fill(0, &eos, f64::NEG_INFINITY)
            } else {
                stream.next_logits.shallow_clone()
            };
            if let Some(allowed) = allowed {
                logits = crate::constrain::keep_only(&logits, &allowed?);
            }
            let token = choose(&logits, &context, &stream.options, &mut stream.rng)?;
            let is_eos = self.eos_token_ids.contains(&token);
            if let Some(constraint) = stream.constraint.as_mut()
                && !is_eos
            {
                constraint.accept(token)?;
            }
            stream.logprobs.push(stream.next_logits.log_softmax(-1, Kind::Float).double_value(&[token]));
            stream.token_ids.push(token);
            let context_full =
                (stream.prompt_ids.len() + stream.token_ids.len()) as i64 >= self.config.text.max_position_embeddings;
            let document_complete = stream.constraint.as_ref().is_some_and(Constraint::is_complete);
            if is_eos || document_complete {
                stream.stop = Some(StopReason::Eos);
            } else if stream.token_ids.len() >= stream.options.max_new_tokens || context_full {
                stream.stop = Some(StopReason::MaxTokens);
            }
            // Hand out only text that can no longer change: a run of byte-fallback tokens (a character
            // split into bytes) decodes differently until a token that writes text of its own closes it.
            let visible = self.visible_ids(&stream.token_ids);
            let settled = if stream.is_finished() {
                visible.len()
            } else {
                visible.iter().rposition(|&t| self.closes_byte_run(t)).map_or(0, |i| i + 1)
            };
            if settled > stream.emitted_ids {
                pieces[i] = self.decode(&visible[stream.emitted_ids..settled])?;
                stream.emitted_ids = settled;
            }
            if !stream.is_finished() {
                running.push(i);
            }
        }
        if !running.is_empty() {
            let tokens: Vec<i64> = running.iter().map(|&i| *streams[i].token_ids.last().unwrap_or(&0)).collect();
            let logits = {
                let mut seqs: Vec<&mut Sequence> = Vec::with_capacity(running.len());
                for (i, stream) in streams.iter_mut().enumerate() {
                    if running.contains(&i) {
                        seqs.push(&mut stream.seq);
                    }
                }
                self.decode_step(&tokens, &mut seqs)
            };
            for (row, &i) in running.iter().enumerate() {
                streams[i].next_logits = logits.get(row as i64);
            }
        }
        Ok(pieces)
    }

    /// The whole answer of a finished (or abandoned) stream.
    pub fn finish(&self, stream: Stream) -> Result<Generation> {
        let decode_ms = ms(stream.decode_started);
        let text = self.visible_text(&stream.token_ids)?;
        let image_attention = match &stream.seq.cache.prompt_attention {
            Some(attention) => self.image_attention(&stream.prompt_ids, attention)?,
            None => Vec::new(),
        };
        let decoded = stream.token_ids.len().saturating_sub(1) as f64;
        Ok(Generation {
            prompt_token_ids: stream.prompt_ids,
            token_ids: stream.token_ids,
            logprobs: stream.logprobs,
            text,
            stop: stream.stop.unwrap_or(StopReason::Cancelled),
            timings: Timings {
                prefill_ms: stream.prefill_ms,
                decode_ms,
                decode_tokens_per_s: if decode_ms > 0.0 { decoded / (decode_ms / 1000.0) } else { 0.0 },
            },
            image_attention,
        })
    }

    /// Generates after `prompt_ids` (with `pixel_values`, one per image). `on_text` receives each new
    /// piece of text as soon as it is complete UTF-8; `cancel` stops generation between tokens.
    pub fn generate(
        &self,
        prompt_ids: &[i64],
        pixel_values: &[Tensor],
        options: &GenerateOptions,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let mut stream = self.start(prompt_ids, pixel_values, options)?;
        while !stream.is_finished() {
            if cancel.load(Ordering::Relaxed) {
                stream.cancel();
                break;
            }
            for piece in self.step(&mut [&mut stream])? {
                if !piece.is_empty() {
                    on_text(&piece);
                }
            }
        }
        self.finish(stream)
    }

    /// The answer's tokens as the user sees them: no eos token, and no thinking (the span between the
    /// thinking markers, or everything after an opening marker that has not closed yet).
    fn visible_ids(&self, ids: &[i64]) -> Vec<i64> {
        let mut visible = Vec::with_capacity(ids.len());
        let mut thinking = false;
        for &id in ids {
            match self.thinking_markers {
                Some((open, _)) if id == open => thinking = true,
                Some((_, close)) if id == close => thinking = false,
                _ if thinking || self.eos_token_ids.contains(&id) => {}
                _ => visible.push(id),
            }
        }
        visible
    }

    fn visible_text(&self, ids: &[i64]) -> Result<String> {
        self.decode(&self.visible_ids(ids))
    }

    /// Whether `id` writes text of its own, ending any run of byte tokens before it. Byte tokens do not;
    /// nor do special tokens and ids without a token (a checkpoint's embedding table may be larger than
    /// its vocabulary), which decoding drops, so bytes on both sides of them fuse.
    fn closes_byte_run(&self, id: i64) -> bool {
        !self.byte_token_ids.contains(&id)
            && !self.silent_token_ids.contains(&id)
            && self.tokenizer.id_to_token(id as u32).is_some()
    }

    /// Splits the captured prompt attention into one grid per image.
    fn image_attention(&self, prompt_ids: &[i64], attention: &PromptAttention) -> Result<Vec<ImageAttention>> {
        let mean = Vec::<f32>::try_from(attention.mean().to_device(tch::Device::Cpu))?;
        let total: f32 = mean.iter().sum();
        let blocks = image_block_ids(prompt_ids, self.config.image_token_id);
        let images = blocks.iter().copied().max().map_or(0, |b| b + 1);
        Ok((0..images)
            .map(|image| {
                let grid: Vec<f32> = blocks.iter().zip(&mean).filter(|(b, _)| **b == image).map(|(_, v)| *v).collect();
                let share = if total > 0.0 { grid.iter().sum::<f32>() / total } else { 0.0 };
                ImageAttention { side: self.config.tokens_per_side(), grid, share }
            })
            .collect())
    }

    pub fn decode(&self, ids: &[i64]) -> Result<String> {
        let ids: Vec<u32> = ids.iter().map(|&id| id as u32).collect();
        self.tokenizer.decode(&ids, true).map_err(|e| EngineError::Input(format!("tokenizer: {e}")))
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Picks the next token from raw logits [vocab].
fn choose(logits: &Tensor, context: &[i64], o: &GenerateOptions, rng: &mut SplitMix64) -> Result<i64> {
    let mut logits = logits.shallow_clone();
    if o.repetition_penalty != 1.0 && !context.is_empty() {
        let index = Tensor::from_slice(context).to_device(logits.device());
        let seen = logits.gather(0, &index, false);
        let penalised = (&seen * o.repetition_penalty).where_self(&seen.lt(0.0), &(&seen / o.repetition_penalty));
        logits = logits.scatter(0, &index, &penalised);
    }
    if o.temperature <= 0.0 {
        return Ok(logits.argmax(0, false).int64_value(&[]));
    }
    let mut probs: Vec<f32> =
        Vec::<f32>::try_from((logits / o.temperature).softmax(-1, Kind::Float).to_device(tch::Device::Cpu))?;
    if o.top_k == 0 && o.top_p >= 1.0 {
        // Plain sampling needs no ranking (sorting a 262 k vocabulary per token is most of a CPU step).
        let total: f64 = probs.iter().map(|&p| f64::from(p)).sum();
        let mut target = rng.next_f64() * total;
        let mut most_likely = 0;
        for (i, &p) in probs.iter().enumerate() {
            if p > probs[most_likely] {
                most_likely = i;
            }
            target -= f64::from(p);
            if target <= 0.0 && p > 0.0 {
                return Ok(i as i64);
            }
        }
        // Rounding left a sliver: the most likely token, never one of probability zero (a masked one).
        return Ok(most_likely as i64);
    }
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_unstable_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let mut keep = if o.top_k > 0 { o.top_k.min(order.len()) } else { order.len() };
    if o.top_p < 1.0 {
        let mut total = 0.0f64;
        for (rank, &i) in order.iter().enumerate().take(keep) {
            total += f64::from(probs[i]);
            if total >= o.top_p {
                keep = rank + 1;
                break;
            }
        }
    }
    for &i in &order[keep..] {
        probs[i] = 0.0;
    }
    let total: f64 = order[..keep].iter().map(|&i| f64::from(probs[i])).sum();
    let mut target = rng.next_f64() * total;
    for &i in &order[..keep] {
        target -= f64::from(probs[i]);
        if target <= 0.0 {
            return Ok(i as i64);
        }
    }
    // Rounding left a sliver: the most likely token, never one of probability zero (a masked one).
    Ok(order[0] as i64)
}

/// A small seeded generator (SplitMix64): the same seed gives the same answer on every machine.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
