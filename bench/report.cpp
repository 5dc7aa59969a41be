#include "bench/report.hpp"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace cafraft::bench {

namespace {

using json = nlohmann::ordered_json;

double us(uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

} // namespace

void print(const options& o, const report& r, const std::string& target) {
  auto ops_s = r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0;
  auto mb_s = r.seconds > 0 ? static_cast<double>(r.bytes) / 1e6 / r.seconds : 0;
  auto per_k = [&](double cpu) { return r.ops ? cpu * 1000.0 / static_cast<double>(r.ops) : 0; };
  auto& h = r.latency;
  auto per_op = [&](uint64_t n) {
    return r.ops ? static_cast<double>(n) / static_cast<double>(r.ops) : 0.0;
  };
  uint64_t total_handled = 0;
  for (auto& [kind, n] : r.messages_handled)
    total_handled += n;
  if (o.format == "json") {
    json j{{"tool", "cafraft-bench"},
           {"target", target},
           {"ops", r.ops},
           {"errors", r.errors},
           {"error_kinds", r.error_kinds},
           {"seconds", r.seconds},
           {"ops_per_sec", ops_s},
           {"mb_per_sec", mb_s},
           {"latency_us",
            {{"p50", us(h.quantile(0.5))},
             {"p90", us(h.quantile(0.9))},
             {"p99", us(h.quantile(0.99))},
             {"p999", us(h.quantile(0.999))},
             {"max", us(h.max())}}},
           {"client_cpu_s_per_1000_ops", per_k(r.client_cpu)},
           {"batch", o.batch}};
    if (r.cluster_cpu >= 0)
      j["cluster_cpu_s_per_1000_ops"] = per_k(r.cluster_cpu);
    j["peak_rss_mb"] = r.rss_mb;
    if (r.node_rss_mb >= 0)
      j["node_peak_rss_mb"] = r.node_rss_mb;
    if (o.inspect_every_ms > 0)
      j["inspections"] = r.inspections;
    if (r.session_retries >= 0) {
      j["session_retries"] = r.session_retries;
      j["session_duplicates"] = r.session_duplicates;
    }
    if (!r.messages_handled.empty() && r.ops > 0) {
      json by_kind = json::object();
      for (auto& [kind, n] : r.messages_handled)
        by_kind[kind] = per_op(n);
      j["actor_messages_per_op"] = {{"total", per_op(total_handled)}, {"by_kind", by_kind}};
    }
    if (!r.failover_ms.empty())
      j["failover_ms"] = {{"trials", r.failover_ms.size()},
                          {"p50", percentile(r.failover_ms, 0.5)},
                          {"p99", percentile(r.failover_ms, 0.99)},
                          {"max", percentile(r.failover_ms, 1.0)}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("target      %s\n", target.c_str());
  if (r.failover_ms.empty())
    std::printf("workload    %s, %d clients x %d in flight, %d B values, %d keys, %.0f s "
                "(after %.0f s warmup)\n",
                o.ops.c_str(), o.clients, o.inflight, o.value_size, o.keys, o.duration, o.warmup);
  else
    std::printf("workload    %s, %d clients x %d in flight, %d B values, %d keys, %.0f s in all "
                "(the load during the failover trials, errors included)\n",
                o.ops.c_str(), o.clients, o.inflight, o.value_size, o.keys, r.seconds);
  if (o.batch > 0)
    std::printf("batching    the requests of each connection's clients go through one batcher, "
                "%d batch%s in flight per node\n",
                o.batch, o.batch == 1 ? "" : "es");
  std::printf("throughput  %.0f ops/s, %.2f MB/s (%llu ops, %llu errors)\n", ops_s, mb_s,
              static_cast<unsigned long long>(r.ops), static_cast<unsigned long long>(r.errors));
  if (r.errors > 0) {
    std::printf("errors     ");
    for (auto& [kind, n] : r.error_kinds)
      std::printf(" %s %llu", kind.c_str(), static_cast<unsigned long long>(n));
    std::printf("\n");
  }
  std::printf("latency     p50 %.0f us  p90 %.0f us  p99 %.0f us  p99.9 %.0f us  max %.0f us\n",
              us(h.quantile(0.5)), us(h.quantile(0.9)), us(h.quantile(0.99)), us(h.quantile(0.999)),
              us(h.max()));
  std::printf("cpu         %.3f s per 1000 ops in this process", per_k(r.client_cpu));
  if (r.cluster_cpu >= 0)
    std::printf(", %.3f s in the nodes", per_k(r.cluster_cpu));
  std::printf("\n");
  std::printf("memory      peak %.0f MB resident in this process", r.rss_mb);
  if (r.node_rss_mb >= 0)
    std::printf(", %.0f MB in the largest node", r.node_rss_mb);
  std::printf("\n");
  if (!r.messages_handled.empty() && r.ops > 0) {
    std::printf("messages    %.1f per op handled by the nodes' actors (", per_op(total_handled));
    const char* sep = "";
    for (auto& [kind, n] : r.messages_handled) {
      std::printf("%s%s %.1f", sep, kind.c_str(), per_op(n));
      sep = ", ";
    }
    std::printf(")\n");
  }
  if (r.session_retries >= 0)
    std::printf("sessions    %lld writes sent again, %lld answered from the session table\n",
                static_cast<long long>(r.session_retries),
                static_cast<long long>(r.session_duplicates));
  if (o.inspect_every_ms > 0)
    std::printf("inspection  every %d ms: %llu actor inspections\n", o.inspect_every_ms,
                static_cast<unsigned long long>(r.inspections));
  if (!r.failover_ms.empty())
    std::printf("failover    %zu trials: until the next write succeeded p50 %.0f ms, p99 %.0f "
                "ms, max %.0f ms\n",
                r.failover_ms.size(), percentile(r.failover_ms, 0.5),
                percentile(r.failover_ms, 0.99), percentile(r.failover_ms, 1.0));
}

} // namespace cafraft::bench
