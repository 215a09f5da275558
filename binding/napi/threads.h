// LibTorch's intra-op thread count is per OS thread under OpenMP (Debian's build starts at 1),
// so the count chosen from JS is stored once and applied on every thread that runs tensor work.
#pragma once

namespace koner::napi {

void SetDesiredThreads(int n);
int DesiredThreads();
// Applies the desired count to the calling thread (cheap when already applied).
void ApplyThreads();

}  // namespace koner::napi
