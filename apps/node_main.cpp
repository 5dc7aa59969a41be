// cafraft-node: one Raft node per process, reached over CAF's middleman (README: "Run a
// cluster").
//
//   cafraft-node --id ID --data-dir DIR --listen HOST:PORT
//                (--initial-cluster ID=HOST:PORT,... | --join HOST:PORT[,HOST:PORT...])
//                [--tls-cert F --tls-key F --tls-ca F | --insecure] [--config FILE]
//
// Every option can also come from a config file (--config, "key = value" lines) or from a
// CAFRAFT_<NAME> environment variable (CAFRAFT_DATA_DIR for --data-dir). A bad value is reported
// with exit code 1 before anything on disk is touched. SIGTERM or SIGINT stop the node cleanly
// (exit 0); a node that stops by itself (removed from the cluster, storage failure, refused
// join) exits 2.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <cerrno>
#include <cstring>
#include <httplib.h>
#include <netdb.h>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "actors/node.hpp"
#include "actors/peer.hpp"
#include "apps/admin.hpp"
#include "apps/network.hpp"
#include "messages/api.hpp"
#include "messages/register.hpp"
#include "runtime/logging.hpp"

using namespace std::chrono_literals;

namespace {

struct flags {
  std::string id;
  std::string data_dir;
  std::string listen;
  std::string initial_cluster;
  std::string join;
  std::string cluster_id;
  std::string tls_cert, tls_key, tls_ca;
  bool insecure = false;
  int election_min_ms = 150;
  int election_max_ms = 300;
  int heartbeat_ms = 50;
  std::string log_level = "info";
  std::string admin;                       // HOST:PORT of the admin HTTP endpoints; empty: off
  cafraft::scheduling sched{"sharing", 1}; // one worker: measured fastest (docs/performance.md)
};

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
  cafraft::split_address(listen, host, port);
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

// Everything that can be checked without touching the disk. Returns the reason, or "".
std::string validate(const flags& f, std::vector<cafraft::member>& members,
                     std::vector<std::string>& join) {
  std::string host;
  uint16_t port = 0;
  if (f.id.empty())
    return "--id is required";
  if (f.data_dir.empty())
    return "--data-dir is required";
  if (!cafraft::split_address(f.listen, host, port))
    return "--listen must be HOST:PORT with a port from 1 to 65535, not '" + f.listen + "'";
  if (!f.initial_cluster.empty() && !f.join.empty())
    return "give --initial-cluster or --join, not both";
  for (auto& item : split(f.initial_cluster, ',')) {
    auto eq = item.find('=');
    std::string h;
    uint16_t p = 0;
    if (eq == std::string::npos || eq == 0 || !cafraft::split_address(item.substr(eq + 1), h, p))
      return "--initial-cluster wants ID=HOST:PORT,..., not '" + item + "'";
    for (auto& m : members)
      if (m.id == item.substr(0, eq))
        return "--initial-cluster names " + m.id + " twice";
    members.push_back({item.substr(0, eq), item.substr(eq + 1)});
  }
  if (!members.empty()) {
    auto self = std::find_if(members.begin(), members.end(),
                             [&](const cafraft::member& m) { return m.id == f.id; });
    if (self == members.end())
      return "--initial-cluster does not name this node (" + f.id + ")";
    if (self->address != f.listen)
      return "--initial-cluster gives " + f.id + " the address " + self->address +
             " but --listen is " + f.listen;
  }
  if (auto why = cafraft::parse_endpoints(f.join, join); !why.empty())
    return "--join " + why;
  std::error_code ec;
  bool has_data = std::filesystem::exists(std::filesystem::path{f.data_dir} / "MANIFEST", ec);
  if (ec)
    return "cannot look into --data-dir " + f.data_dir + ": " + ec.message();
  for (auto& a : join)
    if (a == f.listen)
      return "--join names this node's own address " + a + " (self_join)";
  if (auto why = check_listen(f.listen); !why.empty())
    return why;
  if (!has_data && members.empty() && join.empty())
    return "no data in " + f.data_dir + ": give --initial-cluster (a new cluster) or --join";
  bool any_tls = !f.tls_cert.empty() || !f.tls_key.empty() || !f.tls_ca.empty();
  if (any_tls && (f.tls_cert.empty() || f.tls_key.empty() || f.tls_ca.empty()))
    return "TLS needs all of --tls-cert, --tls-key and --tls-ca";
  if (any_tls && f.insecure)
    return "--insecure and TLS certificates exclude each other";
  if (!any_tls && !f.insecure)
    return "no TLS certificates: give --tls-cert, --tls-key and --tls-ca, or --insecure to run "
           "in plaintext";
  if (any_tls)
    if (auto why = cafraft::check_tls_files(f.tls_cert, f.tls_key, f.tls_ca); !why.empty())
      return why;
  if (!f.admin.empty()) {
    if (!cafraft::split_address(f.admin, host, port))
      return "--admin must be HOST:PORT, not '" + f.admin + "'";
    if (f.admin == f.listen)
      return "--admin and --listen must differ";
    if (auto why = check_listen(f.admin); !why.empty())
      return "--admin: " + why;
  }
  if (f.election_min_ms <= 0 || f.election_max_ms < f.election_min_ms || f.heartbeat_ms <= 0 ||
      f.heartbeat_ms >= f.election_min_ms)
    return "timeouts must satisfy 0 < heartbeat < election-min <= election-max";
  if (spdlog::level::from_str(f.log_level) == spdlog::level::off && f.log_level != "off")
    return "--log-level must be one of trace, debug, info, warn, error, off";
  return {};
}

std::atomic<bool> node_down{false};

// Registers the read-only admin endpoints (apps/admin.hpp).
void serve_admin(caf::actor_system& sys, caf::actor node, httplib::Server& srv) {
  auto status = [&sys, node]() -> caf::expected<cafraft::pb::NodeStatus> {
    caf::scoped_actor self{sys};
    caf::expected<cafraft::pb::NodeStatus> out{caf::error{}};
    self->request(node, 1s, cafraft::status_atom::value)
        .receive([&](cafraft::pb::NodeStatus& s) { out = std::move(s); },
                 [&](caf::error& e) { out = std::move(e); });
    return out;
  };
  srv.Get("/livez", [status](const httplib::Request&, httplib::Response& res) {
    auto st = status();
    res.status = st ? 200 : 503;
    res.set_content(st ? "ok\n" : "node not answering\n", "text/plain");
  });
  srv.Get("/readyz", [status](const httplib::Request&, httplib::Response& res) {
    auto st = status();
    bool ready = st && !st->leader_id().empty();
    res.status = ready ? 200 : 503;
    res.set_content(!st     ? "node not answering\n"
                    : ready ? "ok\n"
                            : "no leader known\n",
                    "text/plain");
  });
  srv.Get("/v1/status", [status](const httplib::Request&, httplib::Response& res) {
    auto st = status();
    if (!st) {
      res.status = 503;
      res.set_content("{\"error\": \"node not answering\"}\n", "application/json");
      return;
    }
    nlohmann::ordered_json members = nlohmann::ordered_json::array();
    for (auto& m : st->members())
      members.push_back({{"id", m.id()}, {"address", m.address()}, {"voter", !m.learner()}});
    nlohmann::ordered_json j{{"id", st->id()},
                             {"role", st->role()},
                             {"term", std::to_string(st->term())},
                             {"leader", st->leader_id()},
                             {"leader_address", st->leader_address()},
                             {"commit_index", std::to_string(st->commit_index())},
                             {"applied_index", std::to_string(st->applied_index())},
                             {"last_log_index", std::to_string(st->last_log_index())},
                             {"members", members}};
    res.set_content(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                    "application/json");
  });
  srv.Get("/metrics", [&sys, node, status](const httplib::Request&, httplib::Response& res) {
    auto st = status();
    if (!st) {
      res.status = 503;
      res.set_content("node not answering\n", "text/plain");
      return;
    }
    caf::scoped_actor self{sys};
    std::vector<cafraft::pb::Inspection> actors;
    cafraft::pb::ActorDirectory dir;
    self->request(node, 1s, cafraft::directory_atom::value)
        .receive([&](cafraft::pb::ActorDirectory& d) { dir = std::move(d); }, [](caf::error&) {});
    for (auto& a : dir.actors()) {
      cafraft::pb::InspectRequest req;
      req.set_name(a.name());
      self->request(node, 1s, req)
          .receive([&](cafraft::pb::Inspection& i) { actors.push_back(std::move(i)); },
                   [](caf::error&) {});
    }
    res.set_content(cafraft::render_metrics(*st, actors), "text/plain; version=0.0.4");
  });
}

} // namespace

int main(int argc, char** argv) {
  flags f;
  CLI::App app{"cafraft-node: one Raft node of a cafraft cluster, reached over CAF networking",
               "cafraft-node"};
  app.set_version_flag("--version", std::string{"cafraft-node 0.1.0 (CAF 0.17.6)"});
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
  app.add_option("--cluster-id", f.cluster_id, "Recorded in the data directory and checked")
      ->envname("CAFRAFT_CLUSTER_ID");
  app.add_option("--tls-cert", f.tls_cert, "PEM certificate of this node (mutual TLS)")
      ->envname("CAFRAFT_TLS_CERT");
  app.add_option("--tls-key", f.tls_key, "PEM private key of --tls-cert")
      ->envname("CAFRAFT_TLS_KEY");
  app.add_option("--tls-ca", f.tls_ca, "PEM CA that signs every node's and client's certificate")
      ->envname("CAFRAFT_TLS_CA");
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
  app.add_option("--admin", f.admin,
                 "HOST:PORT for /metrics, /livez, /readyz and /v1/status over HTTP (off if unset)")
      ->envname("CAFRAFT_ADMIN");
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0)
      return app.exit(e);
    std::fprintf(stderr, "cafraft-node: %s\n", e.what());
    return 1;
  }
  std::vector<cafraft::member> members;
  std::vector<std::string> join;
  if (auto why = validate(f, members, join); !why.empty()) {
    std::fprintf(stderr, "cafraft-node: error: %s\n", why.c_str());
    return 1;
  }
  auto log = cafraft::get_logger("cafraft");
  log->set_level(spdlog::level::from_str(f.log_level));
  if (f.insecure)
    log->warn("{} RUNS IN PLAINTEXT (--insecure): node-to-node and client traffic is neither "
              "encrypted nor authenticated",
              f.id);

  // A write to a connection the peer reset must not kill the process (OpenSSL writes with a
  // plain write()).
  std::signal(SIGPIPE, SIG_IGN);
  // SIGTERM and SIGINT are taken by sigwait below, in this thread only.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Declared before the actor system: its destructor waits for the watcher that writes them.
  std::mutex mtx;
  caf::error why_down;
  auto dialers = std::make_shared<std::map<std::string, caf::actor>>();
  auto dialers_mtx = std::make_shared<std::mutex>();
  cafraft::network_config cfg{f.tls_cert, f.tls_key, f.tls_ca, f.sched};
  caf::actor_system sys{cfg};
  cafraft::node_config nc;
  nc.id = f.id;
  nc.address = f.listen;
  nc.members = members;
  nc.data_dir = f.data_dir;
  nc.cluster_id = f.cluster_id;
  nc.election_timeout_min = std::chrono::milliseconds{f.election_min_ms};
  nc.election_timeout_max = std::chrono::milliseconds{f.election_max_ms};
  nc.heartbeat_interval = std::chrono::milliseconds{f.heartbeat_ms};
  nc.dial_peers = true;
  nc.tls = !f.tls_cert.empty();
  nc.logger_name = "cafraft";
  caf::expected<caf::actor> node{caf::error{}};
  // The join's own connections to its contacts; gone once the node is admitted (its peers
  // connect by the rule that the smaller id dials).
  auto stop_dialers = [dialers, dialers_mtx] {
    std::lock_guard<std::mutex> guard{*dialers_mtx};
    for (auto& [address, d] : *dialers)
      caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
    dialers->clear();
  };
  if (!join.empty()) {
    cafraft::join_options opts;
    opts.contact_addresses = join;
    auto tls = nc.tls;
    auto dialer = [&sys, dialers, dialers_mtx, tls, log](const std::string& address) {
      std::lock_guard<std::mutex> guard{*dialers_mtx};
      auto& d = (*dialers)[address];
      if (!d) {
        cafraft::dial_options o;
        o.address = address;
        o.tls = tls;
        d = cafraft::spawn_dialer(sys, o, log);
      }
      return d;
    };
    for (auto& a : join)
      opts.contacts.push_back(dialer(a));
    opts.resolve = [dialer](const std::string&, const std::string& address) {
      return address.empty() ? caf::actor{} : dialer(address);
    };
    opts.timeout = 30s;
    node = cafraft::join_cluster(sys, nc, opts);
  } else {
    node = cafraft::spawn_node(sys, nc);
  }
  if (!node) {
    std::fprintf(stderr, "cafraft-node: error: %s\n", cafraft::render(node.error()).c_str());
    stop_dialers();
    return 2;
  }
  std::string host;
  uint16_t port = 0;
  cafraft::split_address(f.listen, host, port);
  auto published = nc.tls ? caf::openssl::publish(*node, port, host.c_str(), true)
                          : sys.middleman().publish(*node, port, host.c_str(), true);
  if (!published) {
    std::fprintf(stderr, "cafraft-node: error: cannot listen on %s: %s\n", f.listen.c_str(),
                 sys.render(published.error()).c_str());
    caf::anon_send_exit(*node, caf::exit_reason::user_shutdown);
    stop_dialers();
    return 2;
  }
  log->info("{} listens on {}{}", f.id, f.listen, nc.tls ? " (mutual TLS)" : " (plaintext)");

  // The admin HTTP endpoints, on a thread of their own; each request asks the node.
  std::unique_ptr<httplib::Server> admin;
  std::thread admin_thread;
  auto stop_admin = [&] {
    if (admin) {
      admin->stop();
      admin_thread.join();
    }
  };
  if (!f.admin.empty()) {
    admin = std::make_unique<httplib::Server>();
    serve_admin(sys, *node, *admin);
    std::string ahost;
    uint16_t aport = 0;
    cafraft::split_address(f.admin, ahost, aport);
    if (!admin->bind_to_port(ahost.c_str(), aport)) {
      std::fprintf(stderr, "cafraft-node: error: cannot serve --admin on %s\n", f.admin.c_str());
      caf::anon_send_exit(*node, caf::exit_reason::user_shutdown);
      stop_dialers();
      return 2;
    }
    admin_thread = std::thread{[&] { admin->listen_after_bind(); }};
    log->info("{} serves /metrics, /livez, /readyz and /v1/status on {}", f.id, f.admin);
  }

  // A node that stops by itself ends the process too.
  auto watcher = sys.spawn([&, n = *node](caf::event_based_actor* self) -> caf::behavior {
    self->monitor(n);
    self->request(n, caf::infinite, cafraft::joined_atom::value)
        .then([stop_dialers](cafraft::pb::MembershipResponse&) { stop_dialers(); },
              [](caf::error&) {});
    self->set_down_handler([&, self](caf::down_msg& dm) {
      {
        std::lock_guard<std::mutex> guard{mtx};
        why_down = dm.reason;
      }
      node_down = true;
      kill(getpid(), SIGTERM); // wakes sigwait
      self->quit();
    });
    return {[](int) {}};
  });
  int sig = 0;
  sigwait(&stop_signals, &sig);
  if (!node_down) {
    log->info("{} stops (signal {})", f.id, sig);
    caf::scoped_actor self{sys};
    self->monitor(*node);
    self->send_exit(*node, caf::exit_reason::user_shutdown);
    // The storage actor finishes the write it is doing (fsync included) before it stops.
    self->receive([](caf::down_msg&) {}, caf::after(10s) >> [] {});
    stop_admin();
    stop_dialers();
    caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
    return 0;
  }
  std::lock_guard<std::mutex> guard{mtx};
  log->error("{} stopped: {}", f.id, cafraft::render(why_down));
  stop_admin();
  stop_dialers();
  return 2;
}
