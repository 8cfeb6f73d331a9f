// The KV pull's time fitted from `baton bench-transfer` rows.
#include "planner/transfer_fit.h"

#include <gtest/gtest.h>

namespace baton::planner {
namespace {

TEST(TransferFitTest, LatencyAndBandwidthFromTwoSizes) {
  // 1 ms + bytes at 100 GB/s, for 0.1 and 1 GB; a tcp row is another transport.
  const Json doc = Json::parse(R"({"rows": [
      {"transport": "cuda_ipc", "tcp_streams": 0, "bytes": 1e8, "best_ms": 1.5, "median_ms": 2.0},
      {"transport": "cuda_ipc", "tcp_streams": 0, "bytes": 1e9, "best_ms": 10.5, "median_ms": 11.0},
      {"transport": "tcp", "tcp_streams": 4, "bytes": 1e9, "best_ms": 100, "median_ms": 110}]})");
  auto f = fit_transfer(doc, "cuda_ipc");
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(f->num_rows, 2);
  EXPECT_NEAR(f->bytes_per_s, 1e11, 1e3);  // from the medians
  EXPECT_NEAR(f->latency_s, 1e-3, 1e-9);
  auto tcp = fit_transfer(doc, "tcp", 4);
  ASSERT_TRUE(tcp.is_ok());
  EXPECT_NEAR(tcp->bytes_per_s, 1e9 / 0.110, 1);  // one size: its bandwidth, no latency
  EXPECT_EQ(tcp->latency_s, 0);
  EXPECT_FALSE(fit_transfer(doc, "tcp", 1).is_ok());
  EXPECT_FALSE(fit_transfer(doc, "shm").is_ok());
  EXPECT_FALSE(
      fit_transfer(Json::parse(R"({"rows": [{"transport": "shm", "bytes": -1, "median_ms": 1}]})"), "shm").is_ok());
  EXPECT_FALSE(fit_transfer(Json::parse("[]"), "shm").is_ok());
  // Fields of the wrong type are refused or passed over, never thrown.
  EXPECT_FALSE(
      fit_transfer(Json::parse(R"({"rows": [{"transport": "shm", "bytes": "x", "median_ms": 1}]})"), "shm").is_ok());
  EXPECT_FALSE(fit_transfer(Json::parse(R"({"rows": [{"transport": 7, "bytes": 1, "median_ms": 1}]})"), "7").is_ok());
}

}  // namespace
}  // namespace baton::planner
