package main

import (
	"math/rand"
	"sort"
	"testing"
)

// Every value lands in a bucket whose bounds contain it, and bucket indexes are
// contiguous and increasing with the value.
func TestBuckets(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<20; v++ {
		i := bucketOf(v)
		if i != prev && i != prev+1 {
			t.Fatalf("value %d: bucket %d follows %d", v, i, prev)
		}
		prev = i
		lower := uint64(0)
		if i > 0 {
			lower = bucketUpper(i-1) + 1
		}
		if v < lower || v > bucketUpper(i) {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, i, lower, bucketUpper(i))
		}
	}
	if i := bucketOf(^uint64(0)); i != bucketCount-1 || bucketUpper(i) != ^uint64(0) {
		t.Fatalf("max uint64: bucket %d of %d, upper %d", i, bucketCount, bucketUpper(i))
	}
}

// Quantiles are within one bucket (1/64 relative) above the exact ones.
func TestQuantiles(t *testing.T) {
	var h histogram
	rng := rand.New(rand.NewSource(1))
	values := make([]uint64, 100000)
	for i := range values {
		values[i] = uint64(rng.ExpFloat64() * 2000)
		h.Record(values[i])
	}
	sort.Slice(values, func(a, b int) bool { return values[a] < values[b] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := values[int(q*float64(len(values))+0.999999)-1]
		got := h.Quantile(q)
		if got < exact || float64(got) > float64(exact)*(1+1.0/subCount)+1 {
			t.Errorf("q%g: got %d, exact %d", q, got, exact)
		}
	}
	if h.Max() != values[len(values)-1] || h.Count() != uint64(len(values)) {
		t.Errorf("max %d count %d", h.Max(), h.Count())
	}
}
