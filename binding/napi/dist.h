// The JS `DistGroup` (binding/napi/dist.cc) as C++: native code that takes a DistGroup argument
// (the training step, to all-reduce its gradients) unwraps it to the koner::dist::Group inside.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "dist/group.h"

namespace koner::napi {

// The group of a DistGroup object; throws a TypeError naming `what` when `value` is not one, and
// an Error when it was destroyed. The pointer lives as long as the JS object: work that outlives
// the call (a Promise worker) should hold SharedGroup's pointer instead.
dist::Group* UnwrapGroup(Napi::Value value, const std::string& what = "group");
std::shared_ptr<dist::Group> SharedGroup(Napi::Value value, const std::string& what = "group");

}  // namespace koner::napi
