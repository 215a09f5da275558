#include "train/rng.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>
#include <c10/util/Exception.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace koner::train {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64(const uint8_t* data, size_t n) {
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t chunk = (uint32_t{data[i]} << 16) |
                           (i + 1 < n ? uint32_t{data[i + 1]} << 8 : 0) |
                           (i + 2 < n ? uint32_t{data[i + 2]} : 0);
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += i + 1 < n ? kAlphabet[(chunk >> 6) & 63] : '=';
    out += i + 2 < n ? kAlphabet[chunk & 63] : '=';
  }
  return out;
}

// Strict: canonical padding, no whitespace, so that a truncated or edited state is refused
// rather than half-read.
std::vector<uint8_t> FromBase64(const std::string& text) {
  auto fail = [](const std::string& why) {
    throw std::invalid_argument("rng state: not valid base64 (" + why + ")");
  };
  if (text.size() % 4 != 0) fail("length not a multiple of 4");
  int8_t value[256];
  std::fill(std::begin(value), std::end(value), int8_t{-1});
  for (int i = 0; i < 64; ++i) value[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
  std::vector<uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int padding = 0;
    uint32_t chunk = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && last && j >= 2) {
        ++padding;
        chunk <<= 6;
        continue;
      }
      if (padding > 0 || value[static_cast<uint8_t>(c)] < 0) {
        fail("unexpected character at " + std::to_string(i + j));
      }
      chunk = (chunk << 6) | static_cast<uint32_t>(value[static_cast<uint8_t>(c)]);
    }
    out.push_back(static_cast<uint8_t>(chunk >> 16));
    if (padding < 2) out.push_back(static_cast<uint8_t>(chunk >> 8));
    if (padding < 1) out.push_back(static_cast<uint8_t>(chunk));
  }
  return out;
}

}  // namespace

std::string CpuRngState() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  auto state = generator.get_state().contiguous();
  return Base64(state.data_ptr<uint8_t>(), static_cast<size_t>(state.numel()));
}

void SetCpuRngState(const std::string& text) {
  auto bytes = FromBase64(text);
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  const int64_t expected = generator.get_state().numel();
  if (static_cast<int64_t>(bytes.size()) != expected) {
    throw std::invalid_argument("rng state: " + std::to_string(bytes.size()) +
                                " bytes, but this LibTorch's CPU generator state has " +
                                std::to_string(expected));
  }
  auto state = torch::from_blob(bytes.data(), {expected}, torch::kUInt8).clone();
  try {
    generator.set_state(state);
  } catch (const c10::Error& e) {
    throw std::invalid_argument(std::string("rng state: refused by LibTorch: ") +
                                e.what_without_backtrace());
  }
}

}  // namespace koner::train
