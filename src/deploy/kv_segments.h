// The POSIX shared-memory segments a `baton serve` process leaves when it
// dies without unlinking them (SIGKILL, a crash). A prefill instance with the
// shm KV transport maps its host KV region in a segment named
// "/baton-kv-<pid>-<random>-<tag>" (kv_transfer/shm_buffer.h, unique_name)
// and unlinks it on a clean exit. It cannot unlink it right after mapping:
// decode instances open it by name whenever they first pull from this prefill.
// So whoever started the process removes what it left once it is reaped: the
// Supervisor does, for every instance it stops or finds dead.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace baton::deploy {

// Where the segments live (Linux's shm_open uses this tmpfs).
inline constexpr const char* kShmDir = "/dev/shm";

// The names (in kShmDir) of the KV segments process `pid` created.
std::vector<std::string> kv_segments_of(pid_t pid, const std::string& shm_dir = kShmDir);

// Unlinks them; returns how many were removed. Only call once `pid` has been
// reaped (a live process may still be serving from them).
int remove_kv_segments_of(pid_t pid, const std::string& shm_dir = kShmDir);

}  // namespace baton::deploy
