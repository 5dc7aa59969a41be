// What the tests that run in real time (over real sockets and processes) share: a bounded wait,
// and the configuration of an actor system that talks to nodes over CAF's middleman.
#pragma once

#include <chrono>
#include <thread>

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>

#include <cafraft/messages/register.hpp>

namespace cafraft::test {

/// Polls `pred` every 10 ms until it holds or `budget` is spent; returns whether it held.
template <class Pred> bool eventually(std::chrono::milliseconds budget, Pred pred) {
  using steady = std::chrono::steady_clock;
  for (auto until = steady::now() + budget;;
       std::this_thread::sleep_for(std::chrono::milliseconds{10})) {
    if (pred())
      return true;
    if (steady::now() >= until)
      return false;
  }
}

/// cafraft's types and the middleman, whose multiplexer carries cafraft's connections
/// (actors/connection.hpp).
struct network_test_config : caf::actor_system_config {
  network_test_config() {
    register_types(*this);
    load<caf::io::middleman>();
  }
};

} // namespace cafraft::test
