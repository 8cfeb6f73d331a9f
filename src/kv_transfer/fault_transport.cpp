#include "kv_transfer/fault_transport.h"

#include <chrono>
#include <thread>

namespace baton {

Result<FaultKind> parse_fault_kind(const std::string& name) {
  if (name == "none") return FaultKind::kNone;
  if (name == "fail") return FaultKind::kFail;
  if (name == "delay") return FaultKind::kDelay;
  if (name == "drop") return FaultKind::kDrop;
  if (name == "corrupt") return FaultKind::kCorrupt;
  return invalid_argument("unknown fault '{}' (expected none, fail, delay, drop or corrupt)", name);
}

FaultSpec FaultTransport::State::draw(uint64_t* corrupt_pick) {
  std::lock_guard<std::mutex> lock(mu);
  FaultSpec out = spec;
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  const bool hit = spec.kind != FaultKind::kNone && coin(rng) < spec.probability;
  *corrupt_pick = rng();
  if (!hit) out.kind = FaultKind::kNone;
  return out;
}

namespace {

// Sleeps until `until`, waking to honour the read's deadline and cancel flag.
Status sleep_until(TimePoint until, const ReadContext& ctx, const char* what) {
  while (SteadyClock::now() < until) {
    if (ctx.is_cancelled()) return aborted("injected {}: read cancelled", what);
    if (ctx.expired()) return deadline_exceeded("injected {}: read timed out", what);
    const auto next = std::min(until, SteadyClock::now() + std::chrono::milliseconds(5));
    std::this_thread::sleep_until(std::min(next, ctx.deadline));
  }
  return Status::ok();
}

class FaultLink : public PeerLink {
 public:
  FaultLink(std::unique_ptr<PeerLink> inner, std::shared_ptr<FaultTransport::State> state)
      : inner_(std::move(inner)), state_(std::move(state)) {}

  Result<std::vector<uint64_t>> read(const std::vector<BlockRun>& runs, bool want_checksums,
                                     const ReadContext& ctx) override {
    uint64_t pick = 0;
    const FaultSpec fault = state_->draw(&pick);
    switch (fault.kind) {
      case FaultKind::kNone: return inner_->read(runs, want_checksums, ctx);
      case FaultKind::kFail: ++state_->num_injected; return unavailable("injected fault: KV read failed");
      case FaultKind::kDelay: {
        ++state_->num_injected;
        BATON_RETURN_IF_ERROR(
            sleep_until(SteadyClock::now() + std::chrono::milliseconds(fault.delay_ms), ctx, "delay"));
        return inner_->read(runs, want_checksums, ctx);
      }
      case FaultKind::kDrop:
        ++state_->num_injected;
        BATON_RETURN_IF_ERROR(sleep_until(TimePoint::max(), ctx, "drop"));
        return internal_error("unreachable");
      case FaultKind::kCorrupt: {
        auto sums = inner_->read(runs, want_checksums, ctx);
        if (!sums.is_ok() || runs.empty()) return sums;
        const KvRegionDesc& local = state_->local;
        if (local.memory != MemoryKind::kHost) return sums;  // cannot touch device bytes here
        ++state_->num_injected;
        const int64_t n = count_blocks(runs);
        int64_t index = static_cast<int64_t>(pick % static_cast<uint64_t>(n));
        for (const auto& run : runs) {
          if (index < run.num_blocks) {
            uint8_t* block = local.block_ptr(run.local_first + index);
            block[(pick >> 20) % local.block_bytes()] ^= 0x5a;
            break;
          }
          index -= run.num_blocks;
        }
        return sums;
      }
    }
    return internal_error("unknown fault kind");
  }

 private:
  std::unique_ptr<PeerLink> inner_;
  std::shared_ptr<FaultTransport::State> state_;
};

}  // namespace

FaultTransport::FaultTransport(std::unique_ptr<Transport> inner, FaultSpec spec)
    : inner_(std::move(inner)), state_(std::make_shared<State>()) {
  state_->spec = spec;
  state_->rng.seed(spec.seed);
}

void FaultTransport::set_spec(const FaultSpec& spec) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->spec = spec;
  state_->rng.seed(spec.seed);
}

Status FaultTransport::register_local(const KvRegionDesc& region, PeerDescriptor& desc) {
  BATON_RETURN_IF_ERROR(inner_->register_local(region, desc));
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->local = region;
  return Status::ok();
}

Result<std::unique_ptr<PeerLink>> FaultTransport::connect(const PeerDescriptor& remote) {
  BATON_ASSIGN_OR_RETURN(auto inner, inner_->connect(remote));
  return std::unique_ptr<PeerLink>(std::make_unique<FaultLink>(std::move(inner), state_));
}

}  // namespace baton
