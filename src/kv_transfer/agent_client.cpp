#include "kv_transfer/agent_client.h"

#include <algorithm>

#include "kv_transfer/kv_handshake.h"
#include "kv_transfer/staged_copy.h"
#include "kv_transfer/wire.h"

namespace baton {

namespace asio = boost::asio;

Result<std::unique_ptr<Connection>> AgentClient::acquire(const ReadContext& ctx) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The agent closes a connection idle past its timeout: one idle for half
    // of it is dropped here rather than raced.
    const TimePoint now = SteadyClock::now();
    const auto max_idle = std::chrono::milliseconds(agent_idle_timeout_ms_ / 2);
    while (!idle_.empty()) {
      Idle idle = std::move(idle_.back());
      idle_.pop_back();
      if (!idle.conn->is_open() || idle.conn->peer_closed()) continue;
      if (agent_idle_timeout_ms_ > 0 && now - idle.since > max_idle) continue;
      return std::move(idle.conn);
    }
  }
  BATON_ASSIGN_OR_RETURN(auto conn, Connection::connect(host_, port_, ctx));
  BATON_ASSIGN_OR_RETURN(int64_t idle_ms, reader_handshake(*conn, secret_.get(), ctx));
  {
    std::lock_guard<std::mutex> lock(mu_);
    agent_idle_timeout_ms_ = idle_ms;
  }
  return conn;
}

void AgentClient::release(std::unique_ptr<Connection> conn) {
  if (!conn->is_open()) return;
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back({std::move(conn), SteadyClock::now()});
}

Result<PeerDescriptor> AgentClient::fetch_descriptor(const std::string& my_engine_id, const ReadContext& ctx) {
  BATON_ASSIGN_OR_RETURN(auto conn, acquire(ctx));
  BATON_RETURN_IF_ERROR(send_frame(*conn, MsgType::kGetDescriptor, Json{{"engine_id", my_engine_id}}, 0, ctx));
  BATON_ASSIGN_OR_RETURN(Frame frame, recv_frame(*conn, ctx));
  if (frame.type == MsgType::kError) return status_from_error_frame(frame, address());
  if (frame.type != MsgType::kDescriptor) {
    return data_loss("KV peer {}: expected a descriptor, got message type {}", address(), static_cast<int>(frame.type));
  }
  auto desc = PeerDescriptor::from_json(frame.json);
  if (!desc.is_ok()) return desc.status().with_context("KV peer " + address() + " descriptor");
  release(std::move(conn));
  return desc;
}

Result<Json> AgentClient::ask_for_ack(MsgType type, const Json& msg, const ReadContext& ctx) {
  BATON_ASSIGN_OR_RETURN(auto conn, acquire(ctx));
  BATON_RETURN_IF_ERROR(send_frame(*conn, type, msg, 0, ctx));
  BATON_ASSIGN_OR_RETURN(Frame frame, recv_frame(*conn, ctx));
  if (frame.type == MsgType::kError) {
    release(std::move(conn));
    return status_from_error_frame(frame, address());
  }
  if (frame.type != MsgType::kAck) {
    return data_loss("KV peer {}: expected an ack, got message type {}", address(), static_cast<int>(frame.type));
  }
  release(std::move(conn));
  return std::move(frame.json);
}

Status AgentClient::notify_done(const std::string& my_engine_id, const KvGrant& grant, const ReadContext& ctx,
                                bool renew) {
  Json msg{{"engine_id", my_engine_id}, {"request_id", grant.request_id}};
  if (!grant.lease_token.empty()) msg["lease_token"] = grant.lease_token;
  if (renew) msg["renew"] = true;
  return ask_for_ack(MsgType::kDone, msg, ctx).status();
}

Result<Json> AgentClient::query_progress(const KvGrant& grant, int64_t num_blocks_known, int64_t wait_ms,
                                         const ReadContext& ctx) {
  return ask_for_ack(MsgType::kProgress,
                     Json{{"request_id", grant.request_id},
                          {"lease_token", grant.lease_token},
                          {"num_blocks_known", num_blocks_known},
                          {"wait_ms", wait_ms}},
                     ctx);
}

Result<std::vector<uint64_t>> AgentClient::read_blocks(const std::vector<BlockRun>& runs, const KvRegionDesc& local,
                                                       bool want_checksums, const ReadContext& ctx,
                                                       StagingPool* staging) {
  // Device KV: chunks of whole blocks staged through a pooled pair of host
  // buffers, leased before anything is asked of the peer.
  StagingPool::Lease lease;
  size_t chunk_bytes = 0;
  if (local.memory == MemoryKind::kDevice) {
    if (local.copier == nullptr) return unimplemented("tcp transport: device KV region without a staging copier");
    if (staging == nullptr) return failed_precondition("tcp transport: device KV region without a staging pool");
    chunk_bytes = staging->buffer_bytes();
    auto chunks = staged_chunks(runs, local.block_bytes(), chunk_bytes, /*use_remote=*/false);
    if (!chunks.empty()) {
      BATON_ASSIGN_OR_RETURN(lease, staging->acquire(staging_buffer_bytes(chunks), ctx));
    }
  }
  return read_blocks_leased(runs, local, want_checksums, ctx, &lease, chunk_bytes);
}

Result<std::vector<uint64_t>> AgentClient::read_blocks_leased(const std::vector<BlockRun>& runs,
                                                              const KvRegionDesc& local, bool want_checksums,
                                                              const ReadContext& ctx, const StagingPool::Lease* lease,
                                                              size_t chunk_bytes) {
  std::vector<StagedChunk> chunks;
  if (local.memory == MemoryKind::kDevice) {
    if (local.copier == nullptr) return unimplemented("tcp transport: device KV region without a staging copier");
    chunks = staged_chunks(runs, local.block_bytes(), chunk_bytes, /*use_remote=*/false);
    if (!chunks.empty() &&
        (lease == nullptr || !lease->valid() || lease->buffer_bytes() < staging_buffer_bytes(chunks))) {
      return failed_precondition("tcp transport: a device read needs a staging lease of {} bytes a buffer",
                                 staging_buffer_bytes(chunks));
    }
  }
  Json jruns = Json::array();
  for (const auto& run : runs) jruns.push_back({run.remote_first, run.num_blocks});
  Json request{{"runs", std::move(jruns)}, {"checksums", want_checksums}};
  if (ctx.grant != nullptr) {
    request["request_id"] = ctx.grant->request_id;
    request["lease_token"] = ctx.grant->lease_token;
  }
  BATON_ASSIGN_OR_RETURN(auto conn, acquire(ctx));
  BATON_RETURN_IF_ERROR(send_frame(*conn, MsgType::kReadBlocks, request, 0, ctx));
  BATON_ASSIGN_OR_RETURN(Frame frame, recv_frame(*conn, ctx));
  if (frame.type == MsgType::kError) {
    release(std::move(conn));
    return status_from_error_frame(frame, address());
  }
  const int64_t num_blocks = count_blocks(runs);
  const uint64_t data_bytes = static_cast<uint64_t>(num_blocks) * local.block_bytes();
  const uint64_t expected = data_bytes + (want_checksums ? 8ull * num_blocks : 0);
  if (frame.type != MsgType::kBlocks || frame.payload_bytes != expected) {
    conn->shutdown();
    return data_loss("KV peer {}: expected {} bytes of blocks, peer announced {} (type {})", address(), expected,
                     frame.payload_bytes, static_cast<int>(frame.type));
  }
  if (local.memory == MemoryKind::kHost) {
    // Zero-copy: one scattered read straight into the local blocks.
    std::vector<asio::mutable_buffer> buffers;
    buffers.reserve(runs.size());
    for (const auto& run : runs) {
      buffers.emplace_back(local.block_ptr(run.local_first), static_cast<size_t>(run.num_blocks) * local.block_bytes());
    }
    BATON_RETURN_IF_ERROR(conn->read_all(buffers, ctx));
  } else {
    // The read of one chunk overlaps the copy of the previous one to the device.
    auto read = [&](size_t i, uint8_t* buf) { return conn->read_all(buf, chunks[i].num_bytes, ctx); };
    auto copy = [&](size_t i, uint8_t* buf) {
      return local.copier->to_device(local.block_ptr(chunks[i].first_block), buf, chunks[i].num_bytes);
    };
    Status st = run_staged(StageDirection::kToDevice, chunks.size(), lease->buffers(), copy, read);
    if (!st.is_ok()) {
      conn->shutdown();  // the stream is mid-frame: never reuse it
      return st;
    }
  }
  std::vector<uint64_t> sums;
  if (want_checksums) {
    sums.resize(static_cast<size_t>(num_blocks));
    BATON_RETURN_IF_ERROR(conn->read_all(sums.data(), sums.size() * 8, ctx));
  }
  release(std::move(conn));
  return sums;
}

}  // namespace baton
