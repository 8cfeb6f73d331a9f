#include "kv_transfer/shm_buffer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>

namespace baton {

namespace {
Status check_name(const std::string& name) {
  if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos || name.size() > 200) {
    return invalid_argument("shared-memory name '{}' must be '/name' (no other '/')", name);
  }
  return Status::ok();
}
}  // namespace

std::string SharedMemoryBuffer::unique_name(const std::string& tag) {
  std::random_device rd;
  const uint64_t nonce = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return fmt::format("/baton-kv-{}-{:x}-{}", ::getpid(), nonce, tag);
}

Result<std::unique_ptr<SharedMemoryBuffer>> SharedMemoryBuffer::create(const std::string& name, size_t num_bytes) {
  BATON_RETURN_IF_ERROR(check_name(name));
  if (num_bytes == 0) return invalid_argument("shared memory '{}': size must be > 0", name);
  int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) {
    return unavailable("shm_open('{}') for create failed: {}", name, std::strerror(errno));
  }
  if (::ftruncate(fd, static_cast<off_t>(num_bytes)) != 0) {
    const int err = errno;
    ::close(fd);
    ::shm_unlink(name.c_str());
    return resource_exhausted("shared memory '{}': cannot size to {} bytes: {}", name, num_bytes, std::strerror(err));
  }
  void* data = ::mmap(nullptr, num_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  ::close(fd);
  if (data == MAP_FAILED) {
    ::shm_unlink(name.c_str());
    return resource_exhausted("shared memory '{}': mmap of {} bytes failed: {}", name, num_bytes, std::strerror(err));
  }
  return std::unique_ptr<SharedMemoryBuffer>(new SharedMemoryBuffer(name, data, num_bytes, true));
}

Result<std::unique_ptr<SharedMemoryBuffer>> SharedMemoryBuffer::open_read_only(const std::string& name,
                                                                               size_t min_bytes) {
  BATON_RETURN_IF_ERROR(check_name(name));
  int fd = ::shm_open(name.c_str(), O_RDONLY, 0);
  if (fd < 0) {
    return unavailable("shm_open('{}') failed: {} (is the peer on this host and alive?)", name, std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return unavailable("fstat of shared memory '{}' failed: {}", name, std::strerror(err));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < min_bytes) {
    ::close(fd);
    return failed_precondition("shared memory '{}' holds {} bytes, the peer's KV needs {}", name, size, min_bytes);
  }
  void* data = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  const int err = errno;
  ::close(fd);
  if (data == MAP_FAILED) {
    return unavailable("mmap of shared memory '{}' failed: {}", name, std::strerror(err));
  }
  return std::unique_ptr<SharedMemoryBuffer>(new SharedMemoryBuffer(name, data, size, false));
}

SharedMemoryBuffer::~SharedMemoryBuffer() {
  if (data_ != nullptr) ::munmap(data_, size_);
  if (owner_) ::shm_unlink(name_.c_str());
}

}  // namespace baton
