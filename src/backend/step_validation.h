// Structural checks of a StepInput that every backend needs before it trusts
// the batch's indices (backend-specific limits are checked by each backend).
#pragma once

#include "backend/step.h"
#include "common/status.h"

namespace baton {

// Sizes agree: positions and slots per token, query_start from 0 to
// num_tokens, a block table row per sequence. kInvalidArgument naming the field.
Status validate_step_shape(const StepInput& in);

// Sample rows: ascending seq_index inside the batch, each on a sequence with
// tokens this step, each with sampling params. Call after validate_step_shape.
Status validate_sample_rows(const StepInput& in);

}  // namespace baton
