#include "model/config.h"

#include <cmath>
#include <stdexcept>

namespace koner::model {
namespace {

[[noreturn]] void Bad(const std::string& field, const std::string& problem) {
  throw std::invalid_argument("config." + field + ": " + problem);
}

void AtLeast(const std::string& field, int64_t value, int64_t min) {
  if (value < min) {
    Bad(field, "must be an integer >= " + std::to_string(min) + ", got " + std::to_string(value));
  }
}

void Probability(const std::string& field, double value) {
  if (!(value >= 0 && value < 1)) Bad(field, "must be a number in [0, 1)");
}

void Positive(const std::string& field, double value) {
  if (!(value > 0) || !std::isfinite(value)) Bad(field, "must be a positive number");
}

}  // namespace

HeadKind ParseHeadKind(const std::string& name) {
  if (name == "softmax") return HeadKind::Softmax;
  if (name == "crf") return HeadKind::Crf;
  if (name == "bilstm-crf") return HeadKind::BiLstmCrf;
  if (name == "bigru-crf") return HeadKind::BiGruCrf;
  if (name == "none") return HeadKind::None;
  Bad("head", "must be one of softmax, crf, bilstm-crf, bigru-crf, none, got \"" + name + "\"");
}

const char* HeadKindName(HeadKind head) {
  switch (head) {
    case HeadKind::Softmax:
      return "softmax";
    case HeadKind::Crf:
      return "crf";
    case HeadKind::BiLstmCrf:
      return "bilstm-crf";
    case HeadKind::BiGruCrf:
      return "bigru-crf";
    case HeadKind::None:
      return "none";
  }
  return "?";
}

bool HasCrf(HeadKind head) { return head != HeadKind::Softmax && head != HeadKind::None; }

void Validate(const ModelConfig& c) {
  AtLeast("vocabSize", c.vocabSize, 1);
  AtLeast("hiddenSize", c.hiddenSize, 1);
  AtLeast("numHiddenLayers", c.numHiddenLayers, 1);
  AtLeast("numAttentionHeads", c.numAttentionHeads, 1);
  if (c.hiddenSize % c.numAttentionHeads != 0) {
    Bad("numAttentionHeads", "(" + std::to_string(c.numAttentionHeads) +
                                 ") must divide hiddenSize (" + std::to_string(c.hiddenSize) + ")");
  }
  AtLeast("intermediateSize", c.intermediateSize, 1);
  Probability("hiddenDropoutProb", c.hiddenDropoutProb);
  Probability("attentionProbsDropoutProb", c.attentionProbsDropoutProb);
  AtLeast("maxPositionEmbeddings", c.maxPositionEmbeddings, 1);
  AtLeast("typeVocabSize", c.typeVocabSize, 1);
  Positive("layerNormEps", c.layerNormEps);
  Positive("initializerRange", c.initializerRange);
  AtLeast("padTokenId", c.padTokenId, 0);
  if (c.padTokenId >= c.vocabSize) {
    Bad("padTokenId", "(" + std::to_string(c.padTokenId) + ") must be below vocabSize (" +
                          std::to_string(c.vocabSize) + ")");
  }
  AtLeast("rnnHiddenSize", c.rnnHiddenSize, 1);
  if (c.head == HeadKind::None) {
    if (!c.labels.empty()) Bad("labels", "must be empty for head none (an encoder without tags)");
  } else if (c.labels.empty()) {
    Bad("labels", "must name at least one tag");
  }
  for (size_t i = 0; i < c.labels.size(); ++i) {
    if (c.labels[i].empty()) Bad("labels", "entry " + std::to_string(i) + " is empty");
  }
  for (size_t i = 0; i < c.posLabels.size(); ++i) {
    if (c.posLabels[i].empty()) Bad("posLabels", "entry " + std::to_string(i) + " is empty");
  }
  if (c.syllableVocabSize < 0 || c.syllableVocabSize == 1) {
    Bad("syllableVocabSize",
        "must be 0 (no syllable channel) or >= 2, got " + std::to_string(c.syllableVocabSize));
  }
}

}  // namespace koner::model
