#include "backend/backend_factory.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "backend/cpu/cpu_backend.h"

namespace baton {
namespace {

Result<std::unique_ptr<Backend>> make_cpu(const Checkpoint& ckpt, const BackendOptions& options) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> b, CpuBackend::create(ckpt, options));
  return std::unique_ptr<Backend>(std::move(b));
}

// The registry: device name -> maker. Written by explicit registrations at
// start and read afterwards; the mutex covers both.
struct Registry {
  std::mutex mu;
  std::map<std::string, BackendMaker> makers{{"cpu", &make_cpu}};
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void register_backend(const std::string& device, BackendMaker maker) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.makers[device] = maker;
}

std::vector<std::string> registered_backends() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> names;
  for (const auto& [name, maker] : r.makers) names.push_back(name);
  return names;
}

Result<std::unique_ptr<Backend>> make_backend(const std::string& device, const Checkpoint& ckpt,
                                              const BackendOptions& options) {
  BackendMaker maker = nullptr;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.makers.find(device);
    if (it != r.makers.end()) maker = it->second;
  }
  if (maker != nullptr) return maker(ckpt, options);
  if (device == "cuda")
    return unimplemented(
        "device 'cuda' is not available: this build of baton has no CUDA backend "
        "(configure with -DBATON_CUDA=ON on a machine with the CUDA toolkit)");
  std::string known;
  for (const std::string& name : registered_backends()) known += (known.empty() ? "" : ", ") + name;
  return invalid_argument("unknown device '{}' (known: {}{})", device, known,
                          known.find("cuda") == std::string::npos ? ", cuda in CUDA builds" : "");
}

}  // namespace baton
