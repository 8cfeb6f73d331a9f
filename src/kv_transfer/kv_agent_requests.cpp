// KvAgent's answers to request frames (a worker's job): every field is
// type-checked before it is read, every range a peer gives is checked
// without overflow, and a request refused (bad input, no lease) gets a
// kError reply naming the problem with the connection kept.
#include <algorithm>
#include <vector>

#include "common/log.h"
#include "kv_transfer/checksum.h"
#include "kv_transfer/kv_agent.h"
#include "kv_transfer/staged_copy.h"

namespace baton {

namespace asio = boost::asio;

Status KvAgent::handle_frame(Connection& conn, const Frame& frame) {
  const ReadContext ctx{deadline_after_ms(options_.io_timeout_ms), &stopping_};
  switch (frame.type) {
    case MsgType::kGetDescriptor: return send_frame(conn, MsgType::kDescriptor, descriptor_.to_json(), 0, ctx);
    case MsgType::kReadBlocks: return handle_read(conn, frame.json);
    case MsgType::kDone: return handle_done(conn, frame.json);
    case MsgType::kProgress: return handle_progress(conn, frame.json);
    default:
      count_error(&KvAgentStats::num_bad_frames);
      return send_error(conn, invalid_argument("unexpected message type {}", static_cast<int>(frame.type)), ctx);
  }
}

Status KvAgent::handle_done(Connection& conn, const Json& request) {
  const ReadContext ctx{deadline_after_ms(options_.io_timeout_ms), &stopping_};
  auto engine_id = frame_string(request, "engine_id", false);
  auto request_id = frame_string(request, "request_id", true);
  auto token = frame_string(request, "lease_token", false);
  auto renew = frame_bool(request, "renew", false);
  for (const Status* st : {&engine_id.status(), &request_id.status(), &token.status(), &renew.status()}) {
    if (!st->is_ok()) {
      count_error(&KvAgentStats::num_bad_frames);
      return send_error(conn, st->with_context("done notification"), ctx);
    }
  }
  if (request_id->empty()) return send_error(conn, invalid_argument("done notification without request_id"), ctx);
  if (options_.check_grant) {
    if (Status st = options_.check_grant(KvGrant{*request_id, *token}, nullptr); !st.is_ok()) {
      count_error(&KvAgentStats::num_denied);
      return send_error(conn, st, ctx);
    }
  }
  if (*renew) {
    if (options_.on_renew) options_.on_renew(*engine_id, *request_id);
  } else {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.num_done;
    }
    if (on_done_) on_done_(*engine_id, *request_id);
  }
  return send_frame(conn, MsgType::kAck, Json::object(), 0, ctx);
}

Status KvAgent::handle_progress(Connection& conn, const Json& request) {
  auto request_id = frame_string(request, "request_id", true);
  auto token = frame_string(request, "lease_token", true);
  Result<int64_t> known = invalid_argument("progress request without 'num_blocks_known'");
  Result<int64_t> wait_ms = int64_t{0};
  if (auto it = request.find("num_blocks_known"); it != request.end()) {
    known = frame_nonnegative_int(*it, "progress request: num_blocks_known");
  }
  if (auto it = request.find("wait_ms"); it != request.end())
    wait_ms = frame_nonnegative_int(*it, "progress request: wait_ms");
  for (const Status* st : {&request_id.status(), &token.status(), &known.status(), &wait_ms.status()}) {
    if (!st->is_ok()) {
      count_error(&KvAgentStats::num_bad_frames);
      return send_error(conn, st->with_context("progress request"),
                        {deadline_after_ms(options_.io_timeout_ms), &stopping_});
    }
  }
  Result<Json> answer = unimplemented("this KV agent serves no streamed leases (no progress)");
  if (options_.on_progress) {
    answer = options_.on_progress(KvGrant{*request_id, *token}, *known, std::min(*wait_ms, kMaxProgressWaitMs));
  }
  // The deadline starts after the wait: the answer itself must go out in time.
  const ReadContext ctx{deadline_after_ms(options_.io_timeout_ms), &stopping_};
  if (!answer.is_ok()) {
    if (answer.status().code() == StatusCode::kNotFound || answer.status().code() == StatusCode::kPermissionDenied) {
      count_error(&KvAgentStats::num_denied);
    }
    return send_error(conn, answer.status(), ctx);
  }
  return send_frame(conn, MsgType::kAck, *answer, 0, ctx);
}

Status KvAgent::handle_read(Connection& conn, const Json& request) {
  const ReadContext ctx{deadline_after_ms(options_.io_timeout_ms), &stopping_};
  // Parse and validate the runs before sending anything; a bad request gets
  // a kError reply and the connection stays usable.
  auto want_checksums_or = frame_bool(request, "checksums", false);
  if (!want_checksums_or.is_ok()) {
    count_error(&KvAgentStats::num_bad_frames);
    return send_error(conn, want_checksums_or.status(), ctx);
  }
  const bool want_checksums = *want_checksums_or;
  auto runs_or = parse_read_runs(request, region_.layout.num_blocks);
  if (!runs_or.is_ok()) {
    count_error(&KvAgentStats::num_bad_frames);
    return send_error(conn, runs_or.status(), ctx);
  }
  std::vector<BlockRun> runs = std::move(runs_or).value();
  if (options_.check_grant) {
    auto request_id = frame_string(request, "request_id", true);
    auto token = frame_string(request, "lease_token", true);
    Status st = !request_id.is_ok() ? request_id.status()
                : !token.is_ok()    ? token.status()
                                    : options_.check_grant(KvGrant{*request_id, *token}, &runs);
    if (!st.is_ok()) {
      count_error(&KvAgentStats::num_denied);
      return send_error(conn, st.with_context("read request"), ctx);
    }
  }
  const int64_t num_blocks = count_blocks(runs);
  const uint64_t data_bytes = static_cast<uint64_t>(num_blocks) * region_.block_bytes();
  const uint64_t trailer_bytes = want_checksums ? 8ull * static_cast<uint64_t>(num_blocks) : 0;
  if (region_.memory == MemoryKind::kDevice && staging_ == nullptr) {
    return send_error(conn, unimplemented("KV agent: device region without a staging copier"), ctx);
  }
  // Device KV: chunks of whole blocks staged through a pooled pair of host
  // buffers, taken before the reply so that a failure is still an error frame.
  std::vector<StagedChunk> chunks;
  StagingPool::Lease staging;
  if (region_.memory == MemoryKind::kDevice) {
    chunks = staged_chunks(runs, region_.block_bytes(), options_.staging_bytes, /*use_remote=*/true);
    if (!chunks.empty()) {
      auto lease = staging_->acquire(staging_buffer_bytes(chunks), ctx);
      if (!lease.is_ok()) return send_error(conn, lease.status(), ctx);
      staging = std::move(lease).value();
    }
  }
  BATON_RETURN_IF_ERROR(
      send_frame(conn, MsgType::kBlocks, Json{{"num_blocks", num_blocks}}, data_bytes + trailer_bytes, ctx));
  std::vector<uint64_t> sums;
  if (region_.memory == MemoryKind::kHost) {
    // Zero-copy: one gathered write straight from the region.
    if (want_checksums) {
      sums = run_checksums(static_cast<const uint8_t*>(region_.base), region_.block_bytes(), runs,
                           /*use_remote=*/true);
    }
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(runs.size());
    for (const auto& run : runs) {
      buffers.emplace_back(region_.block_ptr(run.remote_first),
                           static_cast<size_t>(run.num_blocks) * region_.block_bytes());
    }
    BATON_RETURN_IF_ERROR(conn.write_all(buffers, ctx));
  } else {
    // The copy of one chunk to the host overlaps the send of the previous one.
    auto copy = [&](size_t i, uint8_t* buf) {
      return region_.copier->to_host(buf, region_.block_ptr(chunks[i].first_block), chunks[i].num_bytes);
    };
    auto send = [&](size_t i, uint8_t* buf) {
      if (want_checksums) {
        for (size_t off = 0; off < chunks[i].num_bytes; off += region_.block_bytes()) {
          sums.push_back(block_checksum(buf + off, region_.block_bytes()));
        }
      }
      return conn.write_all(buf, chunks[i].num_bytes, ctx);
    };
    BATON_RETURN_IF_ERROR(run_staged(StageDirection::kToHost, chunks.size(), staging.buffers(), copy, send));
  }
  if (want_checksums) BATON_RETURN_IF_ERROR(conn.write_all(sums.data(), sums.size() * 8, ctx));
  std::lock_guard<std::mutex> lock(mu_);
  stats_.num_bytes_served += data_bytes;
  stats_.num_blocks_served += static_cast<uint64_t>(num_blocks);
  ++stats_.num_reads;
  return Status::ok();
}

}  // namespace baton
