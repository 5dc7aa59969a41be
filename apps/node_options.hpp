// cafraft-node's options: the command line, the --config file and the CAFRAFT_* environment
// variables (apps/node_main.cpp), parsed and checked without exiting or printing, so that
// tests and the fuzzer (tests/fuzz/targets/node_options.cpp) can call it.
#pragma once

#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include "apps/network.hpp"
#include <cafraft/runtime/config.hpp>

namespace cafraft {

struct node_flags {
  std::string id;
  std::string data_dir;
  std::string listen;
  std::string initial_cluster;
  std::string join;
  std::string cluster_id;
  std::string restore; // a backup file (cafraftctl snapshot save) to seed an empty data dir
  bool force_new_cluster = false; // become the only voter of a new configuration (lost majority)
  std::string tls_cert, tls_key, tls_ca;
  std::string tls_client_ca; // optional: clients' certificates come from this CA, not tls_ca
  bool insecure = false;
  int election_min_ms = 150;
  int election_max_ms = 300;
  int heartbeat_ms = 50;
  bool check_invariants = false; // node_config::check_invariants
  uint32_t feature_level = 0;    // node_config::feature_level; 0: this binary's own
  bool lease_reads = false;      // node_config::lease_reads
  uint32_t clock_drift_ppm = 50000;
  int64_t session_timeout_ms = 600000;
  int64_t quiesce_after_ms = 0; // node_config::quiesce_after; 0: never
  uint32_t groups = 0; // Raft groups 1..N besides the process's own group 0 (docs/groups.md)
  std::string log_level = "info";
  std::string admin;              // HOST:PORT of the admin HTTP endpoints; empty: off
  scheduling sched{"sharing", 1}; // one worker: measured fastest (docs/performance.md)
};

/// What parsing the command line ended with.
struct node_parse_result {
  /// The process is to end now with `exit_code` (--help, --version, or a parse error), after
  /// printing `out` to stdout and `err` to stderr.
  bool exit = false;
  int exit_code = 0;
  std::string out;
  std::string err;
};

/// Parses argv (argv[0] is the program) into `f`: options, then the --config file, then the
/// CAFRAFT_<NAME> environment variables for options not given. Never exits and never prints.
node_parse_result parse_node_flags(int argc, const char* const* argv, node_flags& f);

/// What validate_node_flags() asks of the machine; the defaults look at the real one.
struct node_checks {
  /// Whether `data_dir` holds a MANIFEST (an error in `ec` when it cannot be looked into).
  std::function<bool(const std::string& data_dir, std::error_code& ec)> has_data;
  /// Binds HOST:PORT once; returns why that is impossible, or "".
  std::function<std::string(const std::string& listen)> check_listen;
  /// Loads the TLS files; returns why they are unusable, or "".
  std::function<std::string(const std::string& cert, const std::string& key, const std::string& ca)>
      check_tls;
};

node_checks real_node_checks();

/// The most CAF scheduler threads --threads may ask for.
constexpr size_t max_scheduler_threads = 1024;
/// The most groups --groups starts in one process.
constexpr uint32_t max_groups = 100000;

/// Everything that can be checked without touching the data directory. Returns the reason, or
/// "" and the initial members and join contacts.
std::string validate_node_flags(const node_flags& f, std::vector<member>& members,
                                std::vector<std::string>& join,
                                const node_checks& checks = real_node_checks());

} // namespace cafraft
