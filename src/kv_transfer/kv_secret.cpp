#include "kv_transfer/kv_secret.h"

#include <sys/stat.h>

#include <cstdlib>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/json.h"

namespace baton {

namespace {

std::string to_hex(const unsigned char* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return out;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

}  // namespace

Result<std::shared_ptr<const KvSecret>> KvSecret::from_bytes(std::string_view bytes, std::string_view origin) {
  const std::string_view secret = trim(bytes);
  if (secret.size() < kMinKvSecretBytes) {
    return invalid_argument("the KV secret from {} has {} bytes; at least {} are needed (e.g. `openssl rand -hex 32`)",
                            origin, secret.size(), kMinKvSecretBytes);
  }
  return std::shared_ptr<const KvSecret>(new KvSecret(std::string(secret), std::string(origin)));
}

Result<std::shared_ptr<const KvSecret>> KvSecret::load(const std::string& path) {
  if (!path.empty()) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return not_found("--kv-secret-file {}: no such file", path);
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
      return failed_precondition("--kv-secret-file {} is readable by group or others (mode {:o}); chmod 600 it", path,
                                 st.st_mode & 0777);
    }
    BATON_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
    return from_bytes(bytes, "file " + path);
  }
  const char* env = std::getenv(kKvSecretEnv);
  if (env != nullptr && *env != '\0') return from_bytes(env, std::string("$") + kKvSecretEnv);
  return std::shared_ptr<const KvSecret>();
}

std::string KvSecret::mac_hex(std::string_view message) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), bytes_.data(), static_cast<int>(bytes_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len);
  return to_hex(mac, mac_len);
}

bool KvSecret::verify(std::string_view message, std::string_view mac) const {
  return equal_constant_time(mac_hex(message), mac);
}

Result<std::string> random_hex(size_t num_bytes) {
  std::vector<unsigned char> buf(num_bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) {
    return internal_error("OpenSSL RAND_bytes failed: the system's random source is not available");
  }
  return to_hex(buf.data(), buf.size());
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace baton
