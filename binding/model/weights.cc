#include "model/weights.h"

#include <set>
#include <sstream>
#include <stdexcept>

namespace koner::model {
namespace {

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Keys that some checkpoints carry and token classification never uses: HF saved the
// position_ids buffer until 4.31, and BertModel-based exports include the pooler.
bool Ignorable(const std::string& key) {
  return EndsWith(key, "embeddings.position_ids") || StartsWith(key, "pooler.") ||
         StartsWith(key, "bert.pooler.");
}

std::string Shape(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

void List(std::ostringstream& out, const char* what, const std::vector<std::string>& items) {
  if (items.empty()) return;
  out << "\n  " << what << " (" << items.size() << "): ";
  for (size_t i = 0; i < items.size(); ++i) out << (i ? ", " : "") << items[i];
}

}  // namespace

LoadReport LoadWeights(NerModelImpl& model, const std::map<std::string, torch::Tensor>& tensors,
                       const std::string& where) {
  LoadReport report;
  bool anyPrefixed = false, anyEncoder = false;
  for (const auto& [key, _] : tensors) {
    anyPrefixed |= StartsWith(key, "bert.");
    anyEncoder |= StartsWith(key, "embeddings.") || StartsWith(key, "encoder.");
  }
  report.kind = !anyPrefixed && anyEncoder ? LoadReport::Kind::Encoder : LoadReport::Kind::Model;
  const std::string prefix = report.kind == LoadReport::Kind::Encoder ? "bert." : "";

  auto params = model.named_parameters(/*recurse=*/true);
  std::vector<std::string> missing, unexpected, mismatched;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (parameter, source)
  std::set<std::string> used;
  for (const auto& item : params) {
    const std::string& name = item.key();
    if (report.kind == LoadReport::Kind::Encoder && !StartsWith(name, "bert.")) continue;
    const std::string key = name.substr(prefix.size());
    auto found = tensors.find(key);
    if (found == tensors.end()) {
      // A syllable channel added to a pretrained encoder that had none starts at zero
      // (BertEmbeddings::ResetSyllables): the encoder then computes exactly what it did.
      if (report.kind == LoadReport::Kind::Encoder && EndsWith(key, "syllable_embeddings.weight")) {
        continue;
      }
      missing.push_back(key);
      continue;
    }
    used.insert(key);
    const torch::Tensor& source = found->second;
    if (!source.is_floating_point()) {
      mismatched.push_back(key + ": dtype " + std::string(c10::toString(source.scalar_type())) +
                           " is not floating point");
    } else if (source.sizes() != item.value().sizes()) {
      mismatched.push_back(key + ": file " + Shape(source) + " vs model " + Shape(item.value()));
    } else {
      copies.emplace_back(item.value(), source);
    }
  }
  for (const auto& [key, _] : tensors) {
    if (used.count(key)) continue;
    if (Ignorable(key)) {
      report.ignored.push_back(key);
    } else {
      unexpected.push_back(key);
    }
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    const auto& c = model.config();
    std::ostringstream msg;
    msg << where << ": the weights do not fit the model (head " << HeadKindName(c.head) << ", "
        << c.numHiddenLayers << " layers, hidden " << c.hiddenSize << ", vocab " << c.vocabSize
        << ", " << c.numLabels() << " labels; read as "
        << (report.kind == LoadReport::Kind::Encoder ? "a plain BERT encoder" : "a full model")
        << ")";
    List(msg, "missing", missing);
    List(msg, "unexpected", unexpected);
    List(msg, "shape mismatch", mismatched);
    throw std::runtime_error(msg.str());
  }
  torch::NoGradGuard noGrad;
  for (auto& [param, source] : copies) param.copy_(source);
  return report;
}

std::map<std::string, torch::Tensor> WeightsOf(NerModelImpl& model,
                                               std::optional<torch::ScalarType> dtype) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    auto t = item.value().detach().to(torch::kCPU);
    if (dtype && t.is_floating_point()) t = t.to(*dtype);
    out.emplace(item.key(), t.contiguous());
  }
  return out;
}

}  // namespace koner::model
