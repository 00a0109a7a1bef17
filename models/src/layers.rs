//! Building blocks shared by the text and vision towers.

use tch::{Kind, Tensor};

use crate::error::Result;
use crate::weights::{Quantization, Weights};

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
    weight: LinearWeight,
    bias: Option<Tensor>,
}

enum LinearWeight {
    /// In the engine's dtype.
    Dense(Tensor),
    /// Symmetric int8 per output channel, w ≈ q · scale[out]: a quarter of f32's bytes, multiplied by
    /// libtorch's `_weight_int8pack_mm` without widening the weight.
    Int8 { q: Tensor, scales: Tensor },
}

/// Beyond this many rows (tokens) at once, an int8 product widens the weight and runs as a dense GEMM.
const INT8_KERNEL_MAX_ROWS: i64 = 16;

/// Rows quantized at a time: the f32 temporaries of a large matrix stay a few MB.
const QUANTIZE_ROWS: i64 = 4096;

/// Per-row symmetric int8 of `w` ([rows, columns], f32): (q int8, scales f32 [rows]).
fn quantize_int8(w: &Tensor) -> (Tensor, Tensor) {
    let rows = w.size()[0];
    let (mut qs, mut scales) = (Vec::new(), Vec::new());
    for start in (0..rows).step_by(QUANTIZE_ROWS as usize) {
        let chunk = w.narrow(0, start, QUANTIZE_ROWS.min(rows - start));
        // An all-zero row gets scale 1 (its q is 0 either way) rather than a division by zero.
        let scale = chunk.abs().amax([1], false) / 127.0;
        let scale = scale.where_scalarother(&scale.gt(0.0), 1.0);
        qs.push((&chunk / scale.unsqueeze(1)).round().clamp(-127.0, 127.0).to_kind(Kind::Int8));
        scales.push(scale);
    }
    (Tensor::cat(&qs, 0), Tensor::cat(&scales, 0))
}

impl Linear {
    pub fn load(w: &Weights, prefix: &str, input: i64, output: i64, bias: bool) -> Result<Self> {
        let name = format!("{prefix}.weight");
        let weight = match w.quantization_of(&name) {
            Quantization::None => LinearWeight::Dense(w.get(&name, &[output, input])?),
            Quantization::Int8 => {
                let (q, scales) = quantize_int8(&w.get_as(&name, &[output, input], Kind::Float)?);
                LinearWeight::Int8 { q: q.to_device(w.device), scales: scales.to_device(w.device).to_kind(w.kind) }
            }
        };
        let bias = if bias { Some(w.get(&format!("{prefix}.bias"), &[output])?) } else { None };
        Ok(Self { weight, bias })
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        match &self.weight {
            LinearWeight::Dense(weight) => x.linear(weight, self.bias.as_ref()),
            LinearWeight::Int8 { q, scales } => {
                // The kernel takes a matrix: [..., input] flattened to rows and back.
                let mut shape = x.size();
                let input = shape.pop().expect("x has a feature dimension");
                let rows = x.reshape([-1, input]);
                let out = if rows.size()[0] > INT8_KERNEL_MAX_ROWS {
                    // A prompt: libtorch's int8 kernel is a matrix–vector loop, 25× slower than the dense
                    // GEMM here for 600 rows, so the weight is widened for this one product.
                    rows.matmul(&(q.to_kind(scales.kind()) * scales.unsqueeze(1)).tr())
                } else {
                    rows.internal_weight_int8pack_mm(q, scales)
                };
                shape.push(out.size()[1]);
                let out = out.reshape(shape.as_slice());
                match &self.bias {
                    Some(bias) => out + bias,
                    None => out,
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn random(rows: i64, columns: i64) -> Tensor {
        tch::manual_seed(7);
        Tensor::randn([rows, columns], (Kind::Float, tch::Device::Cpu))
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// libtorch's int8 kernel computes with exactly the dequantized weight q · scale.
    #[test]
    fn int8_forward_uses_the_dequantized_weight() {
        let w = random(48, 64);
        let (q, scales) = quantize_int8(&w);
        let dequantized = q.to_kind(Kind::Float) * scales.unsqueeze(1);
        assert!(max_diff(&dequantized, &w) <= scales.max().double_value(&[]) / 2.0 + 1e-6, "rounding error");
        let layer = Linear { weight: LinearWeight::Int8 { q, scales }, bias: None };
        // Both paths: the kernel for a few rows (decoding), the widened weight for many (a prompt).
        for rows in [3, 40] {
            let x = Tensor::randn([2, rows, 64], (Kind::Float, tch::Device::Cpu));
            assert!(max_diff(&layer.forward(&x), &x.linear(&dequantized, None::<&Tensor>)) < 1e-4, "{rows} rows");
        }
    }
}
