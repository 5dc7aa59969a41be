// What cafraft-node, cafraftctl and cafraft-console share to talk over the network: the actor
// system configuration, the endpoint list, and a check of the TLS files at start, so that a bad
// file is named before anything runs.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>

#include <cafraft/actors/peer.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/tls.hpp>

namespace cafraft {

/// How a process schedules its actors (docs/performance.md). CAF's work-stealing scheduler
/// polls and sleeps in 50 µs steps, which costs a remote round trip several wake-ups; the
/// sharing scheduler wakes a worker through a condition variable, several times faster on
/// loopback and with no CPU burnt while idle.
struct scheduling {
  std::string policy = "sharing"; // or "stealing"
  size_t threads = 0;             // 0: CAF's default, max(cores, 4)
  size_t middleman_workers = 0;   // threads that deserialize incoming messages; 0: the I/O thread
};

/// An actor system with cafraft's types and the middleman, whose multiplexer carries cafraft's
/// connections (actors/connection.hpp). Nothing is published through the middleman: CAF's own
/// protocol (BASP) is never reachable from the network.
struct network_config : caf::actor_system_config {
  explicit network_config(const scheduling& sched = {}) {
    set("scheduler.policy", caf::atom_from_string(sched.policy));
    if (sched.threads > 0)
      set("scheduler.max-threads", sched.threads);
    set("middleman.workers", sched.middleman_workers);
    register_types(*this);
    load<caf::io::middleman>();
  }
};

/// Splits "HOST:PORT,HOST:PORT,..." into `out`. Returns the first bad item's message, or "".
inline std::string parse_endpoints(const std::string& list, std::vector<std::string>& out) {
  for (size_t start = 0; start <= list.size();) {
    auto end = list.find(',', start);
    if (end == std::string::npos)
      end = list.size();
    auto one = list.substr(start, end - start);
    std::string host;
    uint16_t port = 0;
    if (!one.empty() && !split_address(one, host, port))
      return "wants HOST:PORT,..., not '" + one + "'";
    if (!one.empty())
      out.push_back(one);
    start = end + 1;
  }
  return {};
}

/// Loads certificate, key and CA into a scratch context. Returns why they are unusable, or "".
inline std::string check_tls_files(const std::string& cert, const std::string& key,
                                   const std::string& ca, const std::string& client_ca = {}) {
  std::string why;
  tls_context::load(tls_files{cert, key, ca, client_ca}, why);
  return why;
}

} // namespace cafraft
