// The prefill's lease table behind the KV port, in process: a peer on the
// port reads only the blocks of the lease whose token it presents, cannot
// renew or end another request's lease, and the router's release frees a
// lease at once. The decode side refuses kv_transfer_params it cannot trust.
#include <gtest/gtest.h>

#include <vector>

#include "kv_transfer/transfer_engine.h"
#include "kv_transfer/transport_registry.h"
#include "pd/pd_connector_fixture.h"

namespace baton {
namespace {

using testing::HostKv;

std::shared_ptr<const KvSecret> secret(const char* text = "shared-kv-secret-for-tests") {
  return KvSecret::from_bytes(text, "test").value();
}

std::shared_ptr<PdKvConnector> connector(const HostKv& kv, PdRole role, const std::string& id,
                                         std::shared_ptr<const KvSecret> key = nullptr) {
  PdConnectorOptions o;
  o.role = role;
  o.engine_id = id;
  o.model = "m";
  o.transport = "tcp";
  o.secret = std::move(key);
  auto c = create_pd_connector(kv.memory, o);
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  return c.is_ok() ? *c : nullptr;
}

// A peer on the KV port (a decode's transfer engine, or anyone's).
struct Peer {
  HostKv kv{0};
  std::unique_ptr<TransferEngine> engine;
  PeerDescriptor remote;
  explicit Peer(int port, std::shared_ptr<const KvSecret> key = nullptr) {
    TransferEngineOptions o;
    o.engine_id = "peer";
    o.model = "m";
    o.secret = std::move(key);
    engine = TransferEngine::create(make_transport("tcp").value(), o).value();
    EXPECT_TRUE(engine->register_memory(KvRegionDesc::of(kv.memory)).is_ok());
    auto r = engine->connect_peer("127.0.0.1", port);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (r.is_ok()) remote = *r;
  }
  Status read(std::vector<int64_t> remote_ids, const KvGrant& grant) {
    std::vector<int64_t> local(remote_ids.size());
    for (size_t i = 0; i < local.size(); ++i) local[i] = static_cast<int64_t>(i);
    ReadOptions ro;
    ro.grant = grant;
    auto h = engine->read_blocks(remote.engine_id, remote_ids, local, ro);
    if (!h.is_ok()) return h.status();
    BATON_RETURN_IF_ERROR((*h)->wait(10000));
    return (*h)->status();
  }
};

KvGrant grant_of(const Json& params) {
  return KvGrant{params["remote_request_id"].get<std::string>(), params["lease_token"].get<std::string>()};
}

// Probe: any client on the KV port read any block of any request, renewed
// any lease forever and freed another request's blocks with a forged "done".
TEST(KvLeaseTrust, OnlyTheLeaseHolderReadsRenewsOrEndsIt) {
  HostKv kv(0x5a);
  auto prefill = connector(kv, PdRole::kPrefill, "prefill-x");
  ASSERT_TRUE(prefill);
  const Json a = prefill->on_prefill_finished("req-a", 8, {1, 2});
  const Json b = prefill->on_prefill_finished("req-b", 8, {5, 6});
  ASSERT_EQ(a["lease_token"].get<std::string>().size(), 32u);
  EXPECT_NE(a["lease_token"], b["lease_token"]);
  Peer peer(prefill->kv_port());
  // b's blocks with a's token; a's blocks with no lease at all; a guessed token.
  EXPECT_EQ(peer.read({5, 6}, grant_of(a)).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(peer.read({1, 2}, KvGrant{}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(peer.read({1, 2}, KvGrant{"req-a", std::string(32, '0')}).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(peer.read({0}, grant_of(a)).code(), StatusCode::kPermissionDenied);
  // Forged renew and done: refused, both leases still held.
  EXPECT_FALSE(peer.engine->notify_renew(peer.remote.engine_id, KvGrant{"req-b", "forged"}).is_ok());
  EXPECT_FALSE(peer.engine->notify_done(peer.remote.engine_id, KvGrant{"req-b", grant_of(a).lease_token}).is_ok());
  EXPECT_FALSE(peer.engine->notify_done(peer.remote.engine_id, "req-b").is_ok());
  EXPECT_EQ(prefill->stats().num_leases, 2);
  EXPECT_EQ(prefill->stats().num_lease_renewals, 0);
  EXPECT_GE(prefill->stats().num_grants_denied, 6);
  // The holder: reads its blocks, renews, ends its lease.
  EXPECT_TRUE(peer.read({1, 2}, grant_of(a)).is_ok());
  EXPECT_EQ(peer.kv.bytes[0], 0x5a + 1);  // block 1 of the prefill
  EXPECT_TRUE(peer.engine->notify_renew(peer.remote.engine_id, grant_of(a)).is_ok());
  EXPECT_TRUE(peer.engine->notify_done(peer.remote.engine_id, grant_of(a)).is_ok());
  EXPECT_EQ(prefill->stats().num_leases, 1);
  EXPECT_EQ(prefill->stats().num_lease_renewals, 1);
  KvConnectorEvents ev = prefill->poll();
  ASSERT_EQ(ev.blocks_to_release.size(), 1u);
  EXPECT_EQ(ev.blocks_to_release[0], (std::vector<int>{1, 2}));
  prefill->stop();
}

// The router gives up (no decode came): the prefill frees the lease now.
TEST(KvLeaseTrust, ReleaseFreesTheLeaseOnlyForItsParams) {
  HostKv kv(1);
  auto prefill = connector(kv, PdRole::kPrefill, "prefill-r", secret());
  ASSERT_TRUE(prefill);
  const Json a = prefill->on_prefill_finished("req-a", 8, {3, 4});
  Json forged = a;
  forged["lease_token"] = std::string(32, 'f');
  EXPECT_FALSE(prefill->release_lease(forged).is_ok());  // the signature covers the token
  Json other_blocks = a;
  other_blocks["remote_block_ids"] = Json({7, 8});
  EXPECT_FALSE(prefill->release_lease(other_blocks).is_ok());
  EXPECT_EQ(prefill->stats().num_leases, 1);
  ASSERT_TRUE(prefill->release_lease(a).is_ok());
  EXPECT_EQ(prefill->stats().num_leases, 0);
  EXPECT_EQ(prefill->stats().num_leases_released, 1);
  EXPECT_EQ(prefill->poll().blocks_to_release.size(), 1u);
  EXPECT_EQ(prefill->release_lease(a).code(), StatusCode::kNotFound);  // already ended
  EXPECT_EQ(prefill->release_lease(Json{{"remote_request_id", 5}}).code(), StatusCode::kInvalidArgument);
  prefill->stop();
}

// Probe: a decode given client-written kv_transfer_params connected to the
// host they named and read the blocks they listed.
TEST(KvLeaseTrust, DecodeRefusesParamsItCannotTrust) {
  HostKv pkv(2), dkv(0);
  auto key = secret();
  auto prefill = connector(pkv, PdRole::kPrefill, "prefill-s", key);
  auto decode = connector(dkv, PdRole::kDecode, "decode-s", key);
  auto open_decode = connector(dkv, PdRole::kDecode, "decode-open");
  ASSERT_TRUE(prefill && decode && open_decode);
  const Json a = prefill->on_prefill_finished("req-a", 8, {1, 2});
  EXPECT_TRUE(decode->check_transfer_params(a).is_ok());
  for (const auto& [field, value] : std::vector<std::pair<const char*, Json>>{{"remote_host", "203.0.113.7"},
                                                                              {"remote_port", 22},
                                                                              {"remote_block_ids", Json({9, 10})},
                                                                              {"remote_request_id", "req-b"}}) {
    Json j = a;
    j[field] = value;
    Status st = decode->check_transfer_params(j);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << field;
    EXPECT_NE(st.message().find("signature"), std::string::npos) << st.message();
  }
  Json client_written = {{"do_remote_prefill", true},
                         {"remote_engine_id", "x"},
                         {"remote_request_id", "y"},
                         {"remote_block_ids", Json({0, 1})},
                         {"remote_host", "203.0.113.7"},
                         {"remote_port", 9},
                         {"remote_num_tokens", 8},
                         {"remote_block_size", 4},
                         {"lease_expires_ms", 1},
                         {"lease_ms", 1},
                         {"lease_token", "t"}};
  EXPECT_NE(decode->check_transfer_params(client_written).message().find("not signed"), std::string::npos);
  // Without a secret: only loopback agents.
  Status open = open_decode->check_transfer_params(client_written);
  EXPECT_EQ(open.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(open.message().find("203.0.113.7"), std::string::npos) << open.message();
  client_written["remote_port"] = "9";
  EXPECT_NE(open_decode->check_transfer_params(client_written).message().find("remote_port"), std::string::npos);
  prefill->stop();
  decode->stop();
  open_decode->stop();
}

}  // namespace
}  // namespace baton
