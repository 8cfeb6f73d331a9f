#include "kv_transfer/kv_agent.h"

#include <chrono>
#include <vector>

#include "common/log.h"
#include "kv_transfer/checksum.h"
#include "kv_transfer/staged_copy.h"
#include "kv_transfer/wire.h"

namespace baton {

namespace asio = boost::asio;
using asio::ip::tcp;

KvAgent::KvAgent(const KvRegionDesc& region, PeerDescriptor descriptor, DoneCallback on_done,
                 KvAgentOptions options)
    : region_(region),
      descriptor_(std::move(descriptor)),
      on_done_(std::move(on_done)),
      options_(std::move(options)),
      acceptor_(accept_io_) {}

Result<std::unique_ptr<KvAgent>> KvAgent::start(const KvRegionDesc& region,
                                                PeerDescriptor descriptor, DoneCallback on_done,
                                                KvAgentOptions options) {
  BATON_RETURN_IF_ERROR(region.validate());
  if (options.port < 0 || options.port > 65535) {
    return invalid_argument("KV agent: bad port {}", options.port);
  }
  if (options.max_staging_pairs < 1) {
    return invalid_argument("KV agent: max_staging_pairs must be >= 1, got {}", options.max_staging_pairs);
  }
  if (options.staging_bytes == 0) return invalid_argument("KV agent: staging_bytes must be > 0");
  std::unique_ptr<KvAgent> agent(
      new KvAgent(region, std::move(descriptor), std::move(on_done), options));
  if (region.memory == MemoryKind::kDevice && region.copier != nullptr) {
    agent->staging_ =
        std::make_unique<StagingPool>(region.copier, options.staging_bytes, options.max_staging_pairs);
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(options.host, ec);
  if (ec) return invalid_argument("KV agent: bad listen address '{}': {}", options.host, ec.message());
  tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
  agent->acceptor_.open(endpoint.protocol(), ec);
  if (!ec) agent->acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) agent->acceptor_.bind(endpoint, ec);
  if (!ec) agent->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return unavailable("KV agent: cannot listen on {}:{}: {}", options.host, options.port,
                       ec.message());
  }
  agent->descriptor_.host = options.host;
  agent->descriptor_.port = agent->acceptor_.local_endpoint().port();
  agent->accept_next();
  agent->accept_thread_ = std::thread([a = agent.get()] { a->accept_io_.run(); });
  BATON_LOG_INFO("KV agent for engine '{}' listening on {}:{}", agent->descriptor_.engine_id,
                 options.host, agent->descriptor_.port);
  return agent;
}

KvAgent::~KvAgent() { stop(); }

void KvAgent::stop() {
  if (stopping_.exchange(true)) return;
  asio::post(accept_io_, [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
  if (accept_thread_.joinable()) accept_thread_.join();
  std::list<ConnSlot> conns;
  {
    std::lock_guard<std::mutex> lock(mu_);
    conns.swap(conns_);
  }
  for (auto& slot : conns) slot.conn->shutdown();
  for (auto& slot : conns) {
    if (slot.thread.joinable()) slot.thread.join();
  }
}

KvAgentStats KvAgent::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void KvAgent::reap_finished() {
  // Called with mu_ held.
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (it->finished.load()) {
      if (it->thread.joinable()) it->thread.join();
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
}

void KvAgent::accept_next() {
  auto io = std::make_unique<asio::io_context>();
  asio::io_context& io_ref = *io;
  acceptor_.async_accept(io_ref, [this, io = std::move(io)](const boost::system::error_code& ec,
                                                            tcp::socket socket) mutable {
    if (ec || stopping_.load()) return;  // acceptor closed
    std::string peer = "?";
    boost::system::error_code ep_ec;
    auto remote = socket.remote_endpoint(ep_ec);
    if (!ep_ec) peer = remote.address().to_string() + ":" + std::to_string(remote.port());
    {
      std::lock_guard<std::mutex> lock(mu_);
      reap_finished();
      ++stats_.num_connections;
      ConnSlot& slot = conns_.emplace_back();
      slot.conn = std::make_unique<Connection>(std::move(io), std::move(socket), peer);
      Connection* conn = slot.conn.get();
      ConnSlot* slot_ptr = &slot;
      slot.thread = std::thread([this, conn, slot_ptr] {
        serve_connection(conn);
        conn->shutdown();  // the reader sees EOF now, not when the slot is reaped
        slot_ptr->finished = true;
      });
    }
    accept_next();
  });
}

void KvAgent::serve_connection(Connection* conn) {
  // Waiting for the next request has no deadline (stop() cancels); answering
  // one does.
  ReadContext idle_ctx{TimePoint::max(), &stopping_};
  while (!stopping_.load()) {
    Result<Frame> frame = recv_frame(*conn, idle_ctx);
    if (!frame.is_ok()) {
      if (frame.status().code() != StatusCode::kUnavailable &&
          frame.status().code() != StatusCode::kAborted) {
        BATON_LOG_WARN("KV agent: {}", frame.status().to_string());
      }
      return;  // peer closed, or garbage: drop the connection
    }
    ReadContext ctx{deadline_after_ms(options_.io_timeout_ms),
                    &stopping_};
    Status st;
    switch (frame->type) {
      case MsgType::kGetDescriptor:
        st = send_frame(*conn, MsgType::kDescriptor, descriptor_.to_json(), 0, ctx);
        break;
      case MsgType::kReadBlocks:
        st = handle_read(*conn, frame->json);
        break;
      case MsgType::kDone: {
        const std::string engine_id = frame->json.value("engine_id", std::string());
        const std::string request_id = frame->json.value("request_id", std::string());
        if (request_id.empty()) {
          st = send_error(*conn, invalid_argument("done notification without request_id"), ctx);
          break;
        }
        auto renew_it = frame->json.find("renew");
        const bool renew = renew_it != frame->json.end() && renew_it->is_boolean() && renew_it->get<bool>();
        if (renew) {
          if (options_.on_renew) options_.on_renew(engine_id, request_id);
          st = send_frame(*conn, MsgType::kAck, Json::object(), 0, ctx);
          break;
        }
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++stats_.num_done;
        }
        if (on_done_) on_done_(engine_id, request_id);
        st = send_frame(*conn, MsgType::kAck, Json::object(), 0, ctx);
        break;
      }
      default:
        st = send_error(*conn,
                        invalid_argument("unexpected message type {}",
                                         static_cast<int>(frame->type)),
                        ctx);
        break;
    }
    if (!st.is_ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.num_errors;
      if (st.code() != StatusCode::kAborted) BATON_LOG_WARN("KV agent: {}", st.to_string());
      return;
    }
  }
}

Status KvAgent::handle_read(Connection& conn, const Json& request) {
  ReadContext ctx{deadline_after_ms(options_.io_timeout_ms),
                  &stopping_};
  // Parse and validate the runs before sending anything; a bad request gets
  // a kError reply and the connection stays usable.
  std::vector<BlockRun> runs;
  const bool want_checksums = request.value("checksums", false);
  auto it = request.find("runs");
  if (it == request.end() || !it->is_array()) {
    return send_error(conn, invalid_argument("read request without 'runs'"), ctx);
  }
  for (const auto& r : *it) {
    if (!r.is_array() || r.size() != 2 || !r[0].is_number_integer() || !r[1].is_number_integer()) {
      return send_error(conn, invalid_argument("read request: each run must be [first, count]"), ctx);
    }
    const int64_t first = r[0].get<int64_t>();
    const int64_t n = r[1].get<int64_t>();
    if (first < 0 || n <= 0 || first + n > region_.num_blocks) {
      return send_error(conn,
                        out_of_range("read request: blocks [{}, {}) outside [0, {})", first,
                                     first + n, region_.num_blocks),
                        ctx);
    }
    runs.push_back({first, 0, n});
  }
  const int64_t num_blocks = count_blocks(runs);
  const uint64_t data_bytes = static_cast<uint64_t>(num_blocks) * region_.block_bytes;
  const uint64_t trailer_bytes = want_checksums ? 8ull * static_cast<uint64_t>(num_blocks) : 0;
  if (region_.memory == MemoryKind::kDevice && staging_ == nullptr) {
    return send_error(conn, unimplemented("KV agent: device region without a staging copier"), ctx);
  }
  // Device KV: chunks of whole blocks staged through a pooled pair of host
  // buffers, taken before the reply so that a failure is still an error frame.
  std::vector<StagedChunk> chunks;
  StagingPool::Lease staging;
  if (region_.memory == MemoryKind::kDevice) {
    chunks = staged_chunks(runs, region_.block_bytes, options_.staging_bytes, /*use_remote=*/true);
    if (!chunks.empty()) {
      auto lease = staging_->acquire(staging_buffer_bytes(chunks), ctx);
      if (!lease.is_ok()) return send_error(conn, lease.status(), ctx);
      staging = std::move(lease).value();
    }
  }
  BATON_RETURN_IF_ERROR(send_frame(conn, MsgType::kBlocks, Json{{"num_blocks", num_blocks}},
                                   data_bytes + trailer_bytes, ctx));
  std::vector<uint64_t> sums;
  if (region_.memory == MemoryKind::kHost) {
    // Zero-copy: one gathered write straight from the region.
    if (want_checksums) {
      sums = run_checksums(static_cast<const uint8_t*>(region_.base), region_.block_bytes, runs,
                           /*use_remote=*/true);
    }
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(runs.size());
    for (const auto& run : runs) {
      buffers.emplace_back(region_.block_ptr(run.remote_first),
                           static_cast<size_t>(run.num_blocks) * region_.block_bytes);
    }
    BATON_RETURN_IF_ERROR(conn.write_all(buffers, ctx));
  } else {
    // The copy of one chunk to the host overlaps the send of the previous one.
    auto copy = [&](size_t i, uint8_t* buf) {
      return region_.copier->to_host(buf, region_.block_ptr(chunks[i].first_block), chunks[i].num_bytes);
    };
    auto send = [&](size_t i, uint8_t* buf) {
      if (want_checksums) {
        for (size_t off = 0; off < chunks[i].num_bytes; off += region_.block_bytes) {
          sums.push_back(block_checksum(buf + off, region_.block_bytes));
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
