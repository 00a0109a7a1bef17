//! The SigLIP vision tower and Gemma 3's multimodal projector.

use tch::Tensor;

use crate::config::{ModelConfig, VisionConfig};
use crate::error::Result;
use crate::layers::{LayerNorm, Linear, RmsNorm, gelu_tanh};
use crate::weights::Weights;

struct EncoderLayer {
    layer_norm1: LayerNorm,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

pub struct VisionTower {
    patch_weight: Tensor,
    patch_bias: Tensor,
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
    post_layernorm: LayerNorm,
    config: VisionConfig,
}

impl VisionTower {
    pub fn load(w: &Weights, c: &VisionConfig) -> Result<Self> {
        let (h, eps) = (c.hidden_size, c.layer_norm_eps);
        let layers = (0..c.num_hidden_layers)
            .map(|l| {
                let p = format!("vision.encoder.layers.{l}");
                Ok(EncoderLayer {
                    layer_norm1: LayerNorm::load(w, &format!("{p}.layer_norm1"), h, eps)?,
                    q_proj: Linear::load(w, &format!("{p}.self_attn.q_proj"), h, h, true)?,
                    k_proj: Linear::load(w, &format!("{p}.self_attn.k_proj"), h, h, true)?,
                    v_proj: Linear::load(w, &format!("{p}.self_attn.v_proj"), h, h, true)?,
                    out_proj: Linear::load(w, &format!("{p}.self_attn.out_proj"), h, h, true)?,
                    layer_norm2: LayerNorm::load(w, &format!("{p}.layer_norm2"), h, eps)?,
                    fc1: Linear::load(w, &format!("{p}.mlp.fc1"), h, c.intermediate_size, true)?,
                    fc2: Linear::load(w, &format!("{p}.mlp.fc2"), c.intermediate_size, h, true)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let patches = c.patches_per_side() * c.patches_per_side();
        Ok(Self {
            patch_weight: w
                .get("vision.embeddings.patch_embedding.weight", &[h, c.num_channels, c.patch_size, c.patch_size])?,
            patch_bias: w.get("vision.embeddings.patch_embedding.bias", &[h])?,
            position_embedding: w.get("vision.embeddings.position_embedding.weight", &[patches, h])?,
            layers,
            post_layernorm: LayerNorm::load(w, "vision.post_layernorm", h, eps)?,
            config: c.clone(),
        })
    }

    /// pixel_values [images, 3, size, size] → patch features [images, patches, hidden].
    pub fn forward(&self, pixel_values: &Tensor) -> Tensor {
        let c = &self.config;
        let p = c.patch_size;
        let x = pixel_values.to_kind(self.patch_weight.kind()).conv2d(
            &self.patch_weight,
            Some(&self.patch_bias),
            [p, p],
            [0, 0],
            [1, 1],
            1,
        );
        let mut x = x.flatten(2, -1).transpose(1, 2) + self.position_embedding.unsqueeze(0);
        let (n, s, h) = x.size3().expect("[images, patches, hidden]");
        let heads = c.num_attention_heads;
        let head_dim = h / heads;
        for layer in &self.layers {
            let residual = x.shallow_clone();
            let y = layer.layer_norm1.forward(&x);
            let split = |t: Tensor| t.view([n, s, heads, head_dim]).transpose(1, 2);
            let attn = Tensor::scaled_dot_product_attention(
                &split(layer.q_proj.forward(&y)),
                &split(layer.k_proj.forward(&y)),
                &split(layer.v_proj.forward(&y)),
                None::<&Tensor>,
                0.0,
                false,
                (head_dim as f64).powf(-0.5),
                false,
            );
            x = residual + layer.out_proj.forward(&attn.transpose(1, 2).reshape([n, s, h]));
            let residual = x.shallow_clone();
            x = residual + layer.fc2.forward(&gelu_tanh(&layer.fc1.forward(&layer.layer_norm2.forward(&x))));
        }
        self.post_layernorm.forward(&x)
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
    pub fn load(w: &Weights, c: &ModelConfig) -> Result<Self> {
        let v = c.vision.hidden_size;
        Ok(Self {
            input_projection: w.get("projector.mm_input_projection_weight", &[v, c.text.hidden_size])?,
            soft_emb_norm: RmsNorm::load(w, "projector.mm_soft_emb_norm.weight", v, c.vision.layer_norm_eps)?,
            patches_per_side: c.vision.patches_per_side(),
            kernel: c.vision.patches_per_side() / c.tokens_per_side(),
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
