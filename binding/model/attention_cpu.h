// BERT's self-attention for inference on the CPU, in one pass over each (sentence, head): the
// scores, the additive mask, the softmax and the weighted sum of values, read straight from the
// rows of the fused query|key|value projection and written straight into [B, T, H] (no per-head
// transposes, no [B, heads, T, T] tensors). Keys past the last unmasked one are skipped: their
// weight is exactly 0 in HF's softmax too (exp(lowest - max) underflows), so the result is the
// same numbers without the padding's work. Float32 throughout.
#pragma once
#include <torch/torch.h>

namespace koner::model {

// qkv [B, T, 3H] float32 contiguous (each row: query, key, value, every one `heads` slices of
// H / heads); additiveMask [B, T] (0 for a piece to attend to, the dtype's lowest value for
// padding) in any floating dtype. Returns the context [B, T, H].
torch::Tensor FusedSelfAttention(const torch::Tensor& qkv, const torch::Tensor& additiveMask,
                                 int64_t heads);

}  // namespace koner::model
