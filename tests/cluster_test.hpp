// The fixture of tests that run a cluster of nodes under CAF's test scheduler: an actor system
// in virtual time, its driver, and the two calls most of them make.
#pragma once

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "harness.hpp"

namespace cafraft::test {

class cluster_test : public ::testing::Test {
protected:
  test_config cfg;
  caf::actor_system sys{cfg};
  driver d{sys, 1, false};

  /// The leader every running node agrees on, once there is one ("" after `limit`).
  std::string wait_leader(cluster& c, std::chrono::milliseconds limit = 3000ms) {
    std::string leader;
    d.run_until([&] { return !(leader = agreed_leader(c, d)).empty(); }, limit);
    return leader;
  }

  /// Sends `req` to node `id` and runs the cluster until it answers.
  template <class Resp, class Req>
  caf::expected<Resp> call(cluster& c, const std::string& id, Req req,
                           std::chrono::milliseconds limit = 2000ms) {
    auto o = c.ask<Resp>(id, std::move(req), limit);
    d.run_until([&] { return o->done; }, limit + 10ms);
    EXPECT_TRUE(o->done) << "no answer from " << id;
    return o->value;
  }
};

} // namespace cafraft::test
