#include "instance/engine_builder.h"

#include <filesystem>

#include "backend/backend_factory.h"
#include "backend/scripted_backend.h"
#include "common/files.h"
#include "common/json.h"
#include "common/log.h"
#include "engine/tokenizer_detokenizer.h"
#include "model/default_model.h"
#include "model/dummy_checkpoint.h"

namespace baton::instance {

namespace {

// The scripted outputs of --scripted-output as token ids.
Result<std::vector<std::vector<int32_t>>> read_scripts(const std::string& path, const Tokenizer* tokenizer) {
  if (!tokenizer) return invalid_argument("--scripted-output needs a model with a tokenizer");
  BATON_ASSIGN_OR_RETURN(Json texts, read_json_file(path));
  if (!texts.is_array() || texts.empty()) {
    return invalid_argument("{}: expected a non-empty JSON array of strings", path);
  }
  std::vector<std::vector<int32_t>> scripts;
  for (const Json& t : texts) {
    if (!t.is_string()) return invalid_argument("{}: every element must be a string, got {}", path, t.type_name());
    BATON_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokenizer->encode(t.get<std::string>(), false));
    scripts.push_back(std::move(ids));
  }
  return scripts;
}

struct Parts {
  std::string model_dir;
  std::unique_ptr<Checkpoint> checkpoint;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::unique_ptr<EngineCore> core;
};

// The model's weights: its folder's, or dummy ones (--load-format dummy).
Status open_checkpoint(const EngineBuildOptions& flags, Parts& p) {
  if (flags.load_format == "dummy") {
    BATON_ASSIGN_OR_RETURN(DummyModelSource source, resolve_dummy_model(flags.model));
    BATON_LOG_WARN(
        "--load-format dummy: random weights for {} made in memory, no weight file read: its output is noise",
        source.name);
    p.model_dir = source.dir;
    p.checkpoint = make_dummy_checkpoint(std::move(source.config), source.dir, flags.engine.seed);
    return Status::ok();
  }
  if (flags.load_format != "auto") {
    return invalid_argument("--load-format must be auto or dummy (got '{}')", flags.load_format);
  }
  BATON_ASSIGN_OR_RETURN(p.model_dir, resolve_model_dir(flags.model));
  // The CUDA backend computes FP8 checkpoints in FP8 (the weights stay e4m3);
  // the CPU backend, the reference, reads them dequantised.
  CheckpointOpenOptions open_options;
  open_options.dequantize_fp8 = flags.device != "cuda";
  BATON_ASSIGN_OR_RETURN(p.checkpoint, Checkpoint::open(p.model_dir, open_options));
  return Status::ok();
}

Result<Parts> build_parts(const EngineBuildOptions& flags) {
  Parts p;
  BATON_RETURN_IF_ERROR(open_checkpoint(flags, p));
  BackendOptions bo;
  bo.num_threads = flags.num_threads;
  bo.cpu_kv_cache_bytes = static_cast<size_t>(flags.kv_cache_bytes);
  bo.gpu_memory_utilization = flags.gpu_memory_utilization;
  bo.batch_invariant = flags.batch_invariant;
  BATON_ASSIGN_OR_RETURN(bo.kv_cache_dtype, parse_kv_cache_dtype(flags.kv_cache_dtype));
  bo.tensor_parallel_size = flags.tensor_parallel_size;
  bo.enable_expert_parallel = flags.enable_expert_parallel;
  bo.gpus = flags.gpus;
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, make_backend(flags.device, *p.checkpoint, bo));
  std::shared_ptr<const Detokenizer> detok;
  if (!p.model_dir.empty() && path_exists(std::filesystem::path(p.model_dir) / "tokenizer.json")) {
    auto tok = Tokenizer::load(p.model_dir);
    if (!tok.is_ok()) return tok.status().with_context("loading the tokenizer of " + p.model_dir);
    p.tokenizer = std::shared_ptr<const Tokenizer>(std::move(tok).value());
    detok = std::make_shared<TokenizerDetokenizer>(p.tokenizer);
  } else {
    BATON_LOG_WARN("{} has no tokenizer.json: token ids only (no text, no stop strings)", p.model_dir);
  }
  if (!flags.scripted_output.empty()) {
    BATON_ASSIGN_OR_RETURN(auto scripts, read_scripts(flags.scripted_output, p.tokenizer.get()));
    const auto& eos = p.checkpoint->config().eos_token_ids;
    if (eos.empty()) return invalid_argument("--scripted-output needs a model with an EOS token id");
    BATON_LOG_WARN("--scripted-output {}: outputs are scripted, not sampled (a test hook)", flags.scripted_output);
    backend = std::make_unique<ScriptedBackend>(std::move(backend), std::move(scripts), eos.front());
  }
  EngineOptions opts = flags.engine;
  opts.kv_cache_bytes = static_cast<size_t>(flags.kv_cache_bytes);
  BATON_ASSIGN_OR_RETURN(p.core, EngineCore::create(std::move(backend), std::move(detok), opts));
  return p;
}

}  // namespace

LoadedEngine::~LoadedEngine() {
  engine.reset();  // joins the engine thread before the checkpoint goes
}

LoadedCore::~LoadedCore() { core.reset(); }

Result<std::unique_ptr<LoadedEngine>> build_engine(const EngineBuildOptions& flags, const CoreConfigurer& configure) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<LoadedCore> c, build_engine_core(flags));
  if (configure) BATON_RETURN_IF_ERROR(configure(*c));
  auto e = std::make_unique<LoadedEngine>();
  e->model_dir = std::move(c->model_dir);
  e->checkpoint = std::move(c->checkpoint);
  e->tokenizer = std::move(c->tokenizer);
  e->engine = std::make_unique<AsyncEngine>(std::move(c->core));
  return e;
}

Result<std::unique_ptr<LoadedCore>> build_engine_core(const EngineBuildOptions& flags) {
  BATON_ASSIGN_OR_RETURN(Parts p, build_parts(flags));
  auto e = std::make_unique<LoadedCore>();
  e->model_dir = std::move(p.model_dir);
  e->checkpoint = std::move(p.checkpoint);
  e->tokenizer = std::move(p.tokenizer);
  e->core = std::move(p.core);
  return e;
}

}  // namespace baton::instance
