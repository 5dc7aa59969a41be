// For the tests that run in real time (over real sockets and processes): a bounded wait.
#pragma once

#include <chrono>
#include <thread>

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

} // namespace cafraft::test
