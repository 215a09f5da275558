// LibTorch's default CPU generator (dropout masks on the CPU, initial weights) as a string, so
// that a resumed run continues the same random stream as an uninterrupted one. The string is the
// base64 of the generator's state tensor: opaque, but portable between processes of one
// LibTorch version.
#pragma once
#include <string>

namespace koner::train {

std::string CpuRngState();
// Throws std::invalid_argument when `state` is not base64 of a state this LibTorch produces.
void SetCpuRngState(const std::string& state);

}  // namespace koner::train
