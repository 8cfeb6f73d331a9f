// The "decoder" of tokenizer.json, as HF tokenizers runs it on the token
// strings of a decode: ByteLevel, Replace (String or Regex), ByteFallback,
// Fuse, Strip, Metaspace, and Sequences of those; null means none (HF then
// joins the tokens with spaces). Other types are kUnimplemented, naming the
// type.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton::tokenizer {

class Decoder {
 public:
  static Result<Decoder> from_json(const Json& spec);

  Decoder();
  Decoder(Decoder&&) noexcept;
  Decoder& operator=(Decoder&&) noexcept;
  ~Decoder();

  // True when the decoder is a lone ByteLevel step: decoding is then the
  // concatenation of each token's bytes read as UTF-8 with replacement.
  bool is_byte_level() const;

  // The text of a sequence of token strings (vocabulary spellings or added
  // tokens' contents), as HF's decode_chain and join give it.
  std::string decode(std::vector<std::string> tokens) const;

  // What one token adds in the middle of a sequence, as raw bytes (possibly
  // part of a UTF-8 sequence: ByteFallback's <0xE2> is the byte 0xE2): the
  // per-token steps, without the rules that only touch the start of a text
  // (Metaspace's first token, Strip after Fuse).
  std::string token_piece(std::string_view token) const;

  struct Step;  // one decoder of the sequence (defined in the .cpp)

 private:
  std::vector<std::unique_ptr<Step>> steps_;
  bool none_ = true;  // no decoder at all
};

}  // namespace baton::tokenizer
