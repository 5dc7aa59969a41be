// Inspection (docs/inspection.md). Every actor of a node answers inspect_atom with a
// pb::Inspection of its own state; the node keeps the directory of its actors and routes a
// pb::InspectRequest to the actor it names. Counting is an increment and a clock read per
// handled message; everything else is computed when someone asks.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include <cafraft/messages/raft.pb.h>

namespace cafraft {

/// Messages an actor handled: the total since it started and one count per second for the
/// last `window` seconds, from which an inspection gives rates.
class message_counter {
public:
  using time_point = caf::actor_clock::time_point;
  static constexpr int64_t window = 10; // seconds of history

  void count(time_point now) {
    ++total_;
    auto sec = second_of(now);
    if (sec > current_)
      advance(sec);
    ++per_second_[slot(current_)];
  }

  uint64_t total() const { return total_; }

  /// Messages per second over the `seconds` (1 to window) whole seconds before the one `now`
  /// falls in.
  double rate(time_point now, int64_t seconds) const {
    auto sec = second_of(now);
    uint64_t sum = 0;
    for (auto s = sec - seconds; s < sec; ++s)
      if (s <= current_ && s > current_ - slots)
        sum += per_second_[slot(s)];
    return static_cast<double>(sum) / static_cast<double>(seconds);
  }

private:
  static constexpr int64_t slots = window + 1; // the window and the current second

  static int64_t second_of(time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  }
  static size_t slot(int64_t sec) { return static_cast<size_t>(((sec % slots) + slots) % slots); }

  void advance(int64_t sec) {
    for (auto s = current_ + 1; s <= sec && s <= current_ + slots; ++s)
      per_second_[slot(s)] = 0;
    current_ = sec;
  }

  uint64_t total_ = 0;
  int64_t current_ = 0; // the second of the latest message
  std::array<uint32_t, slots> per_second_{};
};

/// An event-based actor that counts every message it handles (system messages and responses
/// included) in a message_counter, for inspections.
class inspected_actor : public caf::event_based_actor {
public:
  using caf::event_based_actor::event_based_actor;

  const message_counter& handled() const { return handled_; }

  caf::invoke_message_result consume(caf::mailbox_element& x) override {
    handled_.count(clock().now());
    return caf::event_based_actor::consume(x);
  }

private:
  message_counter handled_;
};

/// The actor type of a cafraft actor with state `State`.
template <class State> using inspected = caf::stateful_actor<State, inspected_actor>;

/// An Inspection of `self` with its mailbox size (read by the actor itself), the messages it
/// handled, and its message rates over the last second and the last ten seconds.
inline pb::Inspection make_inspection(caf::scheduled_actor* self, const std::string& kind,
                                      const message_counter& handled,
                                      std::vector<std::pair<std::string, std::string>> fields) {
  pb::Inspection out;
  out.set_kind(kind);
  out.set_mailbox(self->mailbox().size());
  out.set_handled(handled.total());
  auto now = self->clock().now();
  out.set_rate_1s(handled.rate(now, 1));
  out.set_rate_10s(handled.rate(now, message_counter::window));
  for (auto& [k, v] : fields)
    (*out.mutable_fields())[k] = v;
  return out;
}

/// make_inspection for an inspected_actor: its own counter.
inline pb::Inspection make_inspection(inspected_actor* self, const std::string& kind,
                                      std::vector<std::pair<std::string, std::string>> fields) {
  return make_inspection(self, kind, self->handled(), std::move(fields));
}

} // namespace cafraft
