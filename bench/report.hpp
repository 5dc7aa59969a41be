// What a cafraft-bench run measured, and how it is printed: a table or JSON (-w json).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/histogram.hpp"
#include "bench/options.hpp"

namespace cafraft::bench {

struct report {
  uint64_t ops = 0, errors = 0, bytes = 0;
  std::map<std::string, uint64_t> error_kinds;
  double seconds = 0;
  cafraft::bench::histogram latency;
  double client_cpu = 0;   // this process
  double cluster_cpu = -1; // node processes (-1: unknown)
  double rss_mb = 0;       // peak resident memory of this process
  double node_rss_mb = -1; // the largest of the node processes' (-1: unknown)
  std::vector<double> failover_ms;
  uint64_t inspections = 0;
  // --sessions: writes the batchers sent again after an indefinite failure, and the retries
  // the session table answered (applied by an earlier attempt); -1: no sessions.
  int64_t session_retries = -1, session_duplicates = -1;
  // Messages the nodes' actors handled during the measured time, by kind (empty: not counted).
  std::map<std::string, uint64_t> messages_handled;
};

/// Prints `r` as `o.format` asks; `target` says what was measured.
void print(const options& o, const report& r, const std::string& target);

} // namespace cafraft::bench
