#include "apps/node_options.hpp"

#include "apps/version.hpp"
#include <cafraft/runtime/features.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <CLI/CLI.hpp>
#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cafraft/actors/peer.hpp>

namespace cafraft {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find(sep, start);
    if (end == std::string::npos)
      end = s.size();
    auto part = s.substr(start, end - start);
    if (!part.empty())
      out.push_back(part);
    start = end + 1;
  }
  return out;
}

// Binds the listen address once (and lets it go): a port in use or an address that is not
// this machine's is reported before anything on disk is touched.
std::string check_listen(const std::string& listen) {
  std::string host;
  uint16_t port = 0;
  split_address(listen, host, port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
    return "--listen " + listen + ": cannot resolve " + host;
  std::string why;
  int fd = ::socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0)
    why = "--listen " + listen + ": cannot listen there (" + std::strerror(errno) + ")";
  if (fd >= 0)
    ::close(fd);
  ::freeaddrinfo(res);
  return why;
}

} // namespace

node_checks real_node_checks() {
  node_checks c;
  c.has_data = [](const std::string& data_dir, std::error_code& ec) {
    return std::filesystem::exists(std::filesystem::path{data_dir} / "MANIFEST", ec);
  };
  c.check_listen = check_listen;
  c.check_tls = [](const std::string& cert, const std::string& key, const std::string& ca) {
    return check_tls_files(cert, key, ca);
  };
  return c;
}

node_parse_result parse_node_flags(int argc, const char* const* argv, node_flags& f) {
  CLI::App app{"cafraft-node: one Raft node of a cafraft cluster, reached with cafraft's protocol "
               "over TCP or mutual TLS",
               "cafraft-node"};
  app.set_version_flag("--version",
                       std::string{"cafraft-node "} + CAFRAFT_VERSION + " (CAF 0.17.6)");
  app.set_config("--config", "", "Config file: one 'option = value' per line (TOML or INI)");
  app.add_option("--id", f.id, "This node's id, unique in the cluster")->envname("CAFRAFT_ID");
  app.add_option("--data-dir", f.data_dir, "Data directory (WAL, snapshots, hard state)")
      ->envname("CAFRAFT_DATA_DIR");
  app.add_option("--listen", f.listen, "HOST:PORT to listen on; also this node's address")
      ->envname("CAFRAFT_LISTEN");
  app.add_option("--initial-cluster", f.initial_cluster,
                 "Start a new cluster: ID=HOST:PORT,... (every initial member, this one too)")
      ->envname("CAFRAFT_INITIAL_CLUSTER");
  app.add_option("--join", f.join, "Join the cluster through these nodes: HOST:PORT,...")
      ->envname("CAFRAFT_JOIN");
  app.add_option("--restore", f.restore,
                 "Seed the empty --data-dir from this backup (cafraftctl snapshot save): this "
                 "node becomes the only member of a new cluster with the backup's state (a new "
                 "cluster id unless --cluster-id is given)")
      ->envname("CAFRAFT_RESTORE");
  app.add_flag("--force-new-cluster", f.force_new_cluster,
               "After a majority of the members is lost for good: restart this surviving node, "
               "from its --data-dir, as the only voter of a new configuration (its log, state "
               "and cluster id kept); the others then join it")
      ->envname("CAFRAFT_FORCE_NEW_CLUSTER");
  app.add_option("--cluster-id", f.cluster_id, "Recorded in the data directory and checked")
      ->envname("CAFRAFT_CLUSTER_ID");
  app.add_option("--tls-cert", f.tls_cert, "PEM certificate of this node (mutual TLS)")
      ->envname("CAFRAFT_TLS_CERT");
  app.add_option("--tls-key", f.tls_key, "PEM private key of --tls-cert")
      ->envname("CAFRAFT_TLS_KEY");
  app.add_option("--tls-ca", f.tls_ca,
                 "PEM CA that signs every node's certificate (and the clients', without "
                 "--tls-client-ca)")
      ->envname("CAFRAFT_TLS_CA");
  app.add_option("--tls-client-ca", f.tls_client_ca,
                 "PEM CA of client certificates, apart from --tls-ca: its certificates connect "
                 "only as clients, never as nodes")
      ->envname("CAFRAFT_TLS_CLIENT_CA");
  app.add_flag("--insecure", f.insecure, "Run without TLS (plaintext, unauthenticated)")
      ->envname("CAFRAFT_INSECURE");
  app.add_option("--election-min-ms", f.election_min_ms, "Minimum election timeout")
      ->capture_default_str()
      ->envname("CAFRAFT_ELECTION_MIN_MS");
  app.add_option("--election-max-ms", f.election_max_ms, "Maximum election timeout")
      ->capture_default_str()
      ->envname("CAFRAFT_ELECTION_MAX_MS");
  app.add_option("--heartbeat-ms", f.heartbeat_ms, "Leader heartbeat interval")
      ->capture_default_str()
      ->envname("CAFRAFT_HEARTBEAT_MS");
  app.add_flag("--check-invariants", f.check_invariants,
               "Check the Raft core's invariants after every step; abort with a dump on a "
               "violation")
      ->envname("CAFRAFT_CHECK_INVARIANTS");
  app.add_option("--admin", f.admin,
                 "HOST:PORT for the dashboard (/), /metrics, /livez, /readyz, /v1/status, "
                 "/v1/groups, /v1/cluster and /v1/history (HTTPS with TLS; off if unset)")
      ->envname("CAFRAFT_ADMIN");
  app.add_option("--feature-level", f.feature_level,
                 "Announce this feature level instead of the binary's own (upgrade rehearsals: "
                 "the node stands for an older binary)")
      ->check(CLI::Range(1u, features::current))
      ->envname("CAFRAFT_FEATURE_LEVEL");
  app.add_flag("--lease-reads", f.lease_reads,
               "Serve READ_LEASE reads from the leader's lease (set it on every node; needs "
               "bounded clock drift, docs/reads.md)")
      ->envname("CAFRAFT_LEASE_READS");
  app.add_option("--clock-drift-ppm", f.clock_drift_ppm,
                 "How much faster one node's clock may run than another's, in parts per million "
                 "(a lease lasts the minimum election timeout less this share)")
      ->check(CLI::Range(0u, 999999u))
      ->capture_default_str()
      ->envname("CAFRAFT_CLOCK_DRIFT_PPM");
  app.add_option("--session-timeout-ms", f.session_timeout_ms,
                 "A client session opened while this node leads expires after this long without "
                 "a write (docs/sessions.md)")
      ->check(CLI::Range(int64_t{1000}, int64_t{7} * 24 * 3600 * 1000))
      ->capture_default_str()
      ->envname("CAFRAFT_SESSION_TIMEOUT_MS");
  app.add_option("--quiesce-after-ms", f.quiesce_after_ms,
                 "A leader with no client request for this long, its followers caught up, "
                 "stops heartbeating until something happens; 0: never (docs/membership.md, "
                 "\"Quiescence\")")
      ->check(CLI::Range(int64_t{0}, int64_t{24} * 3600 * 1000))
      ->capture_default_str()
      ->envname("CAFRAFT_QUIESCE_AFTER_MS");
  app.add_option("--groups", f.groups,
                 "Host Raft groups 1..N besides the process's own group 0, over the same "
                 "members, their data in DATA_DIR/g<id>; groups found there start too "
                 "(docs/groups.md)")
      ->check(CLI::Range(0u, max_groups))
      ->capture_default_str()
      ->envname("CAFRAFT_GROUPS");
  app.add_option("--scheduler", f.sched.policy,
                 "CAF scheduler: sharing (low latency, idle when idle) or stealing")
      ->check(CLI::IsMember({"sharing", "stealing"}))
      ->capture_default_str()
      ->envname("CAFRAFT_SCHEDULER");
  app.add_option("--threads", f.sched.threads,
                 "CAF scheduler threads besides the storage and network threads (0: CAF's "
                 "default, max(cores, 4))")
      ->capture_default_str()
      ->envname("CAFRAFT_THREADS");
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->envname("CAFRAFT_LOG_LEVEL");
  node_parse_result r;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    r.exit = true;
    if (e.get_exit_code() == 0) {
      std::ostringstream out, err;
      r.exit_code = app.exit(e, out, err);
      r.out = out.str();
      r.err = err.str();
      return r;
    }
    r.exit_code = 1;
    r.err = std::string{"cafraft-node: "} + e.what() + "\n";
  }
  return r;
}

std::string validate_node_flags(const node_flags& f, std::vector<member>& members,
                                std::vector<std::string>& join, const node_checks& checks) {
  std::string host;
  uint16_t port = 0;
  if (f.id.empty())
    return "--id is required";
  if (f.data_dir.empty())
    return "--data-dir is required";
  if (!split_address(f.listen, host, port))
    return "--listen must be HOST:PORT with a port from 1 to 65535, not '" + f.listen + "'";
  if (!f.initial_cluster.empty() && !f.join.empty())
    return "give --initial-cluster or --join, not both";
  if (!f.restore.empty() && (!f.initial_cluster.empty() || !f.join.empty()))
    return "--restore makes the first member of a new cluster: give neither --initial-cluster "
           "nor --join";
  for (auto& item : split(f.initial_cluster, ',')) {
    auto eq = item.find('=');
    std::string h;
    uint16_t p = 0;
    if (eq == std::string::npos || eq == 0 || !split_address(item.substr(eq + 1), h, p))
      return "--initial-cluster wants ID=HOST:PORT,..., not '" + item + "'";
    for (auto& m : members)
      if (m.id == item.substr(0, eq))
        return "--initial-cluster names " + m.id + " twice";
    members.push_back({item.substr(0, eq), item.substr(eq + 1)});
  }
  if (!members.empty()) {
    auto self =
        std::find_if(members.begin(), members.end(), [&](const member& m) { return m.id == f.id; });
    if (self == members.end())
      return "--initial-cluster does not name this node (" + f.id + ")";
    if (self->address != f.listen)
      return "--initial-cluster gives " + f.id + " the address " + self->address +
             " but --listen is " + f.listen;
  }
  if (auto why = parse_endpoints(f.join, join); !why.empty())
    return "--join " + why;
  std::error_code ec;
  bool has_data = checks.has_data(f.data_dir, ec);
  if (ec)
    return "cannot look into --data-dir " + f.data_dir + ": " + ec.message();
  for (auto& a : join)
    if (a == f.listen)
      return "--join names this node's own address " + a + " (self_join)";
  if (auto why = checks.check_listen(f.listen); !why.empty())
    return why;
  if (f.groups > 0 && (f.force_new_cluster || !f.restore.empty() || !f.join.empty()))
    return "--groups starts groups over the members of --initial-cluster: it takes none of "
           "--join, --restore and --force-new-cluster, which concern group 0 alone";
  if (f.force_new_cluster && (!f.restore.empty() || !f.initial_cluster.empty() || !f.join.empty()))
    return "--force-new-cluster restarts a node from its own data: give none of --restore, "
           "--initial-cluster and --join";
  if (f.force_new_cluster && !has_data)
    return "--force-new-cluster needs the data directory of a surviving node, and " + f.data_dir +
           " holds no data";
  if (!f.restore.empty() && has_data)
    return "--restore needs an empty --data-dir, and " + f.data_dir +
           " holds data: nothing "
           "was changed";
  if (!has_data && members.empty() && join.empty() && f.restore.empty())
    return "no data in " + f.data_dir + ": give --initial-cluster (a new cluster) or --join";
  bool any_tls = !f.tls_cert.empty() || !f.tls_key.empty() || !f.tls_ca.empty();
  if (any_tls && (f.tls_cert.empty() || f.tls_key.empty() || f.tls_ca.empty()))
    return "TLS needs all of --tls-cert, --tls-key and --tls-ca";
  if (any_tls && f.insecure)
    return "--insecure and TLS certificates exclude each other";
  if (!any_tls && !f.insecure)
    return "no TLS certificates: give --tls-cert, --tls-key and --tls-ca, or --insecure to run "
           "in plaintext";
  if (!f.tls_client_ca.empty() && !any_tls)
    return "--tls-client-ca needs --tls-cert, --tls-key and --tls-ca";
  if (any_tls)
    if (auto why = checks.check_tls(f.tls_cert, f.tls_key, f.tls_ca); !why.empty())
      return why;
  if (!f.tls_client_ca.empty())
    if (auto why = check_tls_files(f.tls_cert, f.tls_key, f.tls_ca, f.tls_client_ca); !why.empty())
      return why;
  if (!f.admin.empty()) {
    if (!split_address(f.admin, host, port))
      return "--admin must be HOST:PORT, not '" + f.admin + "'";
    if (f.admin == f.listen)
      return "--admin and --listen must differ";
    if (auto why = checks.check_listen(f.admin); !why.empty())
      return "--admin: " + why;
  }
  if (f.election_min_ms <= 0 || f.election_max_ms < f.election_min_ms || f.heartbeat_ms <= 0 ||
      f.heartbeat_ms >= f.election_min_ms)
    return "timeouts must satisfy 0 < heartbeat < election-min <= election-max";
  if (f.quiesce_after_ms > 0 && f.quiesce_after_ms < 2 * int64_t{f.heartbeat_ms})
    return "--quiesce-after-ms must be 0 or at least two heartbeat intervals";
  if (spdlog::level::from_str(f.log_level) == spdlog::level::off && f.log_level != "off")
    return "--log-level must be one of trace, debug, info, warn, error, off";
  // CAF starts every scheduler thread at once, and dies of a number it cannot (fuzz tier:
  // --threads -1 came through as 2^64 - 1).
  if (f.sched.threads > max_scheduler_threads)
    return "--threads must be from 0 (CAF's default) to " + std::to_string(max_scheduler_threads) +
           ", not " + std::to_string(f.sched.threads);
  return {};
}

} // namespace cafraft
