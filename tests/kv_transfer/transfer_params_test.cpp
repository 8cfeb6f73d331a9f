// kv_transfer_params come back from a client: typed, signed with the KV
// secret, refused when altered; the secret itself is loaded safely.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "kv_transfer/kv_secret.h"
#include "kv_transfer/transfer_params.h"

namespace baton {
namespace {

std::shared_ptr<const KvSecret> secret(const char* text) {
  auto s = KvSecret::from_bytes(text, "test");
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s.is_ok() ? *s : nullptr;
}

TransferParams sample() {
  TransferParams p;
  p.engine_id = "prefill-1";
  p.request_id = "cmpl-1";
  p.block_ids = {3, 4, 5};
  p.host = "127.0.0.1";
  p.port = 7000;
  p.num_tokens = 40;
  p.block_size = 16;
  p.lease_expires_ms = 1700000000000;
  p.lease_ms = 30000;
  p.transport = "tcp";
  p.lease_token = "00112233445566778899aabbccddeeff";
  return p;
}

TEST(TransferParams, RoundTripSignedAndVerified) {
  auto key = secret("a-secret-of-sixteen-or-more");
  TransferParams p = sample();
  p.sign(*key);
  auto back = TransferParams::parse(p.to_json());
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_TRUE(back->verify(key.get()).is_ok());
  EXPECT_EQ(back->block_ids, p.block_ids);
  EXPECT_EQ(back->lease_token, p.lease_token);
}

// A client that edits any field (another host, other blocks, a longer
// lease...) breaks the signature.
TEST(TransferParams, AnyAlteredFieldFailsTheSignature) {
  auto key = secret("a-secret-of-sixteen-or-more");
  TransferParams p = sample();
  p.sign(*key);
  const Json good = p.to_json();
  const std::vector<std::pair<const char*, Json>> edits = {
      {"remote_engine_id", "prefill-2"},
      {"remote_request_id", "cmpl-2"},
      {"remote_block_ids", Json({3, 4, 6})},
      {"remote_host", "10.0.0.9"},
      {"remote_port", 7001},
      {"remote_num_tokens", 41},
      {"remote_block_size", 32},
      {"lease_expires_ms", 1800000000000},
      {"lease_ms", 99999999},
      {"kv_transport", "shm"},
      {"lease_token", "ffffffffffffffffffffffffffffffff"},
  };
  for (const auto& [key_name, value] : edits) {
    Json j = good;
    j[key_name] = value;
    auto parsed = TransferParams::parse(j);
    ASSERT_TRUE(parsed.is_ok()) << key_name;
    Status st = parsed->verify(key.get());
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << key_name;
    EXPECT_NE(st.message().find("signature does not match"), std::string::npos) << st.message();
  }
  Json unsigned_params = good;
  unsigned_params.erase("signature");
  Status st = TransferParams::parse(unsigned_params)->verify(key.get());
  EXPECT_NE(st.message().find("not signed"), std::string::npos) << st.message();
  // Another secret does not verify either.
  EXPECT_FALSE(TransferParams::parse(good)->verify(secret("another-secret-sixteen+").get()).is_ok());
}

TEST(TransferParams, WithoutASecretOnlyLoopbackHosts) {
  TransferParams p = sample();
  EXPECT_TRUE(p.verify(nullptr).is_ok());
  p.host = "localhost";
  EXPECT_TRUE(p.verify(nullptr).is_ok());
  p.host = "10.1.2.3";
  Status st = p.verify(nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("10.1.2.3"), std::string::npos) << st.message();
}

TEST(TransferParams, MistypedFieldsAreNamed) {
  const Json good = sample().to_json();
  const std::vector<std::pair<const char*, Json>> bad = {
      {"remote_port", "7000"},
      {"remote_port", 70000},
      {"remote_port", 1.5},
      {"remote_block_ids", "3,4"},
      {"remote_block_ids", Json({3, -1})},
      {"remote_block_ids", Json({3, 1e3})},
      {"remote_block_ids", Json({18446744073709551615ull})},
      {"remote_num_tokens", true},
      {"remote_engine_id", 5},
      {"lease_token", nullptr},
      {"lease_ms", 0},
  };
  for (const auto& [name, value] : bad) {
    Json j = good;
    j[name] = value;
    auto parsed = TransferParams::parse(j);
    ASSERT_FALSE(parsed.is_ok()) << name << "=" << value.dump();
    EXPECT_NE(parsed.status().message().find(name), std::string::npos) << parsed.status().message();
  }
  EXPECT_FALSE(TransferParams::parse(Json::array()).is_ok());
}

TEST(KvSecretTest, ShortSecretsAndOpenFilesAreRefused) {
  EXPECT_FALSE(KvSecret::from_bytes("short", "test").is_ok());
  EXPECT_TRUE(KvSecret::from_bytes("  sixteen-bytes-ok  \n", "test").is_ok());
  const std::string path = ::testing::TempDir() + "/kv_secret_" + std::to_string(::getpid());
  {
    std::ofstream out(path);
    out << "0123456789abcdef0123456789abcdef\n";
  }
  ::chmod(path.c_str(), 0644);
  auto open_file = KvSecret::load(path);
  ASSERT_FALSE(open_file.is_ok());
  EXPECT_NE(open_file.status().message().find("chmod 600"), std::string::npos) << open_file.status().message();
  ::chmod(path.c_str(), 0600);
  auto loaded = KvSecret::load(path);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  ASSERT_TRUE(*loaded);
  auto same = KvSecret::from_bytes("0123456789abcdef0123456789abcdef", "t");
  EXPECT_EQ((*loaded)->mac_hex("m"), (*same)->mac_hex("m"));
  EXPECT_TRUE((*loaded)->verify("m", (*same)->mac_hex("m")));
  EXPECT_FALSE((*loaded)->verify("m", (*same)->mac_hex("n")));
  EXPECT_FALSE((*loaded)->verify("m", ""));
  std::filesystem::remove(path);
  EXPECT_EQ(KvSecret::load(path).status().code(), StatusCode::kNotFound);
  ::setenv(kKvSecretEnv, "from-the-environment-0123", 1);
  auto env = KvSecret::load("");
  ::unsetenv(kKvSecretEnv);
  ASSERT_TRUE(env.is_ok());
  ASSERT_TRUE(*env);
  EXPECT_EQ((*env)->origin(), "$BATON_KV_SECRET");
  auto none = KvSecret::load("");
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(*none);
}

TEST(KvSecretTest, RandomTokensDiffer) {
  auto a = random_hex(16), b = random_hex(16);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(a->size(), 32u);
  EXPECT_NE(*a, *b);
}

}  // namespace
}  // namespace baton
