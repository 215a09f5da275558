// The model's shape and options: the native mirror of lib/model/config.ts's ModelConfig (the
// camel-cased, validated config.json). JS validates first; Validate() checks again so that a
// native caller can never build a module from nonsense.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace koner::model {

enum class HeadKind { Softmax, Crf, BiLstmCrf, BiGruCrf };

struct ModelConfig {
  int64_t vocabSize = 8002;
  int64_t hiddenSize = 768;
  int64_t numHiddenLayers = 12;
  int64_t numAttentionHeads = 12;
  int64_t intermediateSize = 3072;
  double hiddenDropoutProb = 0.1;
  double attentionProbsDropoutProb = 0.1;
  int64_t maxPositionEmbeddings = 512;
  int64_t typeVocabSize = 2;
  double layerNormEps = 1e-12;
  double initializerRange = 0.02;
  int64_t padTokenId = 1;
  HeadKind head = HeadKind::Crf;
  int64_t rnnHiddenSize = 384;
  // Tag names by id; their count is the number of labels K.
  std::vector<std::string> labels;

  int64_t numLabels() const { return static_cast<int64_t>(labels.size()); }
};

// "softmax" | "crf" | "bilstm-crf" | "bigru-crf"; throws std::invalid_argument naming `head`.
HeadKind ParseHeadKind(const std::string& name);
const char* HeadKindName(HeadKind head);
bool HasCrf(HeadKind head);

// Throws std::invalid_argument("config.<field>: <problem>") for the first bad field.
void Validate(const ModelConfig& config);

}  // namespace koner::model
