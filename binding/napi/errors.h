// Every native entry point runs its body through Guard so that LibTorch and C++ exceptions
// reach JS as Errors (never an abort), with LibTorch's message but not its C++ backtrace.
#pragma once
#include <c10/util/Exception.h>
#include <napi.h>

#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

namespace koner::napi {

// Thrown by argument validation; maps to a JS TypeError.
struct TypeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// The message of an exception in flight, without the C++ backtrace LibTorch appends.
inline std::string MessageOf(const std::exception& e) {
  if (auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

inline std::string CurrentExceptionMessage() {
  try {
    throw;
  } catch (const std::exception& e) {
    return MessageOf(e);
  } catch (...) {
    return "unknown native error";
  }
}

template <typename F>
auto Guard(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const TypeError& e) {
    throw Napi::TypeError::New(env, e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, MessageOf(e));
  } catch (...) {
    throw Napi::Error::New(env, "unknown native error");
  }
}

}  // namespace koner::napi
