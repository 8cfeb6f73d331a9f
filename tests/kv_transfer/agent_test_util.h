// A bare KvAgent over a heap region, and a raw peer that speaks the wire
// protocol frame by frame (what an attacker on the KV port can do).
#pragma once

#include <sys/resource.h>

#include <dirent.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/clock.h"
#include "kv_transfer/kv_agent.h"
#include "kv_transfer/kv_handshake.h"
#include "kv_transfer/kv_test_util.h"
#include "kv_transfer/wire.h"
#include "support/wait.h"

namespace baton::testing {

struct AgentFixture {
  TestRegion region = TestRegion::heap(small_shape(64));
  std::unique_ptr<KvAgent> agent;

  explicit AgentFixture(KvAgentOptions options = {}, DoneCallback on_done = nullptr) {
    region.fill_random(7);
    PeerDescriptor desc = PeerDescriptor::from_region(region.desc(), "prefill-t", "tiny");
    auto a = KvAgent::start(region.desc(), desc, std::move(on_done), std::move(options));
    EXPECT_TRUE(a.is_ok()) << a.status().to_string();
    if (a.is_ok()) agent = std::move(a).value();
  }
};

inline ReadContext ctx_ms(int64_t ms) { return ReadContext{deadline_after_ms(ms), nullptr}; }

// Connects and completes the handshake (with `secret` when the agent asks).
inline std::unique_ptr<Connection> connect_peer(int port, const KvSecret* secret = nullptr) {
  auto conn = Connection::connect("127.0.0.1", port, ctx_ms(5000));
  EXPECT_TRUE(conn.is_ok()) << conn.status().to_string();
  if (!conn.is_ok()) return nullptr;
  auto hs = reader_handshake(**conn, secret, ctx_ms(5000));
  EXPECT_TRUE(hs.is_ok()) << hs.status().to_string();
  return hs.is_ok() ? std::move(conn).value() : nullptr;
}

// One request, one reply frame.
inline Result<Frame> ask(Connection& conn, MsgType type, const Json& json) {
  BATON_RETURN_IF_ERROR(send_frame(conn, type, json, 0, ctx_ms(5000)));
  return recv_frame(conn, ctx_ms(5000));
}

// The agent still answers: a descriptor over a fresh connection.
inline bool agent_answers(int port, const KvSecret* secret = nullptr) {
  auto conn = connect_peer(port, secret);
  if (!conn) return false;
  auto f = ask(*conn, MsgType::kGetDescriptor, Json{{"engine_id", "probe"}});
  return f.is_ok() && f->type == MsgType::kDescriptor;
}

inline int64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

inline int num_threads() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

// Raises the soft descriptor limit to the hard one; returns the limit.
inline int64_t raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  ::getrlimit(RLIMIT_NOFILE, &rl);
  return static_cast<int64_t>(rl.rlim_cur);
}

inline bool wait_until_true(const std::function<bool()>& pred, double timeout_s) {
  return ::baton::testing::wait_until(pred, timeout_s);
}

// Raw bytes of a frame header claiming `json_bytes` of JSON.
inline std::string raw_header(MsgType type, uint32_t json_bytes, uint64_t payload_bytes = 0) {
  std::string h(kFrameHeaderBytes, '\0');
  const uint32_t magic = kWireMagic;
  const uint16_t version = kWireVersion, t = static_cast<uint16_t>(type);
  std::memcpy(h.data(), &magic, 4);
  std::memcpy(h.data() + 4, &version, 2);
  std::memcpy(h.data() + 6, &t, 2);
  std::memcpy(h.data() + 8, &json_bytes, 4);
  std::memcpy(h.data() + 16, &payload_bytes, 8);
  return h;
}

}  // namespace baton::testing
