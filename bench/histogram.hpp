// A latency histogram for benchmarks: log-linear buckets (32 per power of two, so a value is
// placed within 3% of itself), nanoseconds in, percentiles out. Recording is an index
// computation and an increment; histograms of many clients are merged at the end.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

namespace cafraft::bench {

class histogram {
public:
  void record(uint64_t ns) {
    ++counts_[index(ns)];
    ++count_;
    max_ = std::max(max_, ns);
    min_ = std::min(min_, ns);
  }

  void merge(const histogram& other) {
    for (size_t i = 0; i < buckets; ++i)
      counts_[i] += other.counts_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return count_ ? max_ : 0; }
  uint64_t min() const { return count_ ? min_ : 0; }

  /// The value at quantile `q` (0 to 1): the middle of its bucket, never above the maximum.
  uint64_t quantile(double q) const {
    if (count_ == 0)
      return 0;
    auto rank = static_cast<uint64_t>(q * static_cast<double>(count_));
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (size_t i = 0; i < buckets; ++i) {
      seen += counts_[i];
      if (seen >= rank)
        return std::min(max_, std::max(min_, lower(i) + (lower(i + 1) - lower(i)) / 2));
    }
    return max_;
  }

private:
  static constexpr unsigned sub_bits = 5;
  static constexpr uint64_t sub = 1u << sub_bits;
  static constexpr size_t buckets = sub + (64 - sub_bits) * sub;

  static size_t index(uint64_t v) {
    if (v < sub)
      return static_cast<size_t>(v);
    unsigned e = 63u - static_cast<unsigned>(__builtin_clzll(v)); // >= sub_bits
    auto m = (v >> (e - sub_bits)) & (sub - 1);
    return static_cast<size_t>(sub + (e - sub_bits) * sub + m);
  }

  static uint64_t lower(size_t i) {
    if (i < sub)
      return i;
    auto e = (i - sub) / sub + sub_bits;
    auto m = (i - sub) % sub;
    if (e >= 64)
      return UINT64_MAX;
    return (sub + m) << (e - sub_bits);
  }

  std::array<uint64_t, buckets> counts_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

} // namespace cafraft::bench
