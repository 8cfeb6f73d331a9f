// The tensors a Hugging Face checkpoint of an architecture holds: names and
// shapes (HF Linear weights are [out_features, in_features]). One list for the
// random-checkpoint writer, for checkpoint validation and for backends.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/model_config.h"
#include "model/tensor.h"

namespace baton {

class Checkpoint;

enum class WeightInit { kNormal, kOnes };  // how a random checkpoint fills it

struct WeightSpec {
  std::string name;
  std::vector<int64_t> shape;
  WeightInit init = WeightInit::kNormal;

  int64_t num_elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Every tensor of the model in HF order: embeddings, layers, final norm, lm_head.
std::vector<WeightSpec> expected_weights(const ModelConfig& config);

// Names for one layer's tensors, e.g. layer_weight_name(3, "self_attn.q_proj.weight").
std::string layer_weight_name(int layer, const std::string& suffix);
std::string expert_weight_name(int layer, int expert, const std::string& proj);  // proj: gate_proj, up_proj, down_proj

// Checks that the checkpoint holds every expected tensor with its shape; the
// first problem is returned (kNotFound for a missing one, kInvalidArgument
// for a wrong shape), naming the tensor.
Status validate_weights(const Checkpoint& checkpoint);

}  // namespace baton
