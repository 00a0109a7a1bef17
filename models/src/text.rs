//! The Gemma 3 decoder (transformers' Gemma3TextModel + lm_head), with a KV cache.

use tch::{Device, Kind, Tensor};

use crate::config::{LayerType, Rope, TextConfig};
use crate::error::Result;
use crate::layers::{Linear, RmsNorm, gelu_tanh};
use crate::weights::Weights;

/// What distinguishes one attention mask from another within a forward pass: first cached key position,
/// number of keys, sliding window (None for full attention).
type MaskKey = (i64, i64, Option<i64>);

/// Which positions of a forward pass get logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    All,
    Last,
}

/// Keys and values of one layer for the tokens seen so far. Sliding layers keep only their window.
pub struct LayerCache {
    /// [batch, kv_heads, len, head_dim]
    k: Option<Tensor>,
    v: Option<Tensor>,
    /// Absolute position of the first cached entry.
    start: i64,
}

/// The cache of a whole sequence. It lives outside the model and is passed into each forward, so one
/// loaded model serves many sequences at once, each at its own length (continuous batching).
pub struct KvCache {
    layers: Vec<LayerCache>,
    /// Tokens processed so far (the absolute position of the next one).
    pub len: i64,
    /// When set, attention of each forward's last query onto the prompt is summed here (for heatmaps).
    pub prompt_attention: Option<PromptAttention>,
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: (0..num_layers).map(|_| LayerCache { k: None, v: None, start: 0 }).collect(),
            len: 0,
            prompt_attention: None,
        }
    }
}

/// Attention paid to each prompt position by the query that chose each generated token, averaged over
/// heads and summed over full-attention layers (sliding layers cannot see most of a long prompt).
pub struct PromptAttention {
    /// [prompt_len] f32 sum of head-averaged attention rows.
    pub sum: Tensor,
    /// Rows summed (layers × tokens).
    pub rows: i64,
    pub prompt_len: i64,
}

impl PromptAttention {
    pub fn new(prompt_len: i64, device: Device) -> Self {
        Self { sum: Tensor::zeros([prompt_len], (Kind::Float, device)), rows: 0, prompt_len }
    }

    /// Mean attention per prompt position over every summed row.
    pub fn mean(&self) -> Tensor {
        &self.sum / self.rows.max(1) as f64
    }
}

/// One sequence's state between forward passes: its cache and mask.
pub struct Sequence {
    pub cache: KvCache,
    pub mask: AttentionMask,
}

/// Which keys each query may see, as absolute positions: causal, bidirectional inside one image's soft
/// tokens, and for sliding layers only keys newer than `q - window`.
pub struct AttentionMask {
    /// Image index of each absolute position of the sequence so far (-1 for text).
    block_ids: Vec<i64>,
}

impl AttentionMask {
    pub fn new(block_ids: Vec<i64>) -> Self {
        Self { block_ids }
    }

    fn block(&self, pos: i64) -> i64 {
        self.block_ids.get(pos as usize).copied().unwrap_or(-1)
    }

    /// Boolean [q_len, kv_len] mask (true = attend) for queries `q_start..q_start+q_len` over keys
    /// `kv_start..kv_start+kv_len`.
    pub fn build(
        &self,
        q_start: i64,
        q_len: i64,
        kv_start: i64,
        kv_len: i64,
        window: Option<i64>,
        device: Device,
    ) -> Tensor {
        let mut allowed = Vec::with_capacity((q_len * kv_len) as usize);
        for q in q_start..q_start + q_len {
            let q_block = self.block(q);
            for kv in kv_start..kv_start + kv_len {
                let visible = kv <= q || (q_block >= 0 && self.block(kv) == q_block);
                let in_window = window.is_none_or(|w| kv > q - w);
                allowed.push(visible && in_window);
            }
        }
        Tensor::from_slice(&allowed).view([q_len, kv_len]).to_device(device)
    }
}

/// Gemma 3 self-attention: grouped-query, QK-norm before RoPE, a sliding window on sliding layers.
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    num_heads: i64,
    num_kv_heads: i64,
    head_dim: i64,
    scale: f64,
    layer_type: LayerType,
}

/// The gated feed-forward block: down(gelu_tanh(gate(x)) · up(x)).
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

/// One decoder layer: attention and MLP, each between an input norm and an output norm (Gemma 3 normalises
/// both sides of each block), with residuals around them.
struct DecoderLayer {
    self_attn: Attention,
    mlp: Mlp,
    input_layernorm: RmsNorm,
    post_attention_layernorm: RmsNorm,
    pre_feedforward_layernorm: RmsNorm,
    post_feedforward_layernorm: RmsNorm,
}

pub struct TextModel {
    embed_tokens: Tensor,
    /// sqrt(hidden_size) rounded to the weight dtype (55.4256 becomes 55.5 in bf16), as a 0-d tensor.
    embed_scale: Tensor,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    /// None when tied to embed_tokens (Gemma 3 ties them).
    lm_head: Option<Tensor>,
    inv_freq_full: Tensor,
    inv_freq_sliding: Tensor,
    pub config: TextConfig,
}

fn inv_freq(rope: Rope, head_dim: i64, device: Device) -> Tensor {
    // As transformers computes it, in f32: 1 / theta^(arange(0, d, 2) / d), then / factor for linear.
    let exponent = Tensor::arange_start_step(0, head_dim, 2, (Kind::Float, device)) / (head_dim as f64);
    (Tensor::pow_scalar(rope.theta, &exponent).reciprocal() / rope.linear_factor).to_kind(Kind::Float)
}

/// cos, sin of shape [batch, 1, len, head_dim] in `kind`: row b holds absolute positions
/// starts[b]..starts[b]+len (sequences of a batch sit at different positions).
fn rope_tables(inv_freq: &Tensor, starts: &[i64], len: i64, kind: Kind) -> (Tensor, Tensor) {
    let device = inv_freq.device();
    let offsets = Tensor::arange(len, (Kind::Float, device));
    let starts = Tensor::from_slice(starts).to_kind(Kind::Float).to_device(device);
    let positions = starts.unsqueeze(-1) + offsets.unsqueeze(0); // [batch, len]
    let freqs = positions.unsqueeze(-1) * inv_freq.view([1, 1, -1]);
    let emb = Tensor::cat(&[&freqs, &freqs], -1).unsqueeze(1);
    (emb.cos().to_kind(kind), emb.sin().to_kind(kind))
}

fn rotate_half(x: &Tensor) -> Tensor {
    let half = x.size().last().copied().unwrap_or(0) / 2;
    let x1 = x.narrow(-1, 0, half);
    let x2 = x.narrow(-1, half, half);
    Tensor::cat(&[&x2.neg(), &x1], -1)
}

/// One sequence's share of a layer's forward: its cache for this layer, its mask, and where to sum
/// attention onto the prompt (full-attention layers of a heatmap sequence only).
struct SequenceLayer<'a> {
    cache: &'a mut LayerCache,
    attend: &'a Tensor,
    capture: Option<&'a mut PromptAttention>,
}

impl Attention {
    /// `prefix` is the layer's `self_attn`. The layer type picks the RoPE table and the window that
    /// [`TextModel::forward`] applies to this layer.
    fn load(w: &Weights, prefix: &str, c: &TextConfig, layer_type: LayerType) -> Result<Self> {
        let key = |name: &str| format!("{prefix}.{name}");
        let (h, hd, eps) = (c.hidden_size, c.head_dim, c.rms_norm_eps);
        let (q, kv) = (c.num_attention_heads * hd, c.num_key_value_heads * hd);
        Ok(Self {
            q_proj: Linear::load(w, &key("q_proj"), h, q, false)?,
            k_proj: Linear::load(w, &key("k_proj"), h, kv, false)?,
            v_proj: Linear::load(w, &key("v_proj"), h, kv, false)?,
            o_proj: Linear::load(w, &key("o_proj"), q, h, false)?,
            q_norm: RmsNorm::load(w, &key("q_norm"), hd, eps)?,
            k_norm: RmsNorm::load(w, &key("k_norm"), hd, eps)?,
            num_heads: c.num_attention_heads,
            num_kv_heads: c.num_key_value_heads,
            head_dim: hd,
            scale: c.query_pre_attn_scalar.powf(-0.5),
            layer_type,
        })
    }

    /// `x` is [batch, seq, hidden] with one row per sequence. Projections, norms and rotary embedding run
    /// on the whole batch (the weights are read once per step, which is what batching buys); attention
    /// runs per sequence over its own cache, whose length differs from its neighbours'.
    fn forward(&self, x: &Tensor, (cos, sin): (&Tensor, &Tensor), window: i64, seqs: &mut [SequenceLayer]) -> Tensor {
        let (b, s, _) = x.size3().expect("hidden states are [batch, seq, hidden]");
        let shape = |t: Tensor, heads: i64| t.view([b, s, heads, self.head_dim]).transpose(1, 2);
        let q = self.q_norm.forward(&shape(self.q_proj.forward(x), self.num_heads));
        let k = self.k_norm.forward(&shape(self.k_proj.forward(x), self.num_kv_heads));
        let v = shape(self.v_proj.forward(x), self.num_kv_heads);
        let q = &q * cos + rotate_half(&q) * sin;
        let k = &k * cos + rotate_half(&k) * sin;
        let window = (self.layer_type == LayerType::Sliding).then_some(window);

        let mut outs: Vec<Tensor> = seqs
            .iter_mut()
            .enumerate()
            .map(|(i, seq)| {
                let (q, k, v) = (q.narrow(0, i as i64, 1), k.narrow(0, i as i64, 1), v.narrow(0, i as i64, 1));
                self.attend(&q, k, v, window, seq)
            })
            .collect();
        let out = if outs.len() == 1 { outs.remove(0) } else { Tensor::cat(&outs, 0) };
        self.o_proj.forward(&out.transpose(1, 2).reshape([b, s, self.num_heads * self.head_dim]))
    }

    /// Attention of one sequence's new queries over its cached and new keys; updates its cache.
    fn attend(&self, q: &Tensor, k: Tensor, v: Tensor, window: Option<i64>, seq: &mut SequenceLayer) -> Tensor {
        let s = q.size()[2];
        let cache = &mut *seq.cache;
        let (k, v) = match (&cache.k, &cache.v) {
            (Some(pk), Some(pv)) => (Tensor::cat(&[pk, &k], 2), Tensor::cat(&[pv, &v], 2)),
            _ => (k, v),
        };
        let kv_len = k.size()[2];

        // Grouped-query attention inside SDPA (enable_gqa): no copy of the keys and values per query head.
        let out = Tensor::scaled_dot_product_attention(q, &k, &v, Some(seq.attend), 0.0, false, self.scale, true);
        if let Some(capture) = seq.capture.as_deref_mut() {
            // The last query is text after every cached key (positions ≤ it), so no mask applies; a
            // full-attention layer never trims its cache, so key i is position i.
            let last = q.narrow(2, s - 1, 1).to_kind(Kind::Float);
            let n_rep = self.num_heads / self.num_kv_heads;
            let k_all = k.repeat_interleave_self_int(n_rep, 1, None).to_kind(Kind::Float);
            let scores = last.matmul(&k_all.transpose(-2, -1)) * self.scale;
            let row = scores.softmax(-1, Kind::Float).mean_dim(1, false, Kind::Float).view([kv_len]);
            capture.sum += row.narrow(0, 0, capture.prompt_len);
            capture.rows += 1;
        }

        // Sliding layers never look further back than the window: keep the newest `window` entries.
        if let Some(w) = window
            && kv_len > w
        {
            cache.start += kv_len - w;
            cache.k = Some(k.narrow(2, kv_len - w, w));
            cache.v = Some(v.narrow(2, kv_len - w, w));
        } else {
            cache.k = Some(k);
            cache.v = Some(v);
        }
        out
    }
}

impl Mlp {
    fn load(w: &Weights, prefix: &str, c: &TextConfig) -> Result<Self> {
        let key = |name: &str| format!("{prefix}.{name}");
        let (h, i) = (c.hidden_size, c.intermediate_size);
        Ok(Self {
            gate_proj: Linear::load(w, &key("gate_proj"), h, i, false)?,
            up_proj: Linear::load(w, &key("up_proj"), h, i, false)?,
            down_proj: Linear::load(w, &key("down_proj"), i, h, false)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.down_proj.forward(&(gelu_tanh(&self.gate_proj.forward(x)) * self.up_proj.forward(x)))
    }
}

impl DecoderLayer {
    fn load(w: &Weights, prefix: &str, c: &TextConfig, layer_type: LayerType) -> Result<Self> {
        let key = |name: &str| format!("{prefix}.{name}");
        let (h, eps) = (c.hidden_size, c.rms_norm_eps);
        Ok(Self {
            self_attn: Attention::load(w, &key("self_attn"), c, layer_type)?,
            mlp: Mlp::load(w, &key("mlp"), c)?,
            input_layernorm: RmsNorm::load(w, &key("input_layernorm"), h, eps)?,
            post_attention_layernorm: RmsNorm::load(w, &key("post_attention_layernorm"), h, eps)?,
            pre_feedforward_layernorm: RmsNorm::load(w, &key("pre_feedforward_layernorm"), h, eps)?,
            post_feedforward_layernorm: RmsNorm::load(w, &key("post_feedforward_layernorm"), h, eps)?,
        })
    }

    /// `rope`, `window` and `seqs` as for [`Attention::forward`].
    fn forward(&self, x: &Tensor, rope: (&Tensor, &Tensor), window: i64, seqs: &mut [SequenceLayer]) -> Tensor {
        let h = self.self_attn.forward(&self.input_layernorm.forward(x), rope, window, seqs);
        let x = x + self.post_attention_layernorm.forward(&h);
        let h = self.mlp.forward(&self.pre_feedforward_layernorm.forward(&x));
        x + self.post_feedforward_layernorm.forward(&h)
    }
}

impl TextModel {
    pub fn load(w: &Weights, config: &TextConfig) -> Result<Self> {
        let c = config;
        let (h, hd) = (c.hidden_size, c.head_dim);
        let layers = (0..c.num_hidden_layers)
            .map(|l| DecoderLayer::load(w, &format!("text.layers.{l}"), c, c.layer_types[l]))
            .collect::<Result<Vec<_>>>()?;
        let embed_tokens = w.get("text.embed_tokens.weight", &[c.vocab_size, h])?;
        let lm_head =
            if w.contains("lm_head.weight") { Some(w.get("lm_head.weight", &[c.vocab_size, h])?) } else { None };
        let embed_scale = Tensor::from((h as f64).sqrt() as f32).to_kind(w.kind).to_device(w.device);
        Ok(Self {
            embed_tokens,
            embed_scale,
            layers,
            norm: RmsNorm::load(w, "text.norm", h, c.rms_norm_eps)?,
            lm_head,
            inv_freq_full: inv_freq(c.rope_full, hd, w.device),
            inv_freq_sliding: inv_freq(c.rope_sliding, hd, w.device),
            config: c.clone(),
        })
    }

    /// Scaled token embeddings, [batch, seq, hidden]. Ids past the vocabulary (image placeholders in
    /// some checkpoints) embed as id 0; their rows are replaced by image features anyway.
    pub fn embed(&self, ids: &Tensor) -> Tensor {
        let ids = ids.where_scalarother(&ids.lt(self.config.vocab_size), 0);
        Tensor::embedding(&self.embed_tokens, &ids, -1, false, false) * &self.embed_scale
    }

    /// Runs `embeds` ([batch, seq, hidden], row b for `seqs[b]`: a prompt of one sequence, or one decode
    /// step of several) after what each sequence's cache holds; returns logits [batch, n, vocab] for the
    /// positions `logits` asks for. `None` when `make_way` says so before a layer: the sequences' caches
    /// are then half written, so only a prompt run, whose sequence is new, may be stopped.
    pub fn forward(
        &self,
        embeds: &Tensor,
        seqs: &mut [&mut Sequence],
        logits: Logits,
        make_way: &dyn Fn() -> bool,
    ) -> Option<Tensor> {
        let seq = embeds.size()[1];
        assert_eq!(embeds.size()[0], seqs.len() as i64, "one embeds row per sequence");
        let kind = embeds.kind();
        let device = embeds.device();
        let starts: Vec<i64> = seqs.iter().map(|s| s.cache.len).collect();
        let (cos_full, sin_full) = rope_tables(&self.inv_freq_full, &starts, seq, kind);
        let (cos_sliding, sin_sliding) = rope_tables(&self.inv_freq_sliding, &starts, seq, kind);
        let window = self.config.sliding_window;
        // Per sequence, layers of one type share their mask: build each distinct one once per call.
        let mut masks: Vec<Vec<(MaskKey, Tensor)>> = seqs.iter().map(|_| Vec::new()).collect();
        let mut x = embeds.shallow_clone();
        for (l, layer) in self.layers.iter().enumerate() {
            if make_way() {
                return None;
            }
            let layer_type = layer.self_attn.layer_type;
            let (cos, sin) = match layer_type {
                LayerType::Full => (&cos_full, &sin_full),
                LayerType::Sliding => (&cos_sliding, &sin_sliding),
            };
            let mut mask_index = Vec::with_capacity(seqs.len());
            for ((sequence, seq_masks), &start) in seqs.iter_mut().zip(&mut masks).zip(&starts) {
                let layer_cache = &mut sequence.cache.layers[l];
                if layer_cache.k.is_none() {
                    layer_cache.start = start;
                }
                let cached = layer_cache.k.as_ref().map_or(0, |k| k.size()[2]);
                let key = (layer_cache.start, cached + seq, (layer_type == LayerType::Sliding).then_some(window));
                let index = match seq_masks.iter().position(|(k, _)| *k == key) {
                    Some(i) => i,
                    None => {
                        seq_masks.push((key, sequence.mask.build(start, seq, key.0, key.1, key.2, device)));
                        seq_masks.len() - 1
                    }
                };
                mask_index.push(index);
            }
            let mut seq_layers: Vec<SequenceLayer> = seqs
                .iter_mut()
                .zip(&masks)
                .zip(&mask_index)
                .map(|((sequence, seq_masks), &index)| {
                    let KvCache { layers, prompt_attention, .. } = &mut sequence.cache;
                    SequenceLayer {
                        cache: &mut layers[l],
                        attend: &seq_masks[index].1,
                        capture: if layer_type == LayerType::Full { prompt_attention.as_mut() } else { None },
                    }
                })
                .collect();
            x = layer.forward(&x, (cos, sin), window, &mut seq_layers);
        }
        for sequence in seqs.iter_mut() {
            sequence.cache.len += seq;
        }
        // Generation needs only the last position; the vocabulary projection is the largest matmul of a
        // prefill, so skip it for the rest.
        let x = match logits {
            Logits::All => x,
            Logits::Last => x.narrow(1, seq - 1, 1),
        };
        let x = self.norm.forward(&x);
        let logits = x.linear(self.lm_head.as_ref().unwrap_or(&self.embed_tokens), None::<&Tensor>);
        Some(match self.config.final_logit_softcapping {
            Some(cap) => (logits / cap).tanh() * cap,
            None => logits,
        })
    }
}
