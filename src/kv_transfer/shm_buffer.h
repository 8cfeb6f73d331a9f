// SharedMemoryBuffer: a POSIX shared-memory object (shm_open + mmap). The
// prefill side allocates its host KV region in one (create), and the decode
// side maps it once per peer (open, read-only).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "common/status.h"

namespace baton {

class SharedMemoryBuffer {
 public:
  // Creates (exclusively) and maps read-write; the object is unlinked when
  // the buffer is destroyed. `name` must look like "/something".
  static Result<std::unique_ptr<SharedMemoryBuffer>> create(const std::string& name, size_t num_bytes);
  // Maps an existing object read-only; it must hold at least min_bytes.
  static Result<std::unique_ptr<SharedMemoryBuffer>> open_read_only(const std::string& name, size_t min_bytes);
  // A name unique to this process: "/baton-kv-<pid>-<random>-<tag>".
  static std::string unique_name(const std::string& tag);

  ~SharedMemoryBuffer();
  SharedMemoryBuffer(const SharedMemoryBuffer&) = delete;
  SharedMemoryBuffer& operator=(const SharedMemoryBuffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& name() const { return name_; }

 private:
  SharedMemoryBuffer(std::string name, void* data, size_t size, bool owner)
      : name_(std::move(name)), data_(data), size_(size), owner_(owner) {}

  std::string name_;
  void* data_ = nullptr;
  size_t size_ = 0;
  bool owner_ = false;
};

}  // namespace baton
