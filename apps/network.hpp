// What cafraft-node, cafraftctl and cafraft-console share to talk over CAF networking: the
// actor system configuration, the endpoint list, and a check of the TLS files before CAF sees
// them (CAF 0.17 only notices a bad file at the first connection, and then terminates or
// hangs; notes §5).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <openssl/ssl.h>

#include <cafraft/actors/peer.hpp>
#include <cafraft/messages/register.hpp>

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

/// An actor system with cafraft's types and the middleman (and caf::openssl when `cert` is
/// set), with the heartbeat and connection timeout that notice a hung peer (notes §4).
struct network_config : caf::actor_system_config {
  network_config(const std::string& cert, const std::string& key, const std::string& ca,
                 const scheduling& sched = {}) {
    set("scheduler.policy", caf::atom_from_string(sched.policy));
    if (sched.threads > 0)
      set("scheduler.max-threads", sched.threads);
    set("middleman.workers", sched.middleman_workers);
    register_types(*this);
    load<caf::io::middleman>();
    if (!cert.empty()) {
      load<caf::openssl::manager>();
      openssl_certificate = cert;
      openssl_key = key;
      openssl_cafile = ca;
    }
    set("middleman.heartbeat-interval", caf::timespan{std::chrono::milliseconds{200}});
    set("middleman.connection-timeout", caf::timespan{std::chrono::seconds{2}});
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
                                   const std::string& ca) {
  for (auto* path : {&cert, &key, &ca})
    if (std::error_code ec; !std::filesystem::is_regular_file(*path, ec))
      return "cannot read " + *path;
  auto* ctx = SSL_CTX_new(TLS_method());
  std::string why;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1)
    why = "--tls-cert " + cert + " is not a PEM certificate";
  else if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
    why = "--tls-key " + key + " is not a PEM private key";
  else if (SSL_CTX_check_private_key(ctx) != 1)
    why = "--tls-key does not belong to --tls-cert";
  else if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1)
    why = "--tls-ca " + ca + " is not a PEM CA certificate";
  SSL_CTX_free(ctx);
  return why;
}

} // namespace cafraft
