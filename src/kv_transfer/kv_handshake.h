// The KV port's connection handshake (wire.h). The agent speaks first:
//
//   agent  -> kHello  {auth: "hmac-sha256", nonce: Na, idle_timeout_ms}   (or {auth: "none", ...})
//   reader -> kAuth   {client_nonce: Nc, mac: HMAC(secret, "baton-kv-v2 reader|" Na "|" Nc)}
//   agent  -> kAuthOk {mac: HMAC(secret, "baton-kv-v2 agent|" Na "|" Nc)}
//
// Both nonces are 32 bytes from RAND_bytes, so a recorded exchange replays
// nowhere; the two directions use different labels, so one side's proof is
// never a valid answer for the other. A reader with a secret refuses an agent
// that serves without one (it could be an impostor); an agent with a secret
// answers nothing but kAuth until the proof checks.
#pragma once

#include <cstdint>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "kv_transfer/connection.h"
#include "kv_transfer/kv_secret.h"

namespace baton {

// Before authentication a frame's JSON may be at most this large.
inline constexpr uint32_t kMaxHandshakeJsonBytes = 4096;

// Agent side. The kHello JSON for a new connection; `nonce` is the agent's
// (random_hex(32)) when it has a secret, else unused.
Json make_hello(const KvSecret* secret, const std::string& nonce, int64_t idle_timeout_ms);
// Checks a kAuth frame's JSON against the agent's nonce: the kAuthOk JSON,
// or PERMISSION_DENIED naming what failed.
Result<Json> answer_auth(const KvSecret& secret, const std::string& nonce, const Json& auth);

// Reader side: reads the agent's kHello and, when it asks, authenticates.
// Returns the agent's idle timeout in ms (0 if it sent none).
Result<int64_t> reader_handshake(Connection& conn, const KvSecret* secret, const ReadContext& ctx);

}  // namespace baton
