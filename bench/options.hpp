// cafraft-bench's command line (bench/cafraft_bench.cpp sets the flags).
#pragma once

#include <string>

namespace cafraft::bench {

struct options {
  std::string endpoints;
  int spawn = 0;
  bool processes = false;
  bool memory = false;
  std::string data_dir;
  int clients = 1;
  int inflight = 1;
  int value_size = 256;
  int keys = 1000;
  double duration = 10;
  double warmup = 2;
  std::string ops = "put";
  std::string read = "linearizable"; // the gets' policy (docs/reads.md)
  bool sessions = false;             // writes in the batchers' client sessions (implies --batch 1)
  std::string format = "table";
  int connections = 0; // 0: min(clients, 8) over the network, 1 in-process
  int batch = 0;       // batches in flight per connection and node; 0: no batching
  int timeout_ms = 2000;
  int failover_trials = 0;
  int inspect_every_ms = 0;
  std::string scheduler = "sharing";
  int threads = 1; // 0: CAF's default
  std::string log_level = "warn";
};

} // namespace cafraft::bench
