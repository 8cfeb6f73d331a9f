// safetensors header (src/model/safetensors_file: parse_safetensors_header).
// The first input byte picks the shape of the rest:
//   even: the rest is a whole file (8-byte length, JSON header, data);
//   odd:  the rest is "HEADER\0DATA" and the length prefix is computed, so
//         that mutations of the JSON are not lost to a stale length.
// Every tensor the parser accepts must lie inside the file.
// fuzz-link: baton_model
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "model/safetensors_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<unsigned char> file;
  const std::string_view rest = baton::fuzz::as_text(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    file.assign(rest.begin(), rest.end());
  } else {
    const size_t nul = std::min(rest.find('\0'), rest.size());
    const uint64_t header_len = nul;
    for (int i = 0; i < 8; ++i) file.push_back(static_cast<unsigned char>(header_len >> (8 * i)));
    file.insert(file.end(), rest.begin(), rest.begin() + nul);
    if (nul < rest.size()) file.insert(file.end(), rest.begin() + nul + 1, rest.end());
  }
  // Its own allocation, so that ASan sees any read past the end.
  auto* bytes = new unsigned char[file.size()];
  if (!file.empty()) std::memcpy(bytes, file.data(), file.size());
  auto tensors = baton::parse_safetensors_header(bytes, file.size(), "fuzz.safetensors");
  if (tensors.is_ok()) {
    for (const auto& [name, view] : *tensors) {
      const auto* p = static_cast<const unsigned char*>(view.data);
      if (p < bytes || p > bytes + file.size()) std::abort();
      uint64_t numel = 1;
      for (int64_t d : view.shape) {
        if (d < 0) std::abort();
        numel *= static_cast<uint64_t>(d);
      }
      const uint64_t num_bytes = numel * baton::dtype_size(view.dtype);
      if (num_bytes > static_cast<uint64_t>(bytes + file.size() - p)) std::abort();
      volatile unsigned char sink = 0;
      for (uint64_t i = 0; i < num_bytes; ++i) sink = sink ^ p[i];  // ASan checks each byte
    }
  }
  delete[] bytes;
  return 0;
}
