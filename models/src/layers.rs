//! Building blocks shared by the text and vision towers.

use tch::{Kind, Tensor};

use crate::error::Result;
use crate::weights::Weights;

/// Gemma RMSNorm: computed in f32, scaled by (1 + w), cast back to the input dtype.
pub struct RmsNorm {
    /// 1 + w, in f32.
    scale: Tensor,
    eps: f64,
}

impl RmsNorm {
    pub fn load(w: &Weights, prefix: &str, dim: i64, eps: f64) -> Result<Self> {
        Ok(Self { scale: w.get(&format!("{prefix}.weight"), &[dim])?.to_kind(Kind::Float) + 1.0, eps })
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let xf = x.to_kind(Kind::Float);
        let normed = &xf * (xf.square().mean_dim(-1, true, Kind::Float) + self.eps).rsqrt();
        (normed * &self.scale).to_kind(x.kind())
    }
}

/// nn.Linear; the weight is stored output × input as in the checkpoint.
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn load(w: &Weights, prefix: &str, input: i64, output: i64, bias: bool) -> Result<Self> {
        let weight = w.get(&format!("{prefix}.weight"), &[output, input])?;
        let bias = if bias { Some(w.get(&format!("{prefix}.bias"), &[output])?) } else { None };
        Ok(Self { weight, bias })
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, self.bias.as_ref())
    }
}

/// nn.LayerNorm with weight and bias.
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    dim: i64,
    eps: f64,
}

impl LayerNorm {
    pub fn load(w: &Weights, prefix: &str, dim: i64, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: w.get(&format!("{prefix}.weight"), &[dim])?,
            bias: w.get(&format!("{prefix}.bias"), &[dim])?,
            dim,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm([self.dim], Some(&self.weight), Some(&self.bias), self.eps, true)
    }
}

/// GELU with the tanh approximation (`gelu_pytorch_tanh`), used by both towers.
pub fn gelu_tanh(x: &Tensor) -> Tensor {
    x.gelu("tanh")
}
