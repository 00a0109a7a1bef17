//! The SigLIP vision tower and Gemma 3's multimodal projector.

use tch::Tensor;

use crate::config::{ModelConfig, VisionConfig};
use crate::error::Result;
use crate::layers::{LayerNorm, Linear, RmsNorm, gelu_tanh};
use crate::weights::Weights;

/// Patch embedding (a stride-`patch_size` convolution) plus a learned position per patch.
struct Embeddings {
    /// `patch_embedding.weight` and `.bias`: nn.Conv2d, [hidden, channels, patch, patch].
    patch_weight: Tensor,
    patch_bias: Tensor,
    position_embedding: Tensor,
    patch_size: i64,
}

impl Embeddings {
    fn load(w: &Weights, prefix: &str, c: &VisionConfig) -> Result<Self> {
        let key = |name: &str| format!("{prefix}.{name}");
        let (h, p) = (c.hidden_size, c.patch_size);
        let patches = c.patches_per_side() * c.patches_per_side();
        Ok(Self {
            patch_weight: w.get(&key("patch_embedding.weight"), &[h, c.num_channels, p, p])?,
            patch_bias: w.get(&key("patch_embedding.bias"), &[h])?,
            position_embedding: w.get(&key("position_embedding.weight"), &[patches, h])?,
            patch_size: p,
        })
    }

    /// pixel_values [images, 3, size, size] → [images, patches, hidden].
    fn forward(&self, pixel_values: &Tensor) -> Tensor {
        let p = self.patch_size;
        let x = pixel_values.to_kind(self.patch_weight.kind()).conv2d(
            &self.patch_weight,
            Some(&self.patch_bias),
            [p, p],
            [0, 0],
            [1, 1],
            1,
        );
        x.flatten(2, -1).transpose(1, 2) + self.position_embedding.unsqueeze(0)
    }
}

/// SigLIP self-attention: every patch sees every patch of its image, no mask.
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: i64,
    head_dim: i64,
}

impl Attention {
    fn load(w: &Weights, prefix: &str, c: &VisionConfig) -> Result<Self> {
        let key = |name: &str| format!("{prefix}.{name}");
        let h = c.hidden_size;
        Ok(Self {
            q_proj: Linear::load(w, &key("q_proj"), h, h, true)?,
            k_proj: Linear::load(w, &key("k_proj"), h, h, true)?,
            v_proj: Linear::load(w, &key("v_proj"), h, h, true)?,
            out_proj: Linear::load(w, &key("out_proj"), h, h, true)?,
            num_heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (n, s, h) = x.size3().expect("[images, patches, hidden]");
        let split = |t: Tensor| t.view([n, s, self.num_heads, self.head_dim]).transpose(1, 2);
        let attn = Tensor::scaled_dot_product_attention(
            &split(self.q_proj.forward(x)),
            &split(self.k_proj.forward(x)),
            &split(self.v_proj.forward(x)),
            None::<&Tensor>,
            0.0,
            false,
            (self.head_dim as f64).powf(-0.5),
            false,
        );
        self.out_proj.forward(&attn.transpose(1, 2).reshape([n, s, h]))
    }
}

/// fc2(gelu_tanh(fc1(x))).
struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn load(w: &Weights, prefix: &str, c: &VisionConfig) -> Result<Self> {
        let key = |name: &str| format!("{prefix}.{name}");
        let (h, i) = (c.hidden_size, c.intermediate_size);
        Ok(Self { fc1: Linear::load(w, &key("fc1"), h, i, true)?, fc2: Linear::load(w, &key("fc2"), i, h, true)? })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&gelu_tanh(&self.fc1.forward(x)))
    }
}

/// A pre-norm transformer layer: x + attn(norm1(x)), then x + mlp(norm2(x)).
struct EncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: Attention,
    layer_norm2: LayerNorm,
    mlp: Mlp,
}

impl EncoderLayer {
    fn load(w: &Weights, prefix: &str, c: &VisionConfig) -> Result<Self> {
        let key = |name: &str| format!("{prefix}.{name}");
        let (h, eps) = (c.hidden_size, c.layer_norm_eps);
        Ok(Self {
            layer_norm1: LayerNorm::load(w, &key("layer_norm1"), h, eps)?,
            self_attn: Attention::load(w, &key("self_attn"), c)?,
            layer_norm2: LayerNorm::load(w, &key("layer_norm2"), h, eps)?,
            mlp: Mlp::load(w, &key("mlp"), c)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let x = x + self.self_attn.forward(&self.layer_norm1.forward(x));
        &x + self.mlp.forward(&self.layer_norm2.forward(&x))
    }
}

pub struct VisionTower {
    embeddings: Embeddings,
    layers: Vec<EncoderLayer>,
    post_layernorm: LayerNorm,
}

impl VisionTower {
    pub fn load(w: &Weights, c: &VisionConfig) -> Result<Self> {
        let layers = (0..c.num_hidden_layers)
            .map(|l| EncoderLayer::load(w, &format!("vision.encoder.layers.{l}"), c))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embeddings: Embeddings::load(w, "vision.embeddings", c)?,
            layers,
            post_layernorm: LayerNorm::load(w, "vision.post_layernorm", c.hidden_size, c.layer_norm_eps)?,
        })
    }

    /// pixel_values [images, 3, size, size] → patch features [images, patches, hidden]; `None` when
    /// `make_way` says so before a layer (a 4B tower on a CPU runs for seconds).
    pub fn forward(&self, pixel_values: &Tensor, make_way: &dyn Fn() -> bool) -> Option<Tensor> {
        let mut x = self.embeddings.forward(pixel_values);
        for layer in &self.layers {
            if make_way() {
                return None;
            }
            x = layer.forward(&x);
        }
        Some(self.post_layernorm.forward(&x))
    }
}

/// Average-pools the patch grid to mm_tokens_per_image, RMS-normalises and projects into the text space.
pub struct Projector {
    /// Stored input × output ([vision hidden, text hidden]), unlike nn.Linear.
    input_projection: Tensor,
    soft_emb_norm: RmsNorm,
    patches_per_side: i64,
    kernel: i64,
}

impl Projector {
    pub fn load(w: &Weights, c: &ModelConfig, vision: &VisionConfig) -> Result<Self> {
        let v = vision.hidden_size;
        Ok(Self {
            input_projection: w.get("projector.mm_input_projection_weight", &[v, c.text.hidden_size])?,
            soft_emb_norm: RmsNorm::load(w, "projector.mm_soft_emb_norm", v, vision.layer_norm_eps)?,
            patches_per_side: vision.patches_per_side(),
            kernel: vision.patches_per_side() / c.tokens_per_side(),
        })
    }

    /// [images, patches, vision hidden] → [images, mm_tokens_per_image, text hidden].
    pub fn forward(&self, features: &Tensor) -> Tensor {
        let (n, _, h) = features.size3().expect("[images, patches, hidden]");
        let grid = features.transpose(1, 2).reshape([n, h, self.patches_per_side, self.patches_per_side]);
        let pooled = grid.avg_pool2d([self.kernel, self.kernel], [self.kernel, self.kernel], [0, 0], false, true, None);
        let tokens = pooled.flatten(2, -1).transpose(1, 2);
        let normed = self.soft_emb_norm.forward(&tokens);
        normed.matmul(&self.input_projection).to_kind(features.kind())
    }
}
