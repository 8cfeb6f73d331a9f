#include "kv_transfer/cuda/cuda_ipc_transport.h"

#include <cuda.h>
#include <cuda_runtime.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "common/log.h"
#include "kv_transfer/cuda/cuda_block_copy.h"
#include "kv_transfer/cuda/cuda_device_copier.h"
#include "kv_transfer/transport_registry.h"

namespace baton {

namespace {

std::string to_hex(const void* data, size_t n) {
  std::string out;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) out += fmt::format("{:02x}", p[i]);
  return out;
}

Status from_hex(const std::string& hex, void* out, size_t n) {
  if (hex.size() != 2 * n) return invalid_argument("expected {} hex digits, got {}", 2 * n, hex.size());
  auto* p = static_cast<uint8_t*>(out);
  for (size_t i = 0; i < n; ++i) {
    unsigned v = 0;
    if (std::sscanf(hex.c_str() + 2 * i, "%2x", &v) != 1) return invalid_argument("bad hex digit");
    p[i] = static_cast<uint8_t>(v);
  }
  return Status::ok();
}

std::string this_hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

class CudaIpcLink : public PeerLink {
 public:
  CudaIpcLink(const KvRegionDesc& local, void* mapped_alloc, const uint8_t* remote_base, size_t block_bytes,
              cudaStream_t stream)
      : local_(local),
        mapped_alloc_(mapped_alloc),
        remote_base_(remote_base),
        block_bytes_(block_bytes),
        stream_(stream) {}

  ~CudaIpcLink() override {
    cudaSetDevice(local_.device_id);
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
    cudaIpcCloseMemHandle(mapped_alloc_);
  }

  Result<std::vector<uint64_t>> read(const std::vector<BlockRun>& runs, bool want_checksums,
                                     const ReadContext& ctx) override {
    if (want_checksums) return unimplemented("cuda_ipc: KV checksums are not computed on device");
    BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(local_.device_id), "cudaSetDevice"));
    cudaEvent_t done = nullptr;
    BATON_RETURN_IF_ERROR(cuda_status(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate"));
    Status st = enqueue_block_copy(static_cast<uint8_t*>(local_.base), remote_base_, block_bytes_, runs, stream_);
    if (st.is_ok()) st = cuda_status(cudaEventRecord(done, stream_), "cudaEventRecord");
    // Poll: the copy cannot be interrupted, but the caller gets its answer
    // by the deadline.
    while (st.is_ok()) {
      const cudaError_t q = cudaEventQuery(done);
      if (q == cudaSuccess) break;
      if (q != cudaErrorNotReady) {
        st = cuda_status(q, "KV copy");
        break;
      }
      if (ctx.is_cancelled()) st = aborted("cuda_ipc copy cancelled (still draining on the GPU)");
      else if (ctx.expired()) st = deadline_exceeded("cuda_ipc copy timed out");
      else std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    cudaEventDestroy(done);
    if (!st.is_ok()) return st;
    return std::vector<uint64_t>{};
  }

 private:
  KvRegionDesc local_;
  void* mapped_alloc_;
  const uint8_t* remote_base_;
  size_t block_bytes_;
  cudaStream_t stream_;
};

// The device allocation holding `ptr`: its base and size, from the driver's
// cuMemGetAddressRange, reached through the runtime so that the binary does
// not link libcuda (it must start on machines without a driver).
Status allocation_of(const void* ptr, CUdeviceptr* alloc_base, size_t* alloc_bytes) {
  using GetAddressRangeFn = CUresult (*)(CUdeviceptr*, size_t*, CUdeviceptr);
  void* entry = nullptr;
  cudaDriverEntryPointQueryResult query = cudaDriverEntryPointSymbolNotFound;
  if (cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &entry, 12000, cudaEnableDefault, &query) !=
          cudaSuccess ||
      query != cudaDriverEntryPointSuccess || entry == nullptr) {
    return unavailable("cuda_ipc: the CUDA driver does not provide cuMemGetAddressRange");
  }
  if (reinterpret_cast<GetAddressRangeFn>(entry)(alloc_base, alloc_bytes, reinterpret_cast<CUdeviceptr>(ptr)) !=
      CUDA_SUCCESS) {
    return invalid_argument("cuda_ipc: {} is not a cudaMalloc'd device pointer", ptr);
  }
  return Status::ok();
}

}  // namespace

Status CudaIpcTransport::register_local(const KvRegionDesc& region, PeerDescriptor& desc) {
  BATON_RETURN_IF_ERROR(check_region_caps(*this, region));
  BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(region.device_id), "cudaSetDevice"));
  // IPC handles name whole allocations: export the allocation holding the
  // region and send the region's offset within it.
  CUdeviceptr alloc_base = 0;
  size_t alloc_bytes = 0;
  BATON_RETURN_IF_ERROR(allocation_of(region.base, &alloc_base, &alloc_bytes).with_context("the KV base"));
  cudaIpcMemHandle_t handle;
  BATON_RETURN_IF_ERROR(
      cuda_status(cudaIpcGetMemHandle(&handle, reinterpret_cast<void*>(alloc_base)), "cudaIpcGetMemHandle"));
  char bus_id[32] = {};
  BATON_RETURN_IF_ERROR(
      cuda_status(cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), region.device_id), "cudaDeviceGetPCIBusId"));
  local_ = region;
  registered_ = true;
  desc.transport_params["ipc_handle"] = to_hex(&handle, sizeof(handle));
  desc.transport_params["offset_bytes"] = static_cast<uint64_t>(reinterpret_cast<CUdeviceptr>(region.base) -
                                                                alloc_base);
  desc.transport_params["pci_bus_id"] = std::string(bus_id);
  desc.transport_params["hostname"] = this_hostname();
  return Status::ok();
}

Result<std::unique_ptr<PeerLink>> CudaIpcTransport::connect(const PeerDescriptor& remote) {
  if (!registered_) return failed_precondition("cuda_ipc: no local KV region registered");
  if (remote.memory != MemoryKind::kDevice) {
    return failed_precondition("cuda_ipc: peer '{}' KV is not in device memory", remote.engine_id);
  }
  BATON_ASSIGN_OR_RETURN(const std::string host, transport_param<std::string>(remote, "hostname", ""));
  if (!host.empty() && host != this_hostname()) {
    return failed_precondition("cuda_ipc: peer '{}' is on host '{}', this is '{}' (use tcp)", remote.engine_id, host,
                               this_hostname());
  }
  cudaIpcMemHandle_t handle;
  BATON_ASSIGN_OR_RETURN(const std::string handle_hex, transport_param<std::string>(remote, "ipc_handle", ""));
  BATON_RETURN_IF_ERROR(from_hex(handle_hex, &handle, sizeof(handle))
                            .with_context("cuda_ipc: peer '" + remote.engine_id + "' ipc_handle"));
  BATON_ASSIGN_OR_RETURN(const uint64_t offset, transport_param<uint64_t>(remote, "offset_bytes", 0));
  BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(local_.device_id), "cudaSetDevice"));
  // Device ordinals differ between processes (CUDA_VISIBLE_DEVICES): find the
  // peer's GPU here by its PCI bus id.
  BATON_ASSIGN_OR_RETURN(const std::string bus_id, transport_param<std::string>(remote, "pci_bus_id", ""));
  int remote_device = -1;
  if (cudaDeviceGetByPCIBusId(&remote_device, bus_id.c_str()) != cudaSuccess) {
    cudaGetLastError();
    remote_device = -1;
  }
  if (remote_device >= 0 && remote_device != local_.device_id) {
    int can = 0;
    cudaDeviceCanAccessPeer(&can, local_.device_id, remote_device);
    if (can) {
      const cudaError_t e = cudaDeviceEnablePeerAccess(remote_device, 0);
      if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled) {
        return cuda_status(e, "cudaDeviceEnablePeerAccess");
      }
      cudaGetLastError();
    } else {
      BATON_LOG_WARN(
          "cuda_ipc: GPU {} cannot access peer GPU {} directly; copies go through the "
          "driver",
          local_.device_id, remote_device);
    }
  }
  void* mapped = nullptr;
  BATON_RETURN_IF_ERROR(cuda_status(cudaIpcOpenMemHandle(&mapped, handle, cudaIpcMemLazyEnablePeerAccess),
                                    "cudaIpcOpenMemHandle (the peer must be another process on this host)"));
  // The offset and the blocks come from the peer: the region they name must
  // lie inside the allocation the handle opened, or a read would fault the
  // device (and with it every later CUDA call of this process).
  CUdeviceptr mapped_base = 0;
  size_t mapped_bytes = 0;
  if (allocation_of(mapped, &mapped_base, &mapped_bytes).is_ok()) {
    if (Status fits = check_peer_region_within(remote, offset, mapped_bytes, "cuda_ipc"); !fits.is_ok()) {
      cudaIpcCloseMemHandle(mapped);
      return fits;
    }
  } else {
    cudaGetLastError();
    BATON_LOG_WARN("cuda_ipc: the size of peer '{}' KV allocation is unknown here; its region is not checked",
                   remote.engine_id);
  }
  cudaStream_t stream = nullptr;
  Status st = cuda_status(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  if (!st.is_ok()) {
    cudaIpcCloseMemHandle(mapped);
    return st;
  }
  return std::unique_ptr<PeerLink>(std::make_unique<CudaIpcLink>(
      local_, mapped, static_cast<const uint8_t*>(mapped) + offset, static_cast<size_t>(remote.block_bytes), stream));
}

void register_cuda_kv_transfer() {
  // "cuda_ipc" through make_transport().
  register_transport_factory("cuda_ipc", []() -> Result<std::unique_ptr<Transport>> {
    return std::unique_ptr<Transport>(std::make_unique<CudaIpcTransport>());
  });
  // Lets a tcp KV connector stage a GPU-resident KV cache through the host.
  register_device_copier_factory([](int device_id) -> Result<std::unique_ptr<DeviceCopier>> {
    if (device_id < 0) return invalid_argument("device copier: no CUDA device ordinal ({})", device_id);
    return std::unique_ptr<DeviceCopier>(std::make_unique<CudaDeviceCopier>(device_id));
  });
}

}  // namespace baton
