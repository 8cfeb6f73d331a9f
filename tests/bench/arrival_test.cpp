// Arrival processes: the rate and the dispersion of the gaps fall within
// statistical bounds over many draws, and the same seed repeats the schedule.
#include <gtest/gtest.h>

#include <cmath>

#include "bench/arrival.h"

namespace baton::bench {
namespace {

struct GapStats {
  double mean = 0, cv2 = 0;  // squared coefficient of variation
};

GapStats gap_stats(const std::vector<double>& t) {
  std::vector<double> g;
  for (size_t i = 1; i < t.size(); ++i) g.push_back(t[i] - t[i - 1]);
  double mean = 0;
  for (double x : g) mean += x;
  mean /= static_cast<double>(g.size());
  double var = 0;
  for (double x : g) var += (x - mean) * (x - mean);
  var /= static_cast<double>(g.size() - 1);
  return {mean, var / (mean * mean)};
}

constexpr size_t kN = 200001;  // 200,000 gaps

TEST(ArrivalTest, PoissonRateAndDispersion) {
  auto t = arrival_times({ArrivalKind::kPoisson, 8.0, 1.0, 42}, kN).value();
  ASSERT_EQ(t.size(), kN);
  EXPECT_EQ(t[0], 0.0);
  auto s = gap_stats(t);
  // The mean of 2e5 exponential gaps has relative sd 1/sqrt(2e5) = 0.22%: allow 5 sd.
  EXPECT_NEAR(s.mean, 1.0 / 8.0, 0.125 * 0.011);
  EXPECT_NEAR(s.cv2, 1.0, 0.05);
  // Counts in 1 s windows: Poisson has variance == mean (index of dispersion 1).
  std::vector<int> counts(static_cast<size_t>(t.back()) + 1, 0);
  for (double x : t) counts[static_cast<size_t>(x)]++;
  counts.pop_back();  // the last window is partial
  double m = 0, v = 0;
  for (int c : counts) m += c;
  m /= static_cast<double>(counts.size());
  for (int c : counts) v += (c - m) * (c - m);
  v /= static_cast<double>(counts.size() - 1);
  EXPECT_NEAR(m, 8.0, 0.1);
  EXPECT_NEAR(v / m, 1.0, 0.1);
}

TEST(ArrivalTest, GammaBurstinessSetsDispersion) {
  for (double burstiness : {0.25, 0.5, 2.0, 4.0}) {
    auto t = arrival_times({ArrivalKind::kGamma, 5.0, burstiness, 7}, kN).value();
    auto s = gap_stats(t);
    EXPECT_NEAR(s.mean, 0.2, 0.2 * 0.02) << "burstiness " << burstiness;
    // cv^2 of gamma(shape k) gaps is 1/k.
    EXPECT_NEAR(s.cv2, 1.0 / burstiness, 0.06 / burstiness) << "burstiness " << burstiness;
  }
}

TEST(ArrivalTest, ConstantAndInfiniteRate) {
  auto t = arrival_times({ArrivalKind::kConstant, 4.0, 1.0, 0}, 5).value();
  EXPECT_EQ(t, (std::vector<double>{0, 0.25, 0.5, 0.75, 1.0}));
  auto inf = arrival_times({ArrivalKind::kPoisson, INFINITY, 1.0, 0}, 3).value();
  EXPECT_EQ(inf, (std::vector<double>{0, 0, 0}));
}

TEST(ArrivalTest, SeededAndDurationBounded) {
  ArrivalSpec spec{ArrivalKind::kPoisson, 3.0, 1.0, 123};
  EXPECT_EQ(arrival_times(spec, 100).value(), arrival_times(spec, 100).value());
  ArrivalSpec other = spec;
  other.seed = 124;
  EXPECT_NE(arrival_times(spec, 100).value(), arrival_times(other, 100).value());
  auto within = arrival_times_within(spec, 1000.0).value();
  EXPECT_LT(within.back(), 1000.0);
  EXPECT_NEAR(static_cast<double>(within.size()), 3000.0, 5 * std::sqrt(3000.0));
  // The duration schedule is a prefix of the counted one.
  auto counted = arrival_times(spec, within.size()).value();
  EXPECT_EQ(within, counted);
}

TEST(ArrivalTest, RejectsBadParameters) {
  EXPECT_NE(arrival_times({ArrivalKind::kPoisson, 0.0, 1.0, 0}, 3).status().message().find("rate"), std::string::npos);
  EXPECT_NE(arrival_times({ArrivalKind::kGamma, 1.0, -1.0, 0}, 3).status().message().find("burstiness"),
            std::string::npos);
  EXPECT_FALSE(parse_arrival_kind("weibull").is_ok());
  EXPECT_EQ(parse_arrival_kind("gamma").value(), ArrivalKind::kGamma);
}

}  // namespace
}  // namespace baton::bench
