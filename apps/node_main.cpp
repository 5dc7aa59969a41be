// cafraft-node: one Raft node per process, reached with cafraft's protocol (README: "Run a
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

#include <caf/all.hpp>
#include <caf/io/all.hpp>
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

#include "apps/admin.hpp"
#include "apps/dashboard.hpp"
#include "apps/network.hpp"
#include "apps/node_options.hpp"
#include <cafraft/actors/connection.hpp>
#include <cafraft/actors/group_table.hpp>
#include <cafraft/actors/node.hpp>
#include <cafraft/actors/peer.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/backup.hpp>
#include <cafraft/runtime/logging.hpp>
#include <cafraft/runtime/recovery.hpp>

using namespace std::chrono_literals;

namespace {

std::atomic<bool> node_down{false};

// A node's status as /v1/status and /v1/groups give it (64-bit numbers as strings).
nlohmann::ordered_json status_json(const cafraft::pb::NodeStatus& st) {
  nlohmann::ordered_json members = nlohmann::ordered_json::array();
  for (auto& m : st.members())
    members.push_back({{"id", m.id()}, {"address", m.address()}, {"voter", !m.learner()}});
  return {{"id", st.id()},
          {"group", std::to_string(st.group())},
          {"role", st.role()},
          {"term", std::to_string(st.term())},
          {"leader", st.leader_id()},
          {"leader_address", st.leader_address()},
          {"commit_index", std::to_string(st.commit_index())},
          {"applied_index", std::to_string(st.applied_index())},
          {"last_log_index", std::to_string(st.last_log_index())},
          {"feature_level", st.feature_level()},
          {"cluster_level", st.cluster_level()},
          {"quiesced", st.quiesced()},
          {"members", members}};
}

void send_json(httplib::Response& res, const nlohmann::ordered_json& j) {
  res.set_content(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                  "application/json");
}

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
    send_json(res, status_json(*st));
  });
  srv.Get("/v1/groups", [&sys, node](const httplib::Request&, httplib::Response& res) {
    // Every group of the process (docs/groups.md), by group id.
    caf::scoped_actor self{sys};
    caf::expected<cafraft::pb::GroupList> list{caf::error{}};
    self->request(node, 3s, cafraft::groups_atom::value)
        .receive([&](cafraft::pb::GroupList& l) { list = std::move(l); },
                 [&](caf::error& e) { list = std::move(e); });
    if (!list) {
      res.status = 503;
      res.set_content("{\"error\": \"node not answering\"}\n", "application/json");
      return;
    }
    nlohmann::ordered_json groups = nlohmann::ordered_json::array();
    for (auto& g : list->groups())
      groups.push_back(status_json(g));
    send_json(res, {{"groups", groups}});
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
    res.set_content(cafraft::render_metrics(*st, actors) + cafraft::render_wire_metrics(st->id()),
                    "text/plain; version=0.0.4");
  });
}

} // namespace

namespace {

/// The groups besides group 0 this process hosts (docs/groups.md): 1..--groups, and every group
/// with data in DATA_DIR/g<id>, as one created at run time left it. A directory without data
/// (a creation cut short) is left alone: its group's members are known only to the creator.
std::set<uint64_t> hosted_groups(const cafraft::node_flags& f) {
  std::set<uint64_t> out;
  for (uint64_t g = 1; g <= f.groups; ++g)
    out.insert(g);
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator{f.data_dir, ec}) {
    // g<id>, the id as std::to_string writes it (no sign, no leading zero).
    auto name = e.path().filename().string();
    if (name.size() < 2 || name.size() > 21 || name[0] != 'g' || name[1] == '0' ||
        name.find_first_not_of("0123456789", 1) != std::string::npos || !e.is_directory(ec))
      continue;
    errno = 0;
    auto g = std::strtoull(name.c_str() + 1, nullptr, 10);
    if (errno == 0 && std::to_string(g) == name.substr(1) &&
        std::filesystem::exists(e.path() / "MANIFEST", ec))
      out.insert(g);
  }
  return out;
}

} // namespace

int main(int argc, char** argv) {
  cafraft::node_flags f;
  auto parsed = cafraft::parse_node_flags(argc, argv, f);
  if (parsed.exit) {
    std::fputs(parsed.out.c_str(), stdout);
    std::fputs(parsed.err.c_str(), stderr);
    return parsed.exit_code;
  }
  std::vector<cafraft::member> members;
  std::vector<std::string> join;
  if (auto why = cafraft::validate_node_flags(f, members, join); !why.empty()) {
    std::fprintf(stderr, "cafraft-node: error: %s\n", why.c_str());
    return 1;
  }
  auto log = cafraft::get_logger("cafraft");
  log->set_level(spdlog::level::from_str(f.log_level));
  // --force-new-cluster and --restore change the data directory before the node starts.
  auto dir_options = [&f] {
    cafraft::durable_options o;
    o.dir = f.data_dir;
    o.node_id = f.id;
    o.cluster_id = f.cluster_id;
    o.logger_name = "cafraft";
    return o;
  };
  if (f.force_new_cluster) {
    auto o = dir_options();
    try {
      auto forced = cafraft::force_new_cluster(o, {f.id, f.listen});
      log->warn("{} FORCES A NEW CLUSTER (--force-new-cluster): it is now the only voter (entry "
                "{}, term {}); the members were {}. Its log through index {} is kept and will "
                "be committed, uncommitted entries too. The other members must not start again "
                "with their data: add them again (their data directories wiped) with --join",
                f.id, forced.config_index, forced.term, forced.previous_members, forced.last_index);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "cafraft-node: error: cannot force a new cluster: %s\n", ex.what());
      return 1;
    }
  }
  if (!f.restore.empty()) {
    // The node then starts from the data directory the backup made.
    auto o = dir_options();
    try {
      if (o.cluster_id.empty())
        f.cluster_id = o.cluster_id = cafraft::backup::new_cluster_id();
      auto meta = cafraft::backup::restore(f.restore, o, {f.id, f.listen});
      log->warn("{} RESTORED {} into {}: the state at index {} (term {}, {} bytes) as the only "
                "member of a new cluster {}; others join it with --join",
                f.id, f.restore, f.data_dir, meta.index(), meta.term(), meta.size(), f.cluster_id);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "cafraft-node: error: cannot restore: %s\n", ex.what());
      return 1;
    }
  }
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
  cafraft::network_config cfg{f.sched};
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
  nc.check_invariants = f.check_invariants;
  if (f.feature_level != 0)
    nc.feature_level = f.feature_level;
  nc.lease_reads = f.lease_reads;
  nc.clock_drift_ppm = f.clock_drift_ppm;
  nc.session_timeout = std::chrono::milliseconds{f.session_timeout_ms};
  nc.quiesce_after = std::chrono::milliseconds{f.quiesce_after_ms};
  nc.dial_peers = true;
  nc.tls = {f.tls_cert, f.tls_key, f.tls_ca, f.tls_client_ca};
  nc.logger_name = "cafraft";
  caf::expected<caf::actor> node{caf::error{}};
  // The process's groups (docs/groups.md): the others (--groups, cafraftctl group create) stop
  // before group 0, whose connections they use.
  nc.groups = std::make_shared<cafraft::group_table>();
  auto stop_groups = [groups = nc.groups, &sys] {
    caf::scoped_actor self{sys};
    size_t stopping = 0;
    for (auto& [id, g] : groups->nodes())
      if (id != 0) {
        self->monitor(g);
        self->send_exit(g, caf::exit_reason::user_shutdown);
        ++stopping;
      }
    // Each finishes the write it is doing; 10 s for all of them.
    auto until = std::chrono::steady_clock::now() + 10s;
    for (size_t i = 0; i < stopping && std::chrono::steady_clock::now() < until; ++i)
      self->receive([](caf::down_msg&) {},
                    caf::after(std::chrono::duration_cast<std::chrono::milliseconds>(
                        until - std::chrono::steady_clock::now())) >>
                        [] {});
  };
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
    auto cluster = nc.cluster_id;
    auto dialer = [&sys, dialers, dialers_mtx, tls, cluster, log](const std::string& address) {
      std::lock_guard<std::mutex> guard{*dialers_mtx};
      auto& d = (*dialers)[address];
      if (!d) {
        cafraft::dial_options o;
        o.address = address;
        o.tls = tls;
        o.cluster_id = cluster;
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
  // A group that cannot start (removed from its own membership, its data damaged) is left out:
  // the process and its other groups go on.
  auto hosted = hosted_groups(f);
  size_t started = 0;
  for (auto g : hosted) {
    if (auto n = cafraft::spawn_group(sys, nc, g))
      ++started;
    else
      log->error("{}: group {} does not start: {}", f.id, g, cafraft::render(n.error()));
  }
  if (!hosted.empty())
    log->info("{} hosts {} groups besides its own", f.id, started);
  auto served = cafraft::serve_node(sys, *node, nc, f.listen);
  if (!served) {
    std::fprintf(stderr, "cafraft-node: error: cannot listen on %s: %s\n", f.listen.c_str(),
                 cafraft::render(served.error()).c_str());
    stop_groups();
    caf::anon_send_exit(*node, caf::exit_reason::user_shutdown);
    stop_dialers();
    return 2;
  }
  log->info("{} listens on {}{}", f.id, f.listen,
            nc.tls.enabled() ? " (mutual TLS)" : " (plaintext)");

  // The admin HTTP endpoints, on a thread of their own; each request asks the node.
  std::unique_ptr<httplib::Server> admin;
  std::unique_ptr<cafraft::dashboard> board;
  std::thread admin_thread;
  auto stop_admin = [&] {
    if (admin) {
      admin->stop();
      admin_thread.join();
      board.reset();
    }
  };
  if (!f.admin.empty()) {
    // With TLS, HTTPS with the node's certificate, and only for clients whose certificate the
    // cluster's CA signed (as on --listen); plain HTTP only with --insecure.
    if (nc.tls.enabled()) {
      auto https = std::make_unique<httplib::SSLServer>(f.tls_cert.c_str(), f.tls_key.c_str(),
                                                        f.tls_ca.c_str());
      // Certificates of the client CA (--tls-client-ca) are let in too.
      if (https->is_valid() && !f.tls_client_ca.empty() &&
          SSL_CTX_load_verify_locations(https->ssl_context(), f.tls_client_ca.c_str(), nullptr) !=
              1) {
        std::fprintf(stderr,
                     "cafraft-node: error: --tls-client-ca %s is not a PEM CA certificate\n",
                     f.tls_client_ca.c_str());
        stop_groups();
        caf::anon_send_exit(*node, caf::exit_reason::user_shutdown);
        stop_dialers();
        return 2;
      }
      if (!https->is_valid()) {
        std::fprintf(stderr, "cafraft-node: error: cannot serve --admin over TLS with %s\n",
                     f.tls_cert.c_str());
        stop_groups();
        caf::anon_send_exit(*node, caf::exit_reason::user_shutdown);
        stop_dialers();
        return 2;
      }
      admin = std::move(https);
    } else {
      admin = std::make_unique<httplib::Server>();
    }
    serve_admin(sys, *node, *admin);
    board = std::make_unique<cafraft::dashboard>(sys, *node, f.id, nc.tls);
    board->serve(*admin);
    std::string ahost;
    uint16_t aport = 0;
    cafraft::split_address(f.admin, ahost, aport);
    if (!admin->bind_to_port(ahost.c_str(), aport)) {
      std::fprintf(stderr, "cafraft-node: error: cannot serve --admin on %s\n", f.admin.c_str());
      stop_groups();
      caf::anon_send_exit(*node, caf::exit_reason::user_shutdown);
      stop_dialers();
      return 2;
    }
    admin_thread = std::thread{[&] { admin->listen_after_bind(); }};
    log->info("{} serves the dashboard at /, /metrics, /livez, /readyz, /v1/status, /v1/groups, "
              "/v1/cluster and /v1/history on {} ({})",
              f.id, f.admin,
              nc.tls.enabled() ? "HTTPS, client certificates of the cluster's CA" : "HTTP");
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
    stop_groups(); // before group 0, whose connections they use
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
  stop_groups();
  stop_admin();
  stop_dialers();
  return 2;
}
