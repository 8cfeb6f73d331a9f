#include "kv_transfer/kv_handshake.h"

#include "kv_transfer/wire.h"

namespace baton {

namespace {

constexpr const char* kAuthHmac = "hmac-sha256";
constexpr size_t kNonceBytes = 32;

std::string reader_message(const std::string& agent_nonce, const std::string& reader_nonce) {
  return "baton-kv-v2 reader|" + agent_nonce + "|" + reader_nonce;
}
std::string agent_message(const std::string& agent_nonce, const std::string& reader_nonce) {
  return "baton-kv-v2 agent|" + agent_nonce + "|" + reader_nonce;
}

}  // namespace

Json make_hello(const KvSecret* secret, const std::string& nonce, int64_t idle_timeout_ms) {
  Json hello{{"auth", secret != nullptr ? kAuthHmac : "none"}, {"idle_timeout_ms", idle_timeout_ms}};
  if (secret != nullptr) hello["nonce"] = nonce;
  return hello;
}

Result<Json> answer_auth(const KvSecret& secret, const std::string& nonce, const Json& auth) {
  auto reader_nonce = frame_string(auth, "client_nonce", true);
  auto mac = frame_string(auth, "mac", true);
  if (!reader_nonce.is_ok()) return permission_denied("KV handshake: {}", reader_nonce.status().message());
  if (!mac.is_ok()) return permission_denied("KV handshake: {}", mac.status().message());
  if (reader_nonce->size() < 2 * kNonceBytes || reader_nonce->size() > 256) {
    return permission_denied("KV handshake: client_nonce must be {} to 256 hex digits", 2 * kNonceBytes);
  }
  if (!secret.verify(reader_message(nonce, *reader_nonce), *mac)) {
    return permission_denied("KV handshake: the peer's proof does not match this agent's KV secret");
  }
  return Json{{"mac", secret.mac_hex(agent_message(nonce, *reader_nonce))}};
}

Result<int64_t> reader_handshake(Connection& conn, const KvSecret* secret, const ReadContext& ctx) {
  BATON_ASSIGN_OR_RETURN(Frame hello, recv_frame(conn, ctx, kMaxHandshakeJsonBytes));
  if (hello.type == MsgType::kError) return status_from_error_frame(hello, conn.peer_name());
  if (hello.type != MsgType::kHello) {
    return data_loss("KV peer {}: expected a hello, got message type {}", conn.peer_name(),
                     static_cast<int>(hello.type));
  }
  BATON_ASSIGN_OR_RETURN(std::string auth, frame_string(hello.json, "auth", true));
  int64_t idle_ms = 0;
  if (auto it = hello.json.find("idle_timeout_ms"); it != hello.json.end()) {
    auto v = frame_nonnegative_int(*it, "idle_timeout_ms");
    if (v.is_ok()) idle_ms = *v;
  }
  if (auth == "none") {
    if (secret != nullptr) {
      return permission_denied(
          "KV peer {} serves without authentication, but this instance has a KV secret ({}): refusing it "
          "(give the prefill instance the same secret)",
          conn.peer_name(), secret->origin());
    }
    return idle_ms;
  }
  if (auth != kAuthHmac) return failed_precondition("KV peer {}: unknown auth scheme '{}'", conn.peer_name(), auth);
  if (secret == nullptr) {
    return permission_denied(
        "KV peer {} requires authentication: give this instance its KV secret (--kv-secret-file or ${})",
        conn.peer_name(), kKvSecretEnv);
  }
  BATON_ASSIGN_OR_RETURN(std::string agent_nonce, frame_string(hello.json, "nonce", true));
  BATON_ASSIGN_OR_RETURN(std::string reader_nonce, random_hex(kNonceBytes));
  BATON_RETURN_IF_ERROR(send_frame(
      conn, MsgType::kAuth,
      Json{{"client_nonce", reader_nonce}, {"mac", secret->mac_hex(reader_message(agent_nonce, reader_nonce))}}, 0,
      ctx));
  BATON_ASSIGN_OR_RETURN(Frame ok, recv_frame(conn, ctx, kMaxHandshakeJsonBytes));
  if (ok.type == MsgType::kError) return status_from_error_frame(ok, conn.peer_name());
  if (ok.type != MsgType::kAuthOk) {
    return data_loss("KV peer {}: expected the agent's proof, got message type {}", conn.peer_name(),
                     static_cast<int>(ok.type));
  }
  BATON_ASSIGN_OR_RETURN(std::string mac, frame_string(ok.json, "mac", true));
  if (!secret->verify(agent_message(agent_nonce, reader_nonce), mac)) {
    return permission_denied(
        "KV peer {}: its proof does not match this instance's KV secret (an impostor, or "
        "another secret)",
        conn.peer_name());
  }
  return idle_ms;
}

}  // namespace baton
