#include "model/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>
#include <string_view>
#include <unordered_set>

#include "common/json.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

Status write_all(int fd, const std::byte* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      return unavailable("error writing '{}': {}", path, std::strerror(errno));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::ok();
}

std::string make_header(const std::vector<TensorSpec>& tensors) {
  Json header = Json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    const uint64_t n = t.num_bytes();
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  return text;
}

}  // namespace

Status write_safetensors(const std::string& path, const std::vector<TensorSpec>& tensors, const TensorFillFn& fill) {
  std::unordered_set<std::string_view> names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].name.empty()) return invalid_argument("tensor {} has an empty name", i);
    for (int64_t d : tensors[i].shape) {
      if (d < 0) return invalid_argument("tensor '{}' has a negative dimension", tensors[i].name);
    }
    if (!names.insert(tensors[i].name).second) return invalid_argument("tensor '{}' is listed twice", tensors[i].name);
  }
  const std::string header = make_header(tensors);
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return unavailable("cannot create '{}': {}", tmp, std::strerror(errno));
  auto fail = [&](Status st) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return st;
  };
  unsigned char len_bytes[8];
  uint64_t len = header.size();
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(len >> (8 * i));  // little-endian
  Status st = write_all(fd, reinterpret_cast<const std::byte*>(len_bytes), 8, tmp);
  if (st.is_ok()) st = write_all(fd, reinterpret_cast<const std::byte*>(header.data()), header.size(), tmp);
  if (!st.is_ok()) return fail(st);
  // Two buffers: tensor i is filled while tensor i-1 is being written, so at
  // most two tensors are in memory.
  std::vector<std::byte> buffers[2];
  std::future<Status> pending;  // the write of the previous tensor
  for (size_t i = 0; i < tensors.size() && st.is_ok(); ++i) {
    std::vector<std::byte>& buffer = buffers[i % 2];
    buffer.resize(tensors[i].num_bytes());
    st = fill(i, std::span<std::byte>(buffer));
    if (pending.valid()) {
      Status wst = pending.get();
      if (st.is_ok()) st = wst;
    }
    if (st.is_ok()) {
      pending = std::async(std::launch::async,
                           [&buffer, fd, &tmp] { return write_all(fd, buffer.data(), buffer.size(), tmp); });
    }
  }
  if (pending.valid()) {
    Status wst = pending.get();
    if (st.is_ok()) st = wst;
  }
  if (!st.is_ok()) return fail(st);
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return unavailable("error closing '{}': {}", tmp, std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return unavailable("cannot rename '{}' to '{}': {}", tmp, path, std::strerror(errno));
  }
  return Status::ok();
}

Status write_safetensors(const std::string& path, const std::vector<TensorView>& tensors) {
  std::vector<TensorSpec> specs;
  specs.reserve(tensors.size());
  for (const auto& t : tensors) specs.push_back({t.name, t.dtype, t.shape});
  return write_safetensors(path, specs, [&](size_t i, std::span<std::byte> out) {
    if (out.size() > 0) std::memcpy(out.data(), tensors[i].data, out.size());
    return Status::ok();
  });
}

Status write_checkpoint_weights(const std::string& dir, const std::vector<TensorSpec>& tensors,
                                const TensorFillFn& fill, uint64_t max_shard_bytes) {
  if (max_shard_bytes == 0) return invalid_argument("max_shard_bytes must be > 0");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return unavailable("cannot create '{}': {}", dir, ec.message());

  // Greedy shards in order: a new shard starts when the next tensor would
  // push the current one past the limit.
  std::vector<std::vector<size_t>> shards(1);
  uint64_t shard_bytes = 0;
  uint64_t total_bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t n = tensors[i].num_bytes();
    if (!shards.back().empty() && shard_bytes + n > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += n;
    total_bytes += n;
  }

  // Remove the weight files of an earlier layout, so the folder is unambiguous.
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool old_shard = name.rfind("model-", 0) == 0 && name.size() > 12 &&
                           name.compare(name.size() - 12, 12, ".safetensors") == 0;
    if (old_shard || name == "model.safetensors" || name == "model.safetensors.index.json") {
      stale.push_back(entry.path());
    }
  }
  for (const auto& p : stale) {
    fs::remove(p, ec);
    if (ec) return unavailable("cannot remove the old weight file '{}': {}", p.string(), ec.message());
  }

  if (shards.size() == 1) {
    return write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, fill);
  }
  Json weight_map = Json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string file = fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, shards.size());
    std::vector<TensorSpec> specs;
    for (size_t i : shards[s]) {
      specs.push_back(tensors[i]);
      weight_map[tensors[i].name] = file;
    }
    const auto& ids = shards[s];
    BATON_RETURN_IF_ERROR(write_safetensors((fs::path(dir) / file).string(), specs,
                                            [&](size_t k, std::span<std::byte> out) { return fill(ids[k], out); }));
  }
  Json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}};
  return write_file((fs::path(dir) / "model.safetensors.index.json").string(), index.dump(2) + "\n");
}

}  // namespace baton
