#include "pd/shm_kv_mirror.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <signal.h>
#include <sys/mman.h>

#include "common/log.h"

namespace baton {

// A prefill process killed with SIGKILL leaves its shared-memory mirror
// behind: remove mirrors ("/baton-kv-PID-NONCE-pdkv") whose process is gone.
void ShmKvMirror::remove_stale() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string name = entry.path().filename().string();
    int pid = 0;
    char nonce[40] = {0};
    if (std::sscanf(name.c_str(), "baton-kv-%d-%39[0-9a-f]-pdkv", &pid, nonce) != 2 || pid <= 0) continue;
    if (name.size() < 5 || name.compare(name.size() - 5, 5, "-pdkv") != 0) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
    if (::shm_unlink(("/" + name).c_str()) == 0) BATON_LOG_INFO("removed stale KV mirror /dev/shm/{}", name);
  }
}

Result<std::unique_ptr<ShmKvMirror>> ShmKvMirror::create(const KvMemory& memory) {
  if (memory.on_device) return invalid_argument("a shared-memory KV mirror needs host KV");
  remove_stale();
  BATON_ASSIGN_OR_RETURN(
      auto buffer, SharedMemoryBuffer::create(SharedMemoryBuffer::unique_name("pdkv"), memory.layout.total_bytes()));
  return std::unique_ptr<ShmKvMirror>(
      new ShmKvMirror(std::move(buffer), static_cast<const uint8_t*>(memory.base), memory.layout.block_bytes()));
}

void ShmKvMirror::copy_blocks(const std::vector<int>& block_ids) {
  uint8_t* dst = static_cast<uint8_t*>(buffer_->data());
  size_t i = 0;
  while (i < block_ids.size()) {
    size_t j = i + 1;
    while (j < block_ids.size() && block_ids[j] == block_ids[j - 1] + 1) ++j;
    const size_t offset = static_cast<size_t>(block_ids[i]) * block_bytes_;
    std::memcpy(dst + offset, source_ + offset, (j - i) * block_bytes_);
    i = j;
  }
}

}  // namespace baton
