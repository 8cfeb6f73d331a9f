// PeerDescriptor: what two transfer engines exchange before moving KV
// (through the KV agent's control channel). The reading side refuses a peer
// whose KV layout differs, naming the field.
#pragma once

#include <cstdint>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "kv_transfer/kv_region.h"

namespace baton {

// Bumped when the wire protocol or the descriptor changes incompatibly.
inline constexpr int kKvTransferProtocolVersion = 1;
// The block layout of K and V (kv/kv_layout.h). A latent (MLA) cache is
// named by kv_latent_layout(): its row's split into latent and rope dims is
// part of what two peers must agree on.
inline constexpr const char* kKvBlockLayout = "blocks,layers,kv,block_size,kv_heads,head_dim";
std::string kv_latent_layout(int kv_lora_rank, int qk_rope_head_dim);

struct PeerDescriptor {
  int protocol_version = kKvTransferProtocolVersion;
  std::string engine_id;
  std::string host;  // where the peer's KV agent listens
  int port = 0;
  std::string transport;                   // "local", "shm", "tcp", "cuda_ipc"
  Json transport_params = Json::object();  // transport-specific (shm name, IPC handle, ...)
  std::string model;                       // model identity (name or hash); empty = not checked
  std::string layout = kKvBlockLayout;
  DType dtype = DType::kBF16;
  int num_layers = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int block_size = 0;
  int64_t num_blocks = 0;
  uint64_t block_bytes = 0;
  MemoryKind memory = MemoryKind::kHost;
  int device_id = -1;
  // The peer's tensor-parallel layout ("tp" in JSON; absent: TP=1). The
  // blocks it serves or reads are in the wire layout (num_kv_heads: every
  // model KV head once) whatever its TP, so two peers' TP may differ.
  KvTpLayout tp{1, 0, 1};
  uint64_t compat_hash = 0;  // over layout, dtype and shape (not model, not num_blocks, not tp)

  // Fills the layout fields and compat_hash from a region.
  static PeerDescriptor from_region(const KvRegionDesc& region, const std::string& engine_id, const std::string& model);
  uint64_t compute_compat_hash() const;

  Json to_json() const;
  static Result<PeerDescriptor> from_json(const Json& j);
};

// A field of a peer's transport_params, typed: `fallback` when absent or
// null, an error naming the peer and the field when it has another type (a
// peer's descriptor is input: its fields must not throw).
template <typename T>
Result<T> transport_param(const PeerDescriptor& d, const char* key, T fallback) {
  auto v = json_get<T>(d.transport_params, key, std::move(fallback));
  if (!v.is_ok()) return v.status().with_context("peer '" + d.engine_id + "' transport_params");
  return v;
}

// OK when the peer's KV region (num_blocks x block_bytes from `offset`) lies
// within the `available` bytes this side can read of it (the allocation an
// IPC handle opened, a region registered here); otherwise INVALID_ARGUMENT
// naming the transport, the peer and both sizes. A peer's counts are input:
// a negative count or an overflowing product is refused too.
Status check_peer_region_within(const PeerDescriptor& remote, uint64_t offset, uint64_t available,
                                std::string_view transport);

// "model M, F32 LAYOUT, 2 layers x 2 KV heads x 16, block 16, TP=4 (1 KV
// head per rank, each on 2 ranks)": what a refusal names of each side.
std::string describe_kv_layout(const PeerDescriptor& d);

// OK when `remote` can serve KV to `local`; otherwise FAILED_PRECONDITION
// naming the first differing field, both values and both layouts.
Status check_compatible(const PeerDescriptor& local, const PeerDescriptor& remote);

}  // namespace baton
