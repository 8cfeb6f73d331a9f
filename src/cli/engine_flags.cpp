#include "cli/engine_flags.h"

namespace baton::cli {

void add_engine_flags(CLI::App& app, EngineFlags& f) {
  app.add_option("--model", f.model, "Model folder (config.json + safetensors); default: the embedded default model");
  app.add_option("--load-format", f.load_format,
                 "auto: the model folder's weights; dummy: random weights made from its config.json alone, "
                 "or from a preset named by --model (llama3.1-70b, qwen3-235b-a22b, ...), no weight files")
      ->check(CLI::IsMember({"auto", "dummy"}))
      ->capture_default_str();
  app.add_option("--device", f.device, "Backend device: cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--block-size", f.engine.block_size, "Tokens per KV cache block")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--num-kv-blocks", f.engine.num_kv_blocks, "KV cache blocks (overrides --kv-cache-bytes)")
      ->check(CLI::PositiveNumber);
  app.add_option("--kv-cache-bytes", f.kv_cache_bytes,
                 "Bytes for the KV cache (default: the backend's rule; CPU 1 GiB)")
      ->check(CLI::PositiveNumber);
  app.add_option("--kv-cache-dtype", f.kv_cache_dtype,
                 "What the KV cache stores: auto (the backend's dtype: CPU F32, CUDA BF16) or fp8 (= fp8_e4m3, "
                 "scale 1.0; a byte a value, so 2x the blocks of BF16 in the same memory)")
      ->check(CLI::IsMember({"auto", "fp8", "fp8_e4m3"}))
      ->capture_default_str();
  app.add_option("--max-num-batched-tokens", f.engine.max_num_batched_tokens, "Token budget of one engine step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-num-seqs", f.engine.max_num_seqs, "Running requests at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-model-len", f.engine.max_model_len,
                 "Context length (prompt + output); default: the model's max_position_embeddings")
      ->check(CLI::PositiveNumber);
  app.add_flag_callback(
      "--no-prefix-caching", [&f] { f.engine.enable_prefix_caching = false; }, "Turn prefix caching off");
  app.add_option("--seed", f.engine.seed, "Engine seed: requests without their own seed draw one from it")
      ->capture_default_str();
  app.add_option("--num-threads", f.num_threads, "CPU backend threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--tensor-parallel-size", f.tensor_parallel_size,
                 "Ranks the model is split over (heads, MLP, vocabulary): cpu threads, or one GPU each on cuda")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--enable-expert-parallel", f.enable_expert_parallel,
               "MoE models: spread each layer's routed experts whole over the tensor-parallel ranks (rank r holds "
               "experts [r*E/N, (r+1)*E/N)) instead of slicing every expert; shared experts, dense layers and "
               "attention stay tensor-parallel");
  app.add_option("--gpus", f.gpus,
                 "CUDA: the device of each tensor-parallel rank, e.g. 0,1,2,3 (default: the first "
                 "--tensor-parallel-size visible devices; CUDA_VISIBLE_DEVICES applies)")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber);
  app.add_option("--gpu-memory-utilization", f.gpu_memory_utilization,
                 "CUDA: share of the GPU's memory for weights and KV cache")
      ->check(CLI::Range(0.05, 1.0))
      ->capture_default_str();
  app.add_flag("--batch-invariant", f.batch_invariant,
               "CUDA: a sequence's tokens do not depend on what shares its batch or how its prompt "
               "was chunked (row-invariant GEMMs, one attention kernel); slower");
  app.add_option("--max-waiting-requests", f.engine.max_waiting_requests,
                 "Waiting requests at most (0 = unbounded); beyond it new requests get 503 with Retry-After")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--scripted-output", f.scripted_output,
                 "Testing only: a JSON file [\"text\", ...]; request i writes text i (cycling), whatever the "
                 "model samples")
      ->group("Testing")
      ->check(CLI::ExistingFile);
}

}  // namespace baton::cli
