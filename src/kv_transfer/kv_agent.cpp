#include "kv_transfer/kv_agent.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/log.h"
#include "kv_transfer/kv_handshake.h"

namespace baton {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr size_t kNonceBytes = 32;
// The poller writes only small frames (hello, proof, an error) and never
// waits long for a peer that does not read them.
constexpr int64_t kPollerWriteMs = 200;
constexpr int64_t kMaxPollSliceMs = 200;
constexpr size_t kReadChunkBytes = 64u << 10;

// The first few of a kind of event, then one in a thousand: a flood of
// garbage connections must not become a flood of log lines.
bool should_log(uint64_t count) { return count <= 10 || count % 1000 == 0; }

}  // namespace

struct KvAgent::AgentConn {
  enum class State { kAuth, kIdle, kBusy };
  uint64_t id = 0;
  std::unique_ptr<Connection> conn;
  FrameReader reader;
  State state = State::kIdle;
  std::string nonce;  // the agent's, for the handshake
  TimePoint deadline;
};

bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

KvAgent::KvAgent(const KvRegionDesc& region, PeerDescriptor descriptor, DoneCallback on_done, KvAgentOptions options)
    : region_(region),
      descriptor_(std::move(descriptor)),
      on_done_(std::move(on_done)),
      options_(std::move(options)),
      acceptor_(accept_io_) {}

Result<std::unique_ptr<KvAgent>> KvAgent::start(const KvRegionDesc& region, PeerDescriptor descriptor,
                                                DoneCallback on_done, KvAgentOptions options) {
  BATON_RETURN_IF_ERROR(region.validate());
  if (options.port < 0 || options.port > 65535) {
    return invalid_argument("KV agent: bad port {}", options.port);
  }
  if (options.max_staging_pairs < 1) {
    return invalid_argument("KV agent: max_staging_pairs must be >= 1, got {}", options.max_staging_pairs);
  }
  if (options.staging_bytes == 0) return invalid_argument("KV agent: staging_bytes must be > 0");
  if (options.max_connections < 1 || options.num_workers < 1) {
    return invalid_argument("KV agent: max_connections and num_workers must be >= 1 (got {}, {})",
                            options.max_connections, options.num_workers);
  }
  if (options.idle_timeout_ms <= 0 || options.frame_timeout_ms <= 0 || options.io_timeout_ms <= 0) {
    return invalid_argument("KV agent: timeouts must be > 0");
  }
  if (options.max_frame_json_bytes < kMaxHandshakeJsonBytes || options.max_frame_json_bytes > kMaxFrameJsonBytes) {
    return invalid_argument("KV agent: max_frame_json_bytes must be in [{}, {}], got {}", kMaxHandshakeJsonBytes,
                            kMaxFrameJsonBytes, options.max_frame_json_bytes);
  }
  if (options.secret == nullptr && !is_loopback_host(options.host)) {
    return failed_precondition(
        "the KV agent would listen on {} without a KV secret, and anyone who reaches that address could read "
        "the KV cache: give it a secret (--kv-secret-file PATH or ${}) or a loopback --kv-host",
        options.host, kKvSecretEnv);
  }
  std::unique_ptr<KvAgent> agent(new KvAgent(region, std::move(descriptor), std::move(on_done), options));
  if (region.memory == MemoryKind::kDevice && region.copier != nullptr) {
    agent->staging_ = std::make_unique<StagingPool>(region.copier, options.staging_bytes, options.max_staging_pairs);
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(options.host == "localhost" ? "127.0.0.1" : options.host, ec);
  if (ec) return invalid_argument("KV agent: bad listen address '{}': {}", options.host, ec.message());
  tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
  agent->acceptor_.open(endpoint.protocol(), ec);
  if (!ec) agent->acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) agent->acceptor_.bind(endpoint, ec);
  if (!ec) agent->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) agent->acceptor_.non_blocking(true, ec);
  if (ec) {
    return unavailable("KV agent: cannot listen on {}:{}: {}", options.host, options.port, ec.message());
  }
  if (::pipe2(agent->wake_fds_, O_NONBLOCK | O_CLOEXEC) != 0) {
    return internal_error("KV agent: cannot create its wakeup pipe: {}", std::strerror(errno));
  }
  agent->descriptor_.host = options.host;
  agent->descriptor_.port = agent->acceptor_.local_endpoint().port();
  agent->poll_thread_ = std::thread([a = agent.get()] { a->poll_loop(); });
  for (int i = 0; i < options.num_workers; ++i) {
    agent->workers_.emplace_back([a = agent.get()] { a->worker_loop(); });
  }
  BATON_LOG_INFO("KV agent for engine '{}' listening on {}:{} ({}; at most {} connections, {} workers)",
                 agent->descriptor_.engine_id, options.host, agent->descriptor_.port,
                 options.secret ? "peers authenticate with the KV secret from " + options.secret->origin()
                                : std::string("no KV secret: unauthenticated, loopback only"),
                 options.max_connections, options.num_workers);
  return agent;
}

KvAgent::~KvAgent() { stop(); }

void KvAgent::stop() {
  if (stopping_.exchange(true)) return;
  wake_poller();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, c] : conns_) c->conn->shutdown();  // a worker mid-write returns
  }
  work_cv_.notify_all();
  if (poll_thread_.joinable()) poll_thread_.join();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  std::lock_guard<std::mutex> lock(mu_);
  conns_.clear();
  work_.clear();
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (int& fd : wake_fds_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

KvAgentStats KvAgent::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  KvAgentStats s = stats_;
  s.num_open_connections = static_cast<int64_t>(conns_.size());
  return s;
}

void KvAgent::count_error(uint64_t KvAgentStats::*counter) {
  std::lock_guard<std::mutex> lock(mu_);
  ++(stats_.*counter);
}

void KvAgent::wake_poller() {
  if (wake_fds_[1] < 0) return;
  const char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fds_[1], &byte, 1);  // a full pipe already wakes it
}

void KvAgent::close_conn(uint64_t id) {
  std::unique_ptr<AgentConn> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    gone = std::move(it->second);
    conns_.erase(it);
  }
  gone->conn->shutdown();
}

void KvAgent::reap_closed() {
  // One poll() over every connection the poller owns: those whose peer
  // closed (an EOF or an error waiting) go now, not a poll cycle later.
  std::vector<pollfd> fds;
  std::vector<uint64_t> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, c] : conns_) {
      if (c->state == AgentConn::State::kBusy) continue;
      fds.push_back({c->conn->native_handle(), POLLIN, 0});
      ids.push_back(id);
    }
  }
  if (fds.empty() || ::poll(fds.data(), fds.size(), 0) <= 0) return;
  for (size_t i = 0; i < fds.size(); ++i) {
    if (fds[i].revents == 0) continue;
    char byte = 0;
    const bool closed = (fds[i].revents & (POLLERR | POLLHUP)) != 0 ||
                        ::recv(fds[i].fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
    if (closed) close_conn(ids[i]);
  }
}

bool KvAgent::make_room(const std::string& peer) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (static_cast<int>(conns_.size()) < options_.max_connections) {
      ++stats_.num_connections;
      return true;
    }
  }
  reap_closed();
  std::unique_lock<std::mutex> lock(mu_);
  if (static_cast<int>(conns_.size()) < options_.max_connections) {
    ++stats_.num_connections;
    return true;
  }
  // At the cap: a connection still in its handshake, or partway through a
  // frame, is slow or suspect (an honest one takes milliseconds); the one
  // nearest its deadline makes room, so a flood of them cannot keep an
  // authenticated peer out. Idle connections of peers are never evicted.
  AgentConn* victim = nullptr;
  for (auto& [id, c] : conns_) {
    if (c->state == AgentConn::State::kBusy) continue;
    if (c->state != AgentConn::State::kAuth && !c->reader.in_frame()) continue;
    if (victim == nullptr || c->deadline < victim->deadline) victim = c.get();
  }
  if (victim == nullptr) {
    const uint64_t n = ++stats_.num_connections_refused;
    if (should_log(n)) {
      BATON_LOG_WARN("KV agent: refusing {}: {} connections open (max_connections; {} refused so far)", peer,
                     conns_.size(), n);
    }
    return false;
  }
  const uint64_t n = ++stats_.num_connections_evicted;
  if (should_log(n)) {
    BATON_LOG_WARN("KV agent: at {} connections, closing {} (still in its handshake or a frame) for {}; {} so far",
                   conns_.size(), victim->conn->peer_name(), peer, n);
  }
  ++stats_.num_connections;
  const uint64_t victim_id = victim->id;
  lock.unlock();
  close_conn(victim_id);
  return true;
}

void KvAgent::accept_ready() {
  for (;;) {
    auto io = std::make_unique<asio::io_context>();
    tcp::socket socket(*io);
    boost::system::error_code ec;
    acceptor_.accept(socket, ec);
    if (ec) return;  // would block (or a transient error: the next poll retries)
    std::string peer = "?";
    auto remote = socket.remote_endpoint(ec);
    if (!ec) peer = remote.address().to_string() + ":" + std::to_string(remote.port());
    if (!make_room(peer)) continue;  // the socket closes here
    auto c = std::make_unique<AgentConn>();
    c->conn = std::make_unique<Connection>(std::move(io), std::move(socket), peer);
    const bool auth = options_.secret != nullptr;
    if (auth) {
      auto nonce = random_hex(kNonceBytes);
      if (!nonce.is_ok()) {
        BATON_LOG_ERROR("KV agent: {}", nonce.status().to_string());
        continue;
      }
      c->nonce = std::move(nonce).value();
    }
    c->state = auth ? AgentConn::State::kAuth : AgentConn::State::kIdle;
    c->reader.set_max_json_bytes(auth ? kMaxHandshakeJsonBytes : options_.max_frame_json_bytes);
    const ReadContext ctx{deadline_after_ms(kPollerWriteMs), &stopping_};
    if (!send_frame(*c->conn, MsgType::kHello, make_hello(options_.secret.get(), c->nonce, options_.idle_timeout_ms), 0,
                    ctx)
             .is_ok()) {
      continue;
    }
    c->deadline = deadline_after_ms(auth ? options_.frame_timeout_ms : options_.idle_timeout_ms);
    std::lock_guard<std::mutex> lock(mu_);
    c->id = next_conn_id_++;
    conns_.emplace(c->id, std::move(c));
  }
}

bool KvAgent::on_handshake_frame(AgentConn& c, const Frame& frame) {
  const ReadContext ctx{deadline_after_ms(kPollerWriteMs), &stopping_};
  Status refused;
  Result<Json> proof = frame.type == MsgType::kAuth
                           ? answer_auth(*options_.secret, c.nonce, frame.json)
                           : Result<Json>(permission_denied("this KV agent requires authentication: the first frame "
                                                            "must be kAuth (message type {}), not {}",
                                                            static_cast<int>(MsgType::kAuth),
                                                            static_cast<int>(frame.type)));
  if (!proof.is_ok()) {
    uint64_t n = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = ++stats_.num_auth_failures;
    }
    if (should_log(n))
      BATON_LOG_WARN("KV agent: {} failed to authenticate: {}", c.conn->peer_name(), proof.status().message());
    (void)send_error(*c.conn, proof.status(), ctx);
    return false;
  }
  if (!send_frame(*c.conn, MsgType::kAuthOk, *proof, 0, ctx).is_ok()) return false;
  c.state = AgentConn::State::kIdle;
  c.reader.set_max_json_bytes(options_.max_frame_json_bytes);
  c.deadline = deadline_after_ms(options_.idle_timeout_ms);
  return true;
}

KvAgent::ReadOutcome KvAgent::read_ready(AgentConn& c) {
  uint8_t buf[kReadChunkBytes];
  const int fd = c.conn->native_handle();
  for (;;) {
    const size_t want = std::min(c.reader.bytes_wanted(), sizeof(buf));
    const ssize_t n = ::recv(fd, buf, want, MSG_DONTWAIT);
    if (n == 0) return ReadOutcome::kClose;  // the peer closed
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? ReadOutcome::kKeep : ReadOutcome::kClose;
    }
    const bool was_in_frame = c.reader.in_frame();
    auto used = c.reader.feed(buf, static_cast<size_t>(n), c.conn->peer_name());
    if (!used.is_ok()) {
      uint64_t count = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        count = ++stats_.num_bad_frames;
      }
      if (should_log(count)) BATON_LOG_WARN("KV agent: dropping {}: {}", c.conn->peer_name(), used.status().message());
      (void)send_error(*c.conn, used.status(), ReadContext{deadline_after_ms(kPollerWriteMs), &stopping_});
      return ReadOutcome::kClose;
    }
    if (!was_in_frame && c.reader.in_frame() && c.state == AgentConn::State::kIdle) {
      c.deadline = deadline_after_ms(options_.frame_timeout_ms);  // the frame must come whole by then
    }
    if (!c.reader.has_frame()) continue;
    Frame frame = c.reader.take();
    if (c.state == AgentConn::State::kAuth) {
      if (!on_handshake_frame(c, frame)) return ReadOutcome::kClose;
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      c.state = AgentConn::State::kBusy;  // a worker owns it from here: `c` is not touched again
      work_.emplace_back(c.id, std::move(frame));
    }
    work_cv_.notify_one();
    return ReadOutcome::kDispatched;
  }
}

void KvAgent::poll_loop() {
  std::vector<pollfd> fds;
  std::vector<AgentConn*> polled;
  while (!stopping_.load()) {
    fds.clear();
    polled.clear();
    fds.push_back({wake_fds_[0], POLLIN, 0});
    fds.push_back({acceptor_.native_handle(), POLLIN, 0});
    TimePoint next_deadline = SteadyClock::now() + std::chrono::milliseconds(kMaxPollSliceMs);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (uint64_t id : returned_) {
        auto it = conns_.find(id);
        if (it == conns_.end()) continue;
        it->second->state = AgentConn::State::kIdle;
        it->second->deadline = deadline_after_ms(options_.idle_timeout_ms);
      }
      returned_.clear();
      for (auto& [id, c] : conns_) {
        if (c->state == AgentConn::State::kBusy) continue;
        fds.push_back({c->conn->native_handle(), POLLIN, 0});
        polled.push_back(c.get());
        next_deadline = std::min(next_deadline, c->deadline);
      }
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_deadline - SteadyClock::now());
    const int r = ::poll(fds.data(), fds.size(),
                         static_cast<int>(std::clamp<int64_t>(wait.count(), 0, kMaxPollSliceMs)));
    if (r < 0 && errno != EINTR) {
      BATON_LOG_ERROR("KV agent: poll failed: {}", std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (fds[0].revents != 0) {
      char drain[256];
      while (::read(wake_fds_[0], drain, sizeof(drain)) > 0) {
      }
    }
    if (stopping_.load()) break;
    const TimePoint now = SteadyClock::now();
    for (size_t i = 0; i < polled.size(); ++i) {
      AgentConn& c = *polled[i];
      if (fds[i + 2].revents != 0) {
        const ReadOutcome outcome = read_ready(c);
        if (outcome == ReadOutcome::kDispatched) continue;
        if (outcome == ReadOutcome::kClose) {
          close_conn(c.id);
          continue;
        }
      }
      if (c.deadline <= now) {
        uint64_t n = 0;
        {
          std::lock_guard<std::mutex> lock(mu_);
          n = ++stats_.num_timeouts;
        }
        if (should_log(n)) {
          BATON_LOG_WARN("KV agent: closing {}: {}", c.conn->peer_name(),
                         c.state == AgentConn::State::kAuth ? "no handshake within the frame deadline"
                         : c.reader.in_frame()              ? "a frame did not arrive whole within the frame deadline"
                                                            : "idle past the idle deadline");
        }
        close_conn(c.id);
      }
    }
    // Accept last: closes seen above have freed their slots, and `polled`
    // is not used past here (accepting may evict a connection).
    if (fds[1].revents != 0) accept_ready();
  }
}

void KvAgent::worker_loop() {
  for (;;) {
    std::pair<uint64_t, Frame> job;
    Connection* conn = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_.load() || !work_.empty(); });
      if (stopping_.load()) return;
      job = std::move(work_.front());
      work_.pop_front();
      auto it = conns_.find(job.first);
      if (it == conns_.end()) continue;
      conn = it->second->conn.get();
    }
    Status st = handle_frame(*conn, job.second);
    if (st.is_ok() && conn->is_open()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        returned_.push_back(job.first);
      }
      wake_poller();
      continue;
    }
    if (!st.is_ok()) {
      uint64_t n = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        n = ++stats_.num_errors;
      }
      if (st.code() != StatusCode::kAborted && should_log(n)) BATON_LOG_WARN("KV agent: {}", st.to_string());
    }
    close_conn(job.first);
  }
}

}  // namespace baton
