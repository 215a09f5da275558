// A small strict JSON reader for safetensors headers: no dependency beyond the standard library,
// bounded nesting (a header of 100 MB of '[' must be an error, not a stack overflow), and
// numbers kept as their literal text so that 64-bit offsets lose no precision.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace koner::io {

struct Json {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  // A string's value (UTF-8), or a number's literal text.
  std::string text;
  // Array items, or object values (in file order, duplicates kept so callers can reject them).
  std::vector<Json> items;
  std::vector<std::string> keys;  // object keys, parallel to items

  // The value of a non-negative integer literal that fits in int64 (no sign, fraction or exponent).
  std::optional<int64_t> AsIndex() const;
};

// Parses a whole document (surrounding whitespace allowed). Throws std::runtime_error with the
// byte offset and the problem; nesting deeper than maxDepth is an error.
Json ParseJson(std::string_view text, int maxDepth = 64);

// Appends `s` as a JSON string literal (quoted, escaped) to `out`.
void AppendJsonString(std::string& out, std::string_view s);

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool IsValidUtf8(std::string_view s);

}  // namespace koner::io
