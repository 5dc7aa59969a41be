// cafraft-bench's clients: closed-loop actors, each keeping its requests in flight and sending
// the next as soon as one is answered, through a batcher with --batch.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

#include <cafraft/messages/raft.pb.h>

#include "bench/histogram.hpp"

namespace cafraft::bench {

// The tool's own atoms: they never leave its process.
using start_atom = caf::atom_constant<caf::atom("bstart")>;
using issue_atom = caf::atom_constant<caf::atom("bissue")>;
using finish_atom = caf::atom_constant<caf::atom("bfinish")>;
using sweep_atom = caf::atom_constant<caf::atom("bsweep")>;

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// What every client reads (set before the run) and the counters the progress line reads.
struct run_shared {
  std::vector<std::string> addresses;           // round robin
  std::map<std::string, caf::actor> by_address; // where a not_leader hint points
  enum { puts, gets, mixed } mix = puts;
  cafraft::pb::ReadPolicy read = cafraft::pb::READ_LINEARIZABLE;
  std::string value;
  int keys = 1000;
  int inflight = 1;
  std::chrono::milliseconds timeout{2000};
  caf::actor batcher;          // with --batch: the requests go through it
  int64_t measure_from_ns = 0; // warmup ends
  std::atomic<int64_t> stop_at_ns{INT64_MAX};
  std::atomic<uint64_t> ops{0}, errors{0};
};

// What one client measured; read by the main thread once the client finished.
struct client_result {
  cafraft::bench::histogram latency;
  uint64_t ops = 0, errors = 0, bytes = 0;
  std::map<std::string, uint64_t> error_kinds; // errors by code
};

/// A client, `index` of the run: it starts at the address `index` picks (round robin) and sends
/// once it gets start_atom; finish_atom answers once its last request is done.
caf::actor spawn_client(caf::actor_system& sys, std::shared_ptr<run_shared> run,
                        std::shared_ptr<client_result> result, size_t index);

} // namespace cafraft::bench
