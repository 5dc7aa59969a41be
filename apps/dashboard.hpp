// The web dashboard of cafraft-node, on its admin port: the page at / (apps/dashboard/index.html,
// compiled in: the browser needs nothing from the network) and the JSON it refreshes from,
// /v1/cluster and /v1/history (apps/dashboard_model.hpp). A thread samples the cluster once a
// second: the status and storage of every member (this node's own actors directly, the others
// over cafraft's protocol with this node's certificate), and the actor trees of all while the
// page was read in the last 30 seconds.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <httplib.h>

#include <cafraft/runtime/tls.hpp>

#include "apps/dashboard_model.hpp"

namespace cafraft {

class dashboard {
public:
  dashboard(caf::actor_system& sys, caf::actor node, std::string id, tls_files tls);
  ~dashboard();

  dashboard(const dashboard&) = delete;
  dashboard& operator=(const dashboard&) = delete;

  /// Serves /, /v1/cluster and /v1/history on `srv`.
  void serve(httplib::Server& srv);

private:
  void run();
  cluster_sample sample(bool with_actors);

  caf::actor_system& sys_;
  caf::actor node_;
  std::string id_;
  tls_files tls_;
  std::mutex mtx_;
  std::condition_variable wake_;
  bool stop_ = false;
  dashboard_model model_;
  std::atomic<int64_t> watched_until_ms_{0};
  std::thread sampler_;
};

/// The page at / (apps/dashboard/index.html).
extern const char* const dashboard_page;

} // namespace cafraft
