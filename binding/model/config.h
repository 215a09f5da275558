// The model's shape and options: the native mirror of lib/model/config.ts's ModelConfig (the
// camel-cased, validated config.json). JS validates first; Validate() checks again so that a
// native caller can never build a module from nonsense.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace koner::model {

// None: a pretrained encoder without a tagging head (what `koner pretrain` writes); it cannot
// tag until `koner train` fine-tunes it.
enum class HeadKind { Softmax, Crf, BiLstmCrf, BiGruCrf, None };

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
  // Tag names by id; their count is the number of labels K (none with HeadKind::None).
  std::vector<std::string> labels;
  // Optional parts, all off in a plain (or imported) BERT, so KoBERT loads unchanged:
  // the masked-LM head of pretraining (HF's BertOnlyMLMHead, `cls.predictions.*`, decoder tied to
  // the word embeddings) ...
  bool mlmHead = false;
  // ... the replaced-token-detection head of ELECTRA pretraining (HF's
  // ElectraDiscriminatorPredictions, `discriminator_predictions.*`) ...
  bool rtdHead = false;
  // ... an auxiliary part-of-speech classifier over the last hidden states (`pos_classifier.*`),
  // trained beside the tagging loss, one logit per POS tag name ...
  std::vector<std::string> posLabels;
  // ... and the syllable channel: each piece's syllables embedded
  // (`bert.embeddings.syllable_embeddings`, id 0 = no syllable) and their mean added to the piece
  // embedding. 0 = no channel.
  int64_t syllableVocabSize = 0;

  int64_t numLabels() const { return static_cast<int64_t>(labels.size()); }
};

// "softmax" | "crf" | "bilstm-crf" | "bigru-crf" | "none"; throws std::invalid_argument naming
// `head`.
HeadKind ParseHeadKind(const std::string& name);
const char* HeadKindName(HeadKind head);
bool HasCrf(HeadKind head);

// Throws std::invalid_argument("config.<field>: <problem>") for the first bad field.
void Validate(const ModelConfig& config);

}  // namespace koner::model
