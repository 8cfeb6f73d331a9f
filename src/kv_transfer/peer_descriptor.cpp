#include "kv_transfer/peer_descriptor.h"

#include <xxhash.h>

#include <fmt/format.h>

namespace baton {

std::string kv_latent_layout(int kv_lora_rank, int qk_rope_head_dim) {
  return fmt::format("blocks,layers,latent,block_size,latent{}+rope{}", kv_lora_rank, qk_rope_head_dim);
}

namespace {

// The "tp" object of a descriptor (absent: one rank holding every KV head),
// checked against its num_kv_heads.
Result<KvTpLayout> tp_from_json(const Json& j, int num_kv_heads) {
  KvTpLayout tp{1, num_kv_heads, 1};
  auto it = j.find("tp");
  if (it == j.end()) return tp;
  if (!it->is_object()) return invalid_argument("field 'tp' must be an object");
  BATON_ASSIGN_OR_RETURN(tp.tp_size, json_require<int>(*it, "size"));
  BATON_ASSIGN_OR_RETURN(tp.kv_heads_per_rank, json_require<int>(*it, "kv_heads_per_rank"));
  BATON_ASSIGN_OR_RETURN(tp.kv_head_replicas, json_require<int>(*it, "kv_head_replicas"));
  if (tp.tp_size < 1 || tp.kv_heads_per_rank < 1 || tp.kv_head_replicas < 1 || tp.tp_size % tp.kv_head_replicas != 0 ||
      tp.total_kv_heads() != num_kv_heads ||
      static_cast<int64_t>(tp.tp_size) * tp.kv_heads_per_rank !=
          static_cast<int64_t>(num_kv_heads) * tp.kv_head_replicas) {
    return invalid_argument(
        "field 'tp' is inconsistent: {} ranks of {} KV heads, each head on {} ranks, cannot hold {} KV heads",
        tp.tp_size, tp.kv_heads_per_rank, tp.kv_head_replicas, num_kv_heads);
  }
  return tp;
}

}  // namespace

std::string describe_kv_layout(const PeerDescriptor& d) {
  std::string tp = fmt::format("TP={}", d.tp.tp_size);
  if (d.tp.tp_size > 1) {
    tp += fmt::format(" ({} KV head{} per rank", d.tp.kv_heads_per_rank, d.tp.kv_heads_per_rank == 1 ? "" : "s");
    tp += d.tp.kv_head_replicas > 1 ? fmt::format(", each on {} ranks)", d.tp.kv_head_replicas) : std::string(")");
  }
  return fmt::format("model {}, {} {}, {} layers x {} KV heads x {}, block {}, {}",
                     d.model.empty() ? std::string("(unnamed)") : d.model, dtype_name(d.dtype), d.layout, d.num_layers,
                     d.num_kv_heads, d.head_dim, d.block_size, tp);
}

PeerDescriptor PeerDescriptor::from_region(const KvRegionDesc& region, const std::string& engine_id,
                                           const std::string& model) {
  PeerDescriptor d;
  d.engine_id = engine_id;
  d.model = model;
  if (region.layout.is_latent())
    d.layout = kv_latent_layout(region.layout.kv_lora_rank, region.layout.qk_rope_head_dim);
  d.dtype = region.layout.dtype;
  d.num_layers = region.layout.num_layers;
  d.num_kv_heads = region.layout.num_kv_heads;
  d.head_dim = region.layout.head_dim;
  d.block_size = region.layout.block_size;
  d.num_blocks = region.layout.num_blocks;
  d.block_bytes = region.block_bytes();
  d.memory = region.memory;
  d.device_id = region.device_id;
  d.tp = region.tp.kv_heads_per_rank > 0 ? region.tp : KvTpLayout{1, region.layout.num_kv_heads, 1};
  d.compat_hash = d.compute_compat_hash();
  return d;
}

uint64_t PeerDescriptor::compute_compat_hash() const {
  const std::string key = fmt::format("v{}|{}|{}|L{}|H{}|D{}|B{}|{}", protocol_version, layout, dtype_name(dtype),
                                      num_layers, num_kv_heads, head_dim, block_size, block_bytes);
  return XXH64(key.data(), key.size(), 0);
}

Json PeerDescriptor::to_json() const {
  return Json{
      {"protocol_version", protocol_version},
      {"engine_id", engine_id},
      {"host", host},
      {"port", port},
      {"transport", transport},
      {"transport_params", transport_params},
      {"model", model},
      {"layout", layout},
      {"dtype", dtype_name(dtype)},
      {"num_layers", num_layers},
      {"num_kv_heads", num_kv_heads},
      {"head_dim", head_dim},
      {"block_size", block_size},
      {"num_blocks", num_blocks},
      {"block_bytes", block_bytes},
      {"memory", memory_kind_name(memory)},
      {"device_id", device_id},
      {"tp",
       {{"size", tp.tp_size}, {"kv_heads_per_rank", tp.kv_heads_per_rank}, {"kv_head_replicas", tp.kv_head_replicas}}},
      {"compat_hash", fmt::format("{:016x}", compat_hash)}};
}

namespace {

// The names dtype_name writes: parse_dtype's, and F8_E4M3 (--kv-cache-dtype fp8).
Result<DType> parse_wire_dtype(const std::string& name) {
  if (name == dtype_name(DType::kF8E4M3)) return DType::kF8E4M3;
  return parse_dtype(name);
}

}  // namespace

Result<PeerDescriptor> PeerDescriptor::from_json(const Json& j) {
  PeerDescriptor d;
  BATON_ASSIGN_OR_RETURN(d.protocol_version, json_require<int>(j, "protocol_version"));
  BATON_ASSIGN_OR_RETURN(d.engine_id, json_require<std::string>(j, "engine_id"));
  BATON_ASSIGN_OR_RETURN(d.host, json_get<std::string>(j, "host", ""));
  BATON_ASSIGN_OR_RETURN(d.port, json_get<int>(j, "port", 0));
  BATON_ASSIGN_OR_RETURN(d.transport, json_require<std::string>(j, "transport"));
  if (auto it = j.find("transport_params"); it != j.end() && it->is_object()) {
    d.transport_params = *it;
  }
  BATON_ASSIGN_OR_RETURN(d.model, json_get<std::string>(j, "model", ""));
  BATON_ASSIGN_OR_RETURN(d.layout, json_require<std::string>(j, "layout"));
  BATON_ASSIGN_OR_RETURN(std::string dtype, json_require<std::string>(j, "dtype"));
  BATON_ASSIGN_OR_RETURN(d.dtype, parse_wire_dtype(dtype));
  BATON_ASSIGN_OR_RETURN(d.num_layers, json_require<int>(j, "num_layers"));
  BATON_ASSIGN_OR_RETURN(d.num_kv_heads, json_require<int>(j, "num_kv_heads"));
  BATON_ASSIGN_OR_RETURN(d.head_dim, json_require<int>(j, "head_dim"));
  BATON_ASSIGN_OR_RETURN(d.block_size, json_require<int>(j, "block_size"));
  BATON_ASSIGN_OR_RETURN(d.num_blocks, json_require<int64_t>(j, "num_blocks"));
  BATON_ASSIGN_OR_RETURN(d.block_bytes, json_require<uint64_t>(j, "block_bytes"));
  BATON_ASSIGN_OR_RETURN(std::string memory, json_get<std::string>(j, "memory", "host"));
  if (memory == "host") {
    d.memory = MemoryKind::kHost;
  } else if (memory == "device") {
    d.memory = MemoryKind::kDevice;
  } else {
    return invalid_argument("field 'memory' must be 'host' or 'device', got '{}'", memory);
  }
  BATON_ASSIGN_OR_RETURN(d.device_id, json_get<int>(j, "device_id", -1));
  BATON_ASSIGN_OR_RETURN(d.tp, tp_from_json(j, d.num_kv_heads));
  BATON_ASSIGN_OR_RETURN(std::string hash, json_require<std::string>(j, "compat_hash"));
  try {
    size_t used = 0;
    d.compat_hash = std::stoull(hash, &used, 16);
    if (used != hash.size()) throw std::invalid_argument("trailing characters");
  } catch (const std::exception&) {
    return invalid_argument("field 'compat_hash' is not a hex number: '{}'", hash);
  }
  return d;
}

namespace {

template <typename T>
Status field_mismatch(const char* field, const PeerDescriptor& local, const PeerDescriptor& remote,
                      const T& local_value, const T& remote_value) {
  return failed_precondition(
      "KV peer '{}' is incompatible: {} differs (local {}, remote {}); local layout: {}; "
      "remote layout: {}",
      remote.engine_id, field, local_value, remote_value, describe_kv_layout(local), describe_kv_layout(remote));
}

}  // namespace

Status check_peer_region_within(const PeerDescriptor& remote, uint64_t offset, uint64_t available,
                                std::string_view transport) {
  const uint64_t blocks = remote.num_blocks < 0 ? 0 : static_cast<uint64_t>(remote.num_blocks);
  const uint64_t bytes = blocks * remote.block_bytes;
  const bool overflow = remote.block_bytes != 0 && bytes / remote.block_bytes != blocks;
  if (remote.num_blocks < 0 || overflow || offset > available || bytes > available - offset) {
    return invalid_argument("{}: peer '{}' names {} blocks of {} bytes at offset {} of {} bytes it can serve",
                            transport, remote.engine_id, remote.num_blocks, remote.block_bytes, offset, available);
  }
  return Status::ok();
}

Status check_compatible(const PeerDescriptor& local, const PeerDescriptor& remote) {
  if (local.protocol_version != remote.protocol_version) {
    return field_mismatch("protocol_version", local, remote, local.protocol_version, remote.protocol_version);
  }
  if (local.transport != remote.transport) {
    return field_mismatch("transport", local, remote, local.transport, remote.transport);
  }
  if (!local.model.empty() && !remote.model.empty() && local.model != remote.model) {
    return field_mismatch("model", local, remote, local.model, remote.model);
  }
  if (local.layout != remote.layout) return field_mismatch("layout", local, remote, local.layout, remote.layout);
  if (local.dtype != remote.dtype) {
    return field_mismatch("KV cache dtype (--kv-cache-dtype)", local, remote, std::string(dtype_name(local.dtype)),
                          std::string(dtype_name(remote.dtype)));
  }
  if (local.num_layers != remote.num_layers) {
    return field_mismatch("num_layers", local, remote, local.num_layers, remote.num_layers);
  }
  if (local.num_kv_heads != remote.num_kv_heads) {
    return field_mismatch("num_kv_heads", local, remote, local.num_kv_heads, remote.num_kv_heads);
  }
  if (local.head_dim != remote.head_dim) {
    return field_mismatch("head_dim", local, remote, local.head_dim, remote.head_dim);
  }
  if (local.block_size != remote.block_size) {
    return field_mismatch("block_size", local, remote, local.block_size, remote.block_size);
  }
  if (local.block_bytes != remote.block_bytes) {
    return field_mismatch("block_bytes", local, remote, local.block_bytes, remote.block_bytes);
  }
  if (remote.compat_hash != remote.compute_compat_hash()) {
    return failed_precondition(
        "KV peer '{}' is incompatible: compat_hash {:016x} does not match its own fields "
        "({:016x})",
        remote.engine_id, remote.compat_hash, remote.compute_compat_hash());
  }
  if (local.compat_hash != remote.compat_hash) {
    return failed_precondition("KV peer '{}' is incompatible: compat_hash differs (local {:016x}, remote {:016x})",
                               remote.engine_id, local.compat_hash, remote.compat_hash);
  }
  return Status::ok();
}

}  // namespace baton
