// Command etcd-load is a closed-loop load generator for etcd's v3 API. It takes
// the same options as cafraft-bench and prints the same JSON document, so that
// bench/side-by-side can run one workload against both systems and compare.
//
// Every client keeps --inflight requests outstanding and issues the next one as
// soon as one completes; the clients share --connections etcd client objects
// (each one gRPC connection balanced over all endpoints). Keys are "key-<n>"
// with n uniform in [0, --keys). The first --warmup seconds are not measured;
// the measurement window is then exactly --duration seconds long, and counts
// the requests sent and completed inside it (as cafraft-bench does).
//
// Build with `make -C bench/etcd-load` (GOPATH mode against Debian's
// golang-etcd-server-dev sources; nothing is downloaded).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.uber.org/zap"
)

const (
	toolName = "etcd-load"
	// After a failed request a worker pauses this long (as cafraft-bench does),
	// so that an unreachable cluster yields a bounded error count instead of a
	// busy loop.
	errorBackoff = 5 * time.Millisecond
	// At most this many error messages are printed to stderr.
	maxErrorsShown = 5
)

// errUsage reports a command line the flag package has already complained about.
var errUsage = errors.New("usage")

// options are the command-line options, shared with cafraft-bench.
type options struct {
	endpoints   []string
	clients     int
	connections int
	inflight    int
	valueSize   int
	keys        int
	duration    time.Duration
	warmup      time.Duration
	ops         string        // put, get or mixed
	timeout     time.Duration // per request; a request taking longer is an error
	format      string        // json or table
}

func parseOptions(args []string) (*options, error) {
	fs := flag.NewFlagSet(toolName, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s --endpoints HOST:PORT,... [options]\n\n", toolName)
		fs.PrintDefaults()
	}
	endpoints := fs.String("endpoints", "127.0.0.1:2379", "etcd client endpoints, comma-separated HOST:PORT")
	o := &options{}
	fs.IntVar(&o.clients, "clients", 1, "closed-loop clients")
	fs.IntVar(&o.connections, "connections", 0, "client connections the clients are spread over (default min(clients, 8))")
	fs.IntVar(&o.inflight, "inflight", 1, "requests in flight per client")
	fs.IntVar(&o.valueSize, "value-size", 256, "value size in bytes")
	fs.IntVar(&o.keys, "keys", 1000, "key space: keys key-0 .. key-<keys-1>, chosen uniformly")
	duration := fs.Float64("duration", 10, "measured seconds")
	warmup := fs.Float64("warmup", 2, "seconds of load before the measurement (not measured)")
	fs.StringVar(&o.ops, "ops", "put", "put, get (linearizable) or mixed (50/50)")
	timeoutMs := fs.Int("timeout-ms", 2000, "a request gives up after this many milliseconds (an error)")
	fs.StringVar(&o.format, "w", "table", "output format: json or table")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil, err
		}
		return nil, errUsage // the flag package has printed the problem and the usage
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, e := range strings.Split(*endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			o.endpoints = append(o.endpoints, e)
		}
	}
	if o.connections == 0 {
		o.connections = o.clients
		if o.connections > 8 {
			o.connections = 8
		}
	}
	switch {
	case len(o.endpoints) == 0:
		return nil, errors.New("--endpoints is empty")
	case o.clients < 1, o.connections < 1, o.inflight < 1, o.keys < 1:
		return nil, errors.New("--clients, --connections, --inflight and --keys must be at least 1")
	case o.valueSize < 0:
		return nil, errors.New("--value-size must not be negative")
	case *duration <= 0 || *warmup < 0 || *timeoutMs <= 0:
		return nil, errors.New("--duration and --timeout-ms must be positive and --warmup not negative")
	case o.ops != "put" && o.ops != "get" && o.ops != "mixed":
		return nil, fmt.Errorf("--ops %q: expected put, get or mixed", o.ops)
	case o.format != "json" && o.format != "table":
		return nil, fmt.Errorf("-w %q: expected json or table", o.format)
	}
	o.duration = time.Duration(*duration * float64(time.Second))
	o.warmup = time.Duration(*warmup * float64(time.Second))
	o.timeout = time.Duration(*timeoutMs) * time.Millisecond
	return o, nil
}

// recorder collects the outcome of every request. Requests sent and completed
// inside [windowStart, windowEnd] go into the measured totals; all of them go
// into the current one-second interval for the progress line.
type recorder struct {
	windowStart, windowEnd time.Time

	measured      histogram
	measuredErrs  atomic.Uint64
	measuredBytes atomic.Uint64 // key + value bytes of measured requests

	interval     atomic.Pointer[histogram]
	intervalErrs atomic.Uint64

	errorsShown atomic.Int32
}

func newRecorder(windowStart, windowEnd time.Time) *recorder {
	r := &recorder{windowStart: windowStart, windowEnd: windowEnd}
	r.interval.Store(new(histogram))
	return r
}

func (r *recorder) done(start, end time.Time, bytes int, err error) {
	inWindow := !start.Before(r.windowStart) && !end.After(r.windowEnd)
	if err != nil {
		// Requests cut off by the end of the run complete after windowEnd and
		// are therefore neither counted nor reported.
		if !end.After(r.windowEnd) {
			r.intervalErrs.Add(1)
			if inWindow {
				r.measuredErrs.Add(1)
			}
			if r.errorsShown.Add(1) <= maxErrorsShown {
				fmt.Fprintf(os.Stderr, "%s: request failed: %v\n", toolName, err)
			}
		}
		return
	}
	us := uint64(end.Sub(start) / time.Microsecond)
	r.interval.Load().Record(us)
	if inWindow {
		r.measured.Record(us)
		r.measuredBytes.Add(uint64(bytes))
	}
}

// takeInterval returns the histogram and error count of the interval since the
// last call and starts a new interval.
func (r *recorder) takeInterval() (*histogram, uint64) {
	return r.interval.Swap(new(histogram)), r.intervalErrs.Swap(0)
}

// cpuSeconds returns the user + system CPU time used so far by this process.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// connect opens the etcd client objects. Each has its own gRPC connection,
// which clientv3 3.4 balances round-robin over all endpoints (one TCP
// connection per endpoint); members that are not the leader forward writes
// and read-index requests to it, as for any etcd client.
func connect(o *options) ([]*clientv3.Client, error) {
	logCfg := zap.NewProductionConfig()
	logCfg.Level = zap.NewAtomicLevelAt(zap.ErrorLevel) // keep stderr for progress
	conns := make([]*clientv3.Client, 0, o.connections)
	for i := 0; i < o.connections; i++ {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   o.endpoints,
			DialTimeout: 5 * time.Second,
			LogConfig:   &logCfg,
		})
		if err == nil {
			// New does not wait for a connection: a linearizable read proves
			// that the cluster is reachable and has a leader before the clock.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = c.Get(ctx, "etcd-load-probe")
			cancel()
			if err != nil {
				c.Close()
			}
		}
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("connecting to %s: %w", strings.Join(o.endpoints, ","), err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// populate writes every key once, so that get and mixed workloads read values
// of --value-size bytes rather than missing keys. It runs before the clock.
func populate(conns []*clientv3.Client, keys []string, value string) error {
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func(c *clientv3.Client) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := c.Put(ctx, keys[i], value)
				cancel()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}(conns[w%len(conns)])
	}
	wg.Wait()
	return firstErr
}

// worker is one in-flight slot of one client: it issues requests back to back
// until stop is set.
func worker(ctx context.Context, c *clientv3.Client, o *options, keys []string, value string,
	seed int64, stop *atomic.Bool, rec *recorder) {
	rng := rand.New(rand.NewSource(seed))
	for !stop.Load() {
		key := keys[rng.Intn(len(keys))]
		put := o.ops == "put" || (o.ops == "mixed" && rng.Intn(2) == 0)
		rctx, cancel := context.WithTimeout(ctx, o.timeout)
		start := time.Now()
		var err error
		bytes := len(key) // key + value written, or key + value read
		if put {
			_, err = c.Put(rctx, key, value)
			bytes += len(value)
		} else {
			var resp *clientv3.GetResponse
			resp, err = c.Get(rctx, key) // linearizable: clientv3's default
			if err == nil && len(resp.Kvs) > 0 {
				bytes += len(resp.Kvs[0].Value)
			}
		}
		end := time.Now()
		cancel()
		rec.done(start, end, bytes, err)
		if err != nil && !stop.Load() {
			time.Sleep(errorBackoff)
		}
	}
}

// result is what one run measured.
type result struct {
	ops, errors   uint64
	seconds       float64
	bytes         uint64
	p50, p90, p99 uint64
	p999, max     uint64
	cpuSeconds    float64
	opsPerSec     float64
	mbPerSec      float64
	cpuPer1000Ops float64
}

func run(o *options) (*result, error) {
	conns, err := connect(o)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()

	keys := make([]string, o.keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	value := strings.Repeat("v", o.valueSize)
	if o.ops != "put" {
		if err := populate(conns, keys, value); err != nil {
			return nil, fmt.Errorf("writing the %d keys before the run: %w", len(keys), err)
		}
	}

	fmt.Fprintf(os.Stderr, "%s: %d clients x %d in flight over %d connections to %s; %s, %d-byte values, %d keys; %gs warmup + %gs\n",
		toolName, o.clients, o.inflight, len(conns), strings.Join(o.endpoints, ","), o.ops,
		o.valueSize, o.keys, o.warmup.Seconds(), o.duration.Seconds())

	begin := time.Now()
	rec := newRecorder(begin.Add(o.warmup), begin.Add(o.warmup+o.duration))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stop atomic.Bool
	var wg sync.WaitGroup
	seed := time.Now().UnixNano()
	for c := 0; c < o.clients; c++ {
		for s := 0; s < o.inflight; s++ {
			wg.Add(1)
			go func(c, s int) {
				defer wg.Done()
				worker(ctx, conns[c%len(conns)], o, keys, value, seed+int64(c*o.inflight+s), &stop, rec)
			}(c, s)
		}
	}

	// Progress once per second until the window closes; CPU is sampled at the
	// window's edges.
	var cpuStart float64
	if o.warmup == 0 {
		cpuStart = cpuSeconds()
	}
	warmupTimer := time.NewTimer(o.warmup)
	endTimer := time.NewTimer(o.warmup + o.duration)
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	var cpuEnd float64
loop:
	for {
		select {
		case <-warmupTimer.C:
			cpuStart = cpuSeconds()
		case <-endTimer.C:
			cpuEnd = cpuSeconds()
			break loop
		case now := <-ticker.C:
			h, errs := rec.takeInterval()
			line := fmt.Sprintf("%3.0fs  %d ops/s  p99 %.1f ms", now.Sub(begin).Seconds(), h.Count(),
				float64(h.Quantile(0.99))/1000)
			if errs > 0 {
				line += fmt.Sprintf("  %d errors", errs)
			}
			// The tick ends an interval of one second: it is warmup if it
			// ended (give or take timer slack) before the window opened.
			if now.Before(rec.windowStart.Add(time.Second / 2)) {
				line += "  (warmup)"
			}
			fmt.Fprintln(os.Stderr, line)
		}
	}
	stop.Store(true)
	cancel() // abort requests still in flight; they complete after the window
	wg.Wait()

	r := &result{
		ops:        rec.measured.Count(),
		errors:     rec.measuredErrs.Load(),
		seconds:    o.duration.Seconds(),
		bytes:      rec.measuredBytes.Load(),
		p50:        rec.measured.Quantile(0.50),
		p90:        rec.measured.Quantile(0.90),
		p99:        rec.measured.Quantile(0.99),
		p999:       rec.measured.Quantile(0.999),
		max:        rec.measured.Max(),
		cpuSeconds: cpuEnd - cpuStart,
	}
	r.opsPerSec = float64(r.ops) / r.seconds
	r.mbPerSec = float64(r.bytes) / 1e6 / r.seconds
	if r.ops > 0 {
		r.cpuPer1000Ops = r.cpuSeconds / float64(r.ops) * 1000
	}
	return r, nil
}

func printJSON(r *result) {
	fmt.Printf(`{"tool":%q,"ops":%d,"errors":%d,"seconds":%.3f,"ops_per_sec":%.1f,"mb_per_sec":%.3f,`+
		`"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},"client_cpu_s_per_1000_ops":%.4f}`+"\n",
		toolName, r.ops, r.errors, r.seconds, r.opsPerSec, r.mbPerSec,
		r.p50, r.p90, r.p99, r.p999, r.max, r.cpuPer1000Ops)
}

func printTable(r *result) {
	ms := func(us uint64) string { return fmt.Sprintf("%.3f ms", float64(us)/1000) }
	rows := [][2]string{
		{"tool", toolName},
		{"ops", fmt.Sprint(r.ops)},
		{"errors", fmt.Sprint(r.errors)},
		{"seconds", fmt.Sprintf("%.3f", r.seconds)},
		{"ops/s", fmt.Sprintf("%.1f", r.opsPerSec)},
		{"MB/s", fmt.Sprintf("%.3f", r.mbPerSec)},
		{"latency p50", ms(r.p50)},
		{"latency p90", ms(r.p90)},
		{"latency p99", ms(r.p99)},
		{"latency p99.9", ms(r.p999)},
		{"latency max", ms(r.max)},
		{"client CPU", fmt.Sprintf("%.4f s per 1000 ops", r.cpuPer1000Ops)},
	}
	for _, row := range rows {
		fmt.Printf("%-14s %s\n", row[0], row[1])
	}
}

func main() {
	o, err := parseOptions(os.Args[1:])
	switch {
	case err == flag.ErrHelp:
		os.Exit(0)
	case err == errUsage:
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "%s: %v\n", toolName, err)
		os.Exit(2)
	}
	r, err := run(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", toolName, err)
		os.Exit(1)
	}
	if o.format == "json" {
		printJSON(r)
	} else {
		printTable(r)
	}
	if r.ops == 0 {
		os.Exit(1) // nothing succeeded: the numbers are meaningless
	}
}
