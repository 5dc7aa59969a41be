package main

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// histogram counts latencies in microseconds in log-linear buckets: values below
// 2*subCount are counted exactly, and every power of two above that is split into
// subCount equal buckets, so a bucket is never wider than 1/subCount (1.6 %) of
// the values it holds. Record may be called from any number of goroutines.
type histogram struct {
	counts [bucketCount]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Uint64
}

const (
	subBits  = 6
	subCount = 1 << subBits // buckets per power of two
	// Enough buckets for any uint64: the top bucket index is reached for
	// v >= 1<<63, where shift = 63-subBits.
	bucketCount = subCount * (64 - subBits + 1)
)

// bucketOf returns the index of the bucket that counts v.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	// Shift v right until it lies in [subCount, 2*subCount): the shift is the
	// power of two, the remainder the sub-bucket within it.
	shift := bits.Len64(v) - subBits - 1
	return subCount + shift*subCount + int(v>>uint(shift)) - subCount
}

// bucketUpper returns the largest value counted by bucket i.
func bucketUpper(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := uint((i - subCount) / subCount)
	mantissa := uint64((i-subCount)%subCount + subCount)
	return (mantissa << shift) + (uint64(1) << shift) - 1
}

// Record counts one latency of us microseconds.
func (h *histogram) Record(us uint64) {
	h.counts[bucketOf(us)].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// Count returns the number of values recorded.
func (h *histogram) Count() uint64 { return h.total.Load() }

// Max returns the largest value recorded (exact), 0 when empty.
func (h *histogram) Max() uint64 { return h.max.Load() }

// Quantile returns the value at quantile q (0 < q <= 1): the upper bound of the
// bucket holding the ceil(q*n)-th smallest value, but never more than the exact
// maximum. It returns 0 for an empty histogram.
func (h *histogram) Quantile(q float64) uint64 {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			if u := bucketUpper(i); u < h.Max() {
				return u
			}
			return h.Max()
		}
	}
	// Only reachable while other goroutines are still recording.
	return h.Max()
}
