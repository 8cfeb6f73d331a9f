// KvSecret: the shared secret that KV peers (prefill agents, decode readers)
// prove they hold, and the HMAC-SHA256 and random tokens built on it. All of
// the cryptography is OpenSSL's libcrypto (HMAC, RAND_bytes, CRYPTO_memcmp);
// nothing here is hand-written crypto. docs/security.md ("The KV port") has the protocol.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace baton {

// The environment variable a secret may come from (never the command line,
// where `ps` shows it to every user of the machine).
inline constexpr const char* kKvSecretEnv = "BATON_KV_SECRET";
// Fewer bytes than this is refused: a short secret can be guessed offline
// from one recorded handshake.
inline constexpr size_t kMinKvSecretBytes = 16;

class KvSecret {
 public:
  // The secret as bytes (surrounding whitespace, such as a file's trailing
  // newline, removed). Refuses one shorter than kMinKvSecretBytes.
  static Result<std::shared_ptr<const KvSecret>> from_bytes(std::string_view bytes, std::string_view origin);
  // From `path` when not empty (a file readable by group or others is
  // refused), else from $BATON_KV_SECRET when set, else null (no secret).
  static Result<std::shared_ptr<const KvSecret>> load(const std::string& path);

  // Lowercase hex of HMAC-SHA256(secret, message).
  std::string mac_hex(std::string_view message) const;
  // Whether mac_hex(message) equals `mac` (constant time: CRYPTO_memcmp).
  bool verify(std::string_view message, std::string_view mac) const;
  const std::string& origin() const { return origin_; }

 private:
  KvSecret(std::string bytes, std::string origin) : bytes_(std::move(bytes)), origin_(std::move(origin)) {}
  std::string bytes_;
  std::string origin_;  // "file PATH" or "$BATON_KV_SECRET", for logs (never the value)
};

// `num_bytes` bytes from OpenSSL's CSPRNG (RAND_bytes) as lowercase hex.
Result<std::string> random_hex(size_t num_bytes);

// Constant-time equality of two strings (CRYPTO_memcmp; a length mismatch is
// unequal without comparing).
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace baton
