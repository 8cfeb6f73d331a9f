#include "model/safetensors_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "common/json.h"

namespace baton {

Result<DType> parse_safetensors_dtype(const std::string& name) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  if (name == "F8_E4M3") return DType::kF8E4M3;
  return unimplemented("dtype '{}' is not supported (supported: F32, F16, BF16, F8_E4M3)", name);
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) munmap(map_, size_bytes_);
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return not_found("safetensors file '{}' does not exist", path);
    return unavailable("cannot open safetensors file '{}': {}", path, std::strerror(errno));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return unavailable("cannot stat '{}': {}", path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return invalid_argument("'{}' is not a regular file", path);
  }
  f->size_bytes_ = static_cast<size_t>(st.st_size);
  if (f->size_bytes_ < 8) {
    ::close(fd);
    return data_loss("safetensors file '{}' is truncated: {} bytes, less than the 8-byte header length", path,
                     f->size_bytes_);
  }
  void* m = mmap(nullptr, f->size_bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (m == MAP_FAILED) return unavailable("cannot mmap '{}': {}", path, std::strerror(err));
  f->map_ = m;
  BATON_ASSIGN_OR_RETURN(f->tensors_,
                         parse_safetensors_header(static_cast<const unsigned char*>(m), f->size_bytes_, path));
  return f;
}

Result<std::map<std::string, TensorView>> parse_safetensors_header(const unsigned char* base, size_t size_bytes,
                                                                   const std::string& path) {
  if (size_bytes < 8) {
    return data_loss("safetensors file '{}' is truncated: {} bytes, less than the 8-byte header length", path,
                     size_bytes);
  }
  std::map<std::string, TensorView> tensors;
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];  // little-endian
  if (header_len > size_bytes - 8) {
    return data_loss("safetensors file '{}' is corrupt or truncated: header length {} is beyond the file size {}", path,
                     header_len, size_bytes);
  }
  const size_t data_start = 8 + static_cast<size_t>(header_len);
  const size_t data_size = size_bytes - data_start;
  std::string_view text(reinterpret_cast<const char*>(base + 8), static_cast<size_t>(header_len));
  // parse_json: never throws, and refuses nesting past kMaxJsonDepth.
  auto parsed = parse_json(text, "JSON header");
  if (!parsed.is_ok()) {
    return data_loss("safetensors file '{}' has a corrupt header: {}", path, parsed.status().message());
  }
  const Json header = std::move(parsed).value();
  if (!header.is_object()) return data_loss("safetensors file '{}' has a corrupt header: not a JSON object", path);

  for (const auto& item : header.items()) {
    const std::string& name = item.key();
    const Json& info = item.value();
    if (name == "__metadata__") continue;
    auto bad = [&](const std::string& why) {
      return data_loss("safetensors file '{}' is corrupt: tensor '{}' {}", path, name, why);
    };
    if (!info.is_object()) return bad("has no header object");
    auto dt = info.find("dtype");
    auto sh = info.find("shape");
    auto off = info.find("data_offsets");
    if (dt == info.end() || !dt->is_string()) return bad("has no string 'dtype'");
    if (sh == info.end() || !sh->is_array()) return bad("has no 'shape' array");
    if (off == info.end() || !off->is_array() || off->size() != 2) return bad("has no 'data_offsets' pair");
    TensorView view;
    view.name = name;
    auto dtype = parse_safetensors_dtype(dt->get<std::string>());
    if (!dtype.is_ok()) {
      return Status(dtype.status().code(),
                    fmt::format("safetensors file '{}': tensor '{}': {}", path, name, dtype.status().message()));
    }
    view.dtype = *dtype;
    // Element count with overflow checks: a corrupt shape must not wrap.
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) return bad("has a shape entry that is not a non-negative integer");
      uint64_t v = d.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (v != 0 && numel > std::numeric_limits<uint64_t>::max() / 8 / v)) {
        return bad("has an absurdly large shape");
      }
      numel *= v;
      view.shape.push_back(static_cast<int64_t>(v));
    }
    const auto& b = (*off)[0];
    const auto& e = (*off)[1];
    if (!b.is_number_unsigned() || !e.is_number_unsigned())
      return bad("has data_offsets that are not non-negative integers");
    uint64_t begin = b.get<uint64_t>();
    uint64_t end = e.get<uint64_t>();
    if (begin > end) return bad(fmt::format("has data_offsets [{}, {}] with begin after end", begin, end));
    if (end > data_size) {
      return data_loss(
          "safetensors file '{}' is truncated or corrupt: tensor '{}' data_offsets [{}, {}] run past the "
          "end of the data ({} bytes)",
          path, name, begin, end, data_size);
    }
    const uint64_t expected = numel * dtype_size(view.dtype);
    if (end - begin != expected) {
      return bad(fmt::format("holds {} bytes but its shape and dtype need {}", end - begin, expected));
    }
    view.data = base + data_start + begin;
    tensors.emplace(name, std::move(view));
  }
  return tensors;
}

}  // namespace baton
