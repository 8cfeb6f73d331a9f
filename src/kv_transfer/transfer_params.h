// TransferParams: the kv_transfer_params a prefill instance returns and a
// decode instance receives back from a client (the router), so they are
// untrusted input on the decode side. Every field is type-checked; with a KV
// secret the prefill signs them (HMAC-SHA256 over every field a decode acts
// on) and a decode refuses any whose signature fails, so a client cannot
// point a decode at another host or at another request's blocks. The lease
// token (RAND_bytes) is what a reader presents to the prefill's agent: reads,
// renewals and "done" of a lease need it. docs/security.md ("The KV port").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "kv_transfer/kv_secret.h"

namespace baton {

struct TransferParams {
  std::string engine_id;           // remote_engine_id: the prefill instance
  std::string request_id;          // remote_request_id: its request (the lease)
  std::vector<int64_t> block_ids;  // remote_block_ids
  std::string host;                // remote_host, remote_port: its KV agent
  int port = 0;
  int num_tokens = 0;            // remote_num_tokens
  int block_size = 0;            // remote_block_size
  int64_t lease_expires_ms = 0;  // wall clock
  int64_t lease_ms = 0;
  std::string transport;    // kv_transport
  std::string lease_token;  // hex, from RAND_bytes
  // stream_kv: the lease started while the prompt was still being computed;
  // block_ids is then empty and the reader learns them from the agent's
  // progress answers (docs/pd.md, "Streamed KV").
  bool stream_kv = false;
  std::string signature;  // hex HMAC-SHA256; empty without a secret

  // Reads the fields of a decode request's kv_transfer_params; a missing or
  // mistyped field is INVALID_ARGUMENT naming it.
  static Result<TransferParams> parse(const Json& params);
  // The JSON a prefill returns (do_remote_prefill=true and the fields above).
  Json to_json() const;
  // What the signature covers: every field but the signature, unambiguously.
  std::string signing_message() const;

  void sign(const KvSecret& secret) { signature = secret.mac_hex(signing_message()); }
  // With a secret: the signature must be there and match. Without one
  // (loopback only): the agent named must be on loopback. INVALID_ARGUMENT
  // naming the problem otherwise.
  Status verify(const KvSecret* secret) const;
};

}  // namespace baton
