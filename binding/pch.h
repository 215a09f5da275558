// Precompiled for every translation unit of the addon: LibTorch's headers cost ~20 s each.
#pragma once
#include <napi.h>
#include <torch/torch.h>
